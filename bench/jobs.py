"""Runs packed on one device: ``bench run SUITE --jobs N`` runs N run specs at once, in N worker processes.

* Each worker is a fresh process (``spawn``: no state shared with the parent or other workers) that runs one
  spec at a time through the runner's own single-spec path (:func:`bench.runner.run_specs` with a one-element
  list), so whatever the runner does per run (skip a finished run, write the record atomically, per-run locks)
  happens here exactly as in a serial run.
* CPU: the torch threads are divided, each worker gets ``max(1, threads // N)`` (``threads``: ``--threads`` or
  the parent's ``torch.get_num_threads()``); the worker sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` before it
  imports torch. GPU: the N processes share the device (each allocates its own memory).
* A run's result does not depend on what else runs: every run seeds its own RNGs from its spec. On CPU a record
  made with ``--jobs N`` has the same metrics as a serial run with ``--threads max(1, threads // N)`` (float
  reductions can depend on the thread count, so compare at equal threads per run; ``tests/test_jobs.py``).
* Data are decoded once, in the parent, before the workers start (the workers then read the decoded cache).

This module imports no torch at import time: the workers import it after setting their thread count.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

_WORKER: dict = {}


def threads_per_job(total: int, jobs: int) -> int:
    """CPU threads each of ``jobs`` concurrent runs gets out of ``total``."""
    return max(1, int(total) // max(1, int(jobs)))


def _init_worker(threads: int, layer_files: list[str], device: str, allow_download: bool, extra: dict) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    from bench.layers import LAYERS
    from bench.tasks import RunContext

    for f in layer_files:
        LAYERS.load_file(f)
    ctx = RunContext(device=torch.device(device), allow_download=allow_download, progress=False)
    ctx.extra.update(extra)
    _WORKER["ctx"] = ctx
    # a worker's results are on disk (records written atomically, fsynced) and returned before it is told to
    # stop; tearing down an interpreter with torch loaded takes seconds on a busy machine, so skip it
    import atexit

    atexit.register(_fast_exit)


def _fast_exit() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_one(suite, spec, results: str, force: bool, retry_failed: bool) -> dict:
    """Worker side: one spec through the runner's path; returns counts, log lines and a short summary."""
    from bench.records import read_record, record_path
    from bench.runner import run_specs

    lines: list[str] = []
    t0 = time.monotonic()
    counts = run_specs(suite, [spec], results, _WORKER["ctx"], force=force, retry_failed=retry_failed,
                       log=lines.append)
    summary = ""
    path = record_path(results, spec)
    if path.exists():
        try:
            rec, _ = read_record(path)
            m = rec.get("metrics") or {}
            summary = ", ".join(f"{k}={v:.2f}" for k, v in list(m.items())[:2] if isinstance(v, (int, float)))
            if rec.get("status") != "ok":
                summary = f"failed: {rec.get('error', '')}"[:200]
        except (OSError, ValueError):
            pass
    return {"counts": counts, "lines": lines, "summary": summary, "wall_s": time.monotonic() - t0,
            "pid": os.getpid()}


def run_jobs(suite, specs: list, results: str | Path, ctx, jobs: int, *, threads: int | None = None,
             layer_files: list[str] | None = None, force: bool = False, retry_failed: bool = False,
             max_failures: int | None = None, log=print) -> dict:
    """Run ``specs`` in ``jobs`` worker processes. Returns the same counts as :func:`bench.runner.run_specs`."""
    import concurrent.futures as cf
    import multiprocessing as mp

    import torch

    from bench.records import existing_record

    counts = {"ran": 0, "skipped": 0, "failed": 0}
    todo = []
    for spec in specs:
        done = None if force else existing_record(results, spec)
        if done is not None and not (retry_failed and done.get("status") != "ok"):
            counts["skipped"] += 1
        else:
            todo.append(spec)
    if not todo:
        return counts
    # decode each data set once here, so N workers do not all decode it at the same time (they read the cache)
    seen = set()
    for spec in todo:
        key = (spec.dataset["name"], spec.data_root, json.dumps(spec.dataset.get("options", {}), sort_keys=True))
        if key not in seen:
            seen.add(key)
            ctx.dataset(spec)
    ctx.data_cache.clear()
    os.environ.pop("BENCH_REFRESH_DATA", None)  # decoded afresh above if asked: the workers read that cache

    total = threads or torch.get_num_threads()
    per_job = threads_per_job(total, jobs)
    extra = {k: v for k, v in ctx.extra.items() if k in ("invocation", "compile", "tune")}
    init = (per_job, list(layer_files or []), str(ctx.device), ctx.allow_download, extra)
    bar = None
    if ctx.progress:
        from tqdm import tqdm
        bar = tqdm(total=len(specs), initial=counts["skipped"], desc=f"suite {suite.name} ×{jobs}", unit="run")
    log_lines = log if bar is None else (lambda s: bar.write(s))
    log_lines(f"{len(todo)} runs in {min(jobs, len(todo))} processes, {per_job} CPU thread(s) each, on {ctx.device}")
    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=init)
    futures = {pool.submit(_run_one, suite, spec, str(results), force, retry_failed): spec for spec in todo}
    stopped = False
    try:
        for fut in cf.as_completed(futures):
            spec = futures[fut]
            try:
                out = fut.result()
            except cf.CancelledError:
                continue
            except Exception as exc:  # a worker died (e.g. killed for memory): the run has no record
                counts["ran"] += 1
                counts["failed"] += 1
                log_lines(f"run failed: {spec.backbone['name']}/{spec.label}/seed {spec.seed}: worker died: "
                          f"{type(exc).__name__}: {exc}")
            else:
                for k in counts:
                    counts[k] += out["counts"].get(k, 0)
                for line in out["lines"]:
                    log_lines(line)
                if not out["lines"] and out["counts"].get("ran"):
                    log_lines(f"{spec.backbone['name']:>14} {spec.label:<22} seed {spec.seed}: {out['summary']} "
                              f"({out['wall_s']:.1f} s, pid {out['pid']})")
            if bar is not None:
                bar.update(1)
            if max_failures is not None and counts["failed"] >= max_failures and not stopped:
                stopped = True
                log_lines(f"stopping: {counts['failed']} failed runs (--max-failures {max_failures}); "
                          "runs in progress finish")
                for f in futures:
                    f.cancel()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return counts


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: bench run SUITE --jobs N")
