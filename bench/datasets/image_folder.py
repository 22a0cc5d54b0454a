"""Image-folder data sets: ``<root>/train/<class>/*`` and ``<root>/test/<class>/*`` (any PIL-readable files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.datasets import DATASETS, ImageData, cached, files_key, missing

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


def decode(files: list[Path], size: tuple[int, int] | None, mode: str, desc: str) -> torch.Tensor:
    """Decode image files into one (N, C, H, W) uint8 tensor (done once, then cached)."""
    arrays = []
    for f in tqdm(files, desc=desc, unit="img", leave=False, mininterval=1.0):
        with Image.open(f) as im:
            im = im.convert(mode)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arrays.append(np.asarray(im))
    x = np.stack(arrays)
    if x.ndim == 3:
        x = x[:, None]
    else:
        x = x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


def load_image_folder(root: Path, name: str, size: tuple[int, int] | None = None, mode: str = "RGB") -> ImageData:
    train_dir, test_dir = root / "train", root / "test"
    if not (train_dir.is_dir() and test_dir.is_dir()):
        raise missing(name, root, "train/<class>/* and test/<class>/* image folders")
    tr_files, tr_y, classes = list_split(train_dir)
    te_files, te_y, _ = list_split(test_dir, classes)
    if not tr_files or not te_files:
        raise missing(name, root, "images under train/<class>/ and test/<class>/")
    key = f"{name}-folder-{files_key(tr_files + te_files)}-{mode}-{size}"

    def build() -> ImageData:
        return ImageData(name, decode(tr_files, size, mode, f"decode {name} train"), torch.tensor(tr_y),
                         decode(te_files, size, mode, f"decode {name} test"), torch.tensor(te_y), classes,
                         source=f"image folder {root}")

    return cached(key, build)


@DATASETS.register("image-folder", summary="Any train/<class>/, test/<class>/ image folder under the data root.")
def image_folder(root, allow_download, *, size=None, mode="RGB"):
    if root is None:
        raise missing("image-folder", root, "train/ and test/ folders")
    return load_image_folder(Path(root), "image-folder", tuple(size) if size else None, mode)
