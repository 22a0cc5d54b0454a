"""The typed schema of a run record, checked before the report uses one (issue 19: records are data, never
trusted). A record that passes can be tabled and rendered; one that fails is skipped with one line naming
the field. Unknown keys are allowed (tasks add their own sections), their values are any JSON.

Types are written as tuples of tokens: ``NUM`` (a finite int or float, not a boolean), ``INT``, ``STR``,
``BOOL``, ``NULL``, ``ANY`` (any JSON value), a dict (a mapping with those keys; ``"*"``: the type of other
keys) or a one-item list (a list of that type).
"""

from __future__ import annotations

import math
from typing import Any

NUM, INT, STR, BOOL, NULL, ANY = "number", "integer", "string", "boolean", "null", "anything"
SCALAR = (NUM, STR, BOOL, NULL)

NAMED = {"name": (STR,), "options": ({"*": (ANY,)},), "*": (ANY,)}

PROTOCOL = {
    "name": (STR, NULL),
    "epochs": (INT,),
    "batch_size": (INT, NULL),
    "train_subset": (INT, NULL),
    "test_subset": (INT, NULL),
    "max_batches": (INT, NULL),
    "threshold": (NUM, NULL),
    "*": (ANY,),
}

#: timing fields the leaderboard averages or compares: numbers (or null) only
TIMING_NUMBERS = (
    "train_s",
    "warmup_epoch_s",
    "epoch_s_median",
    "epoch_s_spread",
    "throughput_img_s",
    "throughput_spread",
    "latency_ms",
    "latency_spread",
    "train_macs_estimate",
    "train_forward_macs",
    "train_s_after_warmup",
    "total_s",
    "steps_per_epoch",
    "repeats",
    "throughput_batch",
)
#: counts the verdicts divide by (chance level, binomial standard error): positive where given
POSITIVE = (("metrics", "classes"), ("data", "classes"), ("data", "test"))

SPEC = {
    "suite": (STR,),
    "task": (NAMED,),
    "dataset": (NAMED,),
    "backbone": (NAMED,),
    "layer": (
        {"name": (STR,), "label": (STR, NULL), "display": (STR, NULL), "options": ({"*": (ANY,)},), "*": (ANY,)},
    ),
    "protocol": (PROTOCOL,),
    "seed": (INT,),
    "overrides": ({"*": (INT, NUM, NULL)}, NULL),
    "data_root": (STR, NULL),
    "*": (ANY,),
}

RECORD = {
    "schema": (INT,),
    "id": (STR,),
    "identity_version": (INT, NULL),
    "legacy_id": (STR, NULL),
    "status": (STR,),
    "label": (STR,),
    "task": (STR, NULL),
    "suite": ({"name": (STR,), "file": (STR, NULL), "sha256": (STR, NULL), "*": (ANY,)},),
    "spec": (SPEC,),
    "metrics": ({"*": SCALAR}, NULL),
    "timing": (
        {
            "to_threshold": ({"seconds": (NUM, NULL), "train_macs": (NUM, NULL), "*": (ANY,)}, NULL),
            "speed_paths": (ANY,),
            **{k: (NUM, NULL) for k in TIMING_NUMBERS},
            "*": SCALAR,
        },
        NULL,
    ),
    "params": ({"learned": (INT, NULL), "fixed": (INT, NULL), "total": (INT, NULL), "*": SCALAR}, NULL),
    "env": ({"device": (STR, NULL), "*": (ANY,)}, NULL),
    "data": ({"test": (INT, NULL), "classes": (INT, [(ANY,)], NULL), "*": (ANY,)}, NULL),
    "macs": (NUM, NULL),
    "duration_s": (NUM, NULL),
    "started": (STR, NULL),
    "finished": (STR, NULL),
    "error": (STR, NULL),
    "traceback": (STR, NULL),
    "history": ([({"epoch": (NUM,), "*": SCALAR},)], NULL),
    "curves": (
        {
            "*": (
                {
                    "x": ([(NUM, NULL)],),
                    "y": ([(NUM, NULL)],),
                    "xlabel": (STR,),
                    "ylabel": (STR,),
                    "logx": (BOOL, NULL),
                    "*": (ANY,),
                },
            )
        },
        NULL,
    ),
    "artifacts": ([({"path": (STR,), "caption": (STR, NULL), "*": (ANY,)},)], NULL),
    "memory": ({"peak_bytes": (NUM, NULL), "kind": (STR, NULL), "*": (ANY,)}, NULL),
    "invocation": ({"*": (ANY,)}, NULL),
    "provenance": ({"*": (ANY,)}, NULL),
    "*": (ANY,),
}


def _is(value: Any, token) -> bool:
    if token is ANY:
        return True
    if token is NULL:
        return value is None
    if token is BOOL:
        return isinstance(value, bool)
    if token is STR:
        return isinstance(value, str)
    if token is INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if token is NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(token, dict):
        return isinstance(value, dict)
    if isinstance(token, list):
        return isinstance(value, list)
    raise TypeError(f"unknown type token {token!r}")


def _name(token) -> str:
    if isinstance(token, dict):
        return "mapping"
    if isinstance(token, list):
        return "list"
    return token


def type_error(value: Any, types: tuple = (RECORD,), where: str = "") -> str | None:
    """``field: message`` for the first value in ``value`` that does not have its declared type, or None.
    Iterative (a deep value cannot exhaust the stack); nesting and size are bounded by the reader."""
    stack = [(value, types, where)]
    while stack:
        v, ts, at = stack.pop()
        match = next((t for t in ts if _is(v, t)), None)
        if match is None:
            want = " or ".join(_name(t) for t in ts)
            got = "a non-finite number" if isinstance(v, float) and not math.isfinite(v) else type(v).__name__
            return f"{at or 'record'}: expected {want}, got {got} {_short(v)}"
        if isinstance(match, dict):
            for key, item in v.items():
                sub = match.get(key, match.get("*", (ANY,)))
                if sub != (ANY,):
                    stack.append((item, sub, f"{at}.{key}" if at else str(key)))
        elif isinstance(match, list) and match[0] != (ANY,):
            stack.extend((item, match[0], f"{at}[{i}]") for i, item in enumerate(v))
    return None


def range_error(record: dict) -> str | None:
    """``field: message`` for a count of :data:`POSITIVE` that is an integer below one, or None (call after
    :func:`type_error`)."""
    for section, key in POSITIVE:
        v = (record.get(section) or {}).get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            return f"{section}.{key}: must be positive, got {v}"
    return None


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
