"""The harness's cache (``$BENCH_CACHE``, default ``~/.cache/convbench``) is an optimisation, never a
requirement (issue 19, item 6):

* a cache folder that is missing and cannot be made, or is not writable (or is a file), is warned about once
  per process and replaced by a private temporary folder, removed at exit (``BENCH_CACHE`` is pointed at it,
  so ``--jobs`` workers share it); a cache write that fails (full disk…) is warned about once and the run
  proceeds with what it computed;
* what is read from it is checked before it is used (the YAML memo carries a digest of the suite text and of
  itself, :mod:`bench.spec.suite`); ``bench run`` parses its suite afresh, so no memo can change which runs run;
* it is bounded: :func:`prune` keeps a folder's entries under a size cap, least recently used first out (a hit
  refreshes an entry's time: :func:`touch`). Times decide only what is evicted, never what is trusted.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_WARNED: set = set()
_FALLBACK: dict = {}

#: caps (bytes) on the YAML memo and on decoded data sets; ``BENCH_CACHE_MAX_MB`` overrides the data cap
YAML_MAX_BYTES = 32 * 2**20
DATA_MAX_BYTES = 16 * 2**30


def cache_root() -> Path:
    """The harness's cache folder: ``$BENCH_CACHE``, default ``~/.cache/convbench`` (not created here)."""
    return Path(os.environ.get("BENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "convbench"))


def warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"bench: warning: {message}", file=sys.stderr)


def _cause(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def usable_dir(path: Path) -> Path:
    """``path`` (created if missing) if this process can write there, else (warned once) a private temporary
    folder used instead for the rest of this process."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
        return path
    except OSError as exc:
        if "dir" not in _FALLBACK:
            tmp = tempfile.mkdtemp(prefix="convbench-cache-")
            atexit.register(shutil.rmtree, tmp, True)
            _FALLBACK["dir"] = Path(tmp)
            os.environ["BENCH_CACHE"] = tmp  # workers started from here share it
        warn_once(
            f"dir:{path}",
            f"cache {path}: {_cause(exc)}; running without it (a temporary cache in "
            f"{_FALLBACK['dir']} for this process)",
        )
        return _FALLBACK["dir"]


def write_failed(path: Path, exc: OSError) -> None:
    """A cache write that failed: warned once per cache folder; the caller goes on without it."""
    warn_once(f"write:{path.parent}", f"cache {path}: cannot write ({_cause(exc)}); going on without caching")


def touch(path: Path) -> None:
    """Mark a cache entry as just used (for :func:`prune`); best effort."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(folder: Path, max_bytes: int, keep: Path | None = None, pattern: str = "*") -> list[Path]:
    """Remove the least recently used entries (files, or folders counted by their files) matching ``pattern``
    in ``folder`` until what is left is under ``max_bytes`` (``keep`` is never removed). Best effort: entries
    another process removes meanwhile are skipped. Returns what was removed."""
    entries = []
    try:
        for p in folder.glob(pattern):
            if p.name.startswith(".") or p.name.endswith(".tmp"):
                continue
            try:
                st = p.stat()
                size = st.st_size if not p.is_dir() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            except OSError:
                continue
            entries.append((st.st_mtime, size, p))
    except OSError:
        return []
    total = sum(e[1] for e in entries)
    removed = []
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        if keep is not None and p == keep:
            continue
        try:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        except OSError:
            continue
        total -= size
        removed.append(p)
    return removed


def data_max_bytes() -> int:
    try:
        return max(0, int(float(os.environ["BENCH_CACHE_MAX_MB"]) * 2**20))
    except (KeyError, ValueError):
        return DATA_MAX_BYTES
