"""Semantic segmentation (`003_…` appendix A.2): DeepLabV3 with a ResNet backbone, the family swapped in.

Model: torchvision's DeepLabV3 pieces, built with no pretrained weights — the registered ResNet backbone
(``tv-resnet50``) with ``replace_stride_with_dilation=[False, True, True]`` (output stride 8) and the
``DeepLabHead`` (ASPP 12/24/36 + 3×3 + 1×1), optionally the FCN auxiliary head. Backbone *and* head go
through :func:`bench.zoo.backbones.swap.swap_layers`, so a family with a ``norm`` hook (network deconvolution)
replaces every batch normalisation in both ("we remove the batch normalization layers in both the backbone
network and the head network and pre-apply deconvolutions in all the convolution layers"), and dilated
convolutions are handled by the swap's ``dilated`` policy (default: exact space-to-batch).

Protocol (the text: "all settings are the same with the official PyTorch recipe except … learning rate
0.1", 30 epochs, batch 8, crop 480, trained from scratch): torchvision's reference recipe — random resize of
the shorter side to [0.5, 2]× ``base_size`` (520), horizontal flip (when the protocol's ``augment`` lists
``flip``), random ``crop_size`` (480) crop (image
padded with 0, mask with 255), ImageNet mean/std; test images resized to ``base_size``; cross-entropy with
ignore index 255 (+0.5× auxiliary loss, aux head at 10× lr); SGD, weight decay 1e-4, and the poly schedule
(1 − it/total)^0.9 (``schedule="poly"``; ``"protocol"`` uses the suite's schedule instead).

Metrics (computed here from a confusion matrix, :func:`confusion_matrix` / :func:`segmentation_scores`):
mean IoU over the classes present in ground truth or prediction, pixel accuracy, mean class accuracy, each
after every ``eval_every`` epochs (the history: the document's Fig. 6 curves), and the training-loss curve
per iteration (``curves``). ``eval_mode="sliding"`` evaluates on crop-sized tiles (needed by families whose
fixed tensors take the input's size, e.g. PNN's masks); ``"whole"`` (default) is the recipe's whole image.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops, build_backbone
from bench.zoo.backbones.swap import swap_layers
from bench.errors import RunFailed
from bench.execution.loop import fit
from bench.measure.measure import Clock, count_macs, count_parameters, peak_memory, reset_peak_memory
from bench.tasks import TASKS, RunContext
from bench.execution.train import lr_factor
from bench.spec.schema import POSITIVE

COLUMNS = (
    ("miou", "mIoU (%)", True, ".1f"),
    ("pixel_acc", "Pixel acc. (%)", True, ".1f"),
    ("miou_best", "Best mIoU (%)", True, ".1f"),
)
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]


# -- metrics ------------------------------------------------------------------------------------------------


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """(C, C) int64 counts, rows = ground truth, columns = prediction; pixels whose target is
    ``ignore_index`` (or outside 0..C−1) are not counted."""
    t, p = target.flatten().long(), pred.flatten().long()
    keep = (t >= 0) & (t < num_classes) & (t != ignore_index)
    return (
        torch.bincount(t[keep] * num_classes + p[keep], minlength=num_classes**2)
        .reshape(num_classes, num_classes)
        .cpu()
    )


def segmentation_scores(cm: torch.Tensor) -> dict:
    """Pixel accuracy, mean class accuracy, per-class IoU and mean IoU (fractions) from a confusion matrix.
    A class that appears in neither ground truth nor prediction has no IoU (None) and is left out of the mean."""
    cm = cm.double()
    tp = cm.diag()
    gt, pr = cm.sum(1), cm.sum(0)
    union = gt + pr - tp
    total = cm.sum()
    iou = [float(tp[i] / union[i]) if union[i] > 0 else None for i in range(len(tp))]
    acc = [float(tp[i] / gt[i]) if gt[i] > 0 else None for i in range(len(tp))]
    valid = [v for v in iou if v is not None]
    valid_acc = [v for v in acc if v is not None]
    return {
        "pixel_acc": float(tp.sum() / total) if total > 0 else 0.0,
        "mean_acc": sum(valid_acc) / len(valid_acc) if valid_acc else 0.0,
        "miou": sum(valid) / len(valid) if valid else 0.0,
        "iou": iou,
    }


# -- model --------------------------------------------------------------------------------------------------


def build_segmenter(spec, num_classes: int, aux_loss: bool, dilated: str | None) -> nn.Module:
    from torchvision.models import ResNet
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
    from torchvision.models.segmentation.fcn import FCNHead

    layer = spec.layer
    ops = Ops.of(layer["name"], layer.get("options"), layer.get("stem"))
    name = spec.backbone["name"]
    opts = dict(spec.backbone.get("options") or {})
    entry = BACKBONES.get(name)
    if "replace_stride_with_dilation" not in entry.defaults:
        raise RunFailed(
            f"segmentation needs a ResNet backbone with replace_stride_with_dilation (tv-resnet50 …), not {name!r}"
        )
    opts["replace_stride_with_dilation"] = [False, True, True]
    if dilated is not None:
        opts["dilated"] = dilated
    policy = entry.options(opts).get("dilated", "space-to-batch")
    trunk = build_backbone(name, ops, 3, 1000, opts)
    if not isinstance(trunk, ResNet):
        raise RunFailed(f"segmentation needs a torchvision ResNet backbone, got {type(trunk).__name__}")
    channels = trunk.inplanes  # channels out of layer4 (torchvision keeps the running value)
    returns = {"layer4": "out"}
    if aux_loss:
        returns["layer3"] = "aux"
    backbone = IntermediateLayerGetter(trunk, return_layers=returns)
    head = DeepLabHead(channels, num_classes)
    reports = {"backbone": trunk.swap_report, "head": swap_layers(head, ops, dilated=policy)}
    aux = None
    if aux_loss:
        aux = FCNHead(channels // 2, num_classes)
        reports["aux"] = swap_layers(aux, ops, dilated=policy)
    model = DeepLabV3(backbone, head, aux)
    model.swap_reports = reports
    return model


class OutOnly(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


# -- data ---------------------------------------------------------------------------------------------------


def _normalise(img_u8: torch.Tensor) -> torch.Tensor:
    x = img_u8.float().div(255)
    return (x - torch.tensor(IMAGE_MEAN).view(3, 1, 1)) / torch.tensor(IMAGE_STD).view(3, 1, 1)


def _resize_pair(img: torch.Tensor, mask: torch.Tensor, short: int):
    h, w = img.shape[-2:]
    s = short / min(h, w)
    size = (max(1, int(round(h * s))), max(1, int(round(w * s))))
    if size == (h, w):
        return img, mask
    img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False, antialias=s < 1)[0]
    mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0].long()
    return img, mask


class SegTorchDataset(torch.utils.data.Dataset):
    def __init__(self, data, samples, train: bool, base_size: int, crop_size: int, seed: int, flip: bool = True):
        self.data, self.samples, self.train, self.flip = data, samples, train, flip
        self.base_size, self.crop_size, self.seed, self.epoch = base_size, crop_size, seed, 0

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        img_u8, mask = self.data.load(self.samples[i])
        img = _normalise(img_u8)
        if not self.train:
            return _resize_pair(img, mask, self.base_size)
        rng = random.Random(self.seed * 1_000_003 + self.epoch * 10_007 + i)
        img, mask = _resize_pair(img, mask, rng.randint(int(0.5 * self.base_size), int(2.0 * self.base_size)))
        if rng.random() < 0.5 and self.flip:
            img, mask = img.flip(-1), mask.flip(-1)
        c = self.crop_size
        h, w = mask.shape
        if h < c or w < c:
            img = F.pad(img, (0, max(0, c - w), 0, max(0, c - h)), value=0.0)
            mask = F.pad(mask, (0, max(0, c - w), 0, max(0, c - h)), value=255)
            h, w = mask.shape
        y, x = rng.randint(0, h - c), rng.randint(0, w - c)
        return img[:, y : y + c, x : x + c], mask[y : y + c, x : x + c]


def _collate_pad(batch):
    """Stack, padding to the largest image (image with 0, mask with 255), as torchvision's recipe does."""
    h = max(b[0].shape[-2] for b in batch)
    w = max(b[0].shape[-1] for b in batch)
    imgs = torch.zeros(len(batch), 3, h, w)
    masks = torch.full((len(batch), h, w), 255, dtype=torch.long)
    for k, (im, m) in enumerate(batch):
        imgs[k, :, : im.shape[-2], : im.shape[-1]] = im
        masks[k, : m.shape[-2], : m.shape[-1]] = m
    return imgs, masks


def sliding_logits(model, x: torch.Tensor, num_classes: int, tile: int) -> torch.Tensor:
    """Average logits over tile×tile windows (stride 2/3 of a tile); the image is zero-padded to ≥ one tile."""
    b, _, h, w = x.shape
    ph, pw = max(h, tile), max(w, tile)
    xp = F.pad(x, (0, pw - w, 0, ph - h))
    stride = max(1, (2 * tile) // 3)
    ys = list(range(0, ph - tile + 1, stride))
    xs = list(range(0, pw - tile + 1, stride))
    if ys[-1] != ph - tile:
        ys.append(ph - tile)
    if xs[-1] != pw - tile:
        xs.append(pw - tile)
    out = torch.zeros(b, num_classes, ph, pw, device=x.device)
    cnt = torch.zeros(1, 1, ph, pw, device=x.device)
    for y in ys:
        for x0 in xs:
            out[:, :, y : y + tile, x0 : x0 + tile] += model(xp[:, :, y : y + tile, x0 : x0 + tile])["out"].float()
            cnt[:, :, y : y + tile, x0 : x0 + tile] += 1
    return (out / cnt)[:, :, :h, :w]


@torch.no_grad()
def evaluate(model, loader, num_classes, ignore_index, device, eval_mode, tile, amp) -> tuple[dict, float, int]:
    model.eval()
    clock = Clock(device)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    seconds, n = 0.0, 0
    for imgs, masks in loader:
        imgs = imgs.to(device)
        t0 = clock.start()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            logits = sliding_logits(model, imgs, num_classes, tile) if eval_mode == "sliding" else model(imgs)["out"]
        pred = logits.argmax(1)
        seconds += clock.stop(t0)
        n += len(imgs)
        cm += confusion_matrix(pred.cpu(), masks, num_classes, ignore_index)
    model.train()
    return segmentation_scores(cm), seconds, n


def _optimizer(model, cfg: dict, aux_lr_mult: float = 10.0) -> torch.optim.Optimizer:
    main = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("aux_classifier.")]
    aux = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("aux_classifier.")]
    groups = [{"params": main}] + ([{"params": aux, "lr": cfg["lr"] * aux_lr_mult}] if aux else [])
    if cfg["name"] == "sgd":
        return torch.optim.SGD(
            groups,
            lr=cfg["lr"],
            momentum=cfg["momentum"],
            nesterov=cfg["nesterov"] and cfg["momentum"] > 0,
            weight_decay=cfg["weight_decay"],
        )
    betas = tuple(cfg["betas"]) if cfg.get("betas") else (0.9, 0.999)
    cls = torch.optim.Adam if cfg["name"] == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg["lr"], betas=betas, weight_decay=cfg["weight_decay"])


# -- task ---------------------------------------------------------------------------------------------------


@TASKS.register(
    "segmentation",
    needs="dilated-resnet",
    document="003 A.2",
    columns=COLUMNS,
    primary="miou",
    metrics=("miou", "pixel_acc", "mean_acc", "miou_best", "train_loss", "iou_*"),
    smoke_datasets=("cityscapes-smoke", "voc2012-seg-smoke"),
    summary="DeepLabV3 (torchvision) with the family in backbone and head; mIoU, pixel accuracy, loss curve.",
    ranges={"base_size": POSITIVE, "crop_size": POSITIVE},
)
def segmentation(
    spec,
    ctx: RunContext,
    *,
    base_size=520,
    crop_size=480,
    aux_loss=False,
    schedule="poly",
    poly_power=0.9,
    eval_every=1,
    eval_mode="whole",
    dilated=None,
    workers=4,
    amp=False,
    log_every=10,
):
    if schedule not in ("poly", "protocol"):
        raise ValueError(f"schedule must be 'poly' or 'protocol', not {schedule!r}")
    if eval_mode not in ("whole", "sliding"):
        raise ValueError(f"eval_mode must be 'whole' or 'sliding', not {eval_mode!r}")
    device = ctx.device
    proto = spec.protocol
    data = ctx.dataset(spec).subset(proto.get("train_subset"), proto.get("test_subset"))
    nc = data.num_classes
    torch.manual_seed(spec.seed)
    model = build_segmenter(spec, nc, aux_loss, dilated)
    example = torch.zeros(1, 3, crop_size, crop_size)
    model.eval()
    with torch.no_grad():  # materialise input-sized fixed tensors at the training crop size
        model(example)
    model.train()
    model = model.to(device)
    params = count_parameters(model)
    macs = count_macs(OutOnly(model), example.to(device))

    bs, epochs = proto["batch_size"], proto["epochs"]
    train_ds = SegTorchDataset(
        data, data.train, True, base_size, crop_size, spec.seed, "flip" in proto.get("augment", ())
    )
    test_ds = SegTorchDataset(data, data.test, False, base_size, crop_size, spec.seed)
    if len(train_ds) < bs:
        raise RunFailed(f"{len(train_ds)} training images: fewer than one batch of {bs}")
    steps = len(train_ds) // bs  # drop_last, as the recipe (BN in the ASPP pooling branch needs batch > 1)
    if proto.get("max_batches"):
        steps = min(steps, proto["max_batches"])
    opt = _optimizer(model, proto["optimizer"])
    total = max(1, epochs * steps)
    factor = (
        (lambda it: max(0.0, 1 - it / total) ** poly_power)
        if schedule == "poly"
        else lr_factor(proto["schedule"], epochs, steps)
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    test_bs = proto.get("eval_batch_size", 1) if device.type == "cuda" else 1
    test_loader = torch.utils.data.DataLoader(
        test_ds, batch_size=min(test_bs, 16), shuffle=False, num_workers=workers, collate_fn=_collate_pad
    )
    loss_x, loss_y, window = [], [], []
    state = {"it": 0, "scores": None, "eval_s": 0, "n_eval": 0}
    reset_peak_memory(device)

    def train_epoch(epoch: int) -> dict:
        nonlocal window
        train_ds.epoch = epoch
        g = torch.Generator().manual_seed(spec.seed * 1000 + epoch)
        loader = torch.utils.data.DataLoader(
            train_ds,
            batch_size=bs,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            generator=g,
            collate_fn=_collate_pad,
        )
        loss_sum, count = 0.0, 0
        for step, (imgs, masks) in enumerate(loader):
            if step >= steps:
                break
            imgs, masks = imgs.to(device, non_blocking=True), masks.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
                out = model(imgs)
            loss = F.cross_entropy(out["out"].float(), masks, ignore_index=data.ignore_index)
            if aux_loss:
                loss = loss + 0.5 * F.cross_entropy(out["aux"].float(), masks, ignore_index=data.ignore_index)
            if not torch.isfinite(loss):  # before the step, as the detector's
                raise RunFailed(f"training loss became {float(loss)} in epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            state["it"] += 1
            lv = float(loss.detach())
            loss_sum += lv * len(imgs)
            count += len(imgs)
            window.append(lv)
            if len(window) >= log_every:
                loss_x.append(state["it"])
                loss_y.append(sum(window) / len(window))
                window = []
        return {
            "train_loss": loss_sum / max(1, count),
            "images": count,
            "iterations": state["it"],
            "lr": opt.param_groups[0]["lr"],
        }

    def evaluate_epoch(epoch: int) -> dict | None:
        if not ((eval_every and epoch % eval_every == 0) or epoch == epochs):
            return None
        scores, eval_s, n_eval = evaluate(model, test_loader, nc, data.ignore_index, device, eval_mode, crop_size, amp)
        state.update(scores=scores, eval_s=eval_s, n_eval=n_eval)
        return {
            "test_miou": 100 * scores["miou"],
            "test_pixel_acc": 100 * scores["pixel_acc"],
            "test_mean_acc": 100 * scores["mean_acc"],
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
    it, scores, eval_s, n_eval = state["it"], state["scores"], state["eval_s"], state["n_eval"]
    if window:
        loss_x.append(it)
        loss_y.append(sum(window) / len(window))
    memory = peak_memory(device)
    evaluated = [h for h in history if "test_miou" in h]
    metrics = {
        "miou": 100 * scores["miou"],
        "pixel_acc": 100 * scores["pixel_acc"],
        "mean_acc": 100 * scores["mean_acc"],
        "miou_best": max(h["test_miou"] for h in evaluated),
        "train_loss": history[-1]["train_loss"],
    }
    for name, v in zip(data.classes, scores["iou"]):
        if v is not None:
            metrics[f"iou_{name}"] = 100 * v
    timing = {
        **fitted["timing"],
        "eval_s": eval_s,
        "eval_images": n_eval,
        "throughput_img_s": n_eval / eval_s if eval_s > 0 else None,
        "throughput_note": f"whole-model inference on the test set ({eval_mode})",
    }
    curves = {
        "train_loss": {
            "x": loss_x,
            "y": loss_y,
            "xlabel": "iteration",
            "ylabel": f"training loss (mean of {log_every})",
        },
        "test_miou": {
            "x": [h["epoch"] for h in evaluated],
            "y": [h["test_miou"] for h in evaluated],
            "xlabel": "epoch",
            "ylabel": "mIoU (%)",
        },
        "test_pixel_acc": {
            "x": [h["epoch"] for h in evaluated],
            "y": [h["test_pixel_acc"] for h in evaluated],
            "xlabel": "epoch",
            "ylabel": "pixel accuracy (%)",
        },
    }
    return {
        "metrics": metrics,
        "history": history,
        "curves": curves,
        "params": params,
        "macs": macs,
        "timing": timing,
        "memory": memory,
        "data": {
            "train": len(train_ds),
            "test": len(test_ds),
            "source": data.source,
            "classes": list(data.classes),
            "macs_scope": f"whole model, one {crop_size}×{crop_size} crop",
            "swapped": {k: r.counts() for k, r in model.swap_reports.items() if r is not None},
        },
    }
