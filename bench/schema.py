"""A small declarative validator for suite files: every error is one line naming the file and the field."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from bench.errors import SpecError


@dataclass(frozen=True)
class F:
    """A field: accepted types, default (``REQUIRED`` if it must be given), optional nested schema/check."""

    types: tuple
    default: Any = None
    schema: dict | None = None        # nested mapping schema (when the value is a dict)
    items: "F | None" = None          # schema of list items (when the value is a list)
    check: Callable[[Any], str | None] | None = None  # returns an error message or None
    doc: str = ""


REQUIRED = object()
ANY_MAPPING = {"*": F((object,))}


def _type_name(types: tuple) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping",
             type(None): "null", object: "anything"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _is(value: Any, types: tuple) -> bool:
    if object in types:
        return True
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def validate(value: Any, field: F, path: str, where: str) -> Any:
    """Validate ``value`` against ``field``; returns the value with defaults filled in."""
    if not _is(value, field.types):
        raise SpecError(path, where, f"expected {_type_name(field.types)}, got {type(value).__name__} {value!r:.60}")
    if isinstance(value, float) and not math.isfinite(value):  # .nan, .inf: never a setting, a reference or a bound
        raise SpecError(path, where, f"must be a finite number, got {value!r}")
    if isinstance(value, dict) and field.schema is not None:
        value = validate_mapping(value, field.schema, path, where)
    if isinstance(value, list) and field.items is not None:
        value = [validate(v, field.items, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if field.check is not None:
        msg = field.check(value)
        if msg:
            raise SpecError(path, where, msg)
    return value


def validate_mapping(data: dict, schema: dict, path: str, where: str = "") -> dict:
    prefix = f"{where}." if where else ""
    for key in data:
        if not isinstance(key, str):
            raise SpecError(path, f"{prefix}{key}", "keys must be strings")
        if key not in schema and "*" not in schema:
            raise SpecError(path, f"{prefix}{key}", f"unknown key (allowed: {', '.join(sorted(schema))})")
    out = {}
    for key, field in schema.items():
        if key == "*":
            continue
        if key in data:
            out[key] = validate(data[key], field, path, f"{prefix}{key}")
        elif field.default is REQUIRED:
            raise SpecError(path, f"{prefix}{key}", "required field is missing")
        else:
            default = field.default() if callable(field.default) else field.default
            # a nested mapping left out gets its own fields' defaults too
            out[key] = validate(default, field, path, f"{prefix}{key}") if isinstance(default, dict) else default
    if "*" in schema:
        for key in data:
            if key not in schema:
                out[key] = validate(data[key], schema["*"], path, f"{prefix}{key}")
    return out


# -- options of registered entries (layer families, backbones, data sets, tasks) --------------------------
# An entry's options are its factory's keyword-only parameters; their defaults declare their types. Names that
# are obviously sizes or counts must be positive, fractions lie in [0, 1], levels and scales are non-negative.
_POSITIVE = re.compile(r"^(n|k|q|scales|width|depth|size|kernel|kernel_size|patch|block|blocks|iterations|"
                       r"stem_iterations|fanout|channels|classes|multiplier|filter_multiplier|num_filters|mult|"
                       r"top|stem|pairs|fc_dim|init_ds|networks|trained_networks|repeats|timing_repeats|"
                       r"train_crops|max_blobs|min_images|crop_size|base_size|min_size|max_size|roi_size|"
                       r"width_per_group|sigma|throughput_batch|eval_batch_size|artifact_images|"
                       r"n_[a-z_]+|[a-z_]+_(size|batch|images|kernel|hidden|layers|channels|classes))$", re.I)
_FRACTION = re.compile(r"^(dropout|sparsity|[a-z_]*fraction)$", re.I)
_NON_NEGATIVE = re.compile(r"^(noise_level|eps|scale|truncate|pixel_scale|momentum|[a-z_]*_seed|seed)$", re.I)


OPTION_MAX = 100_000  # sizes and counts (names matching _POSITIVE): the largest default is 4096 (tv-vgg16 fc_dim)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _option_type_error(default: Any, value: Any) -> str | None:
    if default is None:
        return None  # undeclared type: the factory checks it
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "boolean"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "integer"
    elif isinstance(default, float):
        ok, want = _is_number(value), "number"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "string"
    elif isinstance(default, (list, tuple)):
        ok, want = isinstance(value, (list, tuple)), "list"
        if ok and default and value and all(_is_number(d) for d in default):
            bad = next((x for x in value if not _is_number(x)), None)
            if bad is not None or any(isinstance(x, bool) for x in value):
                return f"expected a list of numbers, got {value!r:.60}"
    elif isinstance(default, dict):
        ok, want = isinstance(value, dict), "mapping"
    else:
        return None
    return None if ok else f"expected {want} (the default is {default!r:.40}), got {type(value).__name__} {value!r:.60}"


def _option_range_error(name: str, value: Any) -> str | None:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    nums = [v for v in values if _is_number(v)]
    if not nums:
        return None
    if any(isinstance(v, float) and not math.isfinite(v) for v in nums):
        return f"must be finite, got {value!r:.60}"
    if _POSITIVE.match(name) and any(v <= 0 for v in nums):
        return f"must be positive, got {value!r:.60}"
    if _POSITIVE.match(name) and any(v > OPTION_MAX for v in nums):
        return f"must be at most {OPTION_MAX} (a sane cap on sizes and counts: more is a typo), got {value!r:.60}"
    if _FRACTION.match(name) and any(not 0 <= v <= 1 for v in nums):
        return f"must lie in [0, 1], got {value!r:.60}"
    if _NON_NEGATIVE.match(name) and any(v < 0 for v in nums):
        return f"must be non-negative, got {value!r:.60}"
    return None


def check_options(defaults: dict, given: dict, path: str, where: str) -> None:
    """Type- and range-check the options a suite gives an entry (before anything runs): types from the
    declared defaults, ranges where the name makes them obvious. One SpecError naming ``where.options.key``."""
    for key, value in given.items():
        msg = _option_type_error(defaults.get(key), value) if key in defaults else None
        msg = msg or _option_range_error(key, value)
        if msg:
            raise SpecError(path, f"{where}.options.{key}", msg)


# -- JSON Schema export (for editors; suites/schema.json) -------------------------------------------------

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object",
               type(None): "null"}


def _json_default(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return list(value)
    return None


def field_json_schema(field: F) -> dict:
    """JSON Schema of one field (types, nested mappings, list items, description, default)."""
    out: dict = {}
    if object not in field.types:
        names = []
        for t in field.types:
            name = _JSON_TYPES.get(t)
            if name and name not in names:
                names.append(name)
        out["type"] = names[0] if len(names) == 1 else names
    if field.schema is not None:
        out.update(mapping_json_schema(field.schema))
        if "type" in out and isinstance(out["type"], list) and "object" not in out["type"]:
            out["type"].append("object")
    if field.items is not None:
        out["items"] = field_json_schema(field.items)
    if field.doc:
        out["description"] = field.doc
    if field.default is not REQUIRED and not callable(field.default):
        default = _json_default(field.default)
        if default is not None:
            out["default"] = default
    return out


def mapping_json_schema(schema: dict) -> dict:
    """JSON Schema of a mapping schema: its fields, the required ones, and whether other keys are allowed."""
    props = {k: field_json_schema(f) for k, f in schema.items() if k != "*"}
    out: dict = {"type": "object", "properties": props}
    required = [k for k, f in schema.items() if k != "*" and f.default is REQUIRED]
    if required:
        out["required"] = required
    out["additionalProperties"] = field_json_schema(schema["*"]) if "*" in schema else False
    return out
