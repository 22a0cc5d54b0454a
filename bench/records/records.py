"""Run records: one JSON file per run under ``results/<suite>/``, written atomically, versioned.

A record is complete or absent: it is written to a temporary file in the same folder, flushed to disk and
renamed over the final name, so a process killed at any moment leaves either the old state or the new one.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from bench import RECORD_SCHEMA
from bench.records.safeio import FILE_MODE, write_bytes_atomic  # noqa: F401 (re-exported)
from bench.spec.identity import ID_FORMAT, IDENTITY_VERSION, record_id_problem, run_id

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")  # suite names and row labels: one path component


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def json_bytes(data: Any) -> bytes:
    """``data`` as the harness writes JSON: sorted keys, one-space indent, no NaN (None instead)."""
    return (json.dumps(_clean(data), indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def write_json_atomic(path: str | Path, data: Any, durable: bool = True) -> None:
    """``data`` as JSON (sorted keys, no NaN), written by :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, json_bytes(data), durable)


def record_path(results: str | Path, spec) -> Path:
    """``results/<suite>/<file>``; a path that would leave ``results`` is an error (BenchError)."""
    from bench.execution.locks import inside

    inside(results, spec.suite, spec.filename)  # resolved: no suite name or file name leaves the folder
    return Path(results) / spec.suite / spec.filename


def read_record(path: str | Path) -> tuple[dict, bytes]:
    """The record in ``path`` and its bytes, validated as data: a regular file under the size cap, strict JSON
    (finite numbers, bounded nesting), a mapping with the required keys, of the current schema, with every
    field of its declared type (:mod:`bench.records.recordschema`). ValueError (one line, naming the field) or OSError
    otherwise. :func:`check_record` adds the checks that need the results folder."""
    blob = read_regular_record(path)
    return parse_record(blob), blob


def read_regular_record(path: str | Path) -> bytes:
    """A record file's bytes: a regular file under the record size cap (OSError, or ValueError naming why)."""
    from bench.records.safeio import RECORD_MAX_BYTES, read_regular

    return read_regular(path, RECORD_MAX_BYTES)


def parse_record(blob: bytes) -> dict:
    """The record in a file's bytes, with every check of :func:`read_record` on them (ValueError otherwise)."""
    from bench.records.recordschema import range_error, type_error, valid
    from bench.records.safeio import parse_json

    rec = _well_formed(blob, valid)
    if rec is not None:
        return rec
    # the full checks, one at a time, each naming what is wrong
    rec = parse_json(blob)
    if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(rec, dict) or k not in rec]
        raise NotARecord(f"not a run record (missing {', '.join(missing)})")
    rec = upgrade(rec)
    reason = type_error(rec) or range_error(rec)
    if reason:
        raise ValueError(reason)
    return rec


def _well_formed(blob: bytes, valid) -> dict | None:
    """The record in ``blob`` if it passes every check of :func:`read_record` (strict UTF-8 JSON, finite numbers,
    bounded nesting, the required keys, the current schema, every field typed), else None: the fast path of a
    valid record, parsed by a plain ``json.loads`` and checked in one walk (:func:`bench.records.recordschema.valid`),
    instead of a parser hook per number and three walks. None says nothing about why: the caller then runs the
    full checks, which give the same error they always gave."""
    try:
        rec = json.loads(blob.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if type(rec) is not dict or any(k not in rec for k in REQUIRED_KEYS):
        return None
    version = rec["schema"]
    if type(version) is not int or version != RECORD_SCHEMA or not valid(rec):
        return None
    return rec


class NotARecord(ValueError):
    """A JSON file that is not a run record at all (another tool's file)."""


#: the statuses a run's record can have (anything else: not a record of a finished run)
STATUSES = ("ok", "failed")


def existing_record(results: str | Path, spec) -> dict | None:
    """The record of ``spec`` under ``results``, or None when there is none or it cannot be trusted (damaged,
    wrong-typed, not a regular file, another run's): such a record counts as missing and the run is redone."""
    found = existing_record_blob(results, spec)
    return found[0] if found else None


def existing_record_blob(results: str | Path, spec) -> tuple[dict, bytes] | None:
    """:func:`existing_record` and the file's bytes. Decided by content alone: the record's id is the run's id
    under the record's identity version and the hash of its stored spec, and its status is one of
    :data:`STATUSES` (no file times, no clock). A record written before identity version 2 is found under its
    old file name and counts until ``bench rekey`` renames it."""
    for path, rid in (
        (record_path(results, spec), spec.id),
        (Path(results) / spec.suite / spec.legacy_filename, spec.legacy_id),
    ):
        try:
            rec, blob = read_record(path)
        except (OSError, ValueError):
            continue
        if rec.get("id") != rid or rec.get("status") not in STATUSES or not isinstance(rec.get("spec"), dict):
            continue
        if record_id_problem(rec, rec["spec"]) is None:
            return rec, blob  # an edited spec under the run's id is not this run's record
    return None


def upgrade(record: dict) -> dict:
    """Bring an older record to the current schema; raises ValueError if it cannot."""
    version = record.get("schema")
    if version == RECORD_SCHEMA:
        return record
    if isinstance(version, int) and version > RECORD_SCHEMA:
        raise ValueError(f"record schema {version} is newer than this harness reads ({RECORD_SCHEMA}); upgrade bench")
    raise ValueError(f"unknown record schema {version!r}")


REQUIRED_KEYS = ("schema", "id", "status", "suite", "spec", "label")


def record_files(root: Path) -> list[Path]:
    """The ``*.json`` files under ``root`` that may be records: none under a hidden part (temporary files,
    ``.locks/``), in the order of ``sorted(root.rglob("*.json"))``. Shared by :func:`load_records` and
    :func:`rekey`."""
    return [Path(path) for _, path, _ in _record_files(Path(root))]


def _record_files(root: Path) -> list[tuple[str, str, os.DirEntry]]:
    """``(path relative to root, path, directory entry)`` of :func:`record_files`, the paths as text: one
    directory walk (``os.scandir``), hidden folders not entered, no symbolic link to a folder followed (as
    ``rglob`` does not), sorted by path parts as ``Path`` objects sort; ``Path.relative_to`` per file was a tenth
    of a 10,000-record load, and making a ``Path`` of each another tenth."""
    found: list[tuple[tuple[str, ...], str, os.DirEntry]] = []
    stack: list[tuple[tuple[str, ...], str]] = [((), str(root))]
    while stack:
        parts, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            here = parts + (name,)
            if name.endswith(".json"):
                found.append((here, entry.path, entry))  # a folder named *.json too: read_record names it
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((here, entry.path))
            except OSError:
                continue
    found.sort(key=lambda item: item[0])
    return [("/".join(parts), path, entry) for parts, path, entry in found]


_LAYOUT = re.compile(r"[\r\n\t][\r\n\t ]*")  # line breaks and the indentation after them
_LAYOUT_LF = re.compile(rb"\n *")  # the same for the harness's own files (LF and spaces only): 2x faster


def compact_text(blob: bytes) -> str | None:
    """A record file's JSON text with the line breaks and indentation taken out (compact, not encoded again), or
    None if that is not the text of one JSON object. Safe on any file the reader accepted: strict JSON has no raw
    line break or tab inside a string, so each one, and the spaces after it, lies between tokens (the spaces of
    ``": "`` stay)."""
    try:
        if b"\r" in blob or b"\t" in blob:
            text = _LAYOUT.sub("", blob.decode("utf-8")).strip()
        else:
            text = _LAYOUT_LF.sub(b"", blob).decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return text if text.startswith("{") and text.endswith("}") else None


def load_records(results: str | Path, use_memo: bool = True) -> tuple[list[dict], list[tuple[str, str]]]:
    """All readable records under ``results``, and (file, reason) for every file that is not one. A file whose
    bytes passed before is taken from the record memo (:mod:`bench.records.memo`, ``use_memo=False``: read,
    parse and validate every file) instead of being parsed and validated again; which bytes a file holds is
    known from its hash, or, for a file the memo saw unchanged since well before it was written, from its
    status (size, times, inode: :meth:`~bench.records.memo.RecordMemo.digest_for`) without reading it.

    Each record gets the loader's keys: ``_path`` (its file, relative to ``results``), ``_group`` (its
    leaderboard group, :func:`bench.spec.identity.group_key`) and, unless it was re-keyed in memory, ``_json``
    (its file's text made compact, :func:`compact_text`: the site embeds it without encoding the record again;
    whatever changes the record drops it). The cyclic garbage collector is paused while the records are built
    (plain data, no cycles: its passes over the growing heap were a third of a 10,000-record load)."""
    from bench.records.memo import RecordMemo
    from bench.spec.identity import group_key

    records, problems = [], []
    seen: dict[str, str] = {}
    root = Path(results)
    if not root.exists():
        return records, problems
    memo = RecordMemo(root) if use_memo else None
    snapshot_ns = time.time_ns()  # before any file is looked at: see RecordMemo.note
    collecting = gc.isenabled()
    gc.disable()
    try:
        for rel, path, entry in _record_files(root):
            hit = st = None
            if memo is not None:
                try:
                    st = entry.stat()  # follows a symbolic link, as the reader does
                except OSError:
                    st = None
                digest = memo.digest_for(rel, st) if st is not None else None
                hit = memo.get(digest) if digest is not None else None
            if hit is None:  # not known unchanged: read and hash the file
                try:
                    blob = read_regular_record(path)
                except OSError as exc:
                    problems.append((str(path), f"cannot read ({exc.strerror or type(exc).__name__})"))
                    continue
                except ValueError as exc:
                    problems.append((str(path), str(exc)))
                    continue
                digest = hashlib.sha256(blob).hexdigest()
                hit = memo.get(digest) if memo is not None else None
            if hit is not None:
                rec, text, group = hit
                reason = artifacts_problem(rec, root)  # the folder may have changed around the same bytes
            else:
                try:
                    rec = parse_record(blob)
                except ValueError as exc:
                    problems.append((str(path), str(exc)))
                    continue
                reason = check_record(rec, root)
                if reason is None:
                    text, group = compact_text(blob), group_key(rec["spec"])
                    if memo is not None:
                        memo.put(digest, rec, text, group)  # before the loader adds its own keys
            if reason is None and memo is not None and st is not None:
                memo.note(rel, st, digest, snapshot_ns)
            if reason is None:
                if not rekey_in_memory(rec) and text is not None:
                    rec["_json"] = text
                rec["_group"] = group
                key = f"{rec['spec']['suite']}/{rec['id']}"
                if key in seen:
                    reason = f"same run id as {seen[key]}"
            if reason is not None:
                problems.append((str(path), reason))
                continue
            seen[key] = str(path)
            rec["_path"] = rel
            records.append(rec)
    finally:
        if collecting:
            gc.enable()
    if memo is not None:
        memo.save()
    return records, problems


def rekey_in_memory(rec: dict) -> bool:
    """Give a valid record written under identity version 1 its current id (the old one kept as ``legacy_id``);
    True if it changed. Its file keeps the old name until ``bench rekey`` renames it."""
    if rec.get("identity_version") == IDENTITY_VERSION:
        return False
    current = run_id(rec["spec"])
    if rec["id"] != current:
        rec["legacy_id"] = rec["id"]
    rec["id"], rec["identity_version"] = current, IDENTITY_VERSION
    return True


def check_record(rec: dict, root: str | Path) -> str | None:
    """Why a run record cannot be trusted or rendered (one line), or None. A record is accepted only if its id
    has the harness's format and is its spec's hash, its spec names what the report needs, and every artifact
    path stays inside the results folder ``root``."""
    rid = rec.get("id")
    if not isinstance(rid, str) or not ID_FORMAT.fullmatch(rid):
        return f"id: {str(rid)[:40]!r} is not a run id (16 hex digits)"
    spec = rec.get("spec")
    if not isinstance(spec, dict):
        return "spec: not a mapping"
    for key in ("task", "dataset", "backbone", "layer"):
        if not isinstance(spec.get(key), dict) or not isinstance(spec[key].get("name"), str):
            return f"spec.{key}: missing or has no name"
    if not isinstance(spec.get("protocol"), dict):
        return "spec.protocol: missing or not a mapping"
    if not isinstance(spec.get("seed"), int) or isinstance(spec.get("seed"), bool):
        return "spec.seed: missing or not an integer"
    if not isinstance(spec.get("suite"), str) or not SAFE_NAME.fullmatch(spec["suite"]):
        return f"spec.suite: {str(spec.get('suite'))[:40]!r} is not a suite name"
    problem = record_id_problem(rec, spec)
    if problem is not None:
        return problem
    suite = rec.get("suite")
    if not isinstance(suite, dict) or suite.get("name") != spec["suite"]:
        return "suite.name: missing or differs from spec.suite"
    if not isinstance(rec.get("label"), str) or not isinstance(rec.get("status"), str):
        return "label/status: missing or not text"
    return artifacts_problem(rec, root)


def artifacts_problem(rec: dict, root: str | Path) -> str | None:
    """Why a record's artifact list cannot be trusted (one line), or None: every path must stay inside the
    results folder ``root`` as it is now (resolved, so a link out of it is refused). The part of
    :func:`check_record` that depends on the folder, not only on the record's bytes."""
    arts = rec.get("artifacts")
    if arts is not None:
        if not isinstance(arts, list):
            return "artifacts: not a list"
        base = Path(root).resolve()
        for i, art in enumerate(arts):
            rel = art.get("path") if isinstance(art, dict) else None
            if not isinstance(rel, str) or not rel:
                return f"artifacts[{i}].path: missing"
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                return f"artifacts[{i}].path: {rel[:80]!r} is outside the results folder"
            target = (base / rel).resolve()
            if base not in target.parents:
                return f"artifacts[{i}].path: {rel[:80]!r} is outside the results folder"
    return None


def rekey(results: str | Path, dry_run: bool = False) -> dict:
    """Rename every record under ``results`` written under identity version 1 to its current id (``bench
    rekey``): the record gets ``id``, ``identity_version`` and ``legacy_id``, its file the new id in its name,
    its artifact folder (``<suite>/artifacts/<id>``) the new id; metrics and everything else are kept byte for
    byte. Idempotent and safe to rerun after a kill: the new file is written (atomically) before the artifacts
    move and the old file goes last. Run it while no runner writes into ``results``."""
    root = Path(results)
    done: dict = {"renamed": [], "current": 0, "problems": []}
    for path in record_files(root):
        try:
            rec, _ = read_record(path)
        except NotARecord:
            continue
        except (OSError, ValueError) as exc:
            done["problems"].append((str(path), str(getattr(exc, "strerror", None) or exc)))
            continue
        reason = check_record(rec, root)
        if reason is not None:
            done["problems"].append((str(path), reason))
            continue
        old = rec["id"]
        if not rekey_in_memory(rec):
            done["current"] += 1
            continue
        new = rec["id"]
        if new == old:  # already the current hash, only unlabelled: say so in place
            if not dry_run:
                write_json_atomic(path, rec)
            done["current"] += 1
            continue
        suffix = f"--{old}.json"
        name = path.name[: -len(suffix)] + f"--{new}.json" if path.name.endswith(suffix) else f"{path.stem}--{new}.json"
        target = path.with_name(name)
        done["renamed"].append((str(path), str(target)))
        if dry_run:
            continue
        old_art = f"/artifacts/{old}/"
        for art in rec.get("artifacts") or []:
            art["path"] = art["path"].replace(old_art, f"/artifacts/{new}/")
        if not target.exists():
            write_json_atomic(target, rec)
        art_old, art_new = path.parent / "artifacts" / old, path.parent / "artifacts" / new
        if art_old.is_dir() and not art_new.exists():
            os.replace(art_old, art_new)
        path.unlink()
    return done
