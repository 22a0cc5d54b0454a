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
    if token is NUM:  # an int past float range is no number a record can hold (math.isfinite would overflow)
        if isinstance(value, int) and not isinstance(value, bool):
            return -_FLOAT_MAX <= value <= _FLOAT_MAX
        return isinstance(value, float) and math.isfinite(value)
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
            if isinstance(v, int) and not isinstance(v, bool) and not -_FLOAT_MAX <= v <= _FLOAT_MAX:
                return f"{at or 'record'}: expected {want}, got an integer past float range"
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


# --- the fast path (issue 20 item 6) -----------------------------------------------------------------------------
# :func:`type_error` walks the schema generically (a generator and a token test per value): at 10,000 records it
# was a tenth of a report. :func:`valid` answers only yes or no, from checkers compiled once from the same
# schema; a record it does not pass is checked again by the generic path, which names the field. It is
# conservative by construction: True only if the record would pass :func:`type_error` *and* the reader's checks
# that need the whole value (every number finite, at most ``MAX_DEPTH`` levels), so a caller may parse with a
# plain ``json.loads`` and leave the reader's walk out. Only the exact types ``json.loads`` makes are accepted.

_NONE = type(None)
_FLOAT_MAX = 1.7976931348623157e308
_SCALAR_TYPES = {NUM: (int, float), INT: (int,), STR: (str,), BOOL: (bool,), NULL: (_NONE,)}


def _json_ok(v: Any, d: int, limit: int) -> bool:
    """``v`` (at depth ``d``) is JSON as ``json.loads`` makes it, with finite floats, nesting at most ``limit``."""
    t = type(v)
    if t is dict or t is list:
        if d > limit:
            return False
        for x in v.values() if t is dict else v:
            tx = type(x)
            if tx is float:
                if x - x != 0.0:  # inf - inf and nan - nan are nan
                    return False
            elif tx is dict or tx is list:
                if not _json_ok(x, d + 1, limit):
                    return False
            elif not (tx is str or tx is int or tx is bool or x is None):
                return False
        return True
    if t is float:
        return v - v == 0.0
    return t is str or t is int or t is bool or v is None


def _compile(types: tuple, limit: int):
    """A checker ``(value, depth) -> bool`` for a tuple of type tokens, with :func:`type_error`'s semantics: the
    first token the value has decides how it is descended into."""
    if ANY in types:
        return lambda v, d: _json_ok(v, d, limit)
    scalars: set = set()
    dict_token = next((t for t in types if isinstance(t, dict)), None)
    list_token = next((t for t in types if isinstance(t, list)), None)
    for t in types:
        if not isinstance(t, (dict, list)):
            scalars.update(_SCALAR_TYPES[t])
    scalars = frozenset(scalars)
    float_ok = float in scalars
    on_dict = _compile_dict(dict_token, limit) if dict_token is not None else None
    on_list = _compile(list_token[0], limit) if list_token is not None else None

    def check(v: Any, d: int) -> bool:
        t = type(v)
        if t is float:
            return float_ok and v - v == 0.0
        if t in scalars:  # an int past float range: the generic check decides (math.isfinite overflows on it)
            return not (t is int and float_ok and not -_FLOAT_MAX <= v <= _FLOAT_MAX)
        if t is dict:
            return on_dict is not None and d <= limit and on_dict(v, d)
        if t is list:
            if on_list is None or d > limit:
                return False
            for x in v:
                if not on_list(x, d + 1):
                    return False
            return True
        return False

    return check


def _compile_dict(schema: dict, limit: int):
    subs = {k: _compile(t, limit) for k, t in schema.items() if k != "*"}
    other = _compile(schema.get("*", (ANY,)), limit)

    def check(v: dict, d: int) -> bool:
        for key, item in v.items():
            if not subs.get(key, other)(item, d + 1):
                return False
        return True

    return check


_RECORD_CHECK = None


def valid(record: Any) -> bool:
    """True only if ``record`` passes :func:`type_error` and :func:`range_error` and, as the reader requires,
    has only finite numbers and nests at most ``safeio.MAX_DEPTH`` levels (False: use the generic checks, which
    say why). ``record`` as ``json.loads`` returns it."""
    global _RECORD_CHECK
    if _RECORD_CHECK is None:
        from bench.records.safeio import MAX_DEPTH

        _RECORD_CHECK = _compile((RECORD,), MAX_DEPTH)
    return type(record) is dict and _RECORD_CHECK(record, 1) and range_error(record) is None
