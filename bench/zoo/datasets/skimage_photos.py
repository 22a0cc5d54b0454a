"""scikit-image's bundled photographs (``skimage/data/*.png|jpg``), e.g. ``chelsea`` — the cat `001_…` uses.

The loader reads the image files from a folder: by default scikit-image's own data folder (the files ship
with the library: no download), or ``root`` / ``$BENCH_SKIMAGE_ROOT`` holding files named ``<name>.<ext>``.
Each image is centre-cropped to a square and resized to ``size``×``size`` (bilinear); grey images are
repeated over three channels (``mode="RGB"``) or colour ones converted (``mode="L"``).

The *test* split is the photos named in ``test`` (the ones the reconstruction task scores and shows); the
*train* split, used only when a decoder is trained, is the remaining photos in ``train``: each one's centre
square plus ``train_crops`` random square crops (side 40–100 % of the short side, seeded), so a decoder is
never trained on the images it is scored on. Labels are the index of the source photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.zoo.datasets import DATASETS, ImageData, cached, files_key, missing
from bench.spec.schema import POSITIVE

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")
TEST = ("chelsea", "astronaut", "coffee", "rocket")
TRAIN = (
    "camera",
    "coins",
    "moon",
    "hubble_deep_field",
    "ihc",
    "retina",
    "motorcycle_left",
    "clock_motion",
    "brick",
    "grass",
    "gravel",
    "page",
)


def skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def _find(root: Path, name: str) -> Path | None:
    for suf in SUFFIXES:
        for cand in (root / f"{name}{suf}", root / f"{name}{suf.upper()}"):
            if cand.is_file():
                return cand
    return None


def _square(im: Image.Image, size: int, box: tuple[int, int, int] | None = None) -> np.ndarray:
    w, h = im.size
    if box is None:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
    else:
        left, top, side = box
    im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return np.asarray(im)


def _decode(files: list[Path], size: int, mode: str, crops: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, f in enumerate(files):
        with Image.open(f) as im:
            im = im.convert(mode)
            xs.append(_square(im, size))
            ys.append(label)
            w, h = im.size
            short = min(w, h)
            for _ in range(crops):
                side = int(rng.integers(max(1, int(0.4 * short)), short + 1))
                left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
                xs.append(_square(im, size, (left, top, side)))
                ys.append(label)
    x = np.stack(xs)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), np.asarray(ys)


@DATASETS.register(
    "skimage-photos",
    env_root="BENCH_SKIMAGE_ROOT",
    summary="scikit-image's bundled photos (chelsea the cat, astronaut, …); no download.",
    ranges={"size": POSITIVE, "train_crops": POSITIVE},
)
def skimage_photos(root, allow_download, *, size=128, test=TEST, train=TRAIN, train_crops=8, mode="RGB"):
    folder = Path(root) if root else skimage_data_dir()
    test, train = list(test), list(train)
    test_files = [_find(folder, n) for n in test]
    lost = [n for n, f in zip(test, test_files) if f is None]
    if lost or not test_files:
        raise missing("skimage-photos", folder, f"image files named {', '.join(lost or ['<test names>'])}.<png|jpg>")
    # a training photo that is absent is skipped (older scikit-image versions ship fewer files)
    train_files = [f for f in (_find(folder, n) for n in train if n not in test) if f is not None]
    key = f"skimage-photos-{files_key(test_files + train_files)}-{size}-{train_crops}-{mode}"

    def build() -> ImageData:
        te_x, _ = _decode(test_files, size, mode, 0, 0)
        if train_files:
            tr_x, tr_y = _decode(train_files, size, mode, train_crops, 0)
        else:
            tr_x, tr_y = te_x[:0], np.zeros(0, dtype=np.int64)
        names = [f.stem for f in train_files] + [f.stem for f in test_files]
        return ImageData(
            "skimage-photos",
            torch.from_numpy(tr_x),
            torch.from_numpy(tr_y).long(),
            torch.from_numpy(te_x),
            torch.arange(len(test_files)) + len(train_files),
            names,
            source=f"image files in {folder}",
            meta={"test_names": [f.stem for f in test_files]},
        )

    return cached(key, build)
