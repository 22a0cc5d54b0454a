"""Object detection (`000_…` §5.4, Table 7): Faster R-CNN whose backbone's convolutions are the family's.

Model (torchvision pieces, no pretrained weights): the registered backbone (``tv-vgg16``, ``tv-resnet50``,
``tv-resnet101``: torchvision classifiers with the family swapped in by :func:`bench.zoo.backbones.swap.swap_layers`)
is cut as in the classic single-scale Faster R-CNN the table's numbers come from:

* VGG-16: conv1_1…conv5_3 (stride 16, last max-pool dropped) → RPN; RoI head = fc6, fc7 (4096-d);
* ResNet: conv1…layer3 (C4, stride 16) → RPN; RoI head = layer4 + global average pooling (2048-d);

RoIs are pooled with torchvision's ``MultiScaleRoIAlign`` (one level, 7×7, "with ROI align" in the text);
anchors 128/256/512 × ratios 0.5/1/2 (9 per location); images scaled so the shorter side is 600 px (longer
≤ 1000) — "scale=600, batchsize=1" — with horizontal flips in training when the protocol's ``augment``
lists ``flip``; difficult objects are left out of
training and ignored by the metric. The metric is the VOC07 11-point interpolated AP at IoU 0.5 (implemented
here, :func:`voc07_ap` / :func:`evaluate_detections`), averaged over the classes present in the test set.

Deviations (all recorded with the run): the networks train from scratch (``weights=None``; the document's
backbones were ImageNet-pretrained: pass ``backbone_weights`` = a local state-dict file to start from one),
so measured mAP is not expected to reach Table 7; the RPN's 3×3 conv stays a standard convolution unless
``swap_rpn`` (the text replaces "the convolution layers" of the CNN architectures). Families whose fixed
tensors take the input's size (PNN's masks) need one input size: ``canvas=[H, W]`` letterboxes every image
(aspect kept, padded with the mean colour) into that canvas.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.backbones.swap import swap_layers
from bench.errors import RunFailed
from bench.execution.loop import fit
from bench.measure.measure import Clock, count_macs, count_parameters, peak_memory, reset_peak_memory
from bench.tasks import TASKS, RunContext
from bench.execution.train import lr_factor, make_optimizer
from bench.spec.schema import POSITIVE

COLUMNS = (
    ("map", "mAP VOC07 (%)", True, ".1f"),
    ("map_area", "mAP area (%)", True, ".1f"),
)
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]


# -- metric -----------------------------------------------------------------------------------------------


def voc07_ap(recall, precision) -> float:
    """VOC2007 11-point interpolated AP: mean over t ∈ {0, 0.1, …, 1} of the highest precision at recall ≥ t
    (0 where recall never reaches t). The thresholds are the devkit's floating-point k·0.1 (MATLAB ``0:0.1:1``,
    Python ``np.arange(0, 1.1, 0.1)``), so e.g. a recall of exactly 3/10 does not reach t = 0.30000000000000004."""
    rec = torch.as_tensor(recall, dtype=torch.float64)
    prec = torch.as_tensor(precision, dtype=torch.float64)
    ap = 0.0
    for t in [k * 0.1 for k in range(11)]:
        sel = prec[rec >= t]
        ap += float(sel.max()) if sel.numel() else 0.0
    return ap / 11.0


def area_ap(recall, precision) -> float:
    """VOC2010+ AP: area under the precision envelope (precision made monotone from the right)."""
    rec = torch.cat(
        [
            torch.zeros(1, dtype=torch.float64),
            torch.as_tensor(recall, dtype=torch.float64),
            torch.ones(1, dtype=torch.float64),
        ]
    )
    prec = torch.cat(
        [
            torch.zeros(1, dtype=torch.float64),
            torch.as_tensor(precision, dtype=torch.float64),
            torch.zeros(1, dtype=torch.float64),
        ]
    )
    prec = torch.flip(torch.cummax(torch.flip(prec, [0]), 0).values, [0])
    idx = torch.nonzero(rec[1:] != rec[:-1]).flatten()
    return float(((rec[idx + 1] - rec[idx]) * prec[idx + 1]).sum())


def box_iou(a: torch.Tensor, b: torch.Tensor, plus_one: bool = False) -> torch.Tensor:
    """IoU matrix of (N, 4) and (M, 4) [x1, y1, x2, y2] boxes; ``plus_one`` is the devkit's inclusive-pixel
    convention (width = x2 − x1 + 1) for boxes given as 1-based pixel indices."""
    e = 1.0 if plus_one else 0.0
    a, b = a.double(), b.double()
    area_a = (a[:, 2] - a[:, 0] + e).clamp(min=0) * (a[:, 3] - a[:, 1] + e).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0] + e).clamp(min=0) * (b[:, 3] - b[:, 1] + e).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt + e).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def evaluate_detections(
    detections: list, ground_truth: list, num_classes: int, iou_threshold: float = 0.5, plus_one: bool = False
) -> dict:
    """PASCAL VOC detection evaluation.

    ``detections[i]`` = (boxes (K, 4), scores (K,), labels (K,)) and ``ground_truth[i]`` = (boxes, labels,
    difficult) for image i; labels are 1..num_classes. Per class, detections of all images are ranked by
    score; each is a true positive if its highest-IoU ground truth box of that class in its image has
    IoU > threshold (the devkit's ``ovmax > ovthresh``) and was not matched before, ignored if that box is
    difficult, else a false positive. Returns per-class 11-point and area APs (None for a class without
    non-difficult ground truth) and their means over the classes that have some.
    """
    ap07, aparea, npos_all = {}, {}, {}
    for c in range(1, num_classes + 1):
        gts = []
        npos = 0
        for boxes, labels, difficult in ground_truth:
            m = labels == c
            diff = difficult[m].bool() if difficult is not None else torch.zeros(int(m.sum()), dtype=torch.bool)
            gts.append((boxes[m], diff, torch.zeros(int(m.sum()), dtype=torch.bool)))
            npos += int((~diff).sum())
        scores, img_idx, boxes = [], [], []
        for i, (b, s, l) in enumerate(detections):
            m = l == c
            if m.any():
                scores.append(s[m].double())
                boxes.append(b[m])
                img_idx.append(torch.full((int(m.sum()),), i, dtype=torch.long))
        npos_all[c] = npos
        if npos == 0:
            ap07[c] = aparea[c] = None
            continue
        if not scores:
            ap07[c] = aparea[c] = 0.0
            continue
        scores, boxes, img_idx = torch.cat(scores), torch.cat(boxes), torch.cat(img_idx)
        order = torch.argsort(-scores, stable=True)
        tp = torch.zeros(len(order), dtype=torch.float64)
        fp = torch.zeros(len(order), dtype=torch.float64)
        for rank, d in enumerate(order.tolist()):
            gb, gdiff, used = gts[int(img_idx[d])]
            if len(gb) == 0:
                fp[rank] = 1
                continue
            iou = box_iou(boxes[d : d + 1], gb, plus_one)[0]
            best, j = float(iou.max()), int(iou.argmax())
            if best > iou_threshold:
                if gdiff[j]:
                    continue
                if not used[j]:
                    used[j] = True
                    tp[rank] = 1
                else:
                    fp[rank] = 1
            else:
                fp[rank] = 1
        tp, fp = torch.cumsum(tp, 0), torch.cumsum(fp, 0)
        rec = tp / npos
        prec = tp / (tp + fp).clamp(min=1e-12)
        ap07[c], aparea[c] = voc07_ap(rec, prec), area_ap(rec, prec)
    scored = [c for c in ap07 if ap07[c] is not None]
    mean = lambda d: sum(d[c] for c in scored) / len(scored) if scored else 0.0
    return {
        "map": mean(ap07),
        "map_area": mean(aparea),
        "ap": ap07,
        "ap_area": aparea,
        "npos": npos_all,
        "classes_scored": len(scored),
    }


# -- model ------------------------------------------------------------------------------------------------


class Trunk(nn.Module):
    """The shared feature extractor (stride 16) with the ``out_channels`` torchvision's detectors read."""

    def __init__(self, body: nn.Module, out_channels: int):
        super().__init__()
        self.body = body
        self.out_channels = out_channels

    def forward(self, x):
        return self.body(x)


class PooledHead(nn.Module):
    """ResNet RoI head: the last stage on each pooled RoI, then global average pooling."""

    def __init__(self, stage: nn.Module):
        super().__init__()
        self.stage = stage

    def forward(self, x):
        return self.stage(x).mean(dim=(2, 3))


def no_resize_transform(min_size, max_size, mean, std) -> nn.Module:
    """torchvision's GeneralizedRCNNTransform minus resizing: images arrive already scaled (and, with a
    canvas, letterboxed) by the data pipeline, so box coordinates stay those of the pipeline."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class NoResizeTransform(GeneralizedRCNNTransform):
        def resize(self, image, target=None):
            return image, target

    return NoResizeTransform(min_size, max_size, mean, std)


def _feature_channels(module: nn.Module, in_hw=(64, 64)) -> int:
    probe = copy.deepcopy(module).eval()
    with torch.no_grad():
        return int(probe(torch.zeros(1, 3, *in_hw)).shape[1])


def detection_parts(trunk_model: nn.Module) -> tuple[nn.Module, int, nn.Module, int]:
    """Cut a torchvision VGG / ResNet classifier into (features, channels, RoI head, representation size)."""
    from torchvision.models import VGG, ResNet

    if isinstance(trunk_model, VGG):
        body = trunk_model.features[:-1]  # drop pool5: stride 16
        head = nn.Sequential(nn.Flatten(), *list(trunk_model.classifier.children())[:-1])  # fc6, fc7
        fc7 = [m for m in head.modules() if hasattr(m, "out_features")]
        rep = fc7[-1].out_features if fc7 else None
    elif isinstance(trunk_model, ResNet):
        t = trunk_model
        body = nn.Sequential(t.conv1, t.bn1, t.relu, t.maxpool, t.layer1, t.layer2, t.layer3)  # C4
        head = PooledHead(t.layer4)
        rep = None
    else:
        raise RunFailed(f"detection needs a torchvision VGG or ResNet backbone, got {type(trunk_model).__name__}")
    channels = _feature_channels(body)
    if rep is None:
        probe = copy.deepcopy(head).eval()
        with torch.no_grad():
            rep = int(probe(torch.zeros(2, channels, 7, 7)).shape[1])
    return body, channels, head, rep


def build_detector(
    spec,
    num_classes: int,
    *,
    min_size: int,
    max_size: int,
    anchor_sizes,
    roi_size: int,
    rpn_batch: int,
    box_batch: int,
    rpn_pre_nms_train: int,
    rpn_post_nms_train: int,
    rpn_pre_nms_test: int,
    rpn_post_nms_test: int,
    test_nms: float,
    swap_rpn: bool,
    backbone_weights: str | None,
) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.rpn import RPNHead
    from torchvision.ops import MultiScaleRoIAlign

    layer = spec.layer
    ops = Ops.of(layer["name"], layer.get("options"), layer.get("stem"))
    trunk_model = build_backbone(spec.backbone["name"], ops, 3, 1000, spec.backbone.get("options"))
    if backbone_weights:
        state = torch.load(backbone_weights, map_location="cpu", weights_only=True)
        trunk_model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state, strict=False)
    body, channels, head, rep = detection_parts(trunk_model)
    ratios = (0.5, 1.0, 2.0)
    rpn_head = RPNHead(channels, len(anchor_sizes) * len(ratios))
    if swap_rpn:
        swap_layers(rpn_head, ops)
    model = FasterRCNN(
        Trunk(body, channels),
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        rpn_anchor_generator=AnchorGenerator(sizes=(tuple(anchor_sizes),), aspect_ratios=(ratios,)),
        rpn_head=rpn_head,
        rpn_pre_nms_top_n_train=rpn_pre_nms_train,
        rpn_post_nms_top_n_train=rpn_post_nms_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_test,
        rpn_post_nms_top_n_test=rpn_post_nms_test,
        rpn_batch_size_per_image=rpn_batch,
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=roi_size, sampling_ratio=2),
        box_head=head,
        box_predictor=FastRCNNPredictor(rep, num_classes + 1),
        box_score_thresh=0.0,
        box_nms_thresh=test_nms,
        box_detections_per_img=100,
        box_batch_size_per_image=box_batch,
    )
    model.transform = no_resize_transform(min_size, max_size, IMAGE_MEAN, IMAGE_STD)
    model.swap_report = getattr(trunk_model, "swap_report", None)
    return model


# -- data pipeline -----------------------------------------------------------------------------------------


def scale_image(img_u8: torch.Tensor, min_size: int, max_size: int, canvas=None):
    """uint8 (3, H, W) → float image scaled so the shorter side is ``min_size`` (longer ≤ ``max_size``), and
    letterboxed into ``canvas`` = (H, W) if given; returns the image and the (x, y) scale factors."""
    h, w = img_u8.shape[-2:]
    s = min(min_size / min(h, w), max_size / max(h, w))
    if canvas is not None:
        s = min(s, canvas[0] / h, canvas[1] / w)
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    x = img_u8.float().div(255).unsqueeze(0)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=s < 1)
    x = x[0]
    if canvas is not None:
        out = torch.tensor(IMAGE_MEAN).view(3, 1, 1).expand(3, canvas[0], canvas[1]).clone()
        out[:, :nh, :nw] = x
        x = out
    return x, (nw / w, nh / h)


class VOCTorchDataset(torch.utils.data.Dataset):
    def __init__(
        self, data, samples, train: bool, min_size, max_size, canvas, use_difficult: bool, seed: int, flip: bool = True
    ):
        self.data, self.train, self.seed, self.flip = data, train, seed, flip
        self.min_size, self.max_size, self.canvas = min_size, max_size, canvas
        self.samples = samples
        if train:  # like the reference implementations: train on images with a usable object only
            keep = []
            for s in samples:
                m = torch.ones_like(s.difficult) if use_difficult else ~s.difficult
                if int(m.sum()):
                    keep.append((s, m))
            self.items = keep
        else:
            self.items = [(s, None) for s in samples]
        self.epoch = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        s, m = self.items[i]
        img, (sx, sy) = scale_image(self.data.image(s), self.min_size, self.max_size, self.canvas)
        if not self.train:
            return img, {"index": i, "scale": (sx, sy)}
        boxes = s.boxes[m] * torch.tensor([sx, sy, sx, sy])
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 10_007 + i)
        if self.flip and torch.rand((), generator=g) < 0.5:  # horizontal flip of the scaled content
            w = int(round(s.size[1] * sx)) if s.size[1] else img.shape[-1]
            w = min(w, img.shape[-1])
            img = img.clone()
            img[:, :, :w] = img[:, :, :w].flip(-1)
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        return img, {"boxes": boxes, "labels": s.labels[m]}


def _collate(batch):
    return [b[0] for b in batch], [b[1] for b in batch]


def _loader(ds, batch_size, shuffle, workers, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=_collate,
        generator=g,
        persistent_workers=False,
    )


@torch.no_grad()
def predict(model, loader, ds, device) -> tuple[list, float, int]:
    model.eval()
    clock = Clock(device)
    out, seconds, n = [None] * len(ds), 0.0, 0
    for images, metas in loader:
        images = [im.to(device) for im in images]
        t0 = clock.start()
        res = model(images)
        seconds += clock.stop(t0)
        n += len(images)
        for r, meta in zip(res, metas):
            sx, sy = meta["scale"]
            s = ds.items[meta["index"]][0]
            b = r["boxes"].float().cpu() / torch.tensor([sx, sy, sx, sy])
            h, w = s.size
            if h and w:  # back in the original image's frame
                b[:, 0::2] = b[:, 0::2].clamp(0, w)
                b[:, 1::2] = b[:, 1::2].clamp(0, h)
            out[meta["index"]] = (b, r["scores"].float().cpu(), r["labels"].cpu())
    model.train()
    return out, seconds, n


# -- task -------------------------------------------------------------------------------------------------


@TASKS.register(
    "detection",
    needs="detection-trunk",
    document="000 §5.4 Table 7",
    columns=COLUMNS,
    primary="map",
    metrics=("map", "map_area", "train_loss", "classes_scored", "ap_*"),
    smoke_datasets=("voc-smoke",),
    summary="Faster R-CNN (torchvision, RoI align) with the family in its backbone; VOC07 11-point mAP.",
    ranges={
        "min_size": POSITIVE,
        "max_size": POSITIVE,
        "roi_size": POSITIVE,
        "rpn_batch": POSITIVE,
        "box_batch": POSITIVE,
    },
)
def detection(
    spec,
    ctx: RunContext,
    *,
    min_size=600,
    max_size=1000,
    canvas=None,
    anchor_sizes=(128, 256, 512),
    roi_size=7,
    rpn_batch=256,
    box_batch=128,
    rpn_pre_nms_train=12000,
    rpn_post_nms_train=2000,
    rpn_pre_nms_test=6000,
    rpn_post_nms_test=300,
    test_nms=0.3,
    swap_rpn=False,
    use_difficult=False,
    eval_every=0,
    workers=4,
    amp=False,
    backbone_weights=None,
):
    device = ctx.device
    proto = spec.protocol
    data = ctx.dataset(spec).subset(proto.get("train_subset"), proto.get("test_subset"))
    canvas = tuple(canvas) if canvas else None
    torch.manual_seed(spec.seed)
    model = build_detector(
        spec,
        data.num_classes,
        min_size=min_size,
        max_size=max_size,
        anchor_sizes=anchor_sizes,
        roi_size=roi_size,
        rpn_batch=rpn_batch,
        box_batch=box_batch,
        rpn_pre_nms_train=rpn_pre_nms_train,
        rpn_post_nms_train=rpn_post_nms_train,
        rpn_pre_nms_test=rpn_pre_nms_test,
        rpn_post_nms_test=rpn_post_nms_test,
        test_nms=test_nms,
        swap_rpn=swap_rpn,
        backbone_weights=backbone_weights,
    )
    flip = "flip" in proto.get("augment", ())
    train_ds = VOCTorchDataset(data, data.train, True, min_size, max_size, canvas, use_difficult, spec.seed, flip)
    test_ds = VOCTorchDataset(data, data.test, False, min_size, max_size, canvas, use_difficult, spec.seed)
    if len(train_ds) == 0 or len(test_ds) == 0:
        raise RunFailed("no training images with objects, or no test images")

    # one example at the input size the trunk will see (batch padded to a multiple of 32), to materialise
    # input-sized fixed tensors and count the trunk's MACs
    ex_img = test_ds[0][0]
    ph, pw = (math.ceil(d / 32) * 32 for d in ex_img.shape[-2:])
    example = torch.zeros(1, 3, ph, pw)
    model.eval()
    with torch.no_grad():
        model.backbone(example)
    model.train()
    model = model.to(device)
    params = count_parameters(model)
    macs = count_macs(model.backbone, example.to(device))

    bs, epochs = proto["batch_size"], proto["epochs"]
    steps = math.ceil(len(train_ds) / bs)
    if proto.get("max_batches"):
        steps = min(steps, proto["max_batches"])
    opt = make_optimizer(model, proto["optimizer"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(proto["schedule"], epochs, steps))
    test_loader = _loader(test_ds, proto.get("eval_batch_size", 1) if device.type == "cuda" else 1, False, workers, 0)
    gt = [(s.boxes, s.labels, s.difficult) for s, _ in test_ds.items]
    reset_peak_memory(device)
    last: dict = {}

    def train_epoch(epoch: int) -> dict:
        train_ds.epoch = epoch
        sums, count = {}, 0
        for step, (images, targets) in enumerate(_loader(train_ds, bs, True, workers, spec.seed * 1000 + epoch)):
            if step >= steps:
                break
            images = [im.to(device, non_blocking=True) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
                losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):  # before the step: a detector's loss can be non-finite in one step only
                raise RunFailed(f"training loss became {float(loss)} in epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(images)
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * len(images)
            count += len(images)
        return {
            "train_loss": sums.get("loss", 0.0) / max(1, count),
            "images": count,
            **{f"train_{k}": v / max(1, count) for k, v in sums.items() if k != "loss"},
            "lr": opt.param_groups[0]["lr"],
        }

    def evaluate_epoch(epoch: int) -> dict | None:
        if not ((eval_every and epoch % eval_every == 0) or epoch == epochs):
            return None
        dets, eval_s, n_eval = predict(model, test_loader, test_ds, device)
        last.update(result=evaluate_detections(dets, gt, data.num_classes), eval_s=eval_s, n_eval=n_eval)
        return {
            "test_map": 100 * last["result"]["map"],
            "test_map_area": 100 * last["result"]["map_area"],
            "eval_s": eval_s,
        }

    model.train()
    fitted = fit(
        epochs,
        train_epoch,
        device=device,
        steps=steps,
        evaluate=evaluate_epoch,
        progress=ctx.progress,
        desc=f"{spec.backbone['name']}/{spec.label}/s{spec.seed}",
    )
    history = fitted["history"]
    result, eval_s, n_eval = last["result"], last["eval_s"], last["n_eval"]
    memory = peak_memory(device)
    metrics = {
        "map": 100 * result["map"],
        "map_area": 100 * result["map_area"],
        "train_loss": history[-1]["train_loss"],
        "classes_scored": result["classes_scored"],
    }
    for c, ap in result["ap"].items():
        if ap is not None:
            metrics[f"ap_{data.classes[c - 1]}"] = 100 * ap
    timing = {
        **fitted["timing"],
        "eval_s": eval_s,
        "eval_images": n_eval,
        "throughput_img_s": n_eval / eval_s if eval_s > 0 else None,
        "throughput_note": "whole-detector inference on the test set (batch 1 on CPU)",
    }
    report = model.swap_report.counts() if model.swap_report is not None else None
    return {
        "metrics": metrics,
        "history": history,
        "params": params,
        "macs": macs,
        "timing": timing,
        "memory": memory,
        "data": {
            "train": len(train_ds),
            "test": len(test_ds),
            "source": data.source,
            "macs_scope": f"shared trunk only, one {ph}×{pw} input",
            "swapped": report,
            "canvas": list(canvas) if canvas else None,
            "min_size": min_size,
            "max_size": max_size,
        },
    }
