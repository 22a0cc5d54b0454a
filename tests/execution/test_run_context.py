"""RunContext (issue 21): typed fields instead of an untyped ``extra`` dict; a context shared by many runs is
never changed by them (each run gets its own, with its own artifact folder); no attribute can be set on one."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import bench.execution.execute
from bench.execution.executors import Launch, Policy, _ray_task, executors
from bench.records.records import record_path
from bench.tasks import RunContext
from tests._tiny import digits_suite


@pytest.fixture
def suite(tmp_path):
    return digits_suite(tmp_path, "ctxs")


@pytest.fixture
def seen(monkeypatch):
    """Every task call's context; the fake task trains nothing and writes one artifact into its run's folder."""
    calls = []

    def fake_task(spec, ctx, **_options):
        calls.append((spec, ctx))
        ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.artifact_dir / "a.txt"
        path.write_text(spec.id)
        return {
            "metrics": {"top1": 1.0},
            "artifacts": [{"path": str(path.relative_to(ctx.results_dir)), "caption": "x"}],
        }

    monkeypatch.setattr(
        bench.execution.execute, "TASKS", SimpleNamespace(get=lambda name: SimpleNamespace(obj=fake_task))
    )
    return calls


def _fields(ctx: RunContext) -> dict:
    """Everything a context holds but its data cache (which is meant to be filled), deep-copied."""
    return {f.name: copy.deepcopy(getattr(ctx, f.name)) for f in dataclasses.fields(ctx) if f.name != "data_cache"}


def _shared() -> RunContext:
    return RunContext(
        device=torch.device("cpu"),
        progress=False,
        invocation={"seeds": [0], "device": "cpu", "only": None, "threads": 1, "force": False},
        provenance={"executor": "local", "shard": "0/1"},
        compile=True,
        wait_elsewhere=False,
    )


def test_a_context_shared_by_two_runs_is_not_changed_by_them(suite, seen, tmp_path):
    results = tmp_path / "results"
    specs = suite.expand()
    assert len(specs) == 2
    ctx = _shared()
    before = _fields(ctx)
    launch = Launch(suite, specs, results, ctx)
    assert executors()["local"].run(launch) == {"ran": 2, "skipped": 0, "failed": 0}
    assert _fields(ctx) == before and ctx.results_dir is None and ctx.artifact_dir is None
    assert [s.id for s, _ in seen] == [s.id for s in specs]
    dirs = set()
    for spec, run_ctx in seen:
        assert run_ctx is not ctx
        assert run_ctx.artifact_dir == results / "ctxs" / "artifacts" / spec.id and run_ctx.results_dir == results
        # the rest is the shared context's, unchanged (the data cache is the same dict: loaded once per process)
        assert run_ctx.data_cache is ctx.data_cache and run_ctx.compile and not run_ctx.wait_elsewhere
        assert run_ctx.invocation == ctx.invocation and run_ctx.provenance == ctx.provenance
        dirs.add(run_ctx.artifact_dir)
        rec = json.loads(record_path(results, spec).read_text())
        assert rec["invocation"] == {"seeds": [0], "device": "cpu", "threads": 1}  # None/False left out, as before
        assert rec["provenance"]["executor"] == "local" and rec["provenance"]["shard"] == "0/1"
        (art,) = rec["artifacts"]
        assert Path(art["path"]).parts[:3] == ("ctxs", "artifacts", spec.id)
        assert (results / art["path"]).read_text() == spec.id
    assert len(dirs) == 2


def test_a_jobs_worker_task_leaves_the_worker_context_alone(suite, seen, tmp_path, monkeypatch):
    """A --jobs worker's runs share its one context; a task's wait choice and folders are the task's own."""
    import bench.execution.jobs

    results = tmp_path / "results"
    ctx = RunContext(
        device=torch.device("cpu"), progress=False, invocation={"jobs": 2}, provenance={"executor": "jobs"}
    )
    monkeypatch.setitem(bench.execution.jobs._WORKER, "ctx", ctx)
    before = _fields(ctx)
    for spec in suite.expand():
        out = bench.execution.jobs._run_one(spec.id, pickle.dumps((suite, spec, str(results), Policy(), True)))
        assert out["counts"]["ran"] == 1
    assert bench.execution.jobs._WORKER["ctx"] is ctx and _fields(ctx) == before and ctx.wait_elsewhere
    assert len({c.artifact_dir for _, c in seen}) == 2 and all(c.invocation == {"jobs": 2} for _, c in seen)


def test_a_ray_task_builds_its_run_context_from_the_drivers_options(suite, seen, tmp_path):
    results = tmp_path / "results"
    spec = suite.expand()[0]
    setup = {
        "device": "cpu",
        "invocation": {"tune": True},
        "provenance": {"shard": "1/2"},
        "options": {"compile": False, "tune": True},
    }
    out = _ray_task(spec, suite, str(results), setup, Policy(), False)
    assert out["status"] == "ran" and out["ok"]
    ((_, c),) = seen
    assert c.tune and not c.compile and c.artifact_dir == results / "ctxs" / "artifacts" / spec.id
    rec = json.loads(record_path(results, spec).read_text())
    assert rec["provenance"]["executor"] == "ray" and rec["provenance"]["shard"] == "1/2"
    assert rec["invocation"] == {"tune": True}


def test_no_attribute_can_be_set_on_a_context():
    ctx = _shared()
    with pytest.raises(dataclasses.FrozenInstanceError):  # a misspelt field is refused, not silently added
        ctx.artifact_dri = Path("x")
    with pytest.raises(dataclasses.FrozenInstanceError):  # nor can a field be changed
        ctx.artifact_dir = Path("x")
    with pytest.raises(TypeError):
        RunContext(device=torch.device("cpu"), extra={"compile": True})  # the former dict is no argument
    assert not hasattr(ctx, "artifact_dri")


def test_extra_is_a_read_only_view_under_the_former_keys(suite):
    spec = suite.expand()[0]
    run = _shared().for_run("/r", spec)
    view = run.extra
    assert view["invocation"] is run.invocation and view["provenance"]["executor"] == "local"
    assert view.get("compile") is True and view.get("tune") is None and view["wait_elsewhere"] is False
    assert view["artifact_dir"] == Path("/r") / "ctxs" / "artifacts" / spec.id and view["results_dir"] == Path("/r")
    assert "artifact_dir" not in _shared().extra  # as before: no run folders on a context outside a run
    with pytest.raises(TypeError):
        view["compile"] = False
