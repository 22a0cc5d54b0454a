"""Registry metadata without torch, for the commands that only read it (``bench report``, ``bench layers``).

The registries (:data:`bench.layers.LAYERS`, ``BACKBONES``, ``TASKS``, ``DATASETS``) live in packages that import
torch. Their *metadata* (names, summaries, option defaults, documents, task columns …) is all that validating a
suite file and rendering the site need, so it is kept in a snapshot: a JSON file in the cache folder
(``$BENCH_CACHE``, default ``~/.cache/convbench``) named by a fingerprint of every source that can register an
entry (path, size and mtime of each module of the four registry packages, the installed ``bench.*`` entry points
and the package version). A missing or stale snapshot is rebuilt by a child process (which imports torch, so
this process does not); a changed or added family changes the fingerprint, so the snapshot never goes stale.

:func:`torchless_registries` puts stand-in modules for the four registry packages into ``sys.modules`` while a
command runs and takes them (and every ``bench`` module imported meanwhile) out again afterwards. Callables
(factories, ``learned_params``) are not in the snapshot: code that needs them must import the real registries,
which the stand-ins refuse with an error — the CLI then falls back to the normal, torch-importing path.
Values are stored with their Python types (tuples stay tuples), so defaults render as they do with torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import types
from contextlib import contextmanager
from pathlib import Path

PACKAGES = {"bench.layers": "LAYERS", "bench.backbones": "BACKBONES", "bench.tasks": "TASKS",
            "bench.datasets": "DATASETS"}
SNAPSHOT_VERSION = 1


class NeedsTorch(RuntimeError):
    """The stand-in registry cannot do this (a callable or a user file): use the real registries."""


# -- exact JSON encoding of option defaults ------------------------------------------------------------------------

def _enc(v):
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
    if callable(v):
        return {"__callable__": getattr(v, "__qualname__", repr(v))}
    raise TypeError(f"cannot snapshot {type(v).__name__} {v!r:.60}")


def _dec(v):
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if isinstance(v, dict):
        if "__tuple__" in v:
            return tuple(_dec(x) for x in v["__tuple__"])
        if "__float__" in v:
            return float(v["__float__"])
        if "__dict__" in v:
            return {k: _dec(x) for k, x in v["__dict__"].items()}
        if "__callable__" in v:
            return _Callable(v["__callable__"])
    return v


class _Callable:
    """Stands for a callable field of an entry (e.g. ``learned_params``): present, but cannot be called here."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *a, **k):
        raise NeedsTorch(f"{self.name} needs the real registry")

    def __repr__(self):
        return f"<callable {self.name}>"


# -- snapshot ---------------------------------------------------------------------------------------------------------

def fingerprint() -> str:
    import bench

    h = hashlib.sha256(f"{SNAPSHOT_VERSION}|{bench.__version__}|{sys.version_info[:2]}".encode())
    for pkg in sorted(PACKAGES):
        spec = importlib.util.find_spec(pkg)  # imports ``bench`` (light), not the package itself
        for loc in spec.submodule_search_locations or []:
            for f in sorted(Path(loc).glob("*.py")):
                st = f.stat()
                h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    for line in _entry_point_files():
        h.update(f"ep|{line}\n".encode())
    return h.hexdigest()[:16]


def _entry_point_files() -> list[str]:
    """``path|size|mtime`` of every installed distribution's ``entry_points.txt`` on ``sys.path``: the files
    ``importlib.metadata.entry_points()`` reads, so a plug-in installed, removed or changed gives a new fingerprint
    (any distribution's entry points count: conservative). Stat calls only; importing importlib.metadata was
    a twentieth of a report."""
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


def cache_root() -> Path:
    """The harness's cache folder: ``$BENCH_CACHE``, default ``~/.cache/convbench`` (not created here)."""
    return Path(os.environ.get("BENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "convbench"))


def snapshot_path(fp: str | None = None) -> Path:
    return cache_root() / f"registry-meta-{fp or fingerprint()}.json"


def make_snapshot() -> dict:
    """Import the real registries (torch) and describe every entry."""
    import importlib

    out = {"version": SNAPSHOT_VERSION, "registries": {}}
    for pkg, attr in PACKAGES.items():
        reg = getattr(importlib.import_module(pkg), attr)
        entries = []
        for e in reg:
            entries.append({f.name: _enc(getattr(e, f.name)) for f in dataclasses.fields(e) if f.name != "obj"})
        out["registries"][pkg] = {"attr": attr, "kind": reg.kind, "package": reg.package, "group": reg.group,
                                  "entries": entries}
    return out


def write_snapshot(path: str | None = None) -> None:
    """Entry point of the child process that builds the snapshot."""
    target = Path(path) if path else snapshot_path()
    data = make_snapshot()
    from bench.records import write_bytes_atomic

    write_bytes_atomic(target, json.dumps(data).encode(), durable=False)
    # keep the 10 newest snapshots (several checkouts may share one cache folder)
    try:
        old = sorted(target.parent.glob("registry-meta-*.json"), key=lambda q: q.stat().st_mtime, reverse=True)
        for q in old[10:]:
            q.unlink(missing_ok=True)
    except OSError:  # another process pruned at the same time
        pass


def load_snapshot(build: bool = True) -> dict | None:
    """The current snapshot; built in a child process if missing (None if that fails)."""
    path = snapshot_path()
    if not path.exists() and build:
        code = f"from bench.regmeta import write_snapshot; write_snapshot({str(path)!r})"
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        try:
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300, env=env)
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("version") == SNAPSHOT_VERSION else None


# -- stand-ins --------------------------------------------------------------------------------------------------------

class MetaEntry:
    """An entry's metadata (attributes as in the real entry class, without ``obj``)."""

    def __init__(self, fields: dict):
        self.__dict__.update({k: _dec(v) for k, v in fields.items()})

    @property
    def obj(self):
        raise NeedsTorch(f"{self.name}: the factory needs the real registry")

    def __getattr__(self, name):  # a field or method the snapshot does not know: use the real registry
        if name.startswith("__"):
            raise AttributeError(name)
        raise NeedsTorch(f"{self.__dict__.get('name')}: {name!r} needs the real registry")

    # methods of the real entry classes, mirrored (tests/test_regmeta.py fails when a class gains one)
    def emits(self, metric: str) -> bool:  # bench.tasks.TaskEntry.emits
        from fnmatch import fnmatchcase

        names = tuple(self.metrics) + tuple(c[0] for c in self.columns)
        return any(fnmatchcase(metric, pattern) for pattern in names)

    def options(self, overrides: dict | None = None) -> dict:  # same rule as bench.registry.Entry.options
        out = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                known = ", ".join(sorted(self.defaults)) or "none"
                raise KeyError(f"unknown option {key!r} for {self.name!r} (known: {known})")
            out[key] = value
        return out


class MetaRegistry:
    """Read-only stand-in for :class:`bench.registry.Registry` built from a snapshot."""

    def __init__(self, data: dict):
        self.kind, self.package, self.group = data["kind"], data["package"], data["group"]
        self._entries = {e["name"]: MetaEntry(e) for e in data["entries"]}

    def discover(self) -> None:
        pass

    def get(self, name: str) -> MetaEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter([self._entries[k] for k in sorted(self._entries)])

    def __len__(self) -> int:
        return len(self._entries)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NeedsTorch(f"{self.kind} registry: {name!r} needs the real registry")


class _StandIn(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NeedsTorch(f"{self.__name__}.{name} needs the real package (torch)")


@contextmanager
def torchless_registries():
    """Stand-in registry packages while the block runs, if torch is not imported yet and a snapshot exists or
    can be built. Yields True when the stand-ins are active (False: nothing changed, the real ones are used)."""
    if "torch" in sys.modules or os.environ.get("BENCH_NO_REGISTRY_SNAPSHOT") == "1":
        yield False
        return
    snap = load_snapshot()
    if snap is None:
        yield False
        return
    import bench

    before = set(sys.modules)
    saved_attrs = {p: getattr(bench, p.split(".")[1], None) for p in PACKAGES}
    for pkg, data in snap["registries"].items():
        mod = _StandIn(pkg)
        setattr(mod, data["attr"], MetaRegistry(data))
        mod.__dict__["__file__"] = None
        sys.modules[pkg] = mod
        setattr(bench, pkg.split(".")[1], mod)
    try:
        yield True
    finally:
        for name in set(sys.modules) - before:
            if name == "bench" or name.startswith("bench."):
                del sys.modules[name]
        for pkg in PACKAGES:
            sys.modules.pop(pkg, None)
            short = pkg.split(".")[1]
            if saved_attrs[pkg] is None:
                bench.__dict__.pop(short, None)
            else:
                setattr(bench, short, saved_attrs[pkg])


def run_torchless(fn, *args, **kwargs):
    """``fn(*args)`` with stand-in registries when possible; again with the real ones if they fall short."""
    with torchless_registries() as light:
        if light:
            try:
                return fn(*args, **kwargs)
            except NeedsTorch:
                pass
        else:
            return fn(*args, **kwargs)
    return fn(*args, **kwargs)
