"""scikit-learn's 8×8 handwritten digits (1,797 real images shipped with the library): the embedded default.

Pixel values 0–16 are scaled to 0–255. The split is fixed: a seeded permutation, 1,437 train / 360 test
(80 / 20, stratified by taking the same share of every class)."""

from __future__ import annotations

import torch

from bench.zoo.datasets import DATASETS, ImageData
from bench.spec.schema import FRACTION


@DATASETS.register(
    "digits",
    summary="scikit-learn 8×8 digits (ships with the library; no download).",
    ranges={"test_fraction": FRACTION},
)
def digits(root, allow_download, *, test_fraction=0.2):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().mul(255.0 / 16.0).round().clamp(0, 255).to(torch.uint8)[:, None]
    y = torch.from_numpy(d.target).long()
    g = torch.Generator().manual_seed(0)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr, te = torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values
    return ImageData(
        "digits", x[tr], y[tr], x[te], y[te], [str(i) for i in range(10)], source="sklearn.datasets.load_digits"
    )
