"""Image-folder data sets: ``<root>/train/<class>/*`` and ``<root>/test/<class>/*`` (any PIL-readable files)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.zoo.datasets import DATASETS, ImageData, cache_dir, cached, files_key, load_cache_file, missing
from bench.records.records import write_json_atomic
from bench.spec.schema import POSITIVE

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


def list_split(split_dir: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    if classes is None:
        classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    files, labels = [], []
    for i, c in enumerate(classes):
        found = sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [i] * len(found)
    return files, labels, classes


def decode_workers(n_files: int) -> int:
    """Processes for a first decode: ``$BENCH_DECODE_WORKERS``, else the CPUs this process may use (one for
    fewer than 2,000 files, where starting workers costs more than it saves)."""
    env = os.environ.get("BENCH_DECODE_WORKERS")
    if env:
        return max(1, int(env))
    if n_files < 2000:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n_files // 1000))


def decode(
    files: list[Path], size: tuple[int, int] | None, mode: str, desc: str, workers: int | None = None
) -> torch.Tensor:
    """Decode image files into one (N, C, H, W) uint8 tensor (done once, then cached). Chunks of files are
    decoded in ``workers`` processes (default :func:`decode_workers`) that import only PIL and numpy."""
    from bench.zoo.imgdecode import decode_files

    workers = decode_workers(len(files)) if workers is None else workers
    names = [str(f) for f in files]
    n_chunks = max(1, workers * 4) if workers > 1 else max(1, len(names) // 1000)
    step = -(-len(names) // n_chunks)
    chunks = [names[i : i + step] for i in range(0, len(names), step)]
    bar = tqdm(total=len(names), desc=desc, unit="img", leave=False, mininterval=1.0)
    parts = []
    if workers > 1 and len(chunks) > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=mp.get_context("spawn")) as ex:
            for chunk, part in zip(chunks, ex.map(decode_files, chunks, [size] * len(chunks), [mode] * len(chunks))):
                parts.append(part)
                bar.update(len(chunk))
    else:
        for chunk in chunks:
            parts.append(decode_files(chunk, size, mode))
            bar.update(len(chunk))
    bar.close()
    x = np.concatenate(parts)
    if x.ndim == 3:
        x = x[:, None]
    else:
        x = x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


def folder_fingerprint(root: Path) -> dict:
    """A cheap change detector for ``root/{train,test}/<class>/``: the modification times (ns) of the split and
    class *directories* only — about 20 stat calls, no per-file metadata. A directory's mtime changes when a
    file is added, removed or renamed in it, so a changed set of images is detected; an image whose content is
    rewritten in place under the same name is not (set ``BENCH_REFRESH_DATA=1`` or pass ``bench run
    --refresh-data`` to decode again)."""
    out = {}
    for split in ("train", "test"):
        d = root / split
        out[split] = d.stat().st_mtime_ns
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir():
                    out[f"{split}/{e.name}"] = e.stat().st_mtime_ns
    return out


def _manifest_path(root: Path, name: str, size, mode: str) -> Path:
    ident = hashlib.sha256(f"{root.resolve()}|{name}|{mode}|{size}".encode()).hexdigest()[:16]
    return cache_dir() / f"{name}-folder-{ident}.manifest.json"


def load_image_folder(root: Path, name: str, size: tuple[int, int] | None = None, mode: str = "RGB") -> ImageData:
    """Decoded images of ``root``, from the cache when possible.

    Cache: the tensors are saved under a key hashed from every source file's path, size and mtime (computed on a
    first load, when the files are listed anyway), and a manifest next to them (``<name>-folder-<hash of root,
    mode, size>.manifest.json``) maps the folder's :func:`folder_fingerprint` to that file. A later load stats
    only the ~20 directories: if the fingerprint matches, the cached tensors are read without listing a file.
    Otherwise (files added, removed or renamed; or ``BENCH_REFRESH_DATA=1``, which also forces a new decode) the
    folder is listed and hashed again as before.
    """
    train_dir, test_dir = root / "train", root / "test"
    if not (train_dir.is_dir() and test_dir.is_dir()):
        raise missing(name, root, "train/<class>/* and test/<class>/* image folders")
    refresh = os.environ.get("BENCH_REFRESH_DATA") == "1"
    fingerprint = folder_fingerprint(root)  # taken before listing: a change while decoding shows next time
    manifest = _manifest_path(root, name, size, mode)
    if not refresh:
        try:
            entry = json.loads(manifest.read_text())
        except (OSError, ValueError):
            entry = None
        cache_name = entry.get("cache") if isinstance(entry, dict) else None
        if not (
            isinstance(cache_name, str)
            and cache_name.startswith(f"{name}-folder-")
            and cache_name.endswith(".pt")
            and "/" not in cache_name
            and "\\" not in cache_name
            and ".." not in cache_name
        ):
            entry = None  # a manifest that names no cache file of ours: listed and decoded again
        if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint:
            data = load_cache_file(cache_dir() / entry["cache"])
            if data is not None:
                return data
    tr_files, tr_y, classes = list_split(train_dir)
    te_files, te_y, _ = list_split(test_dir, classes)
    if not tr_files or not te_files:
        raise missing(name, root, "images under train/<class>/ and test/<class>/")
    key = f"{name}-folder-{files_key(tr_files + te_files)}-{mode}-{size}"

    def build() -> ImageData:
        return ImageData(
            name,
            decode(tr_files, size, mode, f"decode {name} train"),
            torch.tensor(tr_y),
            decode(te_files, size, mode, f"decode {name} test"),
            torch.tensor(te_y),
            classes,
            source=f"image folder {root}",
        )

    data = cached(key, build, refresh=refresh)
    try:
        write_json_atomic(
            manifest,
            {
                "root": str(root.resolve()),
                "fingerprint": fingerprint,
                "cache": f"{key}.pt",
                "files": len(tr_files) + len(te_files),
            },
        )
    except OSError as exc:  # the cache is an optimisation: the next load lists the folder again
        from bench.cache import write_failed

        write_failed(manifest, exc)
    return data


@DATASETS.register(
    "image-folder",
    summary="Any train/<class>/, test/<class>/ image folder under the data root.",
    ranges={"size": POSITIVE},
)
def image_folder(root, allow_download, *, size=None, mode="RGB"):
    if root is None:
        raise missing("image-folder", root, "train/ and test/ folders")
    return load_image_folder(Path(root), "image-folder", tuple(size) if size else None, mode)
