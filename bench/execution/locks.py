"""Per-run locks in the results folder, so that any number of processes, shards and Ray workers sharing one
results folder train each run once.

The lock is :class:`filelock.FileLock` (``flock(2)`` on POSIX) on ``results/<suite>/.locks/<run id>.lock``.
What it promises, and so what this module promises:

* On a local filesystem the kernel drops an ``flock`` the moment its holder's process ends, however it ends
  (``kill -9`` included): a run whose holder died is taken over by the next process that asks (lease: none).
* On NFS, Linux emulates ``flock`` with NFS byte-range locks (NFSv4 state or NLM for NFSv3), so locks are seen
  by every client. A holder on a machine that is lost is released when the server's lease expires (NFSv4:
  the server's lease time, 90 s by default) or, on NFSv3, when the lost client's statd recovery runs (may never
  happen if it never comes back: remove the lock file by hand). Mounts with ``nolock`` or ``local_lock=flock``
  keep locks local to each machine: two machines can then train the same run (nothing is corrupted: records
  are written atomically, the last one stays).

* Where ``flock`` is missing altogether, filelock 4 falls back to its soft lock (a marker file naming host and
  pid): a dead holder on the same host is detected and broken; one on another host is not (its lock stays
  until removed by hand). filelock 3 has no such fallback on POSIX.

Each holder also writes ``<run id>.owner.json`` (host, pid, start time) beside its lock so that other runners
can say where a run is running. Temporary record files (``.<record>.json.<random>.tmp``) are written only by
the holder of the run's lock and left only by a process killed while writing a record; they are removed only by
a process that holds that lock (issue 19, item 5: recognised by their owner's lock, never by age, so no clock
— skewed, or a writer stalled for hours — can make a runner delete a live writer's file).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
from pathlib import Path

from filelock import FileLock, Timeout

from bench.errors import BenchError

LOCK_DIR = ".locks"
_TMP = re.compile(r"^\..+--(?P<id>[0-9a-f]{16})\.json\..+\.tmp$")


def inside(root: str | Path, *parts: str) -> Path:
    """``root/parts…`` resolved; a path that leaves ``root`` (``..``, absolute parts, links) is an error."""
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise BenchError(f"{Path(root).joinpath(*parts)}: resolves to {path}, outside the results folder {base}")
    return path


def whoami() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


class RunLock:
    """The lock of one run. ``acquire(blocking=False)`` makes one attempt; ``blocking=True`` waits."""

    def __init__(self, results: str | Path, suite: str, run_id: str):
        if not re.fullmatch(r"[0-9a-f]{16}", run_id):
            raise BenchError(f"run id {run_id!r} is not 16 hex digits")
        self.folder = inside(results, suite)
        self.run_id = run_id
        self.dir = self.folder / LOCK_DIR
        self.path = self.dir / f"{run_id}.lock"
        self.owner_path = self.dir / f"{run_id}.owner.json"
        self._lock = FileLock(str(self.path))
        self.held = False

    def acquire(self, blocking: bool = False, poll: float = 0.2) -> bool:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=-1 if blocking else 0, poll_interval=poll)
        except Timeout:
            return False
        self.held = True
        try:  # who holds it, for other runners' messages; not part of the protocol
            self.owner_path.write_text(json.dumps({**whoami(), "since": _now()}))
        except OSError:
            pass
        return True

    def held_elsewhere(self) -> bool:
        """Whether another holder has this lock now: a probe that takes the lock and drops it at once, writing
        nothing (no owner file), so a busy run can be reported without a worker or a wait."""
        if self.held or not self.path.exists():
            return False
        probe = FileLock(str(self.path))
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:
            return False
        probe.release()
        return False

    def release(self) -> None:
        if self.held:
            self.held = False
            self._lock.release()

    def holder(self) -> dict | None:
        """Who last took this lock (host, pid, since), or None."""
        try:
            data = json.loads(self.owner_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def clean_tmp(self) -> int:
        """Remove this run's temporary record files (call while holding the lock: nobody else writes them)."""
        n = 0
        for p in self.folder.glob(".*.tmp"):
            m = _TMP.match(p.name)
            if m and m["id"] == self.run_id:
                p.unlink(missing_ok=True)
                n += 1
        return n

    def __enter__(self):
        self.acquire(blocking=True)
        return self

    def __exit__(self, *exc):
        self.release()


def describe(holder: dict | None) -> str:
    if not holder:
        return "running elsewhere"
    return f"running elsewhere: {holder.get('host', '?')} pid {holder.get('pid', '?')} since {holder.get('since', '?')}"


def clean_stale_tmp(results: str | Path, suite: str) -> list[Path]:
    """Remove the temporary record files that no live lock covers (whose run's lock this process can take); a
    file whose lock is held is a live writer's, whatever its age, and is left alone."""
    try:
        folder = inside(results, suite)
    except BenchError:
        return []
    removed = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.glob(".*.tmp")):
        m = _TMP.match(p.name)
        if not m:
            continue
        lock = RunLock(results, suite, m["id"])
        if lock.acquire(blocking=False):
            try:
                if p.exists():
                    p.unlink(missing_ok=True)
                    removed.append(p)
            finally:
                lock.release()
    return removed


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
