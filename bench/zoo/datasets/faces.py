"""Face image folders for the few-shot face recognition task of `000_…` supplement §3.3.

Reads any folder of faces laid out one sub-folder per person, ``<root>/<person>/<images>`` (any PIL-readable
files), e.g. the AT&T / ORL database as distributed, ``att_faces/s<person>/<n>.pgm`` (40 people × 10 greyscale
92×112 images). The document's FRGC v2.0 data is not public; it has the same layout once unpacked per subject.

The loader returns every image once: a default per-person split (the first ``train_fraction`` of each person's
images, after a seeded shuffle) fills ``train``/``test`` so the data set also works with the plain
classification task; the ``fewshot`` task pools both and draws its own classes and splits per seed.

``size`` (H, W) defaults to 56×46: half of AT&T's 112×92, keeping its aspect ratio, so a ResNet-18 trains on
a CPU in seconds per epoch; 4× fewer pixels than the original while faces stay recognisable. ``None`` keeps
the files' own size (all images must then share it).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.zoo.datasets import DATASETS, ImageData, cached, files_key, missing
from bench.zoo.datasets.image_folder import IMAGE_SUFFIXES, decode
from bench.spec.schema import FRACTION, NON_NEGATIVE, POSITIVE


def _person_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir())),
        key=lambda p: _natural(p.name),
    )


def _natural(name: str):
    """s2 before s10: digits compare as numbers."""
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def find_face_root(root: Path) -> Path | None:
    """``root`` itself, or a conventional sub-folder of it (att_faces, faces, orl_faces)."""
    for cand in (root, root / "att_faces", root / "faces", root / "orl_faces"):
        if cand.is_dir() and _person_dirs(cand):
            return cand
    return None


@DATASETS.register(
    "faces",
    document="000 supplement §3.3",
    summary="Face folders <root>/<person>/<images> (AT&T att_faces/s<n>/<k>.pgm), greyscale.",
    ranges={"size": POSITIVE, "train_fraction": FRACTION, "split_seed": NON_NEGATIVE, "min_images": POSITIVE},
)
def faces(root, allow_download, *, size=(56, 46), mode="L", train_fraction=0.6, split_seed=0, min_images=2):
    if root is None:
        raise missing("faces", root, "<person>/<images> folders, e.g. att_faces/s1/1.pgm")
    base = find_face_root(Path(root))
    if base is None:
        raise missing("faces", Path(root), "<person>/<images> folders, e.g. att_faces/s1/1.pgm")
    people, files, labels = [], [], []
    for d in _person_dirs(base):
        imgs = sorted((f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=lambda f: _natural(f.name))
        if len(imgs) < min_images:
            continue
        labels += [len(people)] * len(imgs)
        people.append(d.name)
        files += imgs
    if not people:
        raise missing("faces", base, f"person folders with at least {min_images} images")
    size_t = tuple(size) if size else None
    key = f"faces-{files_key(files)}-{mode}-{size_t}"

    def build() -> ImageData:
        x = decode(files, size_t, mode, "decode faces")
        return ImageData(
            "faces",
            x,
            torch.tensor(labels),
            x[:0],
            torch.tensor([], dtype=torch.long),
            people,
            source=f"face folders {base}",
        )

    full = cached(key, build)
    return split_per_class(full, train_fraction, split_seed)


def split_per_class(data: ImageData, train_fraction: float, seed: int) -> ImageData:
    """Pool ``data`` and split every class: round(train_fraction · n) images (at least 1, at most n − 1) to
    train, the rest to test; which images is a seeded shuffle."""
    x = torch.cat([data.train_x, data.test_x])
    y = torch.cat([data.train_y, data.test_y])
    g = torch.Generator().manual_seed(seed)
    tr, te = [], []
    for c in range(len(data.classes)):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_tr = min(len(idx) - 1, max(1, int(round(train_fraction * len(idx)))))
        tr.append(idx[:n_tr])
        te.append(idx[n_tr:])
    tr, te = torch.cat(tr).sort().values, torch.cat(te).sort().values
    return ImageData(data.name, x[tr], y[tr], x[te], y[te], list(data.classes), data.source, dict(data.meta))
