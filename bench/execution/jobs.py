"""Runs packed on one device: ``bench run SUITE --jobs N`` runs N run specs at once, in N worker processes.

* Each worker is a fresh interpreter (``python -c``, no state shared with the parent or other workers) that runs
  one spec at a time through the runner's own single-spec path (:func:`bench.execution.runner.run_specs` with a
  one-element list), so whatever the runner does per run (skip a finished run, write the record atomically,
  per-run locks) happens here exactly as in a serial run.
* Workers are supervised (issue 19, item 4). The parent talks to each worker over a pair of pipes and sees a
  worker's death as the end of its pipe: the run it held is given to a fresh worker once more, and if that one
  dies too the run is recorded as failed (by the parent, through the same lock protocol); the other runs go on.
  Workers die with the parent: on Linux each asks the kernel for SIGTERM when its parent ends
  (``prctl(PR_SET_PDEATHSIG)``), and everywhere a watchdog thread polls ``os.getppid()`` every second and ends
  the worker (SIGTERM, then ``os._exit`` 5 s later) once the parent is gone. SIGTERM raises ``SystemExit`` in
  the worker, so the run in flight releases its lock and removes its temporary file. Ctrl-C is handled by the
  parent alone (workers ignore SIGINT): it stops every worker and exits 130. No multiprocessing machinery is
  used, so no helper process (resource tracker, manager) outlives ``bench``.
* ``--no-wait``: a run whose lock another process holds is reported as running elsewhere and not waited for;
  without it such runs are come back to at the end, waiting on their lock, as the serial runner does.
* Processes and threads: ``--jobs`` above the CPU cores this process may use warns and is capped there (unless
  ``--oversubscribe``), and no more workers start than there are runs left. CPU: the torch threads are divided,
  each worker gets ``max(1, threads // N)`` (``N``: ``--jobs`` after the cap; ``threads``: ``--threads`` or the
  parent's ``torch.get_num_threads()``), whatever the runs left; the worker sets ``OMP_NUM_THREADS`` and
  ``MKL_NUM_THREADS`` before it imports torch. GPU: the processes share the device (each allocates its own
  memory).
* A run's result does not depend on what else runs: every run seeds its own RNGs from its spec. On CPU a record
  made with ``--jobs N`` has the same metrics as a serial run with ``--threads max(1, threads // N)`` (float
  reductions can depend on the thread count, so compare at equal threads per run; ``tests/execution/test_jobs.py``).
  Its provenance names the executor (``jobs``) and the shard, as the other executors' records do.
* Data are decoded once, in the parent, before the workers start (the workers then read the decoded cache).

This module imports no torch at import time: the workers import it after setting their thread count.
"""

from __future__ import annotations

import collections
from dataclasses import replace
import importlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

from bench.execution.executors import register_executor
from multiprocessing.connection import Connection, wait as wait_any
from pathlib import Path
from typing import Callable

from bench.errors import BenchError

_WORKER: dict = {}
#: seconds a stopped worker gets to exit before it is killed
STOP_GRACE_S = 10.0
_BOOT = (
    "import json, os, sys; sys.path[:0] = json.loads(os.environ.pop('BENCH_JOBS_PATH', '[]')); "
    "from bench.execution.jobs import _worker_main; _worker_main()"
)


def threads_per_job(total: int, jobs: int) -> int:
    """CPU threads each of ``jobs`` concurrent runs gets out of ``total``."""
    return max(1, int(total) // max(1, int(jobs)))


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def plan(jobs: int, runs: int, threads: int, cores: int, oversubscribe: bool = False) -> tuple[int, int, str | None]:
    """(worker processes, CPU threads per run, a warning or None) for ``--jobs jobs`` over ``runs`` runs with
    ``threads`` threads in all on ``cores`` cores. ``jobs`` above ``cores`` is capped there (warned) unless
    ``oversubscribe``; the threads are divided by that number, never below one per run, and not by the runs
    left, so a run's thread count (which float reductions may depend on) follows from the flags alone; no more
    processes are started than there are runs."""
    n = max(1, int(jobs))
    warning = None
    if n > cores and not oversubscribe:
        warning = (
            f"--jobs {jobs}: this machine lets this process use {cores} CPU core(s); running {cores} runs "
            "at once (--oversubscribe runs more)"
        )
        n = cores
    return max(1, min(n, int(runs))), threads_per_job(threads, n), warning


# -- worker side ------------------------------------------------------------------------------------------


def _resolve(name: str) -> Callable:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def _die_with_parent(parent: int) -> None:
    """End this worker when its parent ends: a parent-death signal (Linux) and a watchdog (everywhere)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch():
        while os.getppid() == parent:  # also catches a parent that died before prctl was set
            time.sleep(1.0)
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the run in flight cleans up (SystemExit) …
            time.sleep(5.0)
        finally:
            os._exit(143)  # … or is ended regardless

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


def _worker_main() -> None:
    """Entry point of a worker process (started by :class:`_Worker`)."""
    parent = int(os.environ.pop("BENCH_JOBS_PARENT"))
    fd_in, fd_out = (int(x) for x in os.environ.pop("BENCH_JOBS_FDS").split(","))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _on_term)
    _die_with_parent(parent)
    tasks, results = Connection(fd_in, writable=False), Connection(fd_out, readable=False)
    code = 0
    try:
        try:
            init, args = tasks.recv()
            _resolve(init)(*args)
        except EOFError:
            raise SystemExit(0) from None
        except Exception as exc:  # the parent stops the suite with it (a plug-in file that fails to import…)
            _reply(results, "error", exc)
            raise SystemExit(1) from None
        _reply(results, "ready", None)
        while True:
            try:
                msg = tasks.recv()
            except EOFError:  # the parent closed the pipe (or is gone)
                break
            if msg is None:
                break
            fn, args = msg
            try:
                value = _resolve(fn)(*args)
            except Exception as exc:
                _reply(results, "error", exc)
            else:
                _reply(results, "ok", value)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        # a worker's results are on disk (records written atomically, fsynced) and sent before it is told to
        # stop; tearing down an interpreter with torch loaded takes seconds on a busy machine, so skip it
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reply(conn: Connection, kind: str, value) -> None:
    if kind == "error":
        try:
            pickle.dumps(value)
        except Exception:
            value = RuntimeError(f"{type(value).__name__}: {value}")
    try:
        conn.send((kind, value))
    except (BrokenPipeError, OSError):
        raise SystemExit(0) from None


# -- parent side ------------------------------------------------------------------------------------------


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, init: tuple[str, tuple]):
        task_r, task_w = os.pipe()
        res_r, res_w = os.pipe()
        env = {
            **os.environ,
            "BENCH_JOBS_PATH": json.dumps([p for p in sys.path if p]),
            "BENCH_JOBS_FDS": f"{task_r},{res_w}",
            "BENCH_JOBS_PARENT": str(os.getpid()),
        }
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT], pass_fds=(task_r, res_w), env=env, stdin=subprocess.DEVNULL
            )
        except BaseException:
            for fd in (task_r, task_w, res_r, res_w):
                os.close(fd)
            raise
        os.close(task_r)
        os.close(res_w)
        self.tasks = Connection(task_w, readable=False)
        self.results = Connection(res_r, writable=False)
        self.task: tuple | None = None  # (key, fn, args, attempt) in flight
        self.ready = False  # its init ran (it said so)
        self.send(init)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, msg) -> bool:
        try:
            self.tasks.send(msg)
            return True
        except (BrokenPipeError, OSError):
            return False

    def why_dead(self) -> str:
        try:
            rc = self.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exited with status {rc}"

    def terminate(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.terminate()  # SIGTERM: SystemExit in the worker, its run in flight cleans up
            except OSError:
                pass

    def close(self) -> None:
        self.tasks.close()  # the worker reads EOF and exits
        try:
            self.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.results.close()


def supervise(
    tasks: list,
    processes: int,
    init: tuple[str, tuple],
    on_done: Callable,
    on_lost: Callable,
    *,
    retries: int = 1,
    stopping: Callable[[], bool] = lambda: False,
    on_retry: Callable = lambda key, why: None,
) -> dict:
    """Run ``tasks`` — (key, "module:function", args) — in at most ``processes`` worker processes, each started
    with ``init`` ("module:function", args). ``on_done(key, value)`` gets each result and may return more tasks
    (queued last). A task whose worker dies is given to a fresh worker, ``retries`` times, then
    ``on_lost(key, why)`` is called; the other tasks go on. A task that raises stops everything and the
    exception is raised here. Once ``stopping()`` is true nothing more is started; tasks in flight finish.
    Every worker has exited when this returns (or raises). Returns {"pids": [every worker's pid]}."""
    queue = collections.deque((key, fn, args, 0) for key, fn, args in tasks)
    workers: list[_Worker] = []
    pids: list[int] = []
    ok = False
    try:
        while True:
            # hand out work: idle workers take tasks, fresh ones are started while there is work for them
            if stopping():
                queue.clear()
            for w in [w for w in workers if w.task is None]:
                if not queue:
                    w.send(None)
                    w.close()
                    workers.remove(w)
                    continue
                task = queue.popleft()
                w.task = task
                if not w.send((task[1], task[2])):  # died while idle: the task was not started
                    queue.appendleft(task)
                    w.task = None
                    why = w.why_dead()
                    if not w.ready and w.proc.returncode > 0:
                        raise BenchError(
                            f"--jobs: a worker process {why} before it could take a run (its output is above)"
                        )
                    w.close()
                    workers.remove(w)
            while queue and len(workers) < processes:
                w = _Worker(init)
                workers.append(w)
                pids.append(w.pid)
                task = queue.popleft()
                w.task = task
                if not w.send((task[1], task[2])):
                    queue.appendleft(task)
                    w.task = None
            busy = [w for w in workers if w.task is not None]
            if not busy:
                if queue:
                    continue
                break
            for conn in wait_any([w.results for w in busy]):
                w = next(w for w in busy if w.results is conn)
                key, fn, args, attempt = w.task
                try:
                    kind, value = conn.recv()
                except (EOFError, OSError):  # the worker died with the task
                    why = w.why_dead()
                    if not w.ready and w.proc.returncode > 0:  # it could not start at all: not the run's fault
                        raise BenchError(
                            f"--jobs: a worker process {why} before it could take a run (its output is above)"
                        ) from None
                    w.task = None
                    w.close()
                    workers.remove(w)
                    if attempt < retries:
                        on_retry(key, why)
                        queue.appendleft((key, fn, args, attempt + 1))
                    else:
                        on_lost(key, why)
                    continue
                if kind == "ready":
                    w.ready = True
                    continue  # its task is in flight
                w.task = None
                if kind == "error":
                    raise value
                for key2, fn2, args2 in on_done(key, value) or ():
                    queue.append((key2, fn2, args2, 0))
        ok = True
    finally:
        if not ok:  # interrupted or failed: every worker is told to stop first, then each is waited for
            for w in workers:
                w.terminate()
        for w in workers:
            w.close()
    return {"pids": pids}


def _init_worker(threads: int, layer_files: list[str], device: str, allow_download: bool, options: dict) -> None:
    """A worker's start: its threads, the user's layer files and the one context its runs share (``options``:
    the driver's RunContext fields invocation, provenance, compile, tune and fold)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    from bench.zoo.layers import LAYERS
    from bench.tasks import RunContext

    for f in layer_files:
        LAYERS.load_file(f)
    _WORKER["ctx"] = RunContext(device=torch.device(device), allow_download=allow_download, progress=False, **options)


def _run_one(run_id: str, blob: bytes) -> dict:
    """Worker side: one spec (``blob``: the pickled suite, spec and options) through the runner's path; returns
    counts, log lines and a short summary."""
    from bench.records.records import read_record, record_path
    from bench.execution.runner import run_specs

    suite, spec, results, policy, wait = pickle.loads(blob)
    assert spec.id == run_id
    lines: list[str] = []
    t0 = time.monotonic()
    ctx = replace(_WORKER["ctx"], wait_elsewhere=wait)  # this task's choice; the worker's context stays as it was
    counts = run_specs(suite, [spec], results, ctx, log=lines.append, policy=policy)
    summary = ""
    path = record_path(results, spec)
    if counts.get("ran"):
        try:
            rec, _ = read_record(path)
            m = rec.get("metrics") or {}
            summary = ", ".join(f"{k}={v:.2f}" for k, v in list(m.items())[:2] if isinstance(v, (int, float)))
            if rec.get("status") != "ok":
                summary = f"failed: {rec.get('error', '')}"[:200]
        except (OSError, ValueError):
            pass
    return {"counts": counts, "lines": lines, "summary": summary, "wall_s": time.monotonic() - t0, "pid": os.getpid()}


def run_jobs(
    suite,
    specs: list,
    results: str | Path,
    ctx,
    jobs: int,
    *,
    threads: int | None = None,
    layer_files: list[str] | None = None,
    force: bool = False,
    retry_failed: bool = False,
    max_failures: int | None = None,
    no_wait: bool = False,
    oversubscribe: bool = False,
    provenance: dict | None = None,
    log=print,
    worker: tuple[str, str] = ("bench.execution.jobs:_init_worker", "bench.execution.jobs:_run_one"),
) -> dict:
    """Run ``specs`` in up to ``jobs`` worker processes. Returns the same counts as :func:`bench.execution.runner.run_specs`.
    ``worker``: the (init, task) functions a worker runs (tests put light ones in)."""
    import torch

    from bench.execution.executors import Policy, claim_and_run, failed_record
    from bench.execution.locks import RunLock, describe

    counts = {"ran": 0, "skipped": 0, "failed": 0}
    provenance = {**(provenance or {}), "executor": "jobs"}
    # one policy for the whole invocation (with --force it notes the records there now), given to every worker
    policy = Policy(force=force, retry_failed=retry_failed).baseline(results, specs)
    todo, held = [], []
    for spec in specs:
        if policy.done(results, spec) is not None:
            counts["skipped"] += 1
        elif RunLock(results, spec.suite, spec.id).held_elsewhere():
            held.append(spec)  # another process trains it: not worth a worker now
        else:
            todo.append(spec)
    if no_wait and held:
        counts["elsewhere"] = len(held)
        for spec in held:
            log(
                f"{spec.backbone['name']}/{spec.label}/seed {spec.seed}: "
                f"{describe(RunLock(results, spec.suite, spec.id).holder())}"
            )
        held = []
    if not todo and not held:
        return counts
    # decode each data set once here, so N workers do not all decode it at the same time (they read the cache)
    seen = set()
    for spec in todo + held:
        key = (spec.dataset["name"], spec.data_root, json.dumps(spec.dataset.get("options", {}), sort_keys=True))
        if key not in seen:
            seen.add(key)
            ctx.dataset(spec)
    ctx.data_cache.clear()
    os.environ.pop("BENCH_REFRESH_DATA", None)  # decoded afresh above if asked: the workers read that cache

    total = threads or torch.get_num_threads()
    processes, per_job, warning = plan(jobs, len(todo) + len(held), total, cpu_cores(), oversubscribe)
    options = {
        "invocation": ctx.invocation,
        "compile": ctx.compile,
        "tune": ctx.tune,
        "fold": ctx.fold,
        "provenance": provenance,
    }
    init = (
        worker[0],
        (per_job, [str(Path(f).resolve()) for f in layer_files or []], str(ctx.device), ctx.allow_download, options),
    )
    bar = None
    if ctx.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), initial=counts["skipped"], desc=f"suite {suite.name} ×{processes}", unit="run")
    say = log if bar is None else (lambda s: bar.write(s))
    if warning:
        say(f"warning: {warning}")
    say(f"{len(todo) + len(held)} runs in {processes} processes, {per_job} CPU thread(s) each, on {ctx.device}")
    by_id = {s.id: s for s in specs}
    stop = {"said": False}

    def name(spec):
        return f"{spec.backbone['name']}/{spec.label}/seed {spec.seed}"

    def task(spec, wait):
        # pickled here, so a worker unpickles a spec (and imports what that takes) only in the task itself
        return (spec.id, worker[1], (spec.id, pickle.dumps((suite, spec, str(results), policy, wait))))

    def on_done(run_id, out):
        spec = by_id[run_id]
        c = out["counts"]
        if c.get("elsewhere"):  # busy when the worker tried it
            if no_wait:
                counts["elsewhere"] = counts.get("elsewhere", 0) + 1
                for line in out["lines"]:
                    say(line)
                _tick()
                return ()
            say(f"{name(spec)}: running elsewhere; waiting for its lock once the rest is done")
            return (task(spec, True),)
        for k in ("ran", "skipped", "failed"):
            counts[k] += c.get(k, 0)
        for line in out["lines"]:
            say(line)
        if not out["lines"] and c.get("ran"):
            say(
                f"{spec.backbone['name']:>14} {spec.label:<22} seed {spec.seed}: {out['summary']} "
                f"({out['wall_s']:.1f} s, pid {out['pid']})"
            )
        _tick()
        return ()

    def on_lost(run_id, why):
        spec = by_id[run_id]
        msg = f"worker lost: {why}, twice (the run was retried once in a fresh worker)"
        rec = failed_record(spec, suite, ctx.device, msg, ctx.invocation)
        out = claim_and_run(spec, results, lambda: rec, policy, wait=True, provenance=provenance)
        if out.status == "ran":
            counts["ran"] += 1
            counts["failed"] += 1
            say(f"run failed: {name(spec)}: {msg}")
        else:  # a peer finished it meanwhile
            counts["skipped"] += 1
        _tick()

    def on_retry(run_id, why):
        say(f"{name(by_id[run_id])}: its worker was lost ({why}); running it once more in a fresh worker")

    def _tick():
        if bar is not None:
            bar.update(1)

    def stopping():
        hit = max_failures is not None and counts["failed"] >= max_failures
        if hit and not stop["said"]:
            stop["said"] = True
            say(f"stopping: {counts['failed']} failed runs (--max-failures {max_failures}); runs in progress finish")
        return hit

    try:
        supervise(
            [task(s, False) for s in todo] + [task(s, True) for s in held],
            processes,
            init,
            on_done,
            on_lost,
            retries=1,
            stopping=stopping,
            on_retry=on_retry,
        )
    finally:
        if bar is not None:
            bar.close()
    return counts


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: bench run SUITE --jobs N")


@register_executor("jobs", "--jobs N supervised worker processes on this machine")
def run_jobs_launch(launch) -> dict:
    return run_jobs(
        launch.suite,
        launch.specs,
        launch.results,
        launch.ctx,
        launch.jobs,
        threads=launch.threads,
        layer_files=launch.layer_files,
        force=launch.force,
        retry_failed=launch.retry_failed,
        max_failures=launch.max_failures,
        no_wait=launch.no_wait,
        oversubscribe=launch.oversubscribe,
        provenance=launch.ctx.provenance,
    )
