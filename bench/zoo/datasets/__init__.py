"""Data sets, held as uint8 tensors so a whole training set can sit on the device.

A data set is registered with ``@DATASETS.register(name, ...)`` on a loader
``loader(root: Path | None, allow_download: bool, *, option=default, ...) -> ImageData``. Loaders decode files
once; :func:`cached` keeps the decoded tensors on disk keyed by the source files, so later runs start at once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from bench.errors import DataMissing
from bench.zoo.registry import Entry, Registry


@dataclass(frozen=True)
class DatasetEntry(Entry):
    document: str = ""
    env_root: str = "BENCH_DATA_ROOT"


#: the entry-point group keeps its name from before the package tree (installed plug-ins register under it)
ENTRY_POINT_GROUP = "bench.datasets"  # move_tree: keep
DATASETS: Registry[DatasetEntry] = Registry("data set", "bench.zoo.datasets", DatasetEntry, group=ENTRY_POINT_GROUP)


@dataclass
class ImageData:
    name: str
    train_x: torch.Tensor  # (N, C, H, W) uint8
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def channel_stats(self) -> tuple[list[float], list[float]]:
        x = self.train_x.float().div_(255)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return mean.tolist(), std.tolist()

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "ImageData":
        """A fixed subset (same for every family and run seed): the first n of a seeded permutation,
        stratified so every class keeps its share."""

        def pick(x, y, n):
            if n is None or n >= len(y):
                return x, y
            g = torch.Generator().manual_seed(seed)
            perm = torch.randperm(len(y), generator=g)
            # stable sort of the permuted labels interleaves classes round-robin → stratified prefix
            ys = y[perm]
            rank = torch.zeros_like(ys)
            for c in ys.unique():
                m = ys == c
                rank[m] = torch.arange(int(m.sum()))
            order = torch.argsort(rank * (int(ys.max()) + 1) + ys, stable=True)
            idx = perm[order[:n]].sort().values
            return x[idx], y[idx]

        trx, try_ = pick(self.train_x, self.train_y, train)
        tex, tey = pick(self.test_x, self.test_y, test)
        return ImageData(self.name, trx, try_, tex, tey, self.classes, self.source, dict(self.meta))


def cache_dir() -> Path:
    """The cache folder for decoded data; a private temporary one (warned once) if it cannot be used."""
    from bench.cache import cache_root, usable_dir

    return usable_dir(cache_root())


def files_key(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


def load_cache_file(path: Path) -> ImageData | None:
    """The data set saved at ``path`` by :func:`cached`, or None (missing or unreadable: removed)."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, weights_only=False)
        return ImageData(**blob)
    except Exception:
        path.unlink(missing_ok=True)
        return None


def cached(key: str, build: Callable[[], ImageData], refresh: bool = False) -> ImageData:
    """Decode once: load the tensors saved under ``key`` or build and save them (atomically). ``refresh``
    builds again even if they are saved."""
    from bench.cache import data_max_bytes, prune, touch, write_failed

    path = cache_dir() / f"{key}.pt"
    if not refresh:
        data = load_cache_file(path)
        if data is not None:
            touch(path)
            return data
    data = build()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        torch.save(data.__dict__, tmp)
        os.replace(tmp, path)
    except OSError as exc:  # full disk, a folder that turned read-only…: the cache is an optimisation
        Path(tmp).unlink(missing_ok=True)
        write_failed(path, exc)
        return data
    except RuntimeError as exc:  # torch.save reports a failed write as RuntimeError
        Path(tmp).unlink(missing_ok=True)
        write_failed(path, OSError(0, str(exc).splitlines()[0][:120] if str(exc) else "write failed"))
        return data
    prune(path.parent, data_max_bytes(), keep=path, pattern="*.pt")
    return data


def resolve_root(root: str | os.PathLike | None, env: str = "BENCH_DATA_ROOT") -> Path | None:
    if root:
        expanded = os.path.expandvars(os.path.expanduser(str(root)))
        if "$" not in expanded:
            return Path(expanded)
    if os.environ.get(env):
        return Path(os.environ[env])
    return None


def load_dataset(name: str, root=None, allow_download: bool = False, options: dict | None = None) -> ImageData:
    entry = DATASETS.get(name)
    try:
        return entry.obj(resolve_root(root, entry.env_root), allow_download, **entry.options(options))
    except OSError as exc:  # no network for a download (URLError is an OSError), an unreadable data file…
        reason = getattr(exc, "reason", None)  # URLError: the cause inside
        cause = getattr(reason, "strerror", None) or (str(reason) if reason else None) or exc.strerror or str(exc)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        what = "download failed" if allow_download and reason is not None else "cannot read"
        raise DataMissing(f"data set {name!r}: {what}{where}: {' '.join(str(cause).split())[:200]}") from None


def missing(name: str, root: Path | None, expected: str, hint: str = "") -> DataMissing:
    where = str(root) if root else "no data root (set BENCH_DATA_ROOT or dataset.root)"
    return DataMissing(f"data set {name!r} not found at {where}: expected {expected}{hint}")
