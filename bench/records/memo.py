"""The record memo (issue 20 item 6): what :func:`bench.records.records.load_records` learnt about a results
folder's files, kept in the harness's cache (``$BENCH_CACHE/records``) so that the next report parses and
validates only the files that changed.

Parsing and validating every record (strict JSON, the schema walk, the run id's hash) was most of a
10,000-record report. A memo entry is keyed by the sha256 of a file's bytes: it says "a file with exactly
these bytes passed every content check of :func:`~bench.records.records.read_record` and
:func:`~bench.records.records.check_record` and was this record" and holds, as ``marshal`` bytes (which load
several times faster than JSON), the record, its file's compact text
(:func:`~bench.records.records.compact_text`) and its leaderboard group (:func:`bench.spec.identity.group_key`):
what the loader derives from the bytes alone. What it does not cover is still done on every load: its artifact
paths are resolved against the folder as it is now, and no two files may share a run id.

Which bytes a file holds is learnt by reading and hashing it, except for a file whose status (``os.stat``: size,
modification and change times in ns, inode and device) is the one the memo noted with its digest at the last
load: then it is not read (reading and hashing 10,000 files was a fifth of a warm load). A status is noted only
for a regular file under the size cap whose change and modification times lie more than
:data:`SETTLED_NS` before that load began, so a file written just before or during a load, within one tick of
the file system's clock, is hashed again next time (git's "racy" rule); any write to a file moves its change
time, which no program can set back (``touch`` and ``cp -p`` set the modification time only), and a file
replaced by a rename has another inode.

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
import stat
import sys
from pathlib import Path

MAGIC = b"convbench-record-memo-3\n"  # 3: (entries, statuses); an entry is (record, compact text, group)
SETTLED_NS = 2_000_000_000  # a file's status is trusted only if it last changed this long before the load
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


def _status(st) -> tuple:
    """What of a file's status says its bytes are the same: size, modification and change time, inode, device."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


class RecordMemo:
    """Entries ``{file sha256: marshal bytes of (record, compact text, group)}`` for one results folder:
    :meth:`get` before parsing a file, :meth:`put` after it passed, :meth:`save` at the end (written only when it
    changed; entries of files not seen in this load are dropped, so the memo holds the folder as it is)."""

    def __init__(self, root: str | Path):
        from bench.cache import cache_root

        self.entries: dict[str, bytes] = {}
        self.seen: dict[str, bytes] = {}
        self.statuses: dict[str, tuple] = {}  # path relative to the folder → (status key, digest)
        self.noted: dict[str, tuple] = {}
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
            digest, payload = blob[head : head + 32], memoryview(blob)[head + 32 :]  # no copy of the payload
            check = hashlib.sha256(self.key.encode())
            check.update(payload)
            if blob[:head] != MAGIC or check.digest() != digest:
                raise ValueError("not this folder's memo")
            loaded = marshal.loads(payload)
            if type(loaded) is not tuple or len(loaded) != 2 or not all(type(x) is dict for x in loaded):
                raise ValueError("not a memo")
            self.entries, self.statuses = loaded
        except (OSError, ValueError, EOFError, TypeError):
            pass

    def digest_for(self, rel: str, st) -> str | None:
        """The digest noted for the file at ``rel`` if ``st`` (its ``os.stat``) is the status noted with it,
        else None (read and hash the file)."""
        noted = self.statuses.get(rel)
        if noted is None or type(noted) is not tuple or len(noted) != 2 or noted[0] != _status(st):
            return None
        return noted[1] if type(noted[1]) is str else None

    def note(self, rel: str, st, digest: str, load_began_ns: int) -> None:
        """Note the status ``st`` of the file at ``rel``, which holds the bytes of ``digest``, for the next load,
        if the file is settled (a regular file under the size cap, unchanged for :data:`SETTLED_NS` before
        ``load_began_ns``); called for every file that gave a record, so the memo holds the folder as it is."""
        from bench.records.safeio import RECORD_MAX_BYTES

        if (
            self.key is None
            or not stat.S_ISREG(st.st_mode)
            or st.st_size > RECORD_MAX_BYTES
            or max(st.st_mtime_ns, st.st_ctime_ns) > load_began_ns - SETTLED_NS
        ):
            return
        self.noted[rel] = (_status(st), digest)

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
        if self.key is None or not (self.changed or set(self.seen) != set(self.entries) or self.noted != self.statuses):
            return
        from bench.cache import prune, touch, usable_dir, write_failed
        from bench.records.safeio import write_bytes_atomic

        folder = usable_dir(self.path.parent)
        path = folder / self.path.name
        payload = marshal.dumps((self.seen, self.noted))
        try:  # written whole or not at all; not fsynced (a cache, rebuilt at will)
            write_bytes_atomic(path, MAGIC + hashlib.sha256(self.key.encode() + payload).digest() + payload, False)
        except OSError as exc:
            write_failed(path, exc)
            return
        touch(path)
        prune(folder, MEMO_MAX_BYTES, keep=path, pattern="*.marshal")
