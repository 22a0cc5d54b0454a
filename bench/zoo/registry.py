"""One registry idiom for everything pluggable: layers, backbones, tasks, data sets.

A registry holds entries keyed by name. An entry is registered with a decorator that carries its metadata::

    @LAYERS.register("pnn", document="000", section="§3.2 Eq. 2", ranges={"fanout": POSITIVE}, ...)
    def pnn(in_channels, out_channels, kernel_size, stride=1, ..., *, fanout=1, ...): ...

The factory's keyword-only parameters are the entry's options (their defaults declare their types); ``ranges``
declares the numeric ones' bounds (:class:`bench.spec.schema.Range`: ``POSITIVE``, ``FRACTION``, ``NON_NEGATIVE`` or
``(low, high)``), which a suite's settings are checked against before anything runs.

Entries are discovered from three places, in this order:

1. every module of the registry's own package (``bench/zoo/layers/*.py`` …): adding a file is enough;
2. the registry's entry-point group (``group``; each registry package's ``ENTRY_POINT_GROUP``, named before the
   package tree and kept for installed plug-ins) of installed distributions;
3. user files passed explicitly (``bench run --layers path/to/my_layer.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, TypeVar

from bench.errors import BenchError
from bench.spec.schema import Range, option_error

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """What every registered object carries. Registries extend it with their own metadata fields."""

    name: str
    obj: Callable[..., Any]
    summary: str = ""
    defaults: dict = field(default_factory=dict)
    origin: str = ""  # module, entry point or file the entry came from
    ranges: dict = field(default_factory=dict)  # option name → declared Range

    def options(self, overrides: dict | None = None) -> dict:
        """Defaults merged with overrides; an unknown option is an error."""
        return merge_options(self.name, self.defaults, overrides)


def merge_options(name: str, defaults: dict, overrides: dict | None = None) -> dict:
    """``defaults`` merged with ``overrides``; an unknown option is a KeyError naming the known ones (the one rule
    for registry entries and catalog entries alike)."""
    out = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise KeyError(f"unknown option {key!r} for {name!r} (known: {known})")
        out[key] = value
    return out


E = TypeVar("E", bound=Entry)


class Registry(Generic[E]):
    def __init__(self, kind: str, package: str, entry_cls: type[E] = Entry, group: str | None = None):
        self.kind = kind
        self.package = package
        self.entry_cls = entry_cls
        self.group = group or package
        self._entries: dict[str, E] = {}
        self._discovered = False
        self.version = 0  # bumped by every (un)registration: bench.zoo.catalog describes a registry once per version

    # -- registration ---------------------------------------------------------------------------
    def register(self, name: str | None = None, **meta: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            key = name or obj.__name__.replace("_", "-")
            fields = dict(meta)
            if "defaults" not in fields and callable(obj):
                meta_defaults = _keyword_defaults(obj)
            else:
                meta_defaults = fields.pop("defaults", {})
            summary = fields.pop("summary", None) or _first_line(obj.__doc__)
            origin = getattr(obj, "__module__", "")
            ranges = _declared_ranges(self.kind, key, origin, meta_defaults, fields.pop("ranges", None) or {})
            entry = self.entry_cls(
                name=key, obj=obj, summary=summary, defaults=dict(meta_defaults), origin=origin, ranges=ranges, **fields
            )
            existing = self._entries.get(key)
            if existing is not None and existing.origin != entry.origin:
                raise BenchError(f"{self.kind} {key!r} registered twice: by {existing.origin} and {entry.origin}")
            self._entries[key] = entry
            self.version += 1
            return obj

        return deco

    # -- discovery --------------------------------------------------------------------------------
    def discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__, prefix=self.package + "."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(info.name)
        for ep in metadata.entry_points(group=self.group):
            try:
                ep.load()
            except Exception as exc:  # a broken plug-in must not take the harness down silently
                raise BenchError(f"entry point {ep.name!r} in group {self.group!r} failed to load: {exc}") from exc

    def load_file(self, path: str | Path) -> list[str]:
        """Import a user's Python file; returns the names it registered."""
        path = Path(path)
        if not path.is_file():
            raise BenchError(f"{path}: no such file")
        before = set(self._entries)
        # named by the file's path (not hash(), which differs between processes): the catalog a child process
        # builds names the same origin as this process would
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:4]
        mod_name = f"bench_user_{path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise BenchError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
        added = sorted(set(self._entries) - before)
        return added

    # -- lookup -----------------------------------------------------------------------------------
    def get(self, name: str) -> E:
        self.discover()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self._entries

    def __iter__(self) -> Iterator[E]:
        self.discover()
        return iter([self._entries[k] for k in sorted(self._entries)])

    def __len__(self) -> int:
        self.discover()
        return len(self._entries)

    def unregister(self, name: str) -> None:
        """For tests that register temporary entries."""
        if self._entries.pop(name, None) is not None:
            self.version += 1


def _declared_ranges(kind: str, name: str, origin: str, defaults: dict, ranges: dict) -> dict:
    """``ranges=`` of a registration as {option: Range}: each names an option, and its default lies inside."""
    out = {}
    for option, declared in ranges.items():
        if option not in defaults:
            raise BenchError(
                f"{kind} {name!r} ({origin}): ranges names {option!r}, which is not an option "
                f"(options: {', '.join(sorted(defaults)) or 'none'})"
            )
        try:
            out[option] = Range.of(declared)
        except TypeError as exc:
            raise BenchError(f"{kind} {name!r} ({origin}): ranges.{option}: {exc}") from None
        bad = option_error(defaults[option], out[option], defaults[option])
        if bad:
            raise BenchError(
                f"{kind} {name!r} ({origin}): the default of {option!r} is outside its declared range ({bad})"
            )
    return out


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()


#: keyword-only parameters the harness itself passes to a layer factory (not suite options)
BUILD_KEYWORDS = ("groups", "hints")


def _keyword_defaults(fn: Callable) -> dict:
    """Keyword-only parameters of a factory are its options; their defaults are the documented defaults.
    ``groups`` and ``hints`` are passed by the harness (see ``LayerFamily.grouped``/``accepts_hints``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.default is not inspect.Parameter.empty
        and p.name not in BUILD_KEYWORDS
    }


def entry_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]
