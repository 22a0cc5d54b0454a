"""Fashion-MNIST (Zalando, 70,000 28×28 greyscale images of 10 clothing classes): the data of `003_…` Fig. 5(a, b).

Read from the four IDX files as distributed (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or ``.gz``) in a folder: ``root`` (the
suite's ``dataset.root``, ``--data-root`` or ``$BENCH_FASHION_MNIST_ROOT``; also its sub-folders
``fashion-mnist/``, ``FashionMNIST/raw/`` (torchvision's layout) and ``fashion_mnist/``), else where Debian's
package ``dataset-fashion-mnist`` installs them, ``/usr/share/datasets/fashion-mnist``. No download.

Every file is checked before use: the IDX magic number (unsigned bytes, 3 dimensions for images, 1 for
labels), 28×28 images, the payload length the header announces, labels in 0–9 and as many labels as images;
a bad file is a one-line error naming it (exit code 2). Images come back as uint8 (N, 1, 28, 28), labels as
int64, the split as distributed (60,000 train / 10,000 test). Decoding takes about a second, so nothing is
cached.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from bench.zoo.datasets import DATASETS, ImageData, missing
from bench.errors import BenchError

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801  # 0x08 = unsigned byte, then the number of dimensions
SIDE = 28


class BadDataFile(BenchError):
    """A data file that is not what its name says (bad header, truncated, out-of-range labels)."""

    def __init__(self, path: Path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _folders(root: Path) -> list[Path]:
    return [root, root / "fashion-mnist", root / "FashionMNIST" / "raw", root / "fashion_mnist"]


def find_files(root: Path) -> dict[str, Path] | None:
    """The four IDX files in ``root`` or one of its conventional sub-folders (None if no folder has all)."""
    for folder in _folders(root):
        found = {key: _find(folder, stem) for key, stem in FILES.items()}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def read_idx(path: Path, kind: str) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip-compressed if it ends in ``.gz``); ``kind`` is
    ``"images"`` (N × 28 × 28 unsigned bytes) or ``"labels"`` (N unsigned bytes in 0–9). Raises
    :class:`BadDataFile` naming the file on anything else."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BadDataFile(path, f"cannot read: {exc}") from None
    dims = 3 if kind == "images" else 1
    magic_want = IMAGE_MAGIC if kind == "images" else LABEL_MAGIC
    header = 4 + 4 * dims
    if len(raw) < header:
        raise BadDataFile(path, f"not an IDX {kind} file: {len(raw)} bytes, shorter than its header ({header})")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != magic_want:
        raise BadDataFile(path, f"not an IDX {kind} file: magic number 0x{magic:08x}, expected 0x{magic_want:08x}")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    if kind == "images" and tuple(shape[1:]) != (SIDE, SIDE):
        raise BadDataFile(path, f"images are {shape[1]}×{shape[2]}, expected {SIDE}×{SIDE}")
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        raise BadDataFile(
            path, f"header announces {size} bytes of data for shape {tuple(shape)}, the file holds {len(raw) - header}"
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    if kind == "labels" and size and int(arr.max()) >= len(CLASSES):
        raise BadDataFile(path, f"label {int(arr.max())} out of range 0–{len(CLASSES) - 1}")
    return arr


def _split(files: dict[str, Path], which: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = read_idx(files[f"{which}_x"], "images")
    y = read_idx(files[f"{which}_y"], "labels")
    if len(x) != len(y):
        raise BadDataFile(files[f"{which}_y"], f"{len(y)} labels for {len(x)} images in {files[f'{which}_x'].name}")
    return torch.from_numpy(x.copy())[:, None], torch.from_numpy(y.astype(np.int64))


@DATASETS.register(
    "fashion-mnist",
    document="003",
    env_root="BENCH_FASHION_MNIST_ROOT",
    summary="Fashion-MNIST IDX files (Debian's dataset-fashion-mnist or a root), 28×28 greyscale.",
)
def fashion_mnist(root, allow_download):
    base = Path(root) if root else DEBIAN_ROOT
    files = find_files(base)
    if files is None:
        hint = "" if root else "; install Debian's package: apt-get install dataset-fashion-mnist"
        raise missing("fashion-mnist", base, f"{', '.join(FILES.values())} (each plain or .gz)", hint)
    train_x, train_y = _split(files, "train")
    test_x, test_y = _split(files, "test")
    return ImageData(
        "fashion-mnist",
        train_x,
        train_y,
        test_x,
        test_y,
        list(CLASSES),
        source=f"IDX files in {files['train_x'].parent}",
    )
