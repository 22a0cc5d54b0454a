"""Few-shot face recognition (`000_…` supplement §3.3, FRGC v2.0 low-sample-complexity protocol).

Per run (one seed): draw ``classes`` people at random (10, 50 or 100 in the document; capped by what the data
set has), split every drawn person's images train/test by ``split`` ("20-80", "40-60" or "60-40"), train the
suite's backbone (a ResNet-18 in the document, the same network for every number of classes except the final
classifier) built with the row's layer family, and report test accuracy after every epoch. The document shows
the accuracy curves only (its Figure 1, 3×3 panels) and claims that PNN converges faster than the CNN and ends
higher; the metrics below measure both: final and best top-1, the mean test accuracy over all epochs (area
under the accuracy curve divided by the number of epochs — higher means faster convergence) and the first epoch
reaching 90 %.

The draw depends on the seed only, so every layer family of a seed sees the same people and the same split.
The protocol's ``train_subset`` / ``test_subset`` do not apply (the split is the task's).
"""

from __future__ import annotations

import torch

from bench.zoo.datasets import ImageData
from bench.measure.measure import count_macs, count_parameters
from bench.zoo.models import build_classifier
from bench.tasks import TASKS, RunContext
from bench.execution.train import fit_classifier
from bench.spec.schema import POSITIVE

SPLITS = {"20-80": 0.2, "40-60": 0.4, "60-40": 0.6}

COLUMNS = (
    ("top1", "Top-1 (%)", True, ".2f"),
    ("top1_best", "Best top-1 (%)", True, ".2f"),
    ("top1_auc", "Mean top-1 over epochs (%)", True, ".2f"),
    ("epochs_to_90", "Epochs to 90 %", False, ".0f"),
)


def train_fraction(split) -> float:
    if isinstance(split, str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)} or a train fraction, not {split!r}")
        return SPLITS[split]
    frac = float(split)
    if not 0.0 < frac < 1.0:
        raise ValueError(f"train fraction must be in (0, 1), got {frac}")
    return frac


def draw(data: ImageData, classes: int, fraction: float, seed: int) -> tuple[ImageData, list[str]]:
    """Pool ``data``, draw ``classes`` classes (capped) having ≥ 2 images, split each one by ``fraction``
    (at least one image on each side), relabel 0..N−1."""
    x = torch.cat([data.train_x, data.test_x])
    y = torch.cat([data.train_y, data.test_y])
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(y, minlength=data.num_classes)
    eligible = (counts >= 2).nonzero().flatten()
    n = min(int(classes), len(eligible))
    if n < 2:
        raise ValueError(f"need at least 2 classes with 2+ images, the data set has {len(eligible)}")
    chosen = eligible[torch.randperm(len(eligible), generator=g)[:n]].sort().values
    tr, te, tr_y, te_y = [], [], [], []
    for new, c in enumerate(chosen.tolist()):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        tr.append(idx[:k]), te.append(idx[k:])
        tr_y.append(torch.full((k,), new)), te_y.append(torch.full((len(idx) - k,), new))
    tr, te = torch.cat(tr), torch.cat(te)
    names = [data.classes[c] for c in chosen.tolist()]
    out = ImageData(data.name, x[tr], torch.cat(tr_y), x[te], torch.cat(te_y), names, data.source, dict(data.meta))
    return out, names


def epochs_to(history: list[dict], threshold: float):
    for h in history:
        if h["test_acc"] is not None and h["test_acc"] >= threshold:
            return h["epoch"]
    return None


@TASKS.register(
    "fewshot",
    document="000 supplement §3.3 (FRGC few-shot faces)",
    columns=COLUMNS,
    primary="top1",
    metrics=("top1", "top1_best", "top1_auc", "epochs_to_90", "train_loss", "test_loss", "classes"),
    summary="Few-shot face recognition: N random people, per-person train/test split, accuracy curve.",
    ranges={"classes": POSITIVE},
)
def fewshot(spec, ctx: RunContext, *, classes=10, split="60-40"):
    frac = train_fraction(split)
    data, people = draw(ctx.dataset(spec), classes, frac, spec.seed)
    device = ctx.device
    torch.manual_seed(spec.seed)
    mean, std = data.channel_stats()
    example = data.test_x[:1].float().div(255)
    model = build_classifier(spec.backbone, spec.layer, data.shape[0], data.num_classes, mean, std, example).to(device)
    params = count_parameters(model)
    macs = count_macs(model, example.to(device))
    fit = fit_classifier(
        model,
        data.train_x,
        data.train_y,
        data.test_x,
        data.test_y,
        spec.protocol,
        device,
        spec.seed,
        progress=ctx.progress,
        desc=f"{spec.backbone['name']}/{spec.label}/N{data.num_classes}/{split}/s{spec.seed}",
    )
    hist = fit["history"]
    accs = [h["test_acc"] for h in hist if h["test_acc"] is not None]
    metrics = {
        "top1": accs[-1],
        "top1_best": max(accs),
        "top1_auc": sum(accs) / len(accs),
        "epochs_to_90": epochs_to(hist, 90.0),
        "train_loss": hist[-1]["train_loss"],
        "test_loss": hist[-1]["test_loss"],
        "classes": data.num_classes,
    }
    epochs = [h["epoch"] for h in hist]
    curves = {
        "test_top1": {"x": epochs, "y": accs, "xlabel": "epoch", "ylabel": "test top-1 (%)"},
        "train_loss": {"x": epochs, "y": [h["train_loss"] for h in hist], "xlabel": "epoch", "ylabel": "training loss"},
    }
    return {
        "metrics": metrics,
        "history": hist,
        "curves": curves,
        "params": params,
        "macs": macs,
        "timing": fit["timing"],
        "data": {
            "train": len(data.train_y),
            "test": len(data.test_y),
            "shape": list(data.shape),
            "classes": people,
            "requested_classes": int(classes),
            "split": split,
            "train_fraction": frac,
            "source": data.source,
        },
    }
