"""VOC AP cross-checked against an independent implementation: pycocotools' COCOeval at IoU 0.5.

COCOeval interpolates precision at 101 recall points; the harness's area AP (VOC2010+, all points) is the
same integral without sampling, so on the same detections the two agree to within the sampling error; the
11-point VOC07 AP is a coarser sampling of the same envelope. Boxes are continuous and ground-truth boxes of
one class never overlap, so the two matching rules (devkit: best IoU, then "used?"; COCO: best unused) agree."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

from bench.tasks.detection import evaluate_detections


def synthetic(seed=0, images=40, classes=3):
    g = torch.Generator().manual_seed(seed)
    gt, det = [], []
    for _ in range(images):
        n = int(torch.randint(1, 4, (1,), generator=g))
        boxes, labels = [], []
        for j in range(n):  # disjoint cells of a 4×1 grid: no two ground-truth boxes overlap
            x0 = 100.0 * j + 10 * float(torch.rand(1, generator=g))
            y0 = 10 * float(torch.rand(1, generator=g))
            w, h = 40 + 40 * float(torch.rand(1, generator=g)), 40 + 40 * float(torch.rand(1, generator=g))
            boxes.append([x0, y0, x0 + min(w, 85.0), y0 + h])
            labels.append(int(torch.randint(1, classes + 1, (1,), generator=g)))
        boxes, labels = torch.tensor(boxes), torch.tensor(labels)
        gt.append((boxes, labels, torch.zeros(n, dtype=torch.bool)))
        d_boxes, d_scores, d_labels = [], [], []
        for b, l in zip(boxes, labels):  # a jittered hit (sometimes a miss), sometimes a duplicate
            for _ in range(1 + int(torch.rand(1, generator=g) < 0.3)):
                jitter = (torch.rand(4, generator=g) - 0.5) * 30
                d_boxes.append((b + jitter).tolist())
                d_scores.append(float(torch.rand(1, generator=g)))
                d_labels.append(int(l) if torch.rand(1, generator=g) < 0.85 else int(l) % classes + 1)
        for _ in range(int(torch.randint(0, 3, (1,), generator=g))):  # background false positives
            x0, y0 = 400 * float(torch.rand(1, generator=g)), 200 + 50 * float(torch.rand(1, generator=g))
            d_boxes.append([x0, y0, x0 + 50, y0 + 50])
            d_scores.append(float(torch.rand(1, generator=g)))
            d_labels.append(int(torch.randint(1, classes + 1, (1,), generator=g)))
        det.append((torch.tensor(d_boxes), torch.tensor(d_scores), torch.tensor(d_labels)))
    return gt, det


def coco_ap(gt, det, classes):
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    import numpy as np

    images = [{"id": i + 1, "width": 500, "height": 300} for i in range(len(gt))]
    anns, k = [], 1
    for i, (boxes, labels, _) in enumerate(gt):
        for b, l in zip(boxes.tolist(), labels.tolist()):
            anns.append(
                {
                    "id": k,
                    "image_id": i + 1,
                    "category_id": l,
                    "iscrowd": 0,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "area": (b[2] - b[0]) * (b[3] - b[1]),
                }
            )
            k += 1
    dets = [
        {"image_id": i + 1, "category_id": l, "score": s, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
        for i, (boxes, scores, labels) in enumerate(det)
        for b, s, l in zip(boxes.tolist(), scores.tolist(), labels.tolist())
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        cg = coco_mod.COCO()
        cg.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in range(1, classes + 1)]}
        cg.createIndex()
        cd = cg.loadRes(dets)
        ev = cocoeval_mod.COCOeval(cg, cd, "bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.params.maxDets = [1, 10, 1000]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][0, :, :, 0, 2]  # (recall thresholds, classes) at area "all", maxDets 1000
    return {c + 1: float(prec[:, c][prec[:, c] > -1].mean()) for c in range(classes)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voc_ap_agrees_with_pycocotools_at_iou_half(seed):
    gt, det = synthetic(seed)
    ours = evaluate_detections(det, gt, 3, iou_threshold=0.5)
    coco = coco_ap(gt, det, 3)
    for c in range(1, 4):
        assert ours["ap_area"][c] == pytest.approx(coco[c], abs=0.015), (c, ours["ap_area"][c], coco[c])
        assert ours["ap"][c] == pytest.approx(coco[c], abs=0.06)  # 11 samples of the same envelope
    # the detections are not trivial: some classes are far from perfect
    assert min(ours["ap_area"].values()) < 0.95
