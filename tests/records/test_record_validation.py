"""Records are data, never trusted (issue 19): every record is checked against one typed schema before the
report uses it; a bad one is skipped with one line naming the file and the field, and the site is built.
Files are read only when regular and under a size cap: a /dev/zero symlink or a FIFO is refused at once."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from bench.cli import main
from bench.records.records import existing_record, load_records, write_json_atomic
from bench.spec.suite import load_suite
from tests._guard import within
from tests.report.test_report import SUITE, fake_records

# (field path, bad value, the field the one line must name)
WRONG_TYPES = [
    (("metrics",), [1, 2], "metrics"),
    (("metrics",), "top1", "metrics"),
    (("metrics",), 5, "metrics"),
    (("timing",), [1.0], "timing"),
    (("timing",), "fast", "timing"),
    (("timing",), 3, "timing"),
    (("params",), [10], "params"),
    (("params",), "many", "params"),
    (("params",), 12, "params"),
    (("env",), ["cpu"], "env"),
    (("env",), "cpu", "env"),
    (("env",), 1, "env"),
    (("data",), [1], "data"),
    (("data",), "digits", "data"),
    (("data",), 7.5, "data"),
    (("env", "device"), ["cpu", "gpu"], "env.device"),
    (("data", "test"), "359", "data.test"),
    (("finished",), 20261201, "finished"),
    (("metrics", "top1"), [90.0], "metrics.top1"),
    (("timing", "throughput_spread"), "wide", "timing.throughput_spread"),
    (("metrics", "classes"), 0, "metrics.classes"),
    (("history",), [{"epoch": 1, "test_acc": 50.0}, "epoch 2"], "history[1]"),
    (("curves",), {"loss": {"x": "1,2", "y": [1, 2], "xlabel": "a", "ylabel": "b"}}, "curves.loss.x"),
    (("spec", "protocol", "epochs"), "2", "spec.protocol.epochs"),
]


def _site_inputs(tmp_path: Path):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "rep.yaml").write_text(SUITE)
    s = load_suite(suites / "rep.yaml")
    results = tmp_path / "results"
    paths = []
    for rec in fake_records(s):
        rec.update(finished="2026-12-01T10:00:00", data={"test": 359, "classes": 10})
        p = results / "rep" / f"{rec['label']}-{rec['spec']['seed']}.json"
        write_json_atomic(p, rec)
        paths.append(p)
    return suites, results, paths


def _set(rec: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        rec = rec.setdefault(key, {})
    rec[path[-1]] = value


def _report(tmp_path, results, suites, capsys):
    rc = main(["report", "--results", str(results), "--suites", str(suites), "--site", str(tmp_path / "site")])
    cap = capsys.readouterr()
    return rc, cap.err.strip().splitlines(), cap.out


@pytest.mark.parametrize(
    "path,value,field", WRONG_TYPES, ids=[".".join(w[0]) + ":" + type(w[1]).__name__ for w in WRONG_TYPES]
)
def test_wrong_typed_record_is_skipped_with_one_line_and_the_site_is_built(tmp_path, capsys, path, value, field):
    suites, results, paths = _site_inputs(tmp_path)
    bad = json.loads(paths[0].read_text())
    _set(bad, path, value)
    paths[0].write_text(json.dumps(bad))
    rc, err, out = _report(tmp_path, results, suites, capsys)
    assert rc == 0, err
    assert len(err) == 1 and err[0].startswith(f"skipped {paths[0]}: {field}: "), err
    assert "8 records" in out and (tmp_path / "site" / "index.html").exists()


def test_finished_of_mixed_types_across_records_never_crashes_the_report(tmp_path, capsys):
    suites, results, paths = _site_inputs(tmp_path)
    for p, value in zip(paths[:3], (20261201, None, ["x"])):
        rec = json.loads(p.read_text())
        rec["finished"] = value
        p.write_text(json.dumps(rec))
    rc, err, _ = _report(tmp_path, results, suites, capsys)
    assert rc == 0 and len(err) == 2 and all(": finished: " in e for e in err), err  # None is allowed


def test_committed_records_all_pass_the_schema():
    root = Path(__file__).resolve().parents[2] / "results"
    records, problems = load_records(root)
    assert records and [p for p in problems if "/benchmarks/" not in p[0]] == []


@pytest.mark.parametrize(
    "text,reason",
    [
        ('{"a": NaN}', "non-finite"),
        ('{"a": 1e400}', "out of range"),
        ('{"a": Infinity}', "non-finite"),
        ("[" * 990 + "]" * 990, "nested more than"),
        ("[" * 5000 + "]" * 5000, "nested more than"),
        ('{"a": "\udcff"}'.encode("utf-8", "surrogatepass").decode("latin-1"), "not UTF-8"),
    ],
)
def test_hostile_json_is_refused_with_a_reason(tmp_path, text, reason):
    root = tmp_path / "results" / "s"
    root.mkdir(parents=True)
    (root / "r.json").write_bytes(text.encode("latin-1") if "not UTF-8" == reason else text.encode())
    with within(10, "load_records"):
        recs, problems = load_records(tmp_path / "results")
    assert recs == [] and len(problems) == 1 and reason in problems[0][1], problems


def _plant_special(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "zero":
        os.symlink("/dev/zero", path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    else:
        path.write_bytes(b"[" + b"0," * (5 << 20) + b"0]")  # 10 MB: over the cap


@pytest.mark.parametrize("kind", ["zero", "fifo", "dir", "big"])
def test_special_files_are_refused_quickly_by_the_report(tmp_path, capsys, kind):
    suites, results, _ = _site_inputs(tmp_path)
    _plant_special(results / "rep" / "evil.json", kind)
    with within(30, f"bench report over a {kind} record"):  # refused "in under a second"; generous cap
        rc, err, out = _report(tmp_path, results, suites, capsys)
    assert rc == 0 and len(err) == 1 and "evil.json" in err[0], err
    assert "9 records" in out


@pytest.mark.parametrize("kind", ["zero", "fifo", "deep", "wrong"])
def test_dry_run_treats_a_hostile_file_at_a_record_path_as_todo(tmp_path, capsys, kind):
    suites, _, _ = _site_inputs(tmp_path)
    s = load_suite(suites / "rep.yaml")
    spec = s.expand()[0]
    from bench.records.records import record_path

    target = record_path(tmp_path / "r", spec)
    if kind in ("zero", "fifo"):
        _plant_special(target, kind)
    else:
        target.parent.mkdir(parents=True)
        rec = fake_records(s)[0]
        text = "[" * 990 + "]" * 990 if kind == "deep" else json.dumps(dict(rec, metrics=[1]))
        target.write_text(text)
    with within(30, "dry run"):
        rc = main(["run", str(suites / "rep.yaml"), "--results", str(tmp_path / "r"), "--dry-run"])
    out = capsys.readouterr()
    if kind == "zero":  # a link out of the results folder: refused as such, one line
        assert rc == 2 and len(out.err.strip().splitlines()) == 1 and "outside the results folder" in out.err
        return
    assert existing_record(tmp_path / "r", spec) is None
    assert rc == 0 and "Traceback" not in out.err
    assert out.out.splitlines()[0].startswith("todo ")


def test_a_valid_record_still_counts_as_done(tmp_path):
    suites, _, _ = _site_inputs(tmp_path)
    s = load_suite(suites / "rep.yaml")
    spec = s.expand()[0]
    from bench.records.records import record_path

    rec = copy.deepcopy([r for r in fake_records(s) if r["id"] == spec.id][0])
    write_json_atomic(record_path(tmp_path / "r", spec), rec)
    assert existing_record(tmp_path / "r", spec)["id"] == spec.id


def test_ulp_apart_records_render_a_site_in_under_10_s(tmp_path, capsys):
    """Rows at chance on the 359-image digits test set: one at 100·36/359, another with seeds at 100·35/359
    and 100·37/359, whose mean lies 2 ulp away. The report hung in the tick loop."""
    suites, results, paths = _site_inputs(tmp_path)
    accs = {
        "conv": [100 * 36 / 359] * 3,
        "sep-chans": [100 * 35 / 359, 100 * 37 / 359, 100 * 36 / 359],
        "sep-space": [100 * 36 / 359] * 3,
    }
    for p in paths:
        rec = json.loads(p.read_text())
        acc = accs[rec["label"]][rec["spec"]["seed"]]
        rec["metrics"] = {"top1": acc, "top1_best": acc}
        rec["history"] = [{"epoch": 1, "test_acc": acc}, {"epoch": 2, "test_acc": acc}]
        rec["timing"]["train_s"] = 1e16 if rec["spec"]["seed"] else 1.0000000000000002e16
        p.write_text(json.dumps(rec))
    with within(30, "bench report over ulp-apart records"):
        rc, err, out = _report(tmp_path, results, suites, capsys)
    assert rc == 0 and err == [] and "9 records" in out
