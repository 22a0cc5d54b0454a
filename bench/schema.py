"""A small declarative validator for suite files: every error is one line naming the file and the field."""
from __future__ import annotations

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
