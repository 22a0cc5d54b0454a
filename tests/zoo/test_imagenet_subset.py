"""`imagenet-subset`: class selection by training-image count, resize + centre crop, caching; generated JPEGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench.zoo.datasets import load_dataset

# training images per class; n03 and n04 tie (n03 wins by wnid order)
TRAIN = {"n01": 5, "n02": 2, "n03": 4, "n04": 4, "n05": 1}
VAL = 2


def _jpeg(path, w=40, h=20):
    """Left quarter red, middle half green, right quarter blue: a centre crop keeps only green."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 4, 0] = 255
    a[:, w // 4 : 3 * w // 4, 1] = 255
    a[:, 3 * w // 4 :, 2] = 255
    Image.fromarray(a).save(path, quality=95)


@pytest.fixture()
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    r = tmp_path / "imagenet"
    for wnid, n in TRAIN.items():
        for split, count in (("train", n), ("val", VAL)):
            d = r / split / wnid
            d.mkdir(parents=True)
            for i in range(count):
                _jpeg(d / f"{wnid}_{i}.JPEG")
    return r


def test_selects_classes_with_most_training_images(root):
    data = load_dataset("imagenet-subset", root, options={"classes": 2, "size": 16})
    assert data.classes == ["n01", "n03"]
    assert torch.bincount(data.train_y).tolist() == [5, 4]
    assert torch.bincount(data.test_y).tolist() == [VAL, VAL]
    three = load_dataset("imagenet-subset", root, options={"classes": 3, "size": 16})
    assert three.classes == ["n01", "n03", "n04"]
    everything = load_dataset("imagenet-subset", root, options={"classes": 100, "size": 16})
    assert everything.classes == sorted(TRAIN) and len(everything.train_y) == sum(TRAIN.values())


def test_explicit_list_and_cap(root):
    data = load_dataset(
        "imagenet-subset", root, options={"classes": ["n05", "n02"], "size": 8, "max_train_per_class": 1}
    )
    assert data.classes == ["n02", "n05"]
    assert torch.bincount(data.train_y).tolist() == [1, 1]
    with pytest.raises(ValueError):
        load_dataset("imagenet-subset", root, options={"classes": ["n99"]})


def test_resize_centre_crop_and_cache(root, tmp_path):
    data = load_dataset("imagenet-subset", root, options={"classes": 1, "size": 16})
    assert data.train_x.shape == (5, 3, 16, 16) and data.train_x.dtype == torch.uint8
    x = data.train_x.float()
    # shorter side 20 → 16, width 40 → 32, centre 16 columns = the green middle of the original
    assert x[:, 1].mean() > 200 and x[:, 0].mean() < 40 and x[:, 2].mean() < 40
    cached = list((tmp_path / "cache").glob("imagenet-subset-*.pt"))
    assert len(cached) == 1
    again = load_dataset("imagenet-subset", root, options={"classes": 1, "size": 16})
    assert torch.equal(again.train_x, data.train_x)
    assert len(list((tmp_path / "cache").glob("imagenet-subset-*.pt"))) == 1


def test_missing_folder_is_reported(tmp_path):
    from bench.errors import DataMissing

    with pytest.raises(DataMissing):
        load_dataset("imagenet-subset", tmp_path / "nothing", options={})
