"""Run records: one JSON file per run under ``results/<suite>/``, written atomically, versioned.

A record is complete or absent: it is written to a temporary file in the same folder, flushed to disk and
renamed over the final name, so a process killed at any moment leaves either the old state or the new one.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from bench import RECORD_SCHEMA


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: str | Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_clean(data), f, indent=1, sort_keys=True, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_path(results: str | Path, spec) -> Path:
    return Path(results) / spec.suite / spec.filename


def existing_record(results: str | Path, spec) -> dict | None:
    path = record_path(results, spec)
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a damaged record counts as missing: the run is redone
    return rec if isinstance(rec, dict) and rec.get("id") == spec.id else None


def upgrade(record: dict) -> dict:
    """Bring an older record to the current schema; raises ValueError if it cannot."""
    version = record.get("schema")
    if version == RECORD_SCHEMA:
        return record
    if isinstance(version, int) and version > RECORD_SCHEMA:
        raise ValueError(f"record schema {version} is newer than this harness reads ({RECORD_SCHEMA}); upgrade bench")
    raise ValueError(f"unknown record schema {version!r}")


REQUIRED_KEYS = ("schema", "id", "status", "suite", "spec", "label")


def load_records(results: str | Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """All readable records under ``results``, and (file, reason) for every file that is not one."""
    records, problems = [], []
    root = Path(results)
    if not root.exists():
        return records, problems
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problems.append((str(path), f"not valid JSON ({type(exc).__name__}: {str(exc)[:80]})"))
            continue
        if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED_KEYS):
            missing = [k for k in REQUIRED_KEYS if not isinstance(rec, dict) or k not in rec]
            problems.append((str(path), f"not a run record (missing {', '.join(missing)})"))
            continue
        try:
            rec = upgrade(rec)
        except ValueError as exc:
            problems.append((str(path), str(exc)))
            continue
        rec["_path"] = str(path.relative_to(root))
        records.append(rec)
    return records, problems
