"""Reading files that are data, never trusted: regular files only, with a size cap, never blocking; JSON with
bounded nesting and only finite numbers. Every refusal is a :class:`Refused` with a one-line reason."""

from __future__ import annotations

import json
import math
import os
import errno
import stat
import tempfile
from pathlib import Path
from typing import Any

RECORD_MAX_BYTES = 8 << 20  # a run record (the largest committed one is ~10 kB)
SUITE_MAX_BYTES = 1 << 20  # a suite file (the largest committed one is ~30 kB)
MAX_DEPTH = 64  # JSON / YAML nesting (records nest 5 deep)
FILE_MODE = 0o644  # records, site and cache files are world-readable


class Refused(ValueError):
    """A file or value that is not acceptable data; ``str()`` is a one-line reason."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is (or links to) a regular file of at most ``limit`` bytes. A FIFO, device,
    socket or directory is refused without reading (opened non-blocking, so a FIFO never waits for a writer);
    a file that grows past the cap while being read is refused too. OSError for files that cannot be opened."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise Refused(f"{st.st_size} bytes, more than the {limit}-byte cap")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise Refused(f"more than the {limit}-byte cap")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _no_constant(name: str):
    raise Refused(f"non-finite number {name} (strict JSON has none)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused(f"number {text[:40]} is out of range")
    return value


def depth_error(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why ``value`` nests deeper than ``limit`` lists/mappings, or None (iterative: no recursion). A value
    reached twice (a YAML alias) is walked once per path, so an alias bomb is measured as what it expands to;
    that cost is bounded by the caller's size check, see :func:`size_error`."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list, tuple)):
            if d > limit:
                return f"nested more than {limit} levels deep"
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return None


def size_error(value: Any, limit: int) -> str | None:
    """Why ``value`` has more than ``limit`` nodes (scalars, lists, mappings and keys, counted as expanded:
    an alias counts each time it is used), or None. Stops counting at the limit, so an alias bomb costs
    ``limit`` steps, not its expansion; a self-referencing structure is a cycle and refused as such."""
    count, stack, on_path = 0, [(value, False)], set()
    while stack:
        v, leaving = stack.pop()
        if leaving:
            on_path.discard(id(v))
            continue
        count += 1
        if count > limit:
            return f"more than {limit} values (after expanding aliases)"
        if isinstance(v, (dict, list, tuple)):
            if id(v) in on_path:
                return "refers to itself (a recursive alias)"
            on_path.add(id(v))
            stack.append((v, True))
            items = list(v.keys()) + list(v.values()) if isinstance(v, dict) else list(v)
            stack.extend((x, False) for x in items)
    return None


def parse_json(blob: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Strict JSON from UTF-8 bytes: finite numbers only, at most ``max_depth`` levels. Refused otherwise."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:  # deeper than the interpreter's recursion limit
        raise Refused(f"nested more than {max_depth} levels deep") from None
    except Refused:
        raise
    except ValueError as exc:
        raise Refused(f"not valid JSON ({str(exc)[:80]})") from None
    reason = depth_error(value, max_depth)  # before anything recursive (rendering, json.dumps) touches it
    if reason:
        raise Refused(reason)
    return value


def write_bytes_atomic(path: str | Path, blob: bytes, durable: bool = True) -> None:
    """Write ``blob`` to ``path`` through a temporary file in the same folder and ``os.replace``: readers see the
    old file or the new one, never a part. ``durable``: fsync before the rename (records); files rebuilt at will
    (the site, caches) skip it (the site's eight fsyncs were about 5 % of a report's build time)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes 0600; records and site files are world-readable
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # full disk, a folder where the file belongs…: named by the file it was writing
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
