"""Synthetic textured blobs for the boundary task of `002_…` §4.4.2 (generated on the fly, seeded).

Every image i of a stream comes from ``numpy.random.default_rng([seed, stream, start + i])``: binary, textured
(gratings / filtered noise inside and outside) or hard blobs, their masks, and 2-pixel-thick boundaries.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from bench.zoo.datasets import DATASETS, ImageData
from bench.spec.schema import NON_NEGATIVE, POSITIVE

MODES = ("binary", "texture", "hard")

# ---------------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------------


def _coords(size: int):
    c = np.arange(size, dtype=np.float64)
    y, x = np.meshgrid(c, c, indexing="ij")
    return x, y


def blob_mask(rng: np.random.Generator, size: int, max_blobs: int) -> np.ndarray:
    """Union of 1…max_blobs random star-shaped blobs (random harmonics, stretch and rotation)."""
    x, y = _coords(size)
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(1, max_blobs + 1))):
        cx, cy = rng.uniform(0.15 * size, 0.85 * size, 2)
        r0 = rng.uniform(0.1, 0.28) * size
        psi, stretch = rng.uniform(0, math.pi), rng.uniform(0.6, 1.0)
        dx, dy = x - cx, y - cy
        u = (dx * math.cos(psi) + dy * math.sin(psi)) * stretch
        v = -dx * math.sin(psi) + dy * math.cos(psi)
        rad, phi = np.hypot(u, v), np.arctan2(v, u)
        bound = np.ones_like(phi)
        for k in (2, 3, 4):
            bound += rng.uniform(0, 0.3 / k * 2) * np.cos(k * phi + rng.uniform(0, 2 * math.pi))
        mask |= rad <= r0 * bound
    return mask


def boundary_of(mask: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of the other label (edge-replicated at the image border)."""
    p = np.pad(mask, 1, mode="edge")
    c = p[1:-1, 1:-1]
    return (c != p[:-2, 1:-1]) | (c != p[2:, 1:-1]) | (c != p[1:-1, :-2]) | (c != p[1:-1, 2:])


def _standardise(t: np.ndarray) -> np.ndarray:
    return (t - t.mean()) / max(t.std(), 1e-6)


def grating(rng, size, angle=None, period=None):
    x, y = _coords(size)
    angle = rng.uniform(0, math.pi) if angle is None else angle
    period = rng.uniform(3.0, 8.0) if period is None else period
    return np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period + rng.uniform(0, 2 * math.pi))


def filtered_noise(rng, size, sigma=None):
    sigma = rng.uniform(0.6, 1.5) if sigma is None else sigma
    return _standardise(ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap"))


def texture(rng, size) -> np.ndarray:
    """A random procedural texture: grating, filtered noise or a mixture; zero mean, unit std."""
    kind = int(rng.integers(3))
    if kind == 0:
        t = grating(rng, size)
    elif kind == 1:
        t = filtered_noise(rng, size)
    else:
        a = rng.uniform(0.3, 0.7)
        t = a * grating(rng, size) + (1 - a) * filtered_noise(rng, size)
    return _standardise(t)


def make_example(rng: np.random.Generator, size: int = 32, mode: str = "texture", max_blobs: int = 3):
    """One (image in [0, 1], blob mask, boundary target) triple."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    mask = blob_mask(rng, size, max_blobs)
    if mode == "binary":
        lo, hi = 0.25, 0.75
        fg, bg = (hi, lo) if rng.random() < 0.5 else (lo, hi)
        img = np.where(mask, fg, bg)
    elif mode == "texture":
        fg = 0.5 + rng.uniform(-0.08, 0.08) + 0.15 * rng.uniform(0.5, 1.0) * texture(rng, size)
        bg = 0.5 + rng.uniform(-0.08, 0.08) + 0.15 * rng.uniform(0.5, 1.0) * texture(rng, size)
        img = np.where(mask, fg, bg)
    else:  # hard: the same texture kind, period and contrast; orientations differ by 30°–90°
        period, contrast, a = rng.uniform(3.0, 8.0), rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.8)
        ang = rng.uniform(0, math.pi)
        ang2 = ang + rng.choice([-1, 1]) * rng.uniform(math.pi / 6, math.pi / 2)
        tf = a * grating(rng, size, ang, period) + (1 - a) * filtered_noise(rng, size, 1.0)
        tb = a * grating(rng, size, ang2, period) + (1 - a) * filtered_noise(rng, size, 1.0)
        img = np.where(mask, 0.5 + 0.15 * contrast * _standardise(tf), 0.5 + 0.15 * contrast * _standardise(tb))
    return np.clip(img, 0, 1), mask, boundary_of(mask)


def generate(seed: int, stream: int, start: int, n: int, size: int = 32, mode: str = "texture", max_blobs: int = 3):
    """Images (n, 1, S, S) uint8, masks and boundaries (n, S, S) bool; image i from rng([seed, stream, start+i])."""
    imgs = np.empty((n, 1, size, size), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    bounds = np.empty((n, size, size), dtype=bool)
    for i in range(n):
        rng = np.random.default_rng([seed, stream, start + i])
        img, m, b = make_example(rng, size, mode, max_blobs)
        imgs[i, 0] = np.round(img * 255).astype(np.uint8)
        masks[i], bounds[i] = m, b
    return torch.from_numpy(imgs), torch.from_numpy(masks), torch.from_numpy(bounds)


TRAIN_STREAM, TEST_STREAM = 1, 2


@DATASETS.register(
    "textured-blobs",
    summary="Synthetic random blobs (binary / textured / hard), generated on the fly (002 §4.4.2).",
    ranges={"size": POSITIVE, "max_blobs": POSITIVE, "test_images": POSITIVE, "test_seed": NON_NEGATIVE},
)
def textured_blobs(root, allow_download, *, size=32, mode="texture", max_blobs=3, test_images=256, test_seed=1000):
    """The fixed test split (same for every run); the training stream is generated by the task per run seed."""
    x, masks, bounds = generate(test_seed, TEST_STREAM, 0, test_images, size, mode, max_blobs)
    return ImageData(
        "textured-blobs",
        x[:0],
        torch.zeros(0, dtype=torch.long),
        x,
        torch.zeros(len(x), dtype=torch.long),
        ["background", "boundary"],
        source=f"generated: bench.zoo.datasets.blobs (mode={mode}, seed={test_seed})",
        meta={"masks": masks, "boundaries": bounds, "size": size, "mode": mode, "max_blobs": max_blobs},
    )
