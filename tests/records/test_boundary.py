"""A boundary no file crosses: record paths stay under --results; `bench report` accepts only records whose id is
the harness's (16 hex digits, the hash of the record's spec), refuses artifacts outside the results folder, skips
what it cannot render (one line each, naming the file) and always builds the site. Records and site files: 0644."""

from __future__ import annotations

import copy
import json
import math
import os
import stat
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.spec.identity import run_id
from bench.records.records import record_path, write_json_atomic
from bench.report import svg
from bench.spec.suite import RunSpec, load_suite

SUITE = """
name: rep
task: classification
dataset: digits
protocol: {epochs: 2}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, sep-chans]
seeds: [0, 1]
"""


def fake(spec, suite, acc=90.0, **extra):
    rec = {
        "schema": 1,
        "id": spec.id,
        "status": "ok",
        "label": spec.label,
        "task": "classification",
        "suite": {"name": suite.name, "file": "x", "sha256": "y"},
        "spec": spec.to_dict(),
        "metrics": {"top1": acc, "top1_best": acc},
        "params": {"learned": 10, "fixed": 2, "total": 12},
        "macs": 1000,
        "timing": {"train_s": 1.0, "throughput_img_s": 100.0},
        "env": {"device": "CPU: test"},
        "history": [{"epoch": 1, "test_acc": acc}],
    }
    rec.update(extra)
    return rec


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def crafted(tmp_path):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "rep.yaml").write_text(SUITE)
    suite = load_suite(suites / "rep.yaml")
    specs = {(s.label, s.seed): s for s in suite.expand()}
    results = tmp_path / "results"
    out = results / "rep"
    good = [specs[("conv", 0)], specs[("sep-chans", 0)]]
    for s in good:
        write_json_atomic(record_path(results, s), fake(s, suite))
    # a record with an artifact inside the results folder: accepted, copied
    s = specs[("sep-chans", 1)]
    art = Path("rep") / "artifacts" / s.id / "figure.png"
    (results / art).parent.mkdir(parents=True)
    (results / art).write_bytes(b"png")
    write_json_atomic(record_path(results, s), fake(s, suite, artifacts=[{"path": str(art), "caption": "c"}]))
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy")
    (out / "link.png").symlink_to(secret)
    conv1 = specs[("conv", 1)]
    bad = {
        "evil-id.json": dict(fake(good[0], suite), id="../../../X"),
        "dup-spec.json": dict(fake(good[0], suite, acc=10.0), id="0123456789abcdef"),
        "empty-spec.json": dict(fake(good[0], suite), spec={}),
        "traversal.json": fake(conv1, suite, artifacts=[{"path": "../../../../etc/hostname"}]),
        "absolute.json": fake(conv1, suite, artifacts=[{"path": str(secret)}]),
        "symlink.json": fake(conv1, suite, artifacts=[{"path": "rep/link.png"}]),
        "same-id-twice.json": fake(good[1], suite),
        "suite-escape.json": dict(fake(good[0], suite), suite={"name": "../../x"}),
    }
    for name, rec in bad.items():
        (out / name).write_text(json.dumps(rec))
    return tmp_path, suites, results, suite, good, bad


def test_report_skips_what_it_cannot_trust_or_render_and_builds_the_site(crafted, capsys):
    tmp, suites, results, suite, good, bad = crafted
    site = tmp / "site"
    before = tree(tmp)
    rc = main(["report", "--results", str(results), "--suites", str(suites), "--site", str(site)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0
    assert (site / "index.html").is_file() and (site / "suite-rep.html").is_file()
    skipped = {Path(line.split(":", 1)[0].removeprefix("skipped ")).name: line for line in err}
    assert set(skipped) == set(bad), err  # one line each, naming the file
    assert "16 hex digits" in skipped["evil-id.json"]
    assert "not the hash of the record's spec" in skipped["dup-spec.json"]
    assert "spec.task" in skipped["empty-spec.json"]
    for name in ("traversal.json", "absolute.json", "symlink.json"):
        assert "outside the results folder" in skipped[name]
    assert "same run id" in skipped["same-id-twice.json"]
    # nothing written outside the site; run data (drawn by run.html) only for the trusted records
    assert {p for p in tree(tmp) - before if not p.startswith("site")} == set()
    pages = sorted(i for p in (site / "runs").glob("*.json") for i in json.loads(p.read_text()))  # per shard
    assert pages == sorted([good[0].id, good[1].id, spec_of(suite, "sep-chans", 1).id])
    copied = [p for p in (site / "artifacts").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in copied] == [b"png"]
    assert "do not copy" not in "".join(p.read_text(errors="ignore") for p in site.rglob("*") if p.is_file())
    for p in site.rglob("*"):  # site files are world-readable
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def spec_of(suite, label, seed) -> RunSpec:
    return next(s for s in suite.expand() if s.label == label and s.seed == seed)


def test_records_are_0644_and_never_leave_the_results_folder(tmp_path):
    suite = load_suite(_write(tmp_path / "rep.yaml", SUITE))
    spec = suite.expand()[0]
    path = record_path(tmp_path / "results", spec)
    write_json_atomic(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    evil = copy.deepcopy(spec)
    evil.suite = "../escape"
    with pytest.raises(BenchError, match="outside the results folder"):
        record_path(tmp_path / "results", evil)
    evil.suite = str(tmp_path / "abs")
    with pytest.raises(BenchError, match="outside the results folder"):
        record_path(tmp_path / "results", evil)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "abs").exists()


def test_record_ids_are_the_hash_of_the_stored_spec(tmp_path):
    suite = load_suite(_write(tmp_path / "rep.yaml", SUITE))
    for spec in suite.expand():
        assert run_id(spec.to_dict()) == spec.id


def test_plots_ignore_non_finite_values():
    nan = math.nan
    out = svg.scatter(
        [
            {"x": 10.0, "y": nan, "label": "a"},
            {"x": nan, "y": 1.0, "label": "b"},
            {"x": 100.0, "y": 2.0, "label": "c", "yerr": nan},
        ],
        "x",
        "y",
        frontier=True,
    )
    # one finite point left: said in words (a single point is not drawn on empty axes), no NaN in it
    assert "plot-statement" in out and "c: y 2 at x 100" in out and "nan" not in out.lower()
    line = svg.lines([{"label": "s", "x": [1, 2, 3], "y": [nan, 2.0, math.inf]}], "epoch", "acc")
    assert "s: acc 2 at epoch 2" in line and "inf" not in line.lower()
    two = svg.lines([{"label": "s", "x": [1, 2, 3, 4], "y": [nan, 2.0, math.inf, 3.0]}], "epoch", "acc")
    assert two.count('class="mark"') == 2
    assert svg.lines([{"label": "s", "x": [1], "y": [nan]}], "e", "a") == ""


def test_report_does_not_read_lock_or_temporary_files(tmp_path, capsys):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "rep.yaml").write_text(SUITE)
    suite = load_suite(suites / "rep.yaml")
    spec = suite.expand()[0]
    results = tmp_path / "results"
    write_json_atomic(record_path(results, spec), fake(spec, suite))
    (results / "rep" / ".locks").mkdir()
    (results / "rep" / ".locks" / f"{spec.id}.owner.json").write_text('{"host": "h", "pid": 1}')
    (results / "rep" / f".{record_path(results, spec).name}.abc.tmp").write_text("{")
    assert main(["report", "--results", str(results), "--suites", str(suites), "--site", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().err == ""


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_umask_does_not_matter_for_records(tmp_path):
    old = os.umask(0o077)
    try:
        write_json_atomic(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644
