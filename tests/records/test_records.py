"""Records: atomic writes, skip on rerun, --force, failures recorded, bad files reported not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.records.records import load_records, write_json_atomic
from bench.execution.runner import run_specs
from bench.tasks import RunContext
from tests._tiny import digits_suite


@pytest.fixture
def suite(tmp_path):
    return digits_suite(tmp_path, "rec")


def ctx():
    return RunContext(device=torch.device("cpu"), progress=False)


def test_atomic_write_leaves_no_temp_and_valid_json(tmp_path):
    path = tmp_path / "a" / "r.json"
    write_json_atomic(path, {"x": float("nan"), "y": [1, 2]})
    assert json.loads(path.read_text()) == {"x": None, "y": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_rerun_skips_done_and_force_reruns(suite, tmp_path):
    results = tmp_path / "results"
    specs = suite.expand()
    c1 = run_specs(suite, specs, results, ctx(), log=lambda *_: None)
    assert c1 == {"ran": 2, "skipped": 0, "failed": 0}
    files = sorted((results / "rec").glob("*.json"))
    assert len(files) == 2
    rec = json.loads(files[0].read_text())
    assert rec["status"] == "ok" and rec["schema"] == 1 and rec["id"] in files[0].name
    assert rec["params"]["learned"] > 0 and rec["macs"] > 0 and len(rec["history"]) == 1
    assert rec["suite"]["sha256"] == suite.sha256 and rec["env"]["torch"] == torch.__version__
    assert rec["invocation"] == {}  # nothing chosen on a command line here
    mtimes = [f.stat().st_mtime_ns for f in files]
    c2 = run_specs(suite, specs, results, ctx(), log=lambda *_: None)
    assert c2 == {"ran": 0, "skipped": 2, "failed": 0}
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    c3 = run_specs(suite, specs[:1], results, ctx(), force=True, log=lambda *_: None)
    assert c3["ran"] == 1


def test_nan_loss_is_recorded_as_failed_and_suite_continues(suite, tmp_path):
    results = tmp_path / "results"
    specs = suite.expand()
    specs[0].protocol["optimizer"]["lr"] = 1e30  # diverges at once
    counts = run_specs(suite, specs, results, ctx(), log=lambda *_: None)
    assert counts["failed"] == 1 and counts["ran"] == 2
    recs, problems = load_records(results)
    failed = [r for r in recs if r["status"] == "failed"]
    assert len(failed) == 1 and ("nan" in failed[0]["error"].lower() or "inf" in failed[0]["error"].lower())
    assert not problems


def test_max_failures_stops_the_suite(suite, tmp_path):
    specs = suite.expand()
    for s in specs:
        s.protocol["optimizer"]["lr"] = 1e30
    counts = run_specs(suite, specs, tmp_path / "r", ctx(), max_failures=1, log=lambda *_: None)
    assert counts == {"ran": 1, "skipped": 0, "failed": 1}


def test_corrupt_and_foreign_files_are_reported_not_fatal(tmp_path):
    root = tmp_path / "results" / "s"
    root.mkdir(parents=True)
    (root / "broken.json").write_text("{not json")
    (root / "foreign.json").write_text(json.dumps({"hello": "world"}))
    (root / "future.json").write_text(
        json.dumps({"schema": 99, "id": "x", "status": "ok", "suite": {}, "spec": {}, "label": "x"})
    )
    recs, problems = load_records(tmp_path / "results")
    assert recs == []
    reasons = {Path(p).name: r for p, r in problems}
    assert "not valid JSON" in reasons["broken.json"]
    assert "not a run record" in reasons["foreign.json"]
    assert "newer" in reasons["future.json"]
