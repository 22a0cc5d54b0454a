"""The registries' metadata as plain data, for what only reads it: validating a suite (:func:`bench.spec.suite.load_suite`),
``bench layers``, ``bench list`` and the report.

The registries (``bench.zoo.layers.LAYERS``, ``BACKBONES``, ``TASKS``, ``DATASETS``) live in packages that import
torch. Their metadata — each entry's name, summary, origin, options (type from the default, the default, the range
declared at registration) and every other field of its entry class (documents, sections, task columns and metrics,
``Backbone.provides``, ``TaskEntry.needs`` …) — is written to a JSON catalog in the cache folder
(:func:`bench.cache.cache_root`), named by a fingerprint of every source that can register an entry: each module of
the four registry packages, the modules that shape the catalog (this one, :mod:`bench.zoo.registry`,
:mod:`bench.spec.schema`), the installed distributions' entry points, the package version and the user files given with
``--layers`` (:func:`add_layer_files`). A missing catalog is built by a child process, which imports torch so that
this process does not.

:func:`catalog` returns that file's :class:`Catalog`; in a process that has imported torch already (a run, most
tests) it describes the live registries instead, entries registered in this process included — the same data,
built the same way (:func:`describe_registries`). Callables (factories, ``learned_params``, ``norm`` …) are not
metadata: a :class:`CatalogEntry` lists their names, and code that needs them imports the real registries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bench.errors import BenchError
from bench.zoo.registry import Entry
from bench.spec.schema import Range, option_json_schema, option_type

#: catalog attribute → (registry package, registry attribute)
REGISTRIES = {
    "layers": ("bench.zoo.layers", "LAYERS"),
    "backbones": ("bench.zoo.backbones", "BACKBONES"),
    "tasks": ("bench.tasks", "TASKS"),
    "datasets": ("bench.zoo.datasets", "DATASETS"),
}
CATALOG_VERSION = 1
_PKG = Path(__file__).resolve().parents[1]  # bench/
#: modules whose code decides what the catalog holds (beside the registry packages themselves)
_SHAPERS = ("bench.zoo.catalog", "bench.zoo.registry", "bench.spec.schema")
_ERROR_PREFIX = "bench-catalog-error: "

_LAYER_FILES: list[str] = []  # user files (bench report/layers --layers) every catalog of this process includes
_LOADED: set[str] = set()  # of those, the ones loaded into the live LAYERS by this module
_LIVE: dict = {}  # memo of the live catalog: key → Catalog


# -- values ------------------------------------------------------------------------------------------------------


def _enc(v: Any) -> Any:
    """A metadata value as JSON that decodes to the same Python value (tuples stay tuples)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else {"__float__": repr(v)}
    if isinstance(v, tuple):
        return {"__tuple__": [_enc(x) for x in v]}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {"__dict__": {k: _enc(x) for k, x in v.items()}}
    raise TypeError(f"not catalog metadata: {type(v).__name__} {v!r:.60}")


def _dec(v: Any) -> Any:
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if isinstance(v, dict):
        if "__tuple__" in v:
            return tuple(_dec(x) for x in v["__tuple__"])
        if "__float__" in v:
            return float(v["__float__"])
        if "__dict__" in v:
            return {k: _dec(x) for k, x in v["__dict__"].items()}
    return v


# -- the catalog ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option of an entry: its default (whose type is the option's type) and its declared range."""

    name: str
    default: Any
    range: Range | None = None

    @property
    def type(self) -> str | None:
        return option_type(self.default)

    def json_schema(self) -> dict:
        return option_json_schema(self.default, self.range)


@dataclass(frozen=True)
class CatalogEntry(Entry):
    """An entry's metadata: the :class:`bench.zoo.registry.Entry` fields (``obj`` is None here) and, in ``fields``, the
    metadata fields of its registry's entry class, read as attributes (``entry.document``, ``entry.needs``)."""

    kind: str = ""
    fields: dict = field(default_factory=dict)
    callables: tuple = ()  # names of the entry class's fields that hold callables: only the real registry has them

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("fields") or {}
        if name in values:
            return values[name]
        if name in (self.__dict__.get("callables") or ()):
            raise AttributeError(f"{self.__dict__.get('name')}: {name!r} is a callable: import the real registry")
        raise AttributeError(name)

    def option(self, name: str) -> Option:
        return Option(name, self.defaults[name], self.ranges.get(name))


class Kind:
    """The entries of one registry, looked up as in :class:`bench.zoo.registry.Registry` (read-only)."""

    def __init__(self, kind: str, entries: list[CatalogEntry]):
        self.kind = kind
        self._entries = {e.name: e for e in entries}

    def get(self, name: str) -> CatalogEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter([self._entries[k] for k in sorted(self._entries)])

    def __len__(self) -> int:
        return len(self._entries)


class Catalog:
    """Every registry's metadata: ``.layers``, ``.backbones``, ``.tasks``, ``.datasets`` (each a :class:`Kind`)."""

    def __init__(self, data: dict):
        self.data = data
        self.fingerprint = data.get("fingerprint", "")
        for attr, reg in data["registries"].items():
            entries = [
                CatalogEntry(
                    name=e["name"],
                    obj=None,
                    summary=e["summary"],
                    origin=e["origin"],
                    defaults={k: _dec(o["default"]) for k, o in e["options"].items()},
                    ranges={k: Range.of(o["range"]) for k, o in e["options"].items() if o["range"]},
                    kind=reg["kind"],
                    fields={k: _dec(v) for k, v in e["fields"].items()},
                    callables=tuple(e["callables"]),
                )
                for e in reg["entries"]
            ]
            setattr(self, attr, Kind(reg["kind"], entries))

    layers: Kind
    backbones: Kind
    tasks: Kind
    datasets: Kind


# -- describing the live registries (imports torch) ------------------------------------------------------------


def _describe_entry(e: Entry) -> dict:
    base = {f.name for f in dataclasses.fields(Entry)}
    fields_, callables = {}, []
    for f in dataclasses.fields(e):
        if f.name in base:
            continue
        value = getattr(e, f.name)
        if callable(value):
            callables.append(f.name)
        else:
            fields_[f.name] = _enc(value)
    options = {
        k: {"default": _enc(d), "type": option_type(d), "range": e.ranges[k].to_json() if k in e.ranges else None}
        for k, d in e.defaults.items()
    }
    return {
        "name": e.name,
        "summary": e.summary,
        "origin": e.origin,
        "options": options,
        "fields": fields_,
        "callables": callables,
    }


def _registries() -> dict:
    import importlib

    return {attr: getattr(importlib.import_module(pkg), name) for attr, (pkg, name) in REGISTRIES.items()}


def _load_files(layers, paths) -> None:
    """User files into the live layer registry, each once per process."""
    for path in paths:
        key = str(Path(path).resolve())
        if key not in _LOADED:
            layers.load_file(path)
            _LOADED.add(key)


def describe_registries(layer_files: list[str] | tuple = ()) -> dict:
    """The catalog's data from the real registries (this imports them, so torch), with ``layer_files`` loaded."""
    regs = _registries()
    _load_files(regs["layers"], layer_files)
    return {
        "version": CATALOG_VERSION,
        "fingerprint": "",
        "registries": {
            attr: {
                "kind": reg.kind,
                "package": reg.package,
                "group": reg.group,
                "entries": [_describe_entry(e) for e in reg],
            }
            for attr, reg in regs.items()
        },
    }


# -- the file ------------------------------------------------------------------------------------------------------


def fingerprint(layer_files: list[str] | tuple = ()) -> str:
    """A digest of every source that can register an entry or change what the catalog holds (stat calls only)."""
    import bench

    h = hashlib.sha256(f"{CATALOG_VERSION}|{bench.__version__}|{sys.version_info[:2]}".encode())
    paths = [_PKG.parent.joinpath(*name.split(".")).with_suffix(".py") for name in _SHAPERS]
    for _, (pkg, _) in sorted(REGISTRIES.items()):
        paths += sorted(_PKG.parent.joinpath(*pkg.split(".")).glob("*.py"))
    paths += [Path(p).resolve() for p in layer_files]
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    for line in _entry_point_files():
        h.update(f"ep|{line}\n".encode())
    return h.hexdigest()[:16]


def _entry_point_files() -> list[str]:
    """``path|size|mtime`` of every installed distribution's ``entry_points.txt`` on ``sys.path``: the files
    ``importlib.metadata.entry_points()`` reads, so a plug-in installed, removed or changed gives a new fingerprint
    (any distribution's entry points count: conservative). Stat calls only."""
    out = []
    for entry in sys.path:
        folder = entry or "."
        try:
            names = sorted(os.listdir(folder))
        except OSError:  # not a folder (a zip, a missing path)
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                path = os.path.join(folder, name, "entry_points.txt")
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                out.append(f"{path}|{st.st_size}|{st.st_mtime_ns}")
    return out


def catalog_path(layer_files: list[str] | tuple = ()) -> Path:
    from bench.cache import cache_root, usable_dir

    return usable_dir(cache_root()) / f"catalog-{fingerprint(layer_files)}.json"


def write_catalog(path: str, layer_files: list[str] | tuple = ()) -> None:
    """Describe the registries into ``path`` (what the child process runs); keeps the 10 newest catalogs."""
    from bench.records.records import write_bytes_atomic

    target = Path(path)
    data = describe_registries(layer_files)
    data["fingerprint"] = target.stem.split("-", 1)[1]
    write_bytes_atomic(target, json.dumps(data).encode(), durable=False)
    try:  # several checkouts may share one cache folder
        old = sorted(target.parent.glob("catalog-*.json"), key=lambda q: q.stat().st_mtime, reverse=True)
        for q in old[10:]:
            q.unlink(missing_ok=True)
    except OSError:  # another process pruned at the same time
        pass


def _child_main(argv: list[str]) -> int:
    try:
        write_catalog(argv[0], argv[1:])
    except BenchError as exc:
        print(_ERROR_PREFIX + str(exc), file=sys.stderr)
        return 2
    return 0


def _build_in_child(path: Path, layer_files: list[str] | tuple) -> bool:
    """Build the catalog in a child process (the same ``bench`` package as this one); False if that failed for
    another reason than a bad user file (which is raised as the BenchError it is)."""
    code = "import sys; from bench.zoo.catalog import _child_main; sys.exit(_child_main(sys.argv[1:]))"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "PYTHONPATH": os.pathsep.join([str(_PKG.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path), *map(str, layer_files)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    for line in proc.stderr.splitlines():
        if line.startswith(_ERROR_PREFIX):
            raise BenchError(line[len(_ERROR_PREFIX) :])
    return proc.returncode == 0


def load_catalog(layer_files: list[str] | tuple = (), build: bool = True) -> Catalog | None:
    """The catalog file of the current fingerprint, built by a child process if missing (``build``); if it cannot
    be built or read, the registries are described in this process (torch). None only when ``build`` is False and
    there is no readable file."""
    path = catalog_path(layer_files)
    for attempt in (0, 1):
        try:
            data = json.loads(path.read_text())
            if data.get("version") == CATALOG_VERSION and data.get("fingerprint") == path.stem.split("-", 1)[1]:
                return Catalog(data)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if attempt or not build or not _build_in_child(path, layer_files):
            break
    if not build:
        return None
    from bench.cache import warn_once

    warn_once("catalog", f"registry catalog {path}: could not be built by a child process; described here")
    return Catalog(describe_registries(layer_files))


# -- the one entry point -------------------------------------------------------------------------------------------


def add_layer_files(paths: list[str] | tuple) -> None:
    """Include these user files (``--layers``) in every catalog of this process, as ``LAYERS.load_file`` does."""
    for p in paths:
        if not Path(p).is_file():
            raise BenchError(f"{p}: no such file")
        if str(p) not in _LAYER_FILES:
            _LAYER_FILES.append(str(p))


def catalog() -> Catalog:
    """The registries' metadata. Read from the catalog file (built when stale, never importing torch here) unless
    this process has imported torch already: then the live registries are described (entries registered in this
    process included), which costs no torch import."""
    files = tuple(_LAYER_FILES)
    if "torch" not in sys.modules:
        return load_catalog(files)  # type: ignore[return-value]
    regs = _registries()
    _load_files(regs["layers"], files)  # before the key is taken: loading bumps the layer registry's version
    for reg in regs.values():
        reg.discover()
    key = (files, tuple(reg.version for reg in regs.values()))
    if key not in _LIVE:
        _LIVE.clear()
        _LIVE[key] = Catalog(describe_registries(files))
    return _LIVE[key]
