"""ImageNet class subsets (`000_…` §5.1-5.2: ImageNet-1k and the 100-class "ImageNet-100" of Table 3).

Reads an ImageNet-style folder, ``<root>/train/<wnid>/*.JPEG`` and ``<root>/val/<wnid>/*.JPEG`` (the validation
set sorted into class folders, as torchvision's ImageFolder expects; ``test/`` is accepted instead of ``val/``).

Class selection (option ``classes``): an int k picks the k classes with the most training images, which is the
document's ImageNet-100 rule ("we randomly select 100 classes with the largest number of images (1300 training
images in each class)": on ImageNet-1k several hundred classes have the maximum 1300, so the document's
choice among them was random; ties here are broken by wnid order, so the subset is reproducible). ``classes``
may also be an explicit list of wnids. ``classes: 1000`` (or more than there are) reads everything.

Images are resized so the shorter side is ``size`` and centre-cropped to ``size``×``size``. The default 64 keeps
a 100-class subset (130k training images) at 1.6 GB of uint8 and ResNet-18 epochs CPU/GPU-affordable; the
document trains at the usual 224. ``max_train_per_class`` caps the training images per class (first n in file
order) for smaller runs. The decoded tensors are cached (bench.zoo.datasets.cached) keyed by the selected files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from bench.zoo.datasets import DATASETS, ImageData, cached, files_key, missing
from bench.zoo.datasets.image_folder import IMAGE_SUFFIXES
from bench.spec.schema import POSITIVE


def _images(d: Path) -> list[Path]:
    return sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def select_classes(train_dir: Path, classes) -> list[str]:
    """The k wnids with the most training images (ties: wnid order), or the explicit list, sorted."""
    available = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if isinstance(classes, (list, tuple)):
        unknown = [c for c in classes if c not in available]
        if unknown:
            raise ValueError(f"classes not under {train_dir}: {', '.join(map(str, unknown[:5]))}")
        return sorted(dict.fromkeys(str(c) for c in classes))
    k = int(classes)
    if k < 1:
        raise ValueError(f"classes must be a positive number or a list of wnids, got {classes!r}")
    counts = {c: len(_images(train_dir / c)) for c in available}
    ranked = sorted(available, key=lambda c: (-counts[c], c))
    return sorted(ranked[:k])


def decode_square(files: list[Path], size: int, desc: str) -> torch.Tensor:
    """Decode to RGB, resize the shorter side to ``size`` and centre-crop: (N, 3, size, size) uint8."""
    out = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    for i, f in enumerate(tqdm(files, desc=desc, unit="img", leave=False, mininterval=1.0)):
        with Image.open(f) as im:
            im = ImageOps.fit(im.convert("RGB"), (size, size), Image.BILINEAR, centering=(0.5, 0.5))
            out[i] = torch.from_numpy(np.asarray(im).transpose(2, 0, 1).copy())
    return out


@DATASETS.register(
    "imagenet-subset",
    document="000 §5.1-5.2",
    summary="ImageNet train/<wnid>, val/<wnid> folders; the k classes with most images, resized.",
    ranges={"classes": POSITIVE, "size": POSITIVE},
)
def imagenet_subset(root, allow_download, *, classes=100, size=64, max_train_per_class=None):
    expected = "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG"
    if root is None:
        raise missing("imagenet-subset", root, expected)
    root = Path(root)
    cand = next((c for c in (root, root / "imagenet", root / "ILSVRC2012") if (c / "train").is_dir()), None)
    if cand is None:
        raise missing("imagenet-subset", root, expected)
    val_dir = next((cand / v for v in ("val", "test") if (cand / v).is_dir()), None)
    if val_dir is None:
        raise missing("imagenet-subset", cand, expected)
    wnids = select_classes(cand / "train", classes)
    tr_files, tr_y, te_files, te_y = [], [], [], []
    for i, c in enumerate(wnids):
        imgs = _images(cand / "train" / c)
        if max_train_per_class:
            imgs = imgs[: int(max_train_per_class)]
        tr_files += imgs
        tr_y += [i] * len(imgs)
        vimgs = _images(val_dir / c) if (val_dir / c).is_dir() else []
        te_files += vimgs
        te_y += [i] * len(vimgs)
    if not tr_files or not te_files:
        raise missing("imagenet-subset", cand, f"images for the selected classes under train/ and {val_dir.name}/")
    key = f"imagenet-subset-{files_key(tr_files + te_files)}-{len(wnids)}-{int(size)}"

    def build() -> ImageData:
        return ImageData(
            "imagenet-subset",
            decode_square(tr_files, int(size), "decode imagenet train"),
            torch.tensor(tr_y),
            decode_square(te_files, int(size), "decode imagenet val"),
            torch.tensor(te_y),
            wnids,
            source=f"ImageNet folder {cand}",
            meta={"selection": classes if isinstance(classes, (list, tuple)) else f"top-{classes}"},
        )

    return cached(key, build)
