"""Light worker functions for tests of the ``--jobs`` supervisor (bench.execution.jobs): no torch, so a worker starts in
a fraction of a second. Each worker records its pid in the folder it was given."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

_STATE: dict = {}


def init(folder: str, *_ignored) -> None:
    _STATE["folder"] = Path(folder)
    (Path(folder) / f"worker-{os.getpid()}").touch()


def init_jobs(*args) -> None:  # bench.execution.jobs.run_jobs' init arguments: (threads, layer files, device, …, extra)
    init(os.environ["BENCH_TEST_MARKS"])


def fake_run(run_id, blob) -> dict:
    """A run that trains nothing (and unpickles no spec: no torch); ``plan.json`` in the folder says, by run id,
    which kill their worker: "once" the first time, "always" every time."""
    folder = _STATE["folder"]
    how = json.loads((folder / "plan.json").read_text()).get(run_id)
    mark = folder / f"died-{run_id}"
    if how == "always" or (how == "once" and not mark.exists()):
        mark.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {
        "counts": {"ran": 1, "skipped": 0, "failed": 0},
        "lines": [],
        "summary": "fake",
        "wall_s": 0.0,
        "pid": os.getpid(),
    }


def sleep_forever(_key) -> None:
    (_STATE["folder"] / f"busy-{os.getpid()}").touch()
    time.sleep(600)


def echo(value):
    return value


def exit_at_start(*_ignored) -> None:  # a worker whose start fails (a broken environment)
    raise SystemExit(3)


def fail_at_start(*_ignored) -> None:
    raise ValueError("plug-in file failed to import")
