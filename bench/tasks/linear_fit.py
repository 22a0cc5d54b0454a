"""Fit a one-layer linear model with its own loss and record the loss per epoch (`003_…` Fig. 5(a, b)).

The backbone names its loss (attribute ``loss``, see :mod:`bench.zoo.backbones.linear_models`): ``"l2"`` — mean
squared error between the 10 outputs and one-hot targets (``F.mse_loss``, averaged over images and outputs),
linear regression on binary targets as in 003 §6; ``"logistic"`` — softmax cross-entropy (multinomial
logistic regression). Training is the suite protocol's optimiser and schedule (Fig. 5: vanilla SGD, a
constant learning rate) on device-resident uint8 batches, no augmentation.

The model sees the pixels as the data matrix X of 003 Eq. 1, in [0, 1] (``standardize: false``, default), or
standardised by the training set's channel mean and std like every other model of the harness
(``standardize: true``). Whatever normalises the features further is the layer row's (batch norm or network
deconvolution).

Per epoch (``history``): ``train_loss`` — the mean of the epoch's mini-batch losses (training mode, what a
training curve shows), ``loss`` — the loss of the whole training set after the epoch (evaluation mode: running
statistics), test loss and top-1 accuracy. Epoch 0 is the untrained model's whole-training-set loss.

Metrics: ``loss`` (final whole-training-set loss), ``train_loss`` (mean mini-batch loss of the last epoch),
``train_loss_e1`` (of the first epoch: how fast the loss falls), ``loss_e1`` (whole-set loss after one
epoch), ``loss_auc`` (mean of the whole-set loss over epochs 1…E: area under the curve), ``test_loss``,
``top1`` and ``top1_best`` (test accuracy, %). ``curves``: one plot of the training loss per epoch per
backbone (the site draws a curve per row, from its first seed).

``lr_by_row``: a learning rate per layer-row label overriding the protocol's (e.g. network deconvolution at
the "optimal learning rate 1.0" of 003 §6 beside the vanilla rows at 0.02–0.1); part of the task options, so
of every run's id.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from bench.execution.loop import fit
from bench.measure.measure import count_macs, count_parameters, count_training_macs, inference_speed
from bench.zoo.models import build_classifier
from bench.tasks import TASKS, RunContext
from bench.execution.train import _batches, lr_factor, make_optimizer, prepare
from bench.spec.schema import POSITIVE

COLUMNS = (
    ("loss", "Training loss (final)", False, ".4f"),
    ("loss_e1", "Training loss after epoch 1", False, ".4f"),
    ("top1", "Test top-1 (%)", True, ".2f"),
)
LOSSES = ("l2", "logistic")


def model_loss(kind: str, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The loss the backbone declares: L2 against one-hot targets (mean over the outputs, then over images
    with ``reduction="mean"``; per image summed over nothing else with ``"sum"``) or softmax cross-entropy."""
    out = out.float()
    if kind == "l2":
        target = F.one_hot(y, out.shape[1]).to(out.dtype)
        per_image = (out - target).pow(2).mean(1)
        return per_image.mean() if reduction == "mean" else per_image.sum()
    if kind == "logistic":
        return F.cross_entropy(out, y, reduction=reduction)
    raise ValueError(f"unknown loss {kind!r} (known: {', '.join(LOSSES)})")


@torch.no_grad()
def evaluate_loss(model, kind: str, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Mean loss and top-1 accuracy (%) of ``model`` (evaluation mode) on device-resident uint8 images."""
    was = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x_u8.device, dtype=torch.float64)
    correct = torch.zeros((), device=x_u8.device, dtype=torch.long)
    for i in range(0, len(y), batch_size):
        out = model(prepare(x_u8[i : i + batch_size], False))
        yb = y[i : i + batch_size]
        loss_sum += model_loss(kind, out, yb, "sum").double()
        correct += (out.argmax(1) == yb).sum()
    model.train(was)
    n = max(1, len(y))
    return float(loss_sum) / n, 100.0 * float(correct) / n


def fit_linear(model, kind: str, data, protocol: dict, device, seed: int, lr: float | None = None) -> dict:
    """Train ``model`` with its loss ``kind`` under ``protocol`` (optimiser, schedule, epochs, batch size;
    ``lr`` replaces the optimiser's learning rate). Returns ``history`` and ``timing``; RunFailed on a
    non-finite loss."""

    train_x, train_y = data.train_x.to(device), data.train_y.to(device)
    test_x, test_y = data.test_x.to(device), data.test_y.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    epochs, bs, ebs = protocol["epochs"], protocol["batch_size"], protocol["eval_batch_size"]
    n = len(train_y)
    steps = len(_batches(n, bs, "cpu", shuffle=False, drop_last=True))
    if protocol.get("max_batches"):
        steps = min(steps, protocol["max_batches"])
    opt_cfg = dict(protocol["optimizer"], **({"lr": float(lr)} if lr is not None else {}))
    opt = make_optimizer(model, opt_cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(protocol["schedule"], epochs, steps))
    loss0, acc0 = evaluate_loss(model, kind, train_x, train_y, ebs)
    start = {
        "epoch": 0,
        "train_loss": None,
        "loss": loss0,
        "train_acc": acc0,
        "test_loss": None,
        "test_acc": None,
        "epoch_s": 0.0,
        "train_s_cum": 0.0,
        "images_seen": 0,
        "lr": opt_cfg["lr"],
    }

    def train_epoch(epoch: int) -> dict:
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.long)
        count = 0
        for idx in _batches(n, bs, device, gen, drop_last=True)[:steps]:
            xb, yb = prepare(train_x[idx], False), train_y[idx]
            out = model(xb)
            loss = model_loss(kind, out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (out.detach().argmax(1) == yb).sum()
            count += len(idx)
        return {
            "train_loss": float(loss_sum) / max(1, count),
            "images": count,
            "train_acc": 100.0 * float(correct) / max(1, count),
            "lr": opt.param_groups[0]["lr"],
        }

    def evaluate_epoch(epoch: int) -> dict:
        full_loss, _ = evaluate_loss(model, kind, train_x, train_y, ebs)
        test_loss, test_acc = evaluate_loss(model, kind, test_x, test_y, ebs)
        return {"loss": full_loss, "test_loss": test_loss, "test_acc": test_acc}

    model.train()
    result = fit(
        epochs,
        train_epoch,
        device=device,
        steps=steps,
        evaluate=evaluate_epoch,
        what=f" (learning rate {opt_cfg['lr']})",
    )
    return {"history": [start] + result["history"], "timing": result["timing"]}


@TASKS.register(
    "linear-fit",
    needs="linear-model",
    document="003 §6 Fig. 5(a, b)",
    columns=COLUMNS,
    primary="loss",
    metrics=("loss", "loss_e1", "loss_auc", "train_loss", "train_loss_e1", "test_loss", "top1", "top1_best"),
    summary="Fit a one-layer linear model (L2 or logistic loss); loss per epoch, test accuracy.",
    ranges={"timing_repeats": POSITIVE},
)
def linear_fit(spec, ctx: RunContext, *, standardize=False, lr_by_row={}, timing_repeats=3):
    data = ctx.dataset(spec).subset(spec.protocol.get("train_subset"), spec.protocol.get("test_subset"))
    device = ctx.device
    torch.manual_seed(spec.seed)
    channels = data.shape[0]
    mean, std = data.channel_stats() if standardize else ([0.0] * channels, [1.0] * channels)
    example = data.test_x[:1].float().div(255)
    model = build_classifier(spec.backbone, spec.layer, channels, data.num_classes, mean, std, example).to(device)
    kind = getattr(model.backbone, "loss", None)
    if kind not in LOSSES:
        raise ValueError(
            f"backbone {spec.backbone['name']!r} declares no loss (attribute 'loss': "
            f"{', '.join(LOSSES)}); the linear-fit task trains linear-models backbones"
        )
    lr = lr_by_row.get(spec.label)
    params = count_parameters(model)
    macs = count_macs(model, example.to(device))
    train_macs = count_training_macs(model, prepare(data.train_x[: spec.protocol["batch_size"]].to(device), False))
    fit = fit_linear(model, kind, data, spec.protocol, device, spec.seed, lr)
    hist = fit["history"]
    last, first = hist[-1], hist[1]
    trained = hist[1:]
    metrics = {
        "loss": last["loss"],
        "loss_e1": first["loss"],
        "loss_auc": sum(h["loss"] for h in trained) / len(trained),
        "train_loss": last["train_loss"],
        "train_loss_e1": first["train_loss"],
        "test_loss": last["test_loss"],
        "top1": last["test_acc"],
        "top1_best": max(h["test_acc"] for h in trained),
    }
    speed = inference_speed(
        model, example.to(device), min(256, max(1, len(data.test_y))), device, repeats=timing_repeats
    )
    loss_name = {"l2": "L2 loss", "logistic": "logistic loss"}[kind]
    name = f"{spec.backbone['name']}: whole-training-set {loss_name} per epoch"
    curves = {
        name: {
            "x": [h["epoch"] for h in hist],
            "y": [h["loss"] for h in hist],
            "xlabel": "epoch",
            "ylabel": f"training {loss_name}",
        }
    }
    timing = {
        **fit["timing"],
        **speed,
        "train_forward_macs": train_macs,
        "train_macs_estimate": 3 * train_macs * last["images_seen"] if train_macs else None,
        "lr": lr if lr is not None else spec.protocol["optimizer"]["lr"],
    }
    return {
        "metrics": metrics,
        "history": hist,
        "params": params,
        "macs": macs,
        "timing": timing,
        "curves": curves,
        "data": {
            "train": len(data.train_y),
            "test": len(data.test_y),
            "classes": data.num_classes,
            "shape": list(data.shape),
            "source": data.source,
            "loss": kind,
        },
    }
