"""Segmentation: confusion-matrix metrics against hand-computed values, the Cityscapes / VOC2012 loaders on
generated files in their real layouts, the DeepLabV3 builder against torchvision's, and the task end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from bench.zoo.datasets import load_dataset
from bench.zoo.datasets.cityscapes import cityscapes_table, write_cityscapes
from bench.zoo.datasets.voc import write_voc_segmentation
from bench.zoo.layers import LAYERS
from bench.spec.suite import load_suite
from bench.tasks import TASKS, RunContext
from bench.tasks.segmentation import (
    SegTorchDataset,
    _collate_pad,
    build_segmenter,
    confusion_matrix,
    evaluate,
    segmentation_scores,
)


# -- metrics ---------------------------------------------------------------------------------------------------


def test_confusion_matrix_and_scores_by_hand():
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 0, 2]])
    cm = confusion_matrix(pred, target, num_classes=4)
    expected = torch.zeros(4, 4, dtype=torch.long)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 0] = 1, 1, 2, 1  # the 255 pixel is not counted
    assert torch.equal(cm, expected)
    s = segmentation_scores(cm)
    # IoU: class 0 = 1/(2+2−1), class 1 = 2/(2+3−2), class 2 = 0/(1+0−0), class 3 absent → left out
    assert s["iou"][:3] == pytest.approx([1 / 3, 2 / 3, 0.0]) and s["iou"][3] is None
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0.0) / 3)
    assert s["pixel_acc"] == pytest.approx(3 / 5)
    assert s["mean_acc"] == pytest.approx((1 / 2 + 2 / 2 + 0 / 1) / 3)


def test_cityscapes_label_table():
    names, lut = cityscapes_table("ignore")
    assert len(names) == 19 and names[0] == "road" and names[13] == "car"
    assert lut[7] == 0 and lut[26] == 13 and lut[33] == 18 and lut[0] == 255 and lut[9] == 255  # parking: void
    names, lut = cityscapes_table("class")
    assert len(names) == 20 and lut[0] == 0 and lut[9] == 0 and lut[7] == 1 and lut[26] == 14


# -- data ------------------------------------------------------------------------------------------------------


def test_generated_cityscapes_read_by_the_cityscapes_loader(tmp_path):
    write_cityscapes(tmp_path, n_train=3, n_test=2, size=(32, 48), seed=0)
    assert (tmp_path / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png").is_file()
    data = load_dataset("cityscapes", tmp_path)
    assert (len(data.train), len(data.test), data.num_classes) == (3, 2, 19)
    img, mask = data.load(data.train[0])
    raw = np.asarray(Image.open(data.train[0].mask))
    assert img.shape == (3, 32, 48) and mask.shape == (32, 48) and mask.dtype == torch.int64
    assert (mask[torch.from_numpy(raw == 7)] == 0).all() and (mask[torch.from_numpy(raw == 23)] == 10).all()
    assert (mask[:2] == 255).all()  # the unlabeled frame (label id 0) is ignored


def test_generated_voc2012_read_by_the_voc_loader(tmp_path):
    write_voc_segmentation(tmp_path, n_train=3, n_test=2, size=(24, 32), n_classes=3, seed=0)
    data = load_dataset("voc2012-seg", tmp_path)
    assert (len(data.train), len(data.test), data.num_classes) == (3, 2, 21)
    img, mask = data.load(data.train[0])
    assert img.shape == (3, 24, 32) and set(mask.unique().tolist()) <= {0, 1, 2, 3, 255}
    assert (mask == 255).any()  # VOC's object borders


@pytest.mark.parametrize("mode", ["whole", "sliding"])
def test_evaluate_scores_a_constant_prediction(tmp_path, mode):
    """A model that always says "road": pixel accuracy = road share of the labelled pixels, road IoU the same,
    every other class present in the ground truth IoU 0 (checks resizing, ignore handling and tiling)."""
    write_cityscapes(tmp_path, n_train=1, n_test=3, size=(20, 30), seed=3)
    data = load_dataset("cityscapes", tmp_path)
    ds = SegTorchDataset(data, data.test, False, base_size=16, crop_size=12, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=_collate_pad)

    class Road(nn.Module):
        def forward(self, x):
            out = torch.zeros(x.shape[0], 19, *x.shape[-2:])
            out[:, 0] = 1.0
            return {"out": out}

    scores, _, n = evaluate(Road(), loader, 19, 255, torch.device("cpu"), mode, 12, False)
    masks = torch.cat([ds[i][1].flatten() for i in range(len(ds))])
    assert ds[0][1].shape == (16, 24)
    labelled = masks[masks != 255]
    share = float((labelled == 0).sum()) / len(labelled)
    present = labelled.unique().numel()
    assert n == 3 and 0 < share < 1
    assert scores["pixel_acc"] == pytest.approx(share) and scores["iou"][0] == pytest.approx(share)
    assert scores["miou"] == pytest.approx(share / present)


# -- model -----------------------------------------------------------------------------------------------------


class _Spec:
    def __init__(self, layer, backbone_options=None, stem=None):
        self.layer = {"name": layer, "options": {}, "stem": stem} if isinstance(layer, str) else layer
        self.backbone = {"name": "tv-resnet50", "options": backbone_options or {}}


def test_builder_matches_torchvision_deeplabv3_resnet50():
    import torchvision

    ours = build_segmenter(_Spec("conv"), 21, aux_loss=True, dilated=None)
    ref = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(ref)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in ours.modules()) == sum(
        isinstance(m, nn.BatchNorm2d) for m in ref.modules()
    )
    rep = ours.swap_reports
    assert len(rep["backbone"].dilated) == 8 and len(rep["head"].dilated) == 3


def test_norm_hook_replaces_every_batchnorm_in_backbone_and_head():
    def factory(cin, cout, kernel_size=3, stride=1, padding=None, bias=False):
        return nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, bias=bias)

    # a temporary family with a norm hook (as network deconvolution declares), removed below
    LAYERS.register("t-norm-seg", applies_to="all", norm=lambda c: nn.Identity())(factory)
    try:
        torch.manual_seed(0)
        m = build_segmenter(
            _Spec("t-norm-seg", {"layers": [1, 1, 1, 1], "width_per_group": 8}), 5, aux_loss=True, dilated=None
        )
    finally:
        LAYERS.unregister("t-norm-seg")
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    r = m.swap_reports
    # backbone [1,1,1,1]: stem + 4 blocks × 3 + 4 downsample norms; head: ASPP 5 branches + project + 3×3; aux: 1
    assert (len(r["backbone"].norms), len(r["head"].norms), len(r["aux"].norms)) == (17, 7, 1)
    out = m(torch.randn(2, 3, 32, 32))
    assert out["out"].shape == (2, 5, 32, 32) and out["aux"].shape == (2, 5, 32, 32)


@pytest.mark.skipif("deconv" not in LAYERS.names(), reason="deconv family not registered")
def test_deconv_family_drops_into_deeplab():
    torch.manual_seed(0)
    m = build_segmenter(
        _Spec("deconv", {"layers": [1, 1, 1, 1], "width_per_group": 8}), 4, aux_loss=False, dilated=None
    )
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    y = m(torch.randn(2, 3, 24, 24))["out"]
    assert y.shape == (2, 4, 24, 24) and torch.isfinite(y).all()


# -- task end to end ---------------------------------------------------------------------------------------------


def run_suite(tmp_path, dataset, layer, task_options=None, epochs=2):
    opts = {"base_size": 32, "crop_size": 24, "workers": 0, "log_every": 1, **(task_options or {})}
    suite = {
        "name": "seg-test",
        "task": {"name": "segmentation", "options": opts},
        "dataset": dataset,
        "protocol": {
            "epochs": epochs,
            "batch_size": 2,
            "max_batches": 1,
            "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0001},
            "schedule": {"name": "constant"},
        },
        "backbones": [{"name": "tv-resnet50", "options": {"layers": [1, 1, 1, 1], "width_per_group": 8}}],
        "layers": [layer],
        "seeds": [0],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(suite))
    (spec,) = load_suite(path).expand()
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    return TASKS.get("segmentation").obj(spec, ctx, **spec.task["options"])


def test_segmentation_end_to_end_cityscapes_conv(tmp_path):
    write_cityscapes(tmp_path / "city", n_train=2, n_test=1, size=(32, 48), seed=0)
    r = run_suite(tmp_path, {"name": "cityscapes", "root": str(tmp_path / "city")}, "conv", {"aux_loss": True})
    m = r["metrics"]
    assert 0.0 <= m["miou"] <= 100.0 and 0.0 <= m["pixel_acc"] <= 100.0 and m["miou_best"] >= m["miou"]
    assert [h["epoch"] for h in r["history"]] == [1, 2] and all("test_miou" in h for h in r["history"])
    from bench.measure.measure import EPOCH_TIMING_FIELDS  # one training loop: the same timing fields as every task

    assert set(EPOCH_TIMING_FIELDS) <= set(r["timing"]) and r["history"][-1]["images_seen"] == 4
    assert r["curves"]["train_loss"]["x"] == [1, 2] and all(math.isfinite(v) for v in r["curves"]["train_loss"]["y"])
    assert r["history"][0]["lr"] < 0.01  # poly schedule decays the learning rate per iteration
    assert r["params"]["learned"] > 0 and r["macs"] > 0 and r["data"]["swapped"]["head"]["dilated"] == 3


def test_segmentation_end_to_end_voc_pnn_sliding(tmp_path):
    write_voc_segmentation(tmp_path / "voc", n_train=2, n_test=1, size=(28, 36), n_classes=3, seed=0)
    r = run_suite(
        tmp_path, {"name": "voc2012-seg", "root": str(tmp_path / "voc")}, "pnn", {"eval_mode": "sliding"}, epochs=1
    )
    assert r["params"]["fixed"] > 0 and 0.0 <= r["metrics"]["miou"] <= 100.0
    assert len(r["history"]) == 1 and math.isfinite(r["history"][0]["train_loss"])
