"""A small declarative validator for suite files: every error is one line naming the file and the field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from bench.errors import SpecError


@dataclass(frozen=True)
class F:
    """A field: accepted types, default (``REQUIRED`` if it must be given), optional nested schema/check."""

    types: tuple
    default: Any = None
    schema: dict | None = None  # nested mapping schema (when the value is a dict)
    items: "F | None" = None  # schema of list items (when the value is a list)
    check: Callable[[Any], str | None] | None = None  # returns an error message or None
    doc: str = ""


REQUIRED = object()
ANY_MAPPING = {"*": F((object,))}


def _type_name(types: tuple) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
        type(None): "null",
        object: "anything",
    }
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
# An entry's options are its factory's keyword-only parameters; their defaults declare their types, and the
# registration declares their ranges (``ranges={"width": POSITIVE}``, :meth:`bench.zoo.registry.Registry.register`).

OPTION_MAX = 100_000  # the cap of POSITIVE (sizes and counts): the largest default is 4096 (tv-vgg16 fc_dim)


@dataclass(frozen=True)
class Range:
    """The declared range of a numeric option (of each number, for a list option); ``None``: unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""  # why the bound is there, appended to the error for the upper bound

    def error(self, value: Any) -> str | None:
        nums = [v for v in (value if isinstance(value, (list, tuple)) else [value]) if _is_number(v)]
        interval = self.low is not None and self.high is not None and not self.note  # e.g. [0, 1]
        if self.low is not None and any(v <= self.low if self.low_open else v < self.low for v in nums):
            if interval:
                return f"must lie in {self.text()}, got {value!r:.60}"
            if self.low == 0:
                return f"must be {'positive' if self.low_open else 'non-negative'}, got {value!r:.60}"
            return f"must be {'greater than' if self.low_open else 'at least'} {self.low:g}, got {value!r:.60}"
        if self.high is not None and any(v >= self.high if self.high_open else v > self.high for v in nums):
            if interval:
                return f"must lie in {self.text()}, got {value!r:.60}"
            note = f" ({self.note})" if self.note else ""
            return f"must be {'below' if self.high_open else 'at most'} {self.high:g}{note}, got {value!r:.60}"
        return None

    def text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{left}{lo}, {hi}{right}"

    def json_schema(self) -> dict:
        out: dict = {}
        if self.low is not None:
            out["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            out["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        return out

    def to_json(self) -> dict:
        """As JSON Schema bounds (and the note): what the catalog stores."""
        return {**self.json_schema(), **({"note": self.note} if self.note else {})}

    @classmethod
    def of(cls, value: "Range | tuple | list | dict") -> "Range":
        """A declared range: a :class:`Range`, ``(low, high)`` (closed; None for no bound) or :meth:`to_json`'s dict."""
        if isinstance(value, Range):
            return value
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(*value)
        if isinstance(value, dict) and set(value) <= {
            "minimum",
            "exclusiveMinimum",
            "maximum",
            "exclusiveMaximum",
            "note",
        }:
            return cls(
                value.get("minimum", value.get("exclusiveMinimum")),
                value.get("maximum", value.get("exclusiveMaximum")),
                "exclusiveMinimum" in value,
                "exclusiveMaximum" in value,
                value.get("note", ""),
            )
        raise TypeError(f"a range is a Range or (low, high), not {value!r:.60}")


#: sizes and counts: positive, capped (more is a typo)
POSITIVE = Range(0, OPTION_MAX, low_open=True, note="a sane cap on sizes and counts: more is a typo")
FRACTION = Range(0, 1)
NON_NEGATIVE = Range(0, None)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def option_type(default: Any) -> str | None:
    """The type an option's default declares (a JSON Schema type name), None if undeclared (None, other)."""
    if isinstance(default, bool):
        return "boolean"
    for t, name in ((int, "integer"), (float, "number"), (str, "string"), ((list, tuple), "array"), (dict, "object")):
        if isinstance(default, t):
            return name
    return None


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


def option_error(default: Any, declared: Range | None, value: Any) -> str | None:
    """Why ``value`` is not a valid setting of an option with this default and declared range (None: it is)."""
    msg = _option_type_error(default, value)
    if msg:
        return msg
    nums = [v for v in (value if isinstance(value, (list, tuple)) else [value]) if _is_number(v)]
    if any(isinstance(v, float) and not math.isfinite(v) for v in nums):
        return f"must be finite, got {value!r:.60}"
    return declared.error(value) if declared is not None else None


def option_json_schema(default: Any, declared: Range | None) -> dict:
    """JSON Schema of one option: the type its default declares, the default, the declared bounds."""
    out: dict = {}
    kind = option_type(default)
    if kind:
        out["type"] = kind
    json_default = _json_default(default)
    if json_default is not None:
        out["default"] = json_default
    bounds = declared.json_schema() if declared is not None else {}
    if kind == "array":
        if bounds:
            out["items"] = {"type": "number", **bounds}
    else:
        out.update(bounds)
    return out


def check_options(defaults: dict, ranges: dict, given: dict, path: str, where: str) -> None:
    """Type- and range-check the options a suite gives an entry (before anything runs): types from the
    declared defaults, ranges as the entry declares them. One SpecError naming ``where.options.key``."""
    for key, value in given.items():
        msg = option_error(defaults.get(key), ranges.get(key), value) if key in defaults else None
        if msg:
            raise SpecError(path, f"{where}.options.{key}", msg)


# -- JSON Schema export (for editors; suites/schema.json) -------------------------------------------------

_JSON_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


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
