"""CIFAR-10: torchvision's own format (``cifar-10-batches-py``, downloaded when allowed) or an image folder
(``train/<class>/*``, ``test/<class>/*``), e.g. the JPEG copy unpacked from ``cifar10-jpeg.tar.gz``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.zoo.datasets import DATASETS, ImageData, cached, files_key, missing
from bench.zoo.datasets.image_folder import load_image_folder


def _candidates(root: Path) -> list[Path]:
    return [root, root / "cifar10", root / "cifar-10", root / "CIFAR10"]


@DATASETS.register(
    "cifar10", document="000/003/004", summary="CIFAR-10 (torchvision format or train/test image folders)."
)
def cifar10(root, allow_download):
    if root is None and not allow_download:
        raise missing(
            "cifar10", root, "cifar-10-batches-py/ or train/ and test/ folders", "; pass --allow-download to fetch it"
        )
    root = Path(root) if root else Path.home() / ".cache" / "convbench" / "cifar10-download"
    for cand in _candidates(root):
        if (cand / "cifar-10-batches-py").is_dir():
            return _torchvision(cand, False)
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return load_image_folder(cand, "cifar10")
    if allow_download:
        return _torchvision(root, True)
    raise missing(
        "cifar10",
        root,
        "cifar-10-batches-py/ or train/<class>/ and test/<class>/ folders",
        "; pass --allow-download to fetch it",
    )


def _torchvision(root: Path, download: bool) -> ImageData:
    from torchvision.datasets import CIFAR10

    def build() -> ImageData:
        tr = CIFAR10(str(root), train=True, download=download)
        te = CIFAR10(str(root), train=False, download=download)
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
        return ImageData(
            "cifar10",
            to_t(tr.data),
            torch.tensor(tr.targets),
            to_t(te.data),
            torch.tensor(te.targets),
            list(tr.classes),
            source=f"torchvision CIFAR10 {root}",
        )

    batches = root / "cifar-10-batches-py"
    if batches.is_dir():
        return cached(f"cifar10-tv-{files_key(sorted(batches.iterdir()))}", build)
    return build()
