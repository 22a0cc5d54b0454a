"""One run: execute a run spec through its task and build its record (status ``ok`` or ``failed``).

The single-run path every executor shares (serial :mod:`bench.execution.runner`, ``--jobs`` workers, Ray tasks); it imports
no executor, so :mod:`bench.execution.executors` and :mod:`bench.execution.runner` can both import it without a cycle.
"""

from __future__ import annotations

import datetime as dt
import errno
import time
import traceback

import torch

from bench import RECORD_SCHEMA
from bench.spec.identity import IDENTITY_VERSION
from bench.errors import BenchError, RunFailed
from bench.measure.measure import environment
from bench.zoo.layers import folding
from bench.spec.suite import RunSpec, Suite
from bench.tasks import TASKS, RunContext


#: operating-system errors that say the machine cannot hold results (full disk, quota, read-only folder)
_ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def execute(spec: RunSpec, ctx: RunContext, suite: Suite) -> dict:
    """Run one spec; always returns a record (status ``ok`` or ``failed``). Missing data is not a run
    failure: it raises BenchError so the whole suite stops with a clear message."""
    task = TASKS.get(spec.task["name"])
    started, t0 = _now(), time.monotonic()
    record = {
        "schema": RECORD_SCHEMA,
        "id": spec.id,
        "identity_version": IDENTITY_VERSION,
        "label": spec.label,
        "task": spec.task["name"],
        "suite": {"name": suite.name, "file": str(suite.path), "sha256": suite.sha256},
        "spec": spec.to_dict(),
        "env": environment(ctx.device),
        "started": started,
        "invocation": {k: v for k, v in ctx.invocation.items() if v not in (None, False)},
    }
    try:
        with folding(ctx.fold):  # --no-fold: every layer the task builds trains as written
            result = task.obj(spec, ctx, **spec.task.get("options", {}))
        record.update(result)
        record["status"] = "ok"
    except BenchError:
        raise
    except RunFailed as exc:
        record.update(status="failed", error=str(exc))
    except OSError as exc:
        if exc.errno in _ENVIRONMENT:  # the machine's fault, not the family's: the suite stops (one line, exit 2)
            raise
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
    except torch.OutOfMemoryError as exc:
        record.update(status="failed", error=f"out of memory: {str(exc).splitlines()[0][:200]}")
    except Exception as exc:  # a broken family must not stop the suite; the record says what happened
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
    record["finished"] = _now()
    record["duration_s"] = time.monotonic() - t0
    return record
