"""Detection: the VOC07 metric against hand-computed values, the VOC loader on generated VOC-format files,
and the Faster R-CNN task end to end on them (CPU, tiny sizes)."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from bench.zoo.datasets import load_dataset
from bench.zoo.datasets.voc import parse_voc_xml, write_voc_detection
from bench.spec.suite import load_suite
from bench.tasks import TASKS, RunContext
from bench.tasks.detection import area_ap, box_iou, evaluate_detections, scale_image, voc07_ap


# -- metric ---------------------------------------------------------------------------------------------------


def test_voc07_eleven_point_ap_by_hand():
    # recall reaches 0.5 at precision 1, then 1.0 at precision 0.5: t = 0..0.5 (6 points) → 1, t = 0.6..1 → 0.5
    assert voc07_ap([0.5, 1.0], [1.0, 0.5]) == pytest.approx((6 * 1.0 + 5 * 0.5) / 11)
    # t = 0, 0.1 → best precision 0.8; t = 0.2 → 0.6; t = 3·0.1 = 0.30000000000000004 (the devkit's float
    # threshold) is not reached by a recall of 0.3, nor is anything above → 0
    assert voc07_ap([0.1, 0.3], [0.8, 0.6]) == pytest.approx((0.8 + 0.8 + 0.6) / 11)
    assert voc07_ap([0.1, 0.31], [0.8, 0.6]) == pytest.approx((0.8 + 0.8 + 0.6 + 0.6) / 11)
    assert voc07_ap([], []) == 0.0


def test_area_ap_by_hand():
    assert area_ap([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    # precision envelope: the later, higher precision lifts the earlier dip
    assert area_ap([0.5, 0.5, 1.0], [1.0, 0.5, 0.6]) == pytest.approx(0.5 * 1.0 + 0.5 * 0.6)


def test_box_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    assert box_iou(a, b).flatten().tolist() == pytest.approx([1 / 7, 1.0, 0.0])
    # devkit convention on 1-based inclusive pixels: [1,1,2,2] is 2×2 pixels, overlap with [2,2,3,3] is 1 pixel
    assert box_iou(
        torch.tensor([[1.0, 1, 2, 2]]), torch.tensor([[2.0, 2, 3, 3]]), plus_one=True
    ).item() == pytest.approx(1 / 7)


def test_evaluate_detections_by_hand():
    # image 0: class 1 has A (normal) and B (difficult); class 2 has C. image 1: no objects.
    gt = [
        (
            torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
            torch.tensor([1, 1, 2]),
            torch.tensor([False, True, False]),
        ),
        (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool)),
    ]
    dets = [
        (
            torch.tensor(
                [
                    [60.0, 60, 70, 70],  # class 1, 0.9: no overlap → FP
                    [0.0, 0, 10, 10],  # class 1, 0.8: A → TP
                    [20.0, 20, 30, 30],  # class 1, 0.7: the difficult B → ignored
                    [0.0, 0, 10, 9.9],  # class 1, 0.6: A again → FP (duplicate)
                    [40.0, 40, 50, 45],
                ]
            ),  # class 2, 0.95: IoU exactly 0.5 → FP (needs > 0.5)
            torch.tensor([0.9, 0.8, 0.7, 0.6, 0.95]),
            torch.tensor([1, 1, 1, 1, 2]),
        ),
        (torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.85]), torch.tensor([1])),
    ]  # class 1 on image 1: FP
    r = evaluate_detections(dets, gt, num_classes=3)
    # class 1 ranking: 0.9 FP, 0.85 FP, 0.8 TP, (0.7 ignored), 0.6 FP; npos = 1
    # precision at recall 1 = 1/3, the best for every t → AP07 = 1/3
    assert r["npos"] == {1: 1, 2: 1, 3: 0}
    assert r["ap"][1] == pytest.approx(1 / 3)
    assert r["ap"][2] == 0.0
    assert r["ap"][3] is None and r["classes_scored"] == 2
    assert r["map"] == pytest.approx((1 / 3 + 0.0) / 2)
    assert r["ap_area"][1] == pytest.approx(1 / 3)


# -- data -----------------------------------------------------------------------------------------------------


def test_voc_xml_parsing(tmp_path):
    xml = (
        "<annotation><size><width>50</width><height>40</height><depth>3</depth></size>"
        "<object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax>"
        "<ymax>20</ymax></bndbox></object>"
        "<object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>"
        "<object><name>car</name><difficult>0</difficult><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax>"
        "<ymax>8</ymax></bndbox></object></annotation>"
    )
    f = tmp_path / "a.xml"
    f.write_text(xml)
    ann = parse_voc_xml(f)
    assert ann["size"] == (40, 50)
    assert ann["boxes"].tolist() == [[0.0, 1.0, 10.0, 20.0], [4.0, 5.0, 7.0, 8.0]]  # 1-based inclusive → continuous
    assert ann["labels"].tolist() == [12, 7]  # dog, car (1-based VOC order); unknown class skipped
    assert ann["difficult"].tolist() == [True, False]


def test_generated_voc_read_by_the_voc2007_loader(tmp_path):
    write_voc_detection(tmp_path, n_train=5, n_test=3, size=(40, 56), n_classes=3, difficult_every=2, seed=1)
    data = load_dataset("voc2007", tmp_path)
    assert len(data.train) == 5 and len(data.test) == 3 and data.num_classes == 20
    boxes = torch.cat([s.boxes for s in data.train + data.test])
    labels = torch.cat([s.labels for s in data.train + data.test])
    assert ((boxes[:, 0] >= 0) & (boxes[:, 2] <= 56) & (boxes[:, 1] >= 0) & (boxes[:, 3] <= 40)).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and set(labels.tolist()) <= {1, 2, 3}
    s = data.train[0]
    img = data.image(s)
    assert img.shape == (3, 40, 56) and img.dtype == torch.uint8 and s.size == (40, 56)
    # the drawn object differs from the dark background: its box centre is bright
    x1, y1, x2, y2 = s.boxes[0].long().tolist()
    assert img[:, (y1 + y2) // 2, (x1 + x2) // 2].float().max() > 100
    assert any(bool(x.difficult.any()) for x in data.train + data.test)
    assert len(data.subset(2, 1).train) == 2 and data.subset(2, 1).train == data.subset(2, 1).train


def test_scale_image_and_letterbox():
    img = torch.full((3, 30, 60), 255, dtype=torch.uint8)
    x, (sx, sy) = scale_image(img, min_size=20, max_size=100)
    assert x.shape == (3, 20, 40) and (sx, sy) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    x, (sx, sy) = scale_image(img, min_size=20, max_size=100, canvas=(32, 32))
    assert x.shape == (3, 32, 32) and sx == pytest.approx(32 / 60)
    assert x[:, :16, :].min() == pytest.approx(1.0) and x[0, 20:, :].max() == pytest.approx(0.485)


# -- task end to end -------------------------------------------------------------------------------------------


def run_suite(tmp_path, backbone, layer, task_options=None, epochs=1):
    root = tmp_path / "voc"
    if not root.exists():
        write_voc_detection(root, n_train=4, n_test=3, size=(48, 64), n_classes=2, seed=0)
    opts = {
        "min_size": 48,
        "max_size": 64,
        "anchor_sizes": [8, 16, 32],
        "rpn_batch": 16,
        "box_batch": 8,
        "rpn_pre_nms_train": 100,
        "rpn_post_nms_train": 20,
        "rpn_pre_nms_test": 50,
        "rpn_post_nms_test": 10,
        "workers": 0,
        **(task_options or {}),
    }
    suite = {
        "name": "det-test",
        "task": {"name": "detection", "options": opts},
        "dataset": {"name": "voc2007", "root": str(root)},
        "protocol": {
            "epochs": epochs,
            "batch_size": 2,
            "max_batches": 1,
            "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0001},
            "schedule": {"name": "constant"},
        },
        "backbones": [backbone],
        "layers": [layer],
        "seeds": [0],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(suite))
    (spec,) = load_suite(path).expand()
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    return TASKS.get("detection").obj(spec, ctx, **spec.task["options"])


def test_detection_end_to_end_vgg_conv(tmp_path):
    r = run_suite(tmp_path, {"name": "tv-vgg16", "options": {"width": 0.0625, "fc_dim": 32}}, "conv", epochs=2)
    assert set(r) >= {"metrics", "history", "params", "macs", "timing"}
    assert 0.0 <= r["metrics"]["map"] <= 100.0 and r["metrics"]["classes_scored"] >= 1
    assert len(r["history"]) == 2 and math.isfinite(r["history"][-1]["train_loss"])
    assert "test_map" in r["history"][-1] and "test_map" not in r["history"][0]
    assert {"train_loss_classifier", "train_loss_objectness"} <= set(r["history"][0])
    assert r["data"]["swapped"]["spatial"] == 13 and r["params"]["fixed"] == 0 and r["macs"] > 0
    from bench.measure.measure import EPOCH_TIMING_FIELDS  # one training loop: the same timing fields as every task

    assert set(EPOCH_TIMING_FIELDS) <= set(r["timing"]) and r["timing"]["steps_per_epoch"] == 1


def test_detection_end_to_end_resnet_pnn_with_canvas(tmp_path):
    r = run_suite(
        tmp_path,
        {"name": "tv-resnet50", "options": {"layers": [1, 1, 1, 1], "width_per_group": 8}},
        {"name": "pnn", "options": {"fanout": 1}},
        task_options={"canvas": [48, 48]},
    )
    assert r["params"]["fixed"] > 0  # PNN's noise masks
    assert r["data"]["swapped"]["spatial"] == 5 and r["data"]["canvas"] == [48, 48]
    assert 0.0 <= r["metrics"]["map"] <= 100.0 and math.isfinite(r["metrics"]["train_loss"])
