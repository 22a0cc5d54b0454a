"""``bench run --jobs N``: runs packed into N worker processes give the records a serial run gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.execution.jobs import threads_per_job
from tests._guard import within

ROOT = Path(__file__).resolve().parents[2]
FLAGS = [
    "--only",
    "conv",
    "--only",
    "sep-chans",
    "--seeds",
    "0,1",
    "--epochs",
    "2",
    "--max-batches",
    "2",
    "--train-subset",
    "128",
    "--test-subset",
    "64",
    "--no-progress",
    "--device",
    "cpu",
]


def test_threads_are_divided():
    assert threads_per_job(2, 2) == 1
    assert threads_per_job(16, 4) == 4
    assert threads_per_job(16, 3) == 5
    assert threads_per_job(1, 4) == 1  # never zero


def _records(folder: Path) -> dict:
    out = {}
    for p in folder.glob("quick/*.json"):
        r = json.loads(p.read_text())
        out[p.name] = r
    return out


@pytest.mark.slow
def test_jobs_records_match_serial_records(tmp_path):
    serial, packed = tmp_path / "serial", tmp_path / "packed"
    # serial at 1 thread per run: what each of the 2 workers gets out of 2 threads
    assert main(["run", str(ROOT / "suites" / "quick.yaml"), *FLAGS, "--threads", "1", "--results", str(serial)]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            "run",
            str(ROOT / "suites" / "quick.yaml"),
            *FLAGS,
            "--threads",
            "2",
            "--jobs",
            "2",
            "--shard",
            "0/1",
            "--oversubscribe",  # 2 processes even where this process may use fewer cores (taskset, a container)
            "--results",
            str(packed),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 runs in 2 processes, 1 CPU thread(s) each" in proc.stdout
    a, b = _records(serial), _records(packed)
    assert len(a) == 4 and sorted(a) == sorted(b)  # same run ids (file names end in the id)
    for name in a:
        ra, rb = a[name], b[name]
        assert rb["status"] == "ok" == ra["status"]
        assert rb["metrics"] == ra["metrics"], name
        assert [h["train_loss"] for h in rb["history"]] == [h["train_loss"] for h in ra["history"]]
        assert rb["env"]["cpu_threads"] == 1
        assert rb["invocation"]["jobs"] == 2 and "jobs" not in ra["invocation"]
        # provenance names the executor and shard as the other executors' do (not part of the run id)
        assert rb["provenance"]["executor"] == "jobs" and rb["provenance"]["shard"] == "0/1"
        assert rb["provenance"]["pid"] != os.getpid() and ra["provenance"].get("executor") == "local"
    # a second packed run skips everything (the runner's skip path is used by the workers' parent)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            "run",
            str(ROOT / "suites" / "quick.yaml"),
            *FLAGS,
            "--jobs",
            "2",
            "--results",
            str(packed),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0 and "0 ran, 4 already done" in proc.stdout


def test_jobs_must_be_positive(tmp_path, capsys):
    assert main(["run", str(ROOT / "suites" / "quick.yaml"), "--jobs", "0", "--results", str(tmp_path)]) == 2
    assert "--jobs" in capsys.readouterr().err


# -- supervision (issue 19, item 4): light workers (tests/_jobworkers.py), no torch, no training -------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie (dead, not yet reaped by its new parent) is not alive
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_plan_caps_processes_at_cores_and_runs():
    from bench.execution.jobs import plan

    assert plan(2, 15, 2, 2) == (2, 1, None)
    n, per, warning = plan(64, 15, 2, 2)
    assert (n, per) == (2, 1) and "2 CPU core(s)" in warning  # was: 64 processes of 1 thread on 2 cores
    assert plan(64, 15, 2, 2, oversubscribe=True)[:2] == (15, 1)  # asked for: never more than the runs
    # two runs left of a --jobs 4 suite: two processes, each with the threads --jobs 4 gives (same records)
    assert plan(4, 2, 16, 8) == (2, 4, None)


def test_killed_worker_loses_only_its_run_and_pool_goes_on(tmp_path, monkeypatch, capsys):
    """SIGKILL of a worker mid-run: that run is retried once in a fresh worker, then recorded failed (a valid
    record, provenance executor=jobs and the shard); the other runs are done; no worker outlives the pool."""
    from bench.execution.jobs import run_jobs
    from bench.records.records import read_record, record_path
    from bench.spec.suite import load_suite
    from bench.tasks import RunContext
    import torch

    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("BENCH_TEST_MARKS", str(marks))
    suite = load_suite(ROOT / "suites" / "quick.yaml")
    suite.layers = [row for row in suite.layers if row["label"] in ("conv", "sep-chans", "sep-full", "sep-space")]
    specs = suite.expand({"epochs": 1})
    assert len(specs) == 4
    by_label = {s.label: s for s in specs}
    (marks / "plan.json").write_text(json.dumps({by_label["conv"].id: "once", by_label["sep-chans"].id: "always"}))
    results = tmp_path / "results"
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    monkeypatch.setattr(RunContext, "dataset", lambda self, spec: None)  # fake runs read no data: none decoded
    with within(60, "run_jobs"):
        counts = run_jobs(
            suite,
            specs,
            results,
            ctx,
            2,
            threads=2,
            provenance={"shard": "0/1"},
            worker=("tests._jobworkers:init_jobs", "tests._jobworkers:fake_run"),
            log=print,
        )
    out = capsys.readouterr().out
    # conv died once (then ran), sep-chans twice (then recorded failed), the two others ran: 4 ran, 1 failed
    assert counts == {"ran": 4, "skipped": 0, "failed": 1}, out
    assert out.count("its worker was lost (killed by SIGKILL); running it once more") == 2, out
    lost = next(s for s in specs if s.label == "sep-chans")
    rec, _ = read_record(record_path(results, lost))  # validates against bench.records.recordschema
    assert rec["status"] == "failed" and "killed by SIGKILL" in rec["error"] and rec["id"] == lost.id
    assert rec["provenance"]["executor"] == "jobs" and rec["provenance"]["shard"] == "0/1"
    assert not any(record_path(results, s).exists() for s in specs if s is not lost)  # fake runs write nothing
    pids = [int(p.name.split("-")[1]) for p in marks.glob("worker-*")]
    # 2 at the start, a fresh one for each of the 2 retries, and one after the last death if runs were still
    # queued then (which depends on the order the workers finish in)
    assert 4 <= len(pids) <= 5
    assert not any(_alive(pid) for pid in pids)  # every worker has exited and been reaped


def test_no_wait_reports_runs_held_elsewhere_without_starting_workers(tmp_path, monkeypatch):
    import torch

    import bench.execution.jobs
    from bench.execution.locks import RunLock
    from bench.spec.suite import load_suite
    from bench.tasks import RunContext

    suite = load_suite(ROOT / "suites" / "quick.yaml")
    suite.layers = suite.layers[:2]
    specs = suite.expand({"epochs": 1})
    results = tmp_path / "results"
    locks = [RunLock(results, s.suite, s.id) for s in specs]
    assert all(lk.acquire() for lk in locks)  # another runner trains them (flock: per open file, so here too)

    def no_worker(*a, **k):
        raise AssertionError("a worker was started for runs held elsewhere")

    monkeypatch.setattr(bench.execution.jobs, "_Worker", no_worker)
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    lines = []
    try:
        counts = bench.execution.jobs.run_jobs(suite, specs, results, ctx, 2, no_wait=True, log=lines.append)
    finally:
        for lk in locks:
            lk.release()
    assert counts == {"ran": 0, "skipped": 0, "failed": 0, "elsewhere": 2}
    assert len(lines) == 2 and all(f"pid {os.getpid()}" in line for line in lines)


PARENT = """
import sys
from bench.execution.jobs import supervise
folder = sys.argv[1]
supervise([(i, "tests._jobworkers:sleep_forever", (i,)) for i in range(2)], 2, ("tests._jobworkers:init", (folder,)),
          lambda k, v: (), lambda k, why: None)
"""


@pytest.mark.slow
def test_killing_the_parent_ends_its_workers(tmp_path):
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], env=env, cwd=ROOT)
    try:
        with within(60, "two busy workers"):
            while len(list(tmp_path.glob("busy-*"))) < 2:
                assert parent.poll() is None, "the parent ended early"
                time.sleep(0.05)
        pids = [int(p.name.split("-")[1]) for p in tmp_path.glob("busy-*")]
        assert all(_alive(pid) for pid in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        # the workers must end within 10 s of the parent's death (PR_SET_PDEATHSIG: at once; the getppid
        # watchdog: within about 1 s, then 5 s of grace)
        with within(10, "the orphaned workers' exit"):
            while any(_alive(pid) for pid in pids):
                time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
        for p in tmp_path.glob("busy-*"):
            try:
                os.kill(int(p.name.split("-")[1]), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_worker_that_cannot_start_stops_the_pool_with_one_error(tmp_path):
    """Not every run recorded failed: a worker that exits (or raises) in its start-up is the environment's fault."""
    from bench.errors import BenchError
    from bench.execution.jobs import supervise

    lost = []
    tasks = [(i, "tests._jobworkers:echo", (i,)) for i in range(3)]
    with within(60, "supervise"):
        with pytest.raises(BenchError, match="exited with status 3 before it could take a run"):
            supervise(tasks, 2, ("tests._jobworkers:exit_at_start", ()), lambda k, v: (), lambda k, w: lost.append(k))
        with pytest.raises(ValueError, match="plug-in file failed to import"):
            supervise(tasks, 2, ("tests._jobworkers:fail_at_start", ()), lambda k, v: (), lambda k, w: lost.append(k))
        done = []
        supervise(
            tasks,
            2,
            ("tests._jobworkers:init", (str(tmp_path),)),
            lambda k, v: done.append(v) or (),
            lambda k, w: lost.append(k),
        )
    assert lost == [] and sorted(done) == [0, 1, 2]
