"""Boundary detection on synthetic textured blobs (`002_…` chapter 4 §4.4.2, "Evaluating Boundary Detection
Properties on Textured Blobs", Figure 10).

The thesis' data set is "infinite and created on the fly": random blobs whose boundaries are predicted as
pixel-wise classification. Three difficulty levels, chosen with the data-set option ``mode``:

* ``binary``  (Figure 10 row I): blob and background are flat, two grey levels; gradient magnitude solves it;
* ``texture`` (row II): blob and background are filled with *different* textures; gradient magnitude gives
  weak clues only;
* ``hard``    (row III): blob and background textures are of the same kind (same period, contrast, mean) and
  differ only in orientation; "blobs and backgrounds can hardly be distinguished".

The thesis samples its textures from KTH-TIPS, which is not available here: textures are generated
procedurally instead (oriented sinusoidal gratings, Gaussian-filtered noise and mixtures of both; zero mean,
unit variance, scaled to a random contrast). Blob shapes are star-shaped: a base radius modulated by random
harmonics 2–4 with random phases, after a random anisotropic stretch at a random rotation; 1 … ``max_blobs``
blobs per image (union). The target is a 2-pixel boundary: every pixel with a 4-neighbour of the other label
(the same as ``skimage.segmentation.find_boundaries(mask, connectivity=1, mode="thick")``).

Each image is generated from its own seeded random stream (``numpy.random.default_rng([seed, stream, index])``),
so data are deterministic per seed: the training stream uses the run seed, the test set a fixed
``test_seed`` shared by every run. Training follows the suite's protocol (epochs; ``train_subset`` = fresh
images per epoch, default ``train_images``; batch size; optimiser; schedule) with the class-balanced
pixel-wise binary cross-entropy the thesis uses for BSD500 (positives weighted by the share of negatives).

Metrics (in %, so the site's 1-point tolerance is meaningful): ``ods`` — boundary F-measure at the optimal
data-set-wide threshold; ``ois`` — at the optimal per-image threshold; ``ap`` — average precision over the
thresholds; as in the BSDS protocol the thesis reports (ODS/OIS) but simplified: a predicted boundary pixel is
correct if a target pixel lies within ``match_tolerance`` pixels (Euclidean disc) and vice versa for recall —
no one-to-one matching and no non-maximum thinning (the target is 2 pixels thick). The thesis reports no
numbers for this experiment (only Figure 10 and the statement that a same-size convolutional baseline nearly
matches on binary blobs and fails to converge on textured ones).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from bench.zoo.datasets.blobs import TRAIN_STREAM, generate
from bench.measure.measure import count_macs, count_parameters
from bench.tasks import TASKS, RunContext
from bench.spec.schema import POSITIVE

# ---------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------


def _disc(tol: int, device) -> torch.Tensor:
    r = torch.arange(-tol, tol + 1, device=device, dtype=torch.float32)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= tol**2 + 1e-9).float()[None, None]


def _dilate(m: torch.Tensor, disc: torch.Tensor) -> torch.Tensor:
    tol = disc.shape[-1] // 2
    if tol == 0:
        return m
    return F.conv2d(m.float().unsqueeze(1), disc, padding=tol).squeeze(1) > 0.5


@torch.no_grad()
def boundary_counts(prob: torch.Tensor, gt: torch.Tensor, thresholds: torch.Tensor, tol: int = 1) -> dict:
    """Per image and threshold: predicted pixels, those within ``tol`` of a target pixel, target pixels, and
    those within ``tol`` of a prediction. Shapes (N, T) (targets: (N,))."""
    disc = _disc(tol, prob.device)
    gt = gt.bool()
    gt_near = _dilate(gt, disc)
    n = prob.shape[0]
    out = {k: torch.zeros(n, len(thresholds), dtype=torch.long) for k in ("pred", "pred_ok", "gt_ok")}
    for j, t in enumerate(thresholds.tolist()):
        pred = prob >= t
        out["pred"][:, j] = pred.flatten(1).sum(1).cpu()
        out["pred_ok"][:, j] = (pred & gt_near).flatten(1).sum(1).cpu()
        out["gt_ok"][:, j] = (gt & _dilate(pred, disc)).flatten(1).sum(1).cpu()
    out["gt"] = gt.flatten(1).sum(1).long().cpu()
    return out


def _prf(pred_ok, pred, gt_ok, gt):
    p = np.where(pred > 0, pred_ok / np.maximum(pred, 1), 1.0)
    r = np.where(gt > 0, gt_ok / np.maximum(gt, 1), 1.0)
    f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return p, r, f


def boundary_scores(counts: dict) -> dict:
    """ODS, OIS, AP (all in %) and the data-set precision/recall curve from :func:`boundary_counts`."""
    pred, pred_ok, gt_ok = (counts[k].numpy().astype(np.float64) for k in ("pred", "pred_ok", "gt_ok"))
    gt = counts["gt"].numpy().astype(np.float64)
    P, R, Fm = _prf(pred_ok.sum(0), pred.sum(0), gt_ok.sum(0), gt.sum())
    ods = float(Fm.max())
    # OIS: each image at its own best threshold, counts accumulated over the data set
    _, _, f_img = _prf(pred_ok, pred, gt_ok, gt[:, None])
    best = f_img.argmax(1)
    idx = np.arange(len(best))
    _, _, f_ois = _prf(pred_ok[idx, best].sum(), pred[idx, best].sum(), gt_ok[idx, best].sum(), gt.sum())
    # AP: step integral of precision over recall, thresholds ascending → recall descending
    r_next = np.append(R[1:], 0.0)
    ap = float(np.sum(np.clip(R - r_next, 0, None) * P))
    return {
        "ods": 100 * ods,
        "ois": 100 * float(f_ois),
        "ap": 100 * ap,
        "precision": P.tolist(),
        "recall": R.tolist(),
        "ods_threshold_index": int(Fm.argmax()),
    }


# ---------------------------------------------------------------------------------------------------------
# Task
# ---------------------------------------------------------------------------------------------------------

COLUMNS = (
    ("ods", "ODS F (%)", True, ".2f"),
    ("ois", "OIS F (%)", True, ".2f"),
    ("ap", "AP (%)", True, ".2f"),
)


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, balance: bool) -> torch.Tensor:
    """Pixel-wise BCE; with ``balance`` positives are weighted by the batch's share of negatives and vice versa."""
    target = target.float()
    if not balance:
        return F.binary_cross_entropy_with_logits(logits, target)
    beta = 1.0 - target.mean()
    w = torch.where(target > 0.5, beta, 1.0 - beta)
    return F.binary_cross_entropy_with_logits(logits, target, weight=w)


def _prep(x_u8: torch.Tensor) -> torch.Tensor:
    return (x_u8.float() / 255.0 - 0.5) / 0.25


@torch.no_grad()
def predict(model, x_u8: torch.Tensor, batch_size: int) -> torch.Tensor:
    was = model.training
    model.eval()
    out = torch.cat(
        [torch.sigmoid(model(_prep(x_u8[i : i + batch_size])))[:, 0] for i in range(0, len(x_u8), batch_size)]
    )
    model.train(was)
    return out


def _steerable_blocks(model):
    from bench.zoo.layers.steerable import SteerableBlock

    return [m for m in model.modules() if isinstance(m, SteerableBlock) and m.pose is not None]


def _figure(model, x_u8, target, prob, path) -> bool:
    """Figure 10 layout: input | gradient magnitude | prediction | pose (first dynamic block) | target."""
    from torchvision.utils import save_image

    from bench.zoo.layers.steerable import gaussian_basis

    blocks = _steerable_blocks(model)
    pose = None
    if blocks:
        blocks[0].record_pose = True
        predict(model, x_u8, len(x_u8))
        blocks[0].record_pose = False
        p = blocks[0].last_pose
        theta = torch.atan2(p[:, 0, 1], p[:, 0, 0]) if p.dim() == 5 else p[:, 0]
        pose = torch.remainder(theta, math.pi) / math.pi
        if pose.shape[-1] != x_u8.shape[-1]:
            pose = F.interpolate(pose[:, None], size=x_u8.shape[-2:], mode="nearest")[:, 0]
    g = gaussian_basis(5, 1.0, 1, 1).float()[:, None]
    grad = F.conv2d(x_u8.float() / 255, g, padding=2).pow(2).sum(1).sqrt()
    grad = grad / grad.flatten(1).amax(1).clamp_min(1e-6)[:, None, None]
    cols = [x_u8.float()[:, 0].cpu() / 255, grad.cpu(), prob.cpu()]
    if pose is not None:
        cols.append(pose.cpu())
    cols.append(target.float().cpu())
    tiles = torch.stack(cols, 1).reshape(-1, 1, *x_u8.shape[-2:])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(tiles, str(path), nrow=len(cols), padding=2, pad_value=1.0)
    return pose is not None


@TASKS.register(
    "blob-boundary",
    needs="dense",
    document="002 ch. 4 §4.4.2",
    columns=COLUMNS,
    primary="ods",
    metrics=("ods", "ois", "ap", "ods_best", "test_loss", "train_loss", "pixel_acc"),
    summary="Per-pixel boundary detection on generated textured blobs; ODS / OIS / AP (%).",
    ranges={"train_images": POSITIVE},
)
def blob_boundary(
    spec, ctx: RunContext, *, train_images=2048, class_balance=True, match_tolerance=1, thresholds=99, figure_examples=6
):
    from bench.zoo.backbones import Ops, build_backbone
    from bench.execution.loop import fit
    from bench.zoo.models import materialise
    from bench.execution.train import lr_factor, make_optimizer

    data = ctx.dataset(spec)
    meta = data.meta
    size, mode, max_blobs = meta["size"], meta["mode"], meta["max_blobs"]
    protocol = spec.protocol
    n_test = min(len(data.test_x), protocol.get("test_subset") or len(data.test_x))
    test_x, test_b = data.test_x[:n_test], meta["boundaries"][:n_test]
    per_epoch = protocol.get("train_subset") or train_images
    bs = protocol["batch_size"]
    steps = max(1, per_epoch // bs)
    if protocol.get("max_batches"):
        steps = min(steps, protocol["max_batches"])
    device = ctx.device

    torch.manual_seed(spec.seed)
    ops = Ops.of(spec.layer["name"], spec.layer.get("options"), spec.layer.get("stem"))
    model = build_backbone(spec.backbone["name"], ops, 1, 1, spec.backbone.get("options"))
    example = _prep(test_x[:1])
    materialise(model, example)
    model = model.to(device)
    params = count_parameters(model)
    macs = count_macs(model, example.to(device))
    opt = make_optimizer(model, protocol["optimizer"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(protocol["schedule"], protocol["epochs"], steps))
    ths = torch.linspace(0.01, 0.99, thresholds)
    evb = protocol.get("eval_batch_size", 1000)

    last: dict = {}

    def train_epoch(epoch: int) -> dict:
        model.train()
        losses = []
        for j in range(steps):
            xb, _, bb = generate(spec.seed, TRAIN_STREAM, ((epoch - 1) * steps + j) * bs, bs, size, mode, max_blobs)
            logits = model(_prep(xb).to(device))[:, 0]
            loss = balanced_bce(logits, bb.to(device), class_balance)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        return {"train_loss": float(np.mean(losses)), "images": steps * bs}

    def evaluate_epoch(epoch: int) -> dict:
        prob = predict(model, test_x.to(device), evb)
        with torch.no_grad():
            logit = torch.logit(prob.clamp(1e-6, 1 - 1e-6))
            test_loss = float(balanced_bce(logit, test_b.to(device), class_balance))
        scores = boundary_scores(boundary_counts(prob, test_b.to(device), ths.to(device), match_tolerance))
        last.update(prob=prob, scores=scores, test_loss=test_loss)
        return {"test_loss": test_loss, "ods": scores["ods"], "ois": scores["ois"], "ap": scores["ap"]}

    fit_out = fit(
        protocol["epochs"],
        train_epoch,
        device=device,
        steps=steps,
        evaluate=evaluate_epoch,
        progress=ctx.progress,
        desc=f"{spec.backbone['name']}/{spec.label}/s{spec.seed}",
        show="ods",
    )
    history = fit_out["history"]
    prob, scores, test_loss = last["prob"], last["scores"], last["test_loss"]

    metrics = {
        "ods": scores["ods"],
        "ois": scores["ois"],
        "ap": scores["ap"],
        "ods_best": max(h["ods"] for h in history),
        "test_loss": test_loss,
        "train_loss": history[-1]["train_loss"],
        "pixel_acc": 100.0 * float(((prob >= 0.5) == test_b.to(device)).float().mean()),
    }
    curves = {"pr": {"x": scores["recall"], "y": scores["precision"], "xlabel": "recall", "ylabel": "precision"}}
    artifacts = []
    if figure_examples and ctx.artifact_dir is not None:
        k = min(figure_examples, n_test)
        path = ctx.artifact_dir / "blobs.png"
        has_pose = _figure(model, test_x[:k].to(device), test_b[:k], prob[:k].cpu(), path)
        rel = path.relative_to(ctx.results_dir) if ctx.results_dir is not None else path
        artifacts.append(
            {
                "path": str(rel),
                "caption": "Columns: input, gradient magnitude, prediction, "
                + ("pose θ mod π (first dynamic block), " if has_pose else "")
                + "target (cf. Figure 10).",
            }
        )
    return {
        "metrics": metrics,
        "history": history,
        "params": params,
        "macs": macs,
        "timing": fit_out["timing"],
        "curves": curves,
        "artifacts": artifacts,
        "data": {"train_per_epoch": steps * bs, "test": n_test, "size": size, "mode": mode, "source": data.source},
    }
