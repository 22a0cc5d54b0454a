"""The record memo (issue 20 item 6): what :func:`bench.records.records.load_records` learnt about a results
folder's files, kept in the harness's cache (``$BENCH_CACHE/records``) so that the next report parses and
validates only the files that changed.

Parsing and validating every record (strict JSON, the schema walk, the run id's hash) was most of a
10,000-record report. A memo entry is keyed by the sha256 of a file's bytes: it says "a file with exactly
these bytes passed every content check of :func:`~bench.records.records.read_record` and
:func:`~bench.records.records.check_record` and was this record" and holds, as ``marshal`` bytes (which load
several times faster than JSON), the record, its file's compact text
(:func:`~bench.records.records.compact_text`) and its leaderboard group (:func:`bench.spec.identity.group_key`):
what the loader derives from the bytes alone. What it does not cover is still done on every load: the file is
read (a regular file under the size cap) and hashed, its artifact paths are resolved against the folder as it is
now, and no two files may share a run id.

Trust, as for the YAML memo (:func:`bench.spec.suite._parse_yaml`): the memo file is named by a fingerprint of
the Python version, the marshal format, the record schema and identity versions, the source of every module
that decides whether a record is valid, and the results folder's absolute path, so a change to any of them
starts a new memo; it carries the sha256 of its name and payload, so an edited, truncated or misplaced memo is
not used; it holds only records that passed, never an error. An unusable cache folder means no memo (the
records are parsed as before). The memo folder is kept under :data:`MEMO_MAX_BYTES`, least recently used out.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from pathlib import Path

MAGIC = b"convbench-record-memo-2\n"  # 2: an entry is (record, compact text, group)
MEMO_MAX_BYTES = 512 * 2**20
# the modules whose code decides whether a file is a valid record (and which record it is)
_VALIDATORS = ("records.py", "recordschema.py", "safeio.py", "../spec/identity.py", "../__init__.py")


def _fingerprint(root: Path) -> str:
    from bench import RECORD_SCHEMA
    from bench.spec.identity import IDENTITY_VERSION

    h = hashlib.sha256(f"{sys.version_info[:2]}|{marshal.version}|{RECORD_SCHEMA}|{IDENTITY_VERSION}|".encode())
    here = Path(__file__).resolve().parent
    for name in _VALIDATORS:
        h.update((here / name).read_bytes())
    h.update(str(Path(root).resolve()).encode())
    return h.hexdigest()[:32]


class RecordMemo:
    """Entries ``{file sha256: marshal bytes of (record, compact text, group)}`` for one results folder:
    :meth:`get` before parsing a file, :meth:`put` after it passed, :meth:`save` at the end (written only when it
    changed; entries of files not seen in this load are dropped, so the memo holds the folder as it is)."""

    def __init__(self, root: str | Path):
        from bench.cache import cache_root

        self.entries: dict[str, bytes] = {}
        self.seen: dict[str, bytes] = {}
        self.changed = False
        try:
            self.key = _fingerprint(Path(root))
        except OSError:  # the validators' source cannot be read (a frozen install): no memo
            self.key = None
            return
        self.path = cache_root() / "records" / f"{self.key}.marshal"
        try:
            blob = self.path.read_bytes()
            head = len(MAGIC)
            digest, payload = blob[head : head + 32], blob[head + 32 :]
            if blob[:head] != MAGIC or hashlib.sha256(self.key.encode() + payload).digest() != digest:
                raise ValueError("not this folder's memo")
            entries = marshal.loads(payload)
            if type(entries) is not dict:
                raise ValueError("not a memo")
            self.entries = entries
        except (OSError, ValueError, EOFError, TypeError):
            pass

    def get(self, digest: str) -> tuple[dict, str | None, str] | None:
        """``(record, compact text, group)`` of the file with this content digest, or None."""
        entry = self.entries.get(digest)
        if entry is None:
            return None
        try:
            hit = marshal.loads(entry)
        except (ValueError, EOFError, TypeError):
            return None
        if (
            type(hit) is not tuple
            or len(hit) != 3
            or type(hit[0]) is not dict
            or type(hit[1]) not in (str, type(None))
            or type(hit[2]) is not str
        ):
            return None
        self.seen[digest] = entry
        return hit

    def put(self, digest: str, rec: dict, text: str | None, group: str) -> None:
        """Remember a record that passed every content check (before the loader changes it), with its file's
        compact text and its group."""
        if self.key is None:
            return
        try:
            self.seen[digest] = marshal.dumps((rec, text, group))
        except ValueError:  # not plain data (cannot happen for parsed JSON): not memoised
            return
        self.changed = True

    def save(self) -> None:
        """Write the memo if a file was added, changed or removed since it was read; best effort."""
        if self.key is None or not (self.changed or set(self.seen) != set(self.entries)):
            return
        from bench.cache import prune, touch, usable_dir, write_failed
        from bench.records.safeio import write_bytes_atomic

        folder = usable_dir(self.path.parent)
        path = folder / self.path.name
        payload = marshal.dumps(self.seen)
        try:  # written whole or not at all; not fsynced (a cache, rebuilt at will)
            write_bytes_atomic(path, MAGIC + hashlib.sha256(self.key.encode() + payload).digest() + payload, False)
        except OSError as exc:
            write_failed(path, exc)
            return
        touch(path)
        prune(folder, MEMO_MAX_BYTES, keep=path, pattern="*.marshal")
