"""Cityscapes semantic segmentation (fine annotations), in torchvision's ``Cityscapes`` layout, plus smoke data.

Layout read (the real one, from a local root; file lists come from ``torchvision.datasets.Cityscapes``)::

    <root>/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Masks store the 34 Cityscapes label ids; they are mapped to train ids with torchvision's class table.

``void`` option:

* ``"ignore"`` (default, the official benchmark and torchvision's recipe): the 19 evaluated classes, every
  other label id → 255 (ignored by the loss and the metrics);
* ``"class"`` (the code of `003_…`, Segmentation/datasets/cityscapes.py): every non-evaluated label becomes an
  extra class 0 ("void") that is trained and scored, the 19 classes become 1..19 (20 classes). (That code
  also builds a 21-way output layer; here the output has exactly as many channels as classes.)

``cityscapes-smoke`` writes generated shapes in the same layout and reads them with the very same loader.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.zoo.datasets import DATASETS, missing
from bench.zoo.datasets.voc import SegmentationData, SegSample, _draw_shapes, smoke_folder
from bench.spec.schema import NON_NEGATIVE, POSITIVE


def cityscapes_table(void: str = "ignore") -> tuple[tuple, torch.Tensor]:
    """Class names and the (256,) label-id → train-id lookup table."""
    from torchvision.datasets import Cityscapes

    evaluated = sorted({c.train_id for c in Cityscapes.classes if 0 <= c.train_id < 255})
    names = {c.train_id: c.name for c in Cityscapes.classes if 0 <= c.train_id < 255}
    if void == "ignore":
        lut = torch.full((256,), 255, dtype=torch.int64)
        for c in Cityscapes.classes:
            if 0 <= c.id < 256 and 0 <= c.train_id < 255:
                lut[c.id] = c.train_id
        return tuple(names[t] for t in evaluated), lut
    if void == "class":
        lut = torch.zeros((256,), dtype=torch.int64)
        for c in Cityscapes.classes:
            if 0 <= c.id < 256 and 0 <= c.train_id < 255:
                lut[c.id] = c.train_id + 1
        return ("void",) + tuple(names[t] for t in evaluated), lut
    raise ValueError(f"void must be 'ignore' or 'class', not {void!r}")


def load_cityscapes(
    root: Path | None, name: str, train_split: str = "train", test_split: str = "val", void: str = "ignore"
) -> SegmentationData:
    from torchvision.datasets import Cityscapes

    expected = "leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and gtFine/{train,val}/<city>/*_gtFine_labelIds.png"
    if root is None or not (Path(root) / "leftImg8bit").is_dir():
        raise missing(name, root, expected)
    splits = {}
    for split in (train_split, test_split):
        try:
            ds = Cityscapes(str(root), split=split, mode="fine", target_type="semantic")
        except (RuntimeError, ValueError, OSError) as exc:
            raise missing(name, root, expected, hint=f" ({exc})") from None
        pairs = sorted(zip(ds.images, (t[0] for t in ds.targets)))
        splits[split] = [SegSample(Path(img).name.replace("_leftImg8bit.png", ""), img, tgt) for img, tgt in pairs]
        if not splits[split]:
            raise missing(name, root, expected, hint=f" (no images in split {split!r})")
    classes, lut = cityscapes_table(void)
    return SegmentationData(
        name,
        splits[train_split],
        splits[test_split],
        classes,
        lut,
        255,
        source=f"Cityscapes (gtFine) layout at {root}",
        meta={"train_split": train_split, "test_split": test_split, "void": void},
    )


@DATASETS.register(
    "cityscapes",
    document="003 A.2",
    summary="Cityscapes fine semantic segmentation (2,975 train → 500 val), torchvision layout.",
)
def cityscapes(root, allow_download, *, train_split="train", test_split="val", void="ignore"):
    return load_cityscapes(root, "cityscapes", train_split, test_split, void)


# label ids the smoke generator draws: sky above, road below, objects (car, person, building, vegetation)
SMOKE_OBJECT_IDS = (26, 24, 11, 21)


def write_cityscapes(
    folder: str | Path, n_train: int = 8, n_test: int = 4, size=(64, 128), seed: int = 0, cities=("aachen", "bremen")
) -> Path:
    """Write a Cityscapes-layout set of shapes (label-id PNGs; a 2-pixel unlabeled frame, id 0)."""
    folder = Path(folder)
    rng = random.Random(seed)
    h, w = size
    for split, n in (("train", n_train), ("val", n_test)):
        for k in range(n):
            city = cities[k % len(cities)]
            stem = f"{city}_{k:06d}_000019"
            img_dir = folder / "leftImg8bit" / split / city
            gt_dir = folder / "gtFine" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            img, _, mask = _draw_shapes(rng, (h, w), rng.randint(1, 3), len(SMOKE_OBJECT_IDS))
            m = np.asarray(mask)
            ids = np.where(np.arange(h)[:, None] < h // 2, 23, 7).astype(np.uint8) * np.ones((1, w), np.uint8)
            for j, lid in enumerate(SMOKE_OBJECT_IDS, start=1):
                ids[m == j] = lid
            ids[:2], ids[-2:], ids[:, :2], ids[:, -2:] = 0, 0, 0, 0
            bg = np.where((np.arange(h) < h // 2)[:, None, None], np.array([70, 130, 180]), np.array([128, 64, 128]))
            arr = np.where((m == 0)[..., None], bg, np.asarray(img)).astype(np.uint8)
            Image.fromarray(arr).save(img_dir / f"{stem}_leftImg8bit.png")
            Image.fromarray(ids, mode="L").save(gt_dir / f"{stem}_gtFine_labelIds.png")
    return folder


@DATASETS.register(
    "cityscapes-smoke",
    summary="Generated Cityscapes-layout shapes, read by the cityscapes loader.",
    ranges={"n_train": POSITIVE, "n_test": POSITIVE, "size": POSITIVE, "seed": NON_NEGATIVE},
)
def cityscapes_smoke(root, allow_download, *, n_train=8, n_test=4, size=(64, 128), seed=0, void="ignore"):
    opts = dict(n_train=n_train, n_test=n_test, size=list(size), seed=seed)
    folder = smoke_folder("cityscapes-smoke", opts, root)
    if not (folder / "leftImg8bit").is_dir():
        write_cityscapes(folder, n_train, n_test, tuple(size), seed)
    data = load_cityscapes(folder, "cityscapes-smoke", void=void)
    data.source = f"generated shapes ({data.source})"
    return data
