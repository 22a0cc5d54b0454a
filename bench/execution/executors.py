"""Executors: where runs run. Every executor (serial loop, ``--jobs``, shards, Ray) trains a run only through
:func:`claim_and_run`, the one protocol that makes "one run trained once" hold across processes and machines:

1. a record that is already there (and counts as done) means: skip, without taking a lock;
2. take the run's lock (:class:`bench.execution.locks.RunLock`) without waiting; if another process holds it, the run is
   *busy* (running elsewhere) and the caller comes back to it later (waiting on the lock) or reports it;
3. with the lock held, look for the record again (another process may have finished it in between); only if
   it is still missing (or to be redone) remove the run's stale temporary files, train, write the record
   atomically, release the lock.

Shards (``--shard i/n``) need no coordinator: :func:`shard` splits the expanded specs deterministically.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.errors import BenchError
from bench.execution.locks import RunLock, describe, whoami
from bench.records.records import existing_record_blob, record_path, write_json_atomic


@dataclass
class Outcome:
    status: str  # "ran" | "skipped" | "busy"
    record: dict | None = None  # the record written ("ran") or found ("skipped")
    holder: dict | None = None  # who holds the lock ("busy")

    @property
    def failed(self) -> bool:
        return self.status == "ran" and (self.record or {}).get("status") != "ok"


@dataclass
class Policy:
    """Which existing records count as done. Decided by the records' content, never by a clock (issue 19,
    item 5): a record counts when its spec hashes to the run's id and its status is known
    (:func:`bench.records.records.existing_record`); with ``force``, a record counts as done only if it is not the one
    the run had when this invocation first looked (:meth:`baseline`: the digest of its bytes, or None for
    none), i.e. a peer runner wrote it since."""

    force: bool = False  # redo runs that have a record…
    retry_failed: bool = False  # redo runs whose record says failed
    seen: dict = field(default_factory=dict)  # force: run id → digest of the record found first (None: none)

    def baseline(self, results, specs) -> "Policy":
        """With ``force``: note the records there now, before anything runs (a peer's later ones then count)."""
        if self.force:
            for spec in specs:
                if spec.id not in self.seen:
                    found = existing_record_blob(results, spec)
                    self.seen[spec.id] = _digest(found[1]) if found else None
        return self

    def done(self, results, spec) -> dict | None:
        found = existing_record_blob(results, spec)
        if self.force:
            if spec.id not in self.seen:  # first look at this run: what is there now is what --force replaces
                self.seen[spec.id] = _digest(found[1]) if found else None
                return None
            if found is None or _digest(found[1]) == self.seen[spec.id]:
                return None
            return found[0]
        if found is None:
            return None
        rec = found[0]
        if self.retry_failed and rec.get("status") != "ok":
            return None
        return rec


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def claim_and_run(
    spec,
    results: str | Path,
    run: Callable[[], dict],
    policy: Policy | None = None,
    wait: bool = False,
    provenance: dict | None = None,
) -> Outcome:
    """Train ``spec`` once across every process sharing ``results``: see the module's docstring.
    ``run()`` returns the record; it is written here, with ``provenance`` (host, pid, …) added."""
    policy = policy or Policy()
    done = policy.done(results, spec)
    if done is not None:
        return Outcome("skipped", done)
    lock = RunLock(results, spec.suite, spec.id)
    if not lock.acquire(blocking=wait):
        return Outcome("busy", holder=lock.holder())
    try:
        done = policy.done(results, spec)  # re-check: a peer may have finished it before we got the lock
        if done is not None:
            return Outcome("skipped", done)
        lock.clean_tmp()
        path = record_path(results, spec)
        if path.is_dir():  # found before training, not after: the record could never be written there
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a record file", str(path))
        record = run()
        record["provenance"] = {**whoami(), **(provenance or {})}
        write_json_atomic(record_path(results, spec), record)
        return Outcome("ran", record)
    finally:
        lock.release()


# -- shards -----------------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise BenchError(f"command line: --shard: expected i/n (e.g. 0/4), got {text!r}")
    i, n = int(m[1]), int(m[2])
    if n < 1 or not 0 <= i < n:
        raise BenchError(f"command line: --shard: need 0 ≤ i < n, got {i}/{n}")
    return i, n


def shard(specs: list, i: int, n: int) -> list:
    """Share ``i`` of ``n``: every n-th spec after a stable sort on run id, kept in suite order. The n shares
    are disjoint and together hold every spec, whatever order or machine each shard runs on (all shards must
    be given the same suite file and the same flags)."""
    ids = sorted({s.id for s in specs})
    mine = set(ids[i::n])
    return [s for s in specs if s.id in mine]


# -- Ray --------------------------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def failed_record(spec, suite, device, error: str, invocation: dict | None = None) -> dict:
    """A record for a run that could not report itself (its worker died)."""
    from bench import RECORD_SCHEMA
    from bench.measure.measure import environment

    now = _now()
    from bench.spec.identity import IDENTITY_VERSION

    return {
        "schema": RECORD_SCHEMA,
        "id": spec.id,
        "identity_version": IDENTITY_VERSION,
        "label": spec.label,
        "task": spec.task["name"],
        "suite": {"name": suite.name, "file": str(suite.path), "sha256": suite.sha256},
        "spec": spec.to_dict(),
        "env": environment(device),
        "started": now,
        "finished": now,
        "duration_s": 0.0,
        "invocation": {k: v for k, v in (invocation or {}).items() if v not in (None, False)},
        "status": "failed",
        "error": error,
    }


_LOADED: set = set()


def _ray_task(spec, suite, results: str, setup: dict, policy: Policy, wait: bool) -> dict:
    """Body of one Ray task: runs on a worker, writes the record straight into the shared results folder."""
    import torch

    from bench.zoo.layers import LAYERS
    from bench.execution.execute import execute
    from bench.tasks import RunContext

    for f in setup.get("layer_files") or []:
        if f not in _LOADED:  # a worker process runs many tasks: import each user file once
            LAYERS.load_file(f)
            _LOADED.add(f)
    if setup.get("threads"):
        torch.set_num_threads(setup["threads"])
    if setup.get("device"):
        device = torch.device(setup["device"])
    else:
        device = torch.device("cuda" if torch.cuda.is_available() and setup.get("gpus", 0) > 0 else "cpu")
    ctx = RunContext(
        device=device,
        allow_download=setup.get("allow_download", False),
        progress=False,
        invocation=dict(setup.get("invocation") or {}),
        provenance=dict(setup.get("provenance") or {}),
        **(setup.get("options") or {}),
    ).for_run(results, spec)  # options: the driver's --compile, --tune
    out = claim_and_run(
        spec,
        results,
        lambda: execute(spec, ctx, suite),
        policy,
        wait=wait,
        provenance={"executor": "ray", **(setup.get("provenance") or {})},
    )
    rec = out.record or {}
    return {
        "status": out.status,
        "ok": rec.get("status") == "ok",
        "error": rec.get("error"),
        "holder": out.holder,
        "summary": {k: v for k, v in (rec.get("metrics") or {}).items() if isinstance(v, (int, float))},
    }


def run_ray(
    suite,
    specs: list,
    results: str | Path,
    setup: dict,
    policy: Policy,
    *,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    local_cpus: int | None = None,
    max_failures: int | None = None,
    retries: int = 1,
    log=print,
) -> dict:
    """Each run one Ray task (``num_cpus``/``num_gpus`` declared); busy runs are retried, waiting on their lock,
    once the rest is done. A task whose worker dies is retried ``retries`` times, then recorded as failed."""
    try:
        import ray
    except ImportError:
        raise BenchError("--executor ray needs Ray, which is not installed: pip install 'convbench[ray]'") from None
    results = str(Path(results).resolve())  # workers write here: on a cluster, a folder every node mounts
    setup = dict(setup, gpus=gpus_per_run)
    counts = {"ran": 0, "skipped": 0, "failed": 0}
    todo = []
    for spec in specs:  # what is done needs no task
        if policy.done(results, spec) is not None:
            counts["skipped"] += 1
        else:
            todo.append(spec)
    if not todo:
        return counts
    started_here = False
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": local_cpus, "include_dashboard": False}
        if not address:
            started_here = True
        ray.init(log_to_driver=False, configure_logging=False, **kwargs)
    have_gpus = ray.cluster_resources().get("GPU", 0) if gpus_per_run > 0 else 0
    if gpus_per_run > 0 and have_gpus < gpus_per_run:
        if started_here:  # nothing will ever join a local cluster: its tasks would wait forever
            ray.shutdown()
            raise BenchError(
                f"command line: --gpus-per-run: {gpus_per_run:g} GPU per run, but the local Ray "
                f"cluster has {have_gpus:g} (use --gpus-per-run 0 for CPU runs)"
            )
        log(f"the Ray cluster has fewer GPUs than --gpus-per-run {gpus_per_run}: runs wait for GPU nodes to join")
    remote = ray.remote(_ray_task).options(
        num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=retries, retry_exceptions=False
    )
    pending = {remote.remote(s, suite, results, setup, policy, False): (s, False) for s in todo}
    stop = False
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            spec, waited = pending.pop(ref)
            name = f"{spec.backbone['name']}/{spec.label}/seed {spec.seed}"
            try:
                out = ray.get(ref)
            except Exception as exc:  # the worker died (retries spent) or the task could not run
                if isinstance(getattr(exc, "cause", None), BenchError):
                    raise exc.cause from None  # bad input (missing data…) stops the suite, as in a serial run
                msg = f"worker lost: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                import torch

                rec = failed_record(spec, suite, torch.device("cpu"), msg, setup.get("invocation"))
                o = claim_and_run(spec, results, lambda: rec, policy, wait=True, provenance={"executor": "ray-driver"})
                out = {"status": o.status, "ok": False, "error": msg}
            if out["status"] == "busy":
                log(f"{name}: {describe(out.get('holder'))}; a task waits for its lock")
                pending[remote.remote(spec, suite, results, setup, policy, True)] = (spec, True)
                continue
            if out["status"] == "skipped":
                counts["skipped"] += 1
                continue
            counts["ran"] += 1
            if not out["ok"]:
                counts["failed"] += 1
                log(f"run failed: {name}: {out.get('error')}")
            else:
                log(
                    f"{spec.backbone['name']:>14} {spec.label:<22} seed {spec.seed}: "
                    + ", ".join(f"{k}={v:.2f}" for k, v in list(out["summary"].items())[:2])
                )
            if max_failures is not None and counts["failed"] >= max_failures and not stop:
                stop = True
                log(f"stopping: {counts['failed']} failed runs (--max-failures {max_failures})")
                for r in pending:
                    ray.cancel(r, force=True)
                pending.clear()
    except BaseException:
        for r in pending:
            try:
                ray.cancel(r, force=True)
            except Exception:
                pass
        raise
    finally:
        if started_here:
            ray.shutdown()
    return counts


# -- the executor registry ----------------------------------------------------------------------------------


@dataclass
class Launch:
    """One ``bench run`` invocation as every executor receives it: the runs, where records go, the run context
    and the command line's execution choices (each executor reads the ones it uses)."""

    suite: object
    specs: list
    results: str | Path
    ctx: object
    force: bool = False
    retry_failed: bool = False
    max_failures: int | None = None
    no_wait: bool = False
    threads: int | None = None
    jobs: int = 1
    oversubscribe: bool = False
    layer_files: list = field(default_factory=list)
    device: str | None = None
    allow_download: bool = False
    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float | None = None
    ray_cpus: int | None = None


@dataclass(frozen=True)
class Executor:
    name: str
    run: Callable[[Launch], dict]  # returns counts: ran, skipped, failed (and elsewhere)
    summary: str = ""


EXECUTORS: dict[str, Executor] = {}
# the modules that register the built-in executors (imported on first use, so this module imports none of them)
EXECUTOR_MODULES = ("bench.execution.runner", "bench.execution.jobs", "bench.execution.ray_executor")


def register_executor(name: str, summary: str = ""):
    """Register ``fn(launch) -> counts`` as executor ``name`` (``bench run --executor NAME``)."""

    def deco(fn):
        if name in EXECUTORS and EXECUTORS[name].run is not fn:
            raise BenchError(f"executor {name!r} registered twice")
        EXECUTORS[name] = Executor(name, fn, summary)
        return fn

    return deco


def executors() -> dict[str, Executor]:
    """Every registered executor (the built-in modules imported first)."""
    import importlib

    for module in EXECUTOR_MODULES:
        importlib.import_module(module)
    return EXECUTORS


def executor_names() -> tuple[str, ...]:
    """The built-in executor names, without importing their modules (for the command line's choices)."""
    return ("local", "jobs", "ray")
