"""Image-folder cache: a cached load reads no per-file metadata; a changed folder is still detected; the first
decode can use several processes and gives the same tensors."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import bench.zoo.datasets.image_folder as imf

CLASSES = ["a", "b", "c"]


def _folder(root, n_train=4, n_test=2, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for c in CLASSES:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(d / f"{i:03d}.png")
    return root


def _forbid_listing(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("per-file listing or hashing on a cached load")

    monkeypatch.setattr(imf, "list_split", boom)
    monkeypatch.setattr(imf, "files_key", boom)
    monkeypatch.setattr(imf, "decode", boom)


def test_cached_load_lists_no_files(tmp_path, monkeypatch):
    root = _folder(tmp_path / "data")
    first = imf.load_image_folder(root, "t")
    assert first.train_x.shape == (12, 3, 8, 8)
    with monkeypatch.context() as m:
        _forbid_listing(m)
        again = imf.load_image_folder(root, "t")
    assert torch.equal(again.train_x, first.train_x) and torch.equal(again.test_y, first.test_y)


def test_added_or_removed_file_is_detected(tmp_path):
    root = _folder(tmp_path / "data")
    assert len(imf.load_image_folder(root, "t").train_y) == 12
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "train" / "b" / "new.png")
    data = imf.load_image_folder(root, "t")
    assert len(data.train_y) == 13 and int((data.train_y == 1).sum()) == 5
    (root / "test" / "a" / "000.png").unlink()
    assert len(imf.load_image_folder(root, "t").test_y) == 5


def test_refresh_forces_a_new_decode(tmp_path, monkeypatch):
    root = _folder(tmp_path / "data")
    imf.load_image_folder(root, "t")
    calls = []
    real = imf.decode
    monkeypatch.setattr(imf, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    imf.load_image_folder(root, "t")
    assert calls == []
    monkeypatch.setenv("BENCH_REFRESH_DATA", "1")
    imf.load_image_folder(root, "t")
    assert len(calls) == 2  # train and test decoded again


def test_parallel_decode_equals_serial(tmp_path):
    root = _folder(tmp_path / "data", n_train=6)
    files, _, _ = imf.list_split(root / "train")
    one = imf.decode(files, None, "RGB", "x", workers=1)
    two = imf.decode(files, (6, 6), "RGB", "x", workers=2)
    assert one.shape == (18, 3, 8, 8) and two.shape == (18, 3, 6, 6)
    assert torch.equal(imf.decode(files, None, "RGB", "x", workers=2), one)
    assert torch.equal(imf.decode(files, (6, 6), "RGB", "x", workers=1), two)


def test_decode_workers_default(monkeypatch):
    monkeypatch.delenv("BENCH_DECODE_WORKERS", raising=False)
    assert imf.decode_workers(100) == 1
    assert imf.decode_workers(60000) >= 1
    monkeypatch.setenv("BENCH_DECODE_WORKERS", "3")
    assert imf.decode_workers(10) == 3
