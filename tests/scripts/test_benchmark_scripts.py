"""The issue-10 benchmark scripts at smoke size: they run and report what they claim to measure."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each benchmark script run at smoke size: left out of `pytest -m "not slow"`

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_jobs_throughput_reports_n1_and_n2_side_by_side(tmp_path):
    out = tmp_path / "jobs.json"
    res = _load("jobs_throughput").main(
        [
            "--only",
            "conv",
            "--seeds",
            "0,1",
            "--epochs",
            "1",
            "--max-batches",
            "1",
            "--train-subset",
            "64",
            "--test-subset",
            "32",
            "--threads",
            "2",
            "--out",
            str(out),
        ]
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["jobs"] for r in rows] == [1, 2] and [r["threads_per_job"] for r in rows] == [2, 1]
    assert all(r["runs"] == 2 and r["ok"] == 2 and r["runs_per_hour"] > 0 for r in rows)
    assert rows[0]["speed_up"] == 1.0
    assert res["rows"][1]["runs_per_hour"] == rows[1]["runs_per_hour"]


def test_report_speed_measures_a_torch_free_report(tmp_path):
    shutil.copytree(ROOT / "results" / "quick", tmp_path / "results" / "quick")
    res = _load("report_speed").main(
        ["--results", str(tmp_path / "results"), "--repeats", "1", "--sizes", "12", "--out", str(tmp_path / "r.json")]
    )
    assert res["report_imports_torch"] is False
    rows = res["rows"]
    assert rows[0]["median_s"] > 0 and res["ratio"] == rows[0]["median_s"] / rows[2]["median_s"]
    assert res["ratio_new_folder"] == rows[1]["median_s"] / rows[2]["median_s"]
    # at scale: 12 synthetic records (validated), a report into a new folder and one over it, CPU time measured
    scaled = [r for r in rows if r.get("records") == 12]
    assert [r["command"].split("(")[1] for r in scaled] == [
        "into a new folder, no record memo)",
        "into a new folder)",
        "over an existing site)",
    ]
    assert all(r["cpu_s"] > 0 and r["maxrss_mb"] > 10 and r["load_1min"] >= 0 for r in scaled)


def test_synthetic_records_pass_the_harness_validation(tmp_path):
    from bench.records.records import load_records

    n = _load("report_speed").synthetic_results(ROOT / "results", tmp_path / "r", 30)
    records, problems = load_records(tmp_path / "r")
    assert n == 30 and len(records) == 30 and problems == []
    assert len({r["id"] for r in records}) == 30 and len({r["spec"]["seed"] for r in records}) == 30


def test_fixed_costs_times_every_part(tmp_path):
    res = _load("fixed_costs").main(
        ["--epochs", "1", "--train", "64", "--test", "32", "--out", str(tmp_path / "f.json")]
    )
    parts = [r["part"] for r in res["rows"]]
    assert any("MAC counting" in p for p in parts) and any(p.startswith("FGSM, 6 ε on 32") for p in parts)
    assert any(p.startswith("latency") for p in parts)
    fixed = res["rows"][-1]
    assert fixed["seconds"] == sum(r["seconds"] for r in res["rows"][1:-1])
    assert res["ratio"] == fixed["share_of_training"]


def test_batch_throughput_rates_every_size_against_the_fastest(tmp_path):
    out = tmp_path / "b.json"
    res = _load("batch_throughput").main(["--batches", "4,8", "--rounds", "2", "--seconds", "0.2", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["batch"] for r in rows] == [4, 8]
    assert max(r["ratio_to_fastest"] for r in rows) == 1.0
    for r in rows:
        assert r["min_img_s"] <= r["img_s"] <= r["max_img_s"]
        assert r["ratio_to_fastest"] == r["img_s"] / max(x["img_s"] for x in rows)
        assert abs(r["epoch_min"] - 50000 / r["img_s"] / 60) < 1e-9
    assert res["rows"] == rows


def test_campaign_table_computes_delta_and_interval_from_the_records(tmp_path):
    """benchmarks/campaign_table.py: the closing note's table, from the v2 records (here: conv and pnn, two
    seeds each, cloned from a committed record with new specs and ids)."""
    from bench.spec.identity import IDENTITY_VERSION, run_id
    from bench.records.records import write_json_atomic
    from bench.report.verdicts import difference_interval

    template = json.loads(sorted((ROOT / "results" / "fast-cifar-v2").glob("*conv--s0*.json"))[0].read_text())
    folder = tmp_path / "fast-cifar-v2"
    values = {("conv", 0): 89.0, ("conv", 1): 89.6, ("pnn", 0): 68.0, ("pnn", 1): 70.0}
    for (label, seed), top1 in values.items():
        rec = json.loads(json.dumps(template))
        rec["spec"]["layer"] = {"name": label, "label": label, "options": {}}
        rec["spec"]["seed"], rec["label"], rec["metrics"]["top1"] = seed, label, top1
        rec["finished"] = f"2026-12-0{1 + seed}T00:00:00+00:00"
        rec["timing"]["train_s"] = 1000.0 if label == "conv" else (3000.0 if seed == 0 else 1500.0)
        if label == "pnn" and seed == 1:  # the newer pnn run trained through a folded speed path
            rec["timing"]["speed_paths"] = {**rec["timing"].get("speed_paths", {}), "fold": True}
        rec["id"], rec["identity_version"] = run_id(rec["spec"]), IDENTITY_VERSION
        rec.pop("artifacts", None)
        write_json_atomic(folder / f"{label}-{seed}-{rec['id']}.json", rec, durable=False)
    mod = _load("campaign_table")
    table = mod.rows(folder)
    assert [r["label"] for r in table] == ["conv", "pnn"] and [r["n"] for r in table] == [2, 2]
    iv = difference_interval(69.0, 2**0.5, 2, 89.3, 0.18**0.5, 2)
    line = next(x for x in mod.markdown(table).splitlines() if x.startswith("| pnn"))
    assert f"{iv.centre:+.2f} [{iv.lo:+.2f}, {iv.hi:+.2f}]" in line and "| 2 | 69.00 ± 1.41 |" in line
    # timed on the newest path only (1,500 s / 1,000 s), CPU-hours from both runs
    assert "| 1.50 (1 of 2) |" in line and f"| {4500 / 3600:.2f} |" in line


def test_campaign_table_refuses_a_folder_that_is_not_there(tmp_path, capsys):
    mod = _load("campaign_table")
    assert mod.main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope: no such folder of records" in err
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])  # help, not an empty table read from a folder named --help
    assert exc.value.code == 0 and "results/<suite>" in capsys.readouterr().out


def test_steer_fold_step_times_both_paths_and_restores_the_fast_one(tmp_path):
    from bench.zoo.layers.steerable import SteerableBlock

    before = SteerableBlock._forward_folded
    res = _load("steer_fold_step").main(
        ["--batch", "2", "--rounds", "1", "--steps", "1", "--out", str(tmp_path / "s.json")]
    )
    assert SteerableBlock._forward_folded is before
    rows = {r["path"]: r for r in json.loads((tmp_path / "s.json").read_text())["rows"]}
    assert set(rows) == {"folded", "atoms"} and all(len(r["rounds"]) == 1 for r in rows.values())
    # the ratio comes from the unrounded medians; the rows keep 4 decimals
    ratio = rows["atoms"]["cpu_s_per_step"] / rows["folded"]["cpu_s_per_step"]
    assert res["atoms_over_folded"] == pytest.approx(ratio, rel=0.01)


def test_fold_step_times_both_paths_of_the_rows_that_fold_only(tmp_path):
    res = _load("fold_step").main(
        ["--batch", "2", "--rounds", "1", "--steps", "1", "--rows", "conv,sep-chans", "--out", str(tmp_path / "f.json")]
    )
    rows = {r["row"]: r for r in json.loads((tmp_path / "f.json").read_text())["rows"]}
    assert rows == {r["row"]: r for r in res["rows"]}
    assert rows["conv"]["layers_folded"] == 0 and "as_written_cpu_s_per_step" not in rows["conv"]
    sep = rows["sep-chans"]
    assert sep["layers_folded"] > 0 and len(sep["folded_rounds"]) == len(sep["as_written_rounds"]) == 1
    assert sep["as_written_over_folded"] == pytest.approx(
        sep["as_written_cpu_s_per_step"] / sep["folded_cpu_s_per_step"], rel=0.05
    )


def test_fold_step_sweep_reports_the_rule_beside_both_paths():
    mod = _load("fold_step")
    rows = mod.sweep(cases=(("sep-full", 4, 4, 6, 3, {"multiplier": 1}), ("rfnn", 4, 4, 8, 3, {})), rounds=1, steps=1)
    one, rf = rows
    assert one["default_fold"] is one["rule"] is False and "1 per channel" in one["shape"]  # d = 1: as written
    assert rf["default_fold"] is rf["rule"] is True and "k=5" in rf["shape"]
    assert all(r["folded_s"] > 0 and r["as_written_s"] > 0 for r in rows)


def test_fold_pairs_pairs_one_run_id_across_the_two_paths(tmp_path, capsys):
    """benchmarks/fold_pairs.py: a record pairs with the other folder's record of its run id only when one of
    them trained folded and the other as written (same device); the difference is folded − as written."""
    from bench.records.records import write_json_atomic

    mod = _load("fold_pairs")
    src = sorted((ROOT / "results" / "fast-fashion-v2").glob("*--sep-chans--s0--*.json"))[0]
    written = json.loads(src.read_text())
    assert "fold" not in written["timing"].get("speed_paths", {})
    folded = json.loads(json.dumps(written))
    folded["timing"]["speed_paths"] = {**written["timing"].get("speed_paths", {}), "fold": True}
    folded["metrics"]["top1"] = written["metrics"]["top1"] - 0.25
    folded["timing"]["train_s"] = written["timing"]["train_s"] / 2
    a, b, same = tmp_path / "a" / "fast-fashion-v2", tmp_path / "b" / "fast-fashion-v2", tmp_path / "c" / "x"
    write_json_atomic(a / src.name, written, durable=False)
    write_json_atomic(b / src.name, folded, durable=False)
    write_json_atomic(same / src.name, written, durable=False)
    (row,) = mod.pairs(tmp_path / "b", tmp_path / "a")
    assert row["row"] == "sep-chans" and row["difference"] == -0.25 and row["time_ratio"] == 2.0
    assert row["top1_as_written"] == written["metrics"]["top1"]
    assert mod.pairs(tmp_path / "c", tmp_path / "a") == []  # the same path on both sides: no pair
    assert mod.main([str(tmp_path / "nope")]) == 2 and "no such folder" in capsys.readouterr().err


def test_campaign_queue_lists_what_the_records_lack_with_estimates(tmp_path, capsys):
    """benchmarks/campaign_queue.py: a run with an ok record on the device is not queued (another device's
    record does not count); a row's estimate is its longest measured run × 1.1 (rounded up to 100 s), else the
    backbone's conv run × the row's time ratio to conv on another backbone; backbone-filtered targets carry
    --backbone and --epochs; targets keep their order, seeds ascend, longest first within a seed."""
    mod = _load("campaign_queue")
    from bench.spec.suite import load_suite

    suites = ROOT / "suites"
    deconv = load_suite(suites / "deconv.yaml")
    specs = {
        (sp.label, sp.backbone["name"], sp.seed): sp for sp in deconv.expand(overrides={"epochs": 1}, seeds=[0, 1])
    }
    dev = "CPU: test (1 threads)"

    def rec(label, bb, seed, dur, device=dev, status="ok"):
        sp = specs[(label, bb, seed)]
        return {
            "id": sp.id,
            "label": label,
            "status": status,
            "duration_s": dur,
            "env": {"device": device},
            "spec": sp.to_dict(),
        }

    records = [
        rec("conv", "vgg16", 0, 1000.0),
        rec("deconv", "vgg16", 0, 2000.0),
        rec("conv", "resnet18", 0, 1500.0),
        rec("deconv", "resnet18", 0, 9.0, device="CPU: other (1 threads)"),
        rec("conv", "vgg16", 1, 5.0, status="failed"),
    ]
    target = mod.parse_target("deconv epochs=1 backbone=vgg16,resnet18")
    lines, missing = mod.plan([target], records, suites, dev, [0, 1], "fast-cifar-v2")
    flags = lambda bb: ["--backbone", bb, "--epochs", "1"]  # noqa: E731
    assert lines == [
        ("deconv", 0, 3300, "deconv", "-", flags("resnet18")),  # 1500 s × (2000 / 1000) × 1.1
        ("deconv", 1, 3300, "deconv", "-", flags("resnet18")),
        ("deconv", 1, 2200, "deconv", "-", flags("vgg16")),
        ("conv", 1, 1700, "deconv", "-", flags("resnet18")),  # 1650 s, rounded up
        ("conv", 1, 1100, "deconv", "-", flags("vgg16")),  # the failed record does not count
    ]
    assert missing == []
    # nothing measured for a backbone: named, not queued
    lines, missing = mod.plan(
        [mod.parse_target("deconv epochs=1 backbone=mobilenetv2")], records, suites, dev, [0], "fast-cifar-v2"
    )
    assert lines == [] and len(missing) == 2 and all("mobilenetv2" in m for m in missing)
    with pytest.raises(mod.BadTarget, match="unknown or bad 'width=2'"):
        mod.parse_target("deconv width=2")
    # bad input on the command line: one line naming it, exit code 2
    assert mod.main(["deconv width=2"]) == 2
    assert mod.main(["no-such-suite"]) == 2 and "no-such-suite" in capsys.readouterr().err
    assert mod.main(["--seeds", "x", "deconv"]) == 2

    # a row whose newest run trained through a folded speed path is estimated from that path's runs only
    def run(label, dur, finished, fold=False, rid=None):
        r = rec(label, "vgg16", 0, dur)
        r["finished"], r["id"] = finished, rid or r["id"]
        if fold:
            r["timing"] = {"speed_paths": {"threads": 1, "fold": True}}
        return r

    mixed = [
        run("deconv", 6000.0, "2026-12-01T00:00:00+00:00", rid="older"),  # as written, slower
        run("deconv", 2000.0, "2026-12-02T00:00:00+00:00", fold=True),
        run("conv", 5000.0, "2026-12-01T00:00:00+00:00"),
        run("conv", 900.0, "2026-11-30T00:00:00+00:00", rid="rerun"),
    ]
    lines, _ = mod.plan([mod.parse_target("deconv epochs=1 backbone=vgg16")], mixed, suites, dev, [1], "x")
    assert ("deconv", 1, 2200, "deconv", "-", flags("vgg16")) in lines  # 2000 s × 1.1: the folded run only
    assert ("conv", 1, 5500, "deconv", "-", flags("vgg16")) in lines  # one path: the longest run × 1.1


def test_campaign_worker_runs_queued_lines_with_their_flags_and_keeps_what_does_not_fit(tmp_path):
    """tools/campaign_worker.sh: each line becomes one `bench run` with its suite, row, seed, tier and extra
    flags; its record is copied into the main checkout when its status is ok (a failed run's record stays
    behind, its exit code logged); a line whose estimate ends after the deadline stays."""
    import os
    import subprocess
    import time

    runs, main, venv = tmp_path / "runs", tmp_path / "main", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    fake = venv / "bin" / "bench"  # stands in for the harness: notes its arguments and writes a record file
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        'suite=$(basename "$2" .yaml); label=$4; seed=$6; status=ok; [ "$label" = lbcnn ] && status=failed\n'
        'mkdir -p "results/$suite"\n'
        'echo "{\\"status\\": \\"$status\\"}" > "results/$suite/bb--$label--s$seed--0123456789abcdef.json"\n'
        "[ $status = ok ] || exit 3\n"
    )
    fake.chmod(0o755)
    (venv / "bin" / "activate").write_text(f'export PATH="{venv / "bin"}:$PATH"\n')
    runs.mkdir()
    queue = tmp_path / "campaign" / "queue.txt"
    queue.parent.mkdir()
    queue.write_text(
        "conv 1 10 deconv - --backbone vgg16 --epochs 1\nrfnn 2 100000 fast-cifar-v2\npnn 0 10 fast-fashion-v2 small\n"
        "lbcnn 2 10 fast-fashion-v2\n"
    )
    env = dict(os.environ, RUNS=str(runs), MAIN=str(main), VENV=str(venv))
    deadline = str(int(time.time()) + 3600)
    out = subprocess.run(
        ["bash", str(ROOT / "tools" / "campaign_worker.sh"), "A", deadline, str(queue)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert calls.read_text().splitlines() == [
        "run suites/deconv.yaml --only conv --seeds 1 --backbone vgg16 --epochs 1 --threads 1 --device cpu --no-progress",
        "run suites/fast-fashion-v2.yaml --only pnn --seeds 0 --tier small --threads 1 --device cpu --no-progress",
        "run suites/fast-fashion-v2.yaml --only lbcnn --seeds 2 --threads 1 --device cpu --no-progress",
    ]
    assert (main / "results" / "deconv" / "bb--conv--s1--0123456789abcdef.json").exists()
    assert (main / "results" / "fast-fashion-v2" / "bb--pnn--s0--0123456789abcdef.json").exists()
    assert "end deconv conv seed 1 rc=0" in out and "end fast-fashion-v2 lbcnn seed 2 rc=3" in out
    assert (runs / "results" / "fast-fashion-v2" / "bb--lbcnn--s2--0123456789abcdef.json").exists()
    assert not (main / "results" / "fast-fashion-v2" / "bb--lbcnn--s2--0123456789abcdef.json").exists()
    assert "not copied (status not ok)" in out
    assert queue.read_text() == "rfnn 2 100000 fast-cifar-v2\n"  # does not fit before the deadline: kept
    assert "nothing fits before the deadline" in out
