"""Executors behind one interface (issue 21): a registry the command line picks from, each executor a function
of one Launch; the built-in names the parser offers are the registered ones."""

from __future__ import annotations

import torch

from bench.cli import main
from bench.execution.executors import EXECUTORS, Launch, executor_names, executors, register_executor


def test_the_parser_offers_exactly_the_registered_executors():
    assert set(executor_names()) == set(executors()) == {"local", "jobs", "ray"}


def test_bench_run_picks_the_executor_from_the_registry(tmp_path, monkeypatch, capsys):
    """A registered executor receives the invocation as one Launch; --jobs N alone picks 'jobs'."""
    seen = []

    def fake(launch: Launch) -> dict:
        seen.append(launch)
        return {"ran": 0, "skipped": len(launch.specs), "failed": 0}

    executors()
    monkeypatch.setitem(EXECUTORS, "jobs", EXECUTORS["jobs"].__class__("jobs", fake))
    monkeypatch.setitem(EXECUTORS, "local", EXECUTORS["local"].__class__("local", fake))
    argv = ["run", "suites/quick.yaml", "--only", "conv", "--results", str(tmp_path / "r"), "--device", "cpu"]
    assert main(argv + ["--jobs", "2", "--threads", "2"]) == 0
    assert main(argv) == 0
    jobs, local = seen
    assert jobs.jobs == 2 and jobs.threads == 2 and [s.label for s in jobs.specs] == ["conv"]
    assert jobs.ctx.provenance["executor"] == "jobs" and local.ctx.provenance["executor"] == "local"
    assert isinstance(local.ctx.device, torch.device) and local.jobs == 1
    assert "1 already done" in capsys.readouterr().out
    # 'local' with --jobs N is a contradiction: one line, exit 2
    assert main(argv + ["--executor", "local", "--jobs", "2"]) == 2
    assert "the 'jobs' executor" in capsys.readouterr().err


def test_a_second_executor_under_a_taken_name_is_refused():
    import pytest

    from bench.errors import BenchError

    executors()
    with pytest.raises(BenchError, match="registered twice"):
        register_executor("local")(lambda launch: {})
