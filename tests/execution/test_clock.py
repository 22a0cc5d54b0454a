"""Time cannot lose a run (issue 19, item 5): temporary files are judged by their owner's lock and records by
their content, so a skewed clock (or file times from another machine's clock) changes nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

import bench.execution.runner
from bench.execution.executors import Policy, failed_record
from bench.execution.locks import RunLock, clean_stale_tmp
from bench.records.records import existing_record, read_record, record_path, write_json_atomic
from bench.spec.suite import load_suite
from bench.tasks import RunContext

ROOT = Path(__file__).resolve().parents[2]
SKEW = 2 * 3600.0


@pytest.fixture
def quick():
    suite = load_suite(ROOT / "suites" / "quick.yaml")
    suite.layers = suite.layers[:1]
    (spec,) = suite.expand({"epochs": 1})
    return suite, spec


def _record(suite, spec, error="first"):
    return failed_record(spec, suite, torch.device("cpu"), error)


def test_a_runner_two_hours_ahead_deletes_no_live_writers_file(tmp_path, quick, monkeypatch):
    suite, spec = quick
    results = tmp_path / "results"
    path = record_path(results, spec)
    path.parent.mkdir(parents=True)
    writer = RunLock(results, spec.suite, spec.id)
    assert writer.acquire()  # a live writer holds the run's lock and is writing its record
    tmp = path.parent / f".{path.name}.k3y9.tmp"
    tmp.write_text("{")
    dead = path.parent / f".{path.name.replace(spec.id, 'f' * 16)}.r1.tmp"  # no lock: a killed writer's
    dead.write_text("{")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + SKEW)  # this runner's clock: two hours ahead
    os.utime(tmp, (real_time() - SKEW, real_time() - SKEW))  # and the writer stalled for two hours
    try:
        removed = clean_stale_tmp(results, spec.suite)
    finally:
        writer.release()
    assert tmp.exists(), "a live writer's temporary file was deleted"
    assert removed == [dead] and not dead.exists()


def test_force_reruns_whatever_the_file_times(tmp_path, quick, monkeypatch):
    """The record's file time lies two hours in this runner's future (its clock is behind, as under
    ``faketime -f -2h``): --force still reruns it; a record rewritten by a peer since counts as done."""
    suite, spec = quick
    results = tmp_path / "results"
    path = record_path(results, spec)
    write_json_atomic(path, _record(suite, spec))
    os.utime(path, (time.time() + SKEW, time.time() + SKEW))
    calls = []

    def fake_execute(spec_, ctx, suite_):
        calls.append(spec_.id)
        return _record(suite_, spec_, error="rerun")

    monkeypatch.setattr(bench.execution.runner, "execute", fake_execute)
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    counts = bench.execution.runner.run_specs(suite, [spec], results, ctx, force=True, log=lambda s: None)
    assert counts["ran"] == 1 and calls == [spec.id]  # was: "0 ran, 1 already done"
    assert read_record(path)[0]["error"] == "rerun"

    policy = Policy(force=True).baseline(results, [spec])
    os.utime(path, (0, 0))  # only the time changed: not a new record, still to be redone
    assert policy.done(results, spec) is None
    write_json_atomic(path, _record(suite, spec, error="by a peer"))  # a peer's record, written meanwhile
    os.utime(path, (0, 0))  # however old its file time reads
    assert policy.done(results, spec)["error"] == "by a peer"


def test_a_record_counts_by_its_content(tmp_path, quick):
    suite, spec = quick
    results = tmp_path / "results"
    rec = _record(suite, spec)
    rec["spec"]["seed"] = 99  # an edited spec under the run's id and file name: another run's content
    write_json_atomic(record_path(results, spec), rec)
    assert existing_record(results, spec) is None
    rec = _record(suite, spec)
    rec["status"] = "running"  # not a finished run's status
    write_json_atomic(record_path(results, spec), rec)
    assert existing_record(results, spec) is None
    write_json_atomic(record_path(results, spec), _record(suite, spec))
    assert existing_record(results, spec)["status"] == "failed"
