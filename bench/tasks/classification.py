"""Image classification: train a backbone built with the chosen layer family, measure accuracy and cost."""

from __future__ import annotations

import torch

from bench.measure.measure import (
    count_macs,
    count_parameters,
    count_training_macs,
    inference_speed,
    peak_memory,
    reset_peak_memory,
)
from bench.zoo.models import build_classifier, init_from_data
from bench.measure.robustness import DEFAULT_EPS, adversarial_accuracy
from bench.tasks import TASKS, RunContext
from bench.execution.train import fit_classifier, prepare, uses_amp
from bench.spec.schema import POSITIVE

COLUMNS = (
    ("top1", "Top-1 (%)", True, ".2f"),
    ("top1_best", "Best top-1 (%)", True, ".2f"),
    ("fgsm8", "FGSM ε=8/255 (%)", True, ".2f"),
    ("fgsm_auc", "FGSM AUC (%)", True, ".2f"),
)


TRAIN_MACS_PER_IMAGE = 3  # forward + backward ≈ 3 × the forward MACs (backward: grads of inputs and weights)


def time_to_threshold(history: list[dict], threshold: float | None, macs: float | None = None) -> dict:
    """Training seconds, images seen and estimated training MACs (3 × training-mode forward MACs per image,
    ``macs``) until the test accuracy first reached ``threshold`` (None if never)."""
    if threshold is None:
        return {}
    for h in history:
        if h["test_acc"] is not None and h["test_acc"] >= threshold:
            return {
                "threshold": threshold,
                "seconds": h["train_s_cum"],
                "images": h["images_seen"],
                "epoch": h["epoch"],
                "train_macs": TRAIN_MACS_PER_IMAGE * macs * h["images_seen"] if macs else None,
            }
    return {"threshold": threshold, "seconds": None, "images": None, "epoch": None, "train_macs": None}


def standard_conv_param_ratio(
    backbone: dict, learned: int, in_channels: int, num_classes: int, mean, std, example: torch.Tensor
) -> float | None:
    """`000_…` Table 5 "Ratio" (and Table 1 "Param. Ratio"; §4.1 Eq. 28, "# param. in CNN / # param. in PNN"):
    learned parameters of the *standard* CNN divided by ``learned``, the run model's learned parameters. Table 5
    divides by "CNN: standard ResNet-18" whatever the PNN's #Mask (its ratios 1.3 … 451.1 for 160 … 8 masks
    scale as (64 / #Mask)²), so the standard CNN is the same backbone with the same options except ``width``,
    which stays at the backbone's default, built with the ``conv`` family on CPU. The build runs under a forked
    RNG, so the run's own random stream is untouched."""
    from bench.zoo.backbones import BACKBONES

    if not learned:
        return None
    entry = BACKBONES.get(backbone["name"])
    options = dict(backbone.get("options") or {})
    if "width" in entry.defaults:
        options["width"] = entry.defaults["width"]
    with torch.random.fork_rng(devices=[]):
        cnn = build_classifier(
            {"name": backbone["name"], "options": options},
            {"name": "conv", "options": {}},
            in_channels,
            num_classes,
            mean,
            std,
            example.cpu(),
        )
    return count_parameters(cnn)["learned"] / learned


def _speed_paths(spec, ctx: RunContext, model, data, device) -> dict:
    """Memory layout, CPU threads, folded layers and torch.compile for this run: the defaults (channels_last on
    CUDA only, the process's threads, no compile), or with ``bench run --tune`` chosen by timing a few training
    steps each way (:func:`bench.measure.speed.choose_speed_paths`); ``--compile`` compiles unless the family says
    it cannot. ``fold``: some layer trains through its folded speed path (:func:`bench.zoo.layers.fold_pays`)."""
    from bench.zoo.layers import LAYERS

    from bench.execution.train import cpu_has_native_bf16, uses_amp

    cl = spec.protocol.get("channels_last")
    out = {
        "channels_last": device.type == "cuda" if cl is None else bool(cl),
        "threads": torch.get_num_threads(),
        "compile": False,
        "tuned": False,
    }
    if spec.protocol.get("precision") is not None or device.type == "cpu" and uses_amp(spec.protocol, device):
        out["autocast"] = "bf16" if uses_amp(spec.protocol, device) else "off"
        if device.type == "cpu":
            out["cpu_native_bf16"] = cpu_has_native_bf16()
    if any(getattr(m, "fold", None) is True for m in model.modules()):
        out["fold"] = True  # a layer computes through its folded speed path (same function; MACs as written)
    if ctx.compile:
        ok = LAYERS.get(spec.layer["name"]).compile
        out["compile"] = ok is True
        if ok is not True:
            out["compile_skipped"] = str(ok)
    if ctx.tune:
        from bench.measure.speed import choose_speed_paths

        batch = data.train_x[: spec.protocol["batch_size"]].to(device)
        out.update(choose_speed_paths(model, batch, data.train_y[: len(batch)].to(device), device))
    return out


@TASKS.register(
    "classification",
    document="000 §5.3 / 003 §5 / 004 §4.1",
    columns=COLUMNS,
    primary="top1",
    metrics=("top1", "top1_best", "test_loss", "train_loss", "param_ratio", "classes", "*8", "*_auc", "*_images"),
    summary="Train and test an image classifier; top-1 accuracy, parameters, MACs, time.",
    ranges={"throughput_batch": POSITIVE, "timing_repeats": POSITIVE},
)
def classification(
    spec,
    ctx: RunContext,
    *,
    throughput_batch=256,
    timing_repeats=5,
    attack_eps=list(DEFAULT_EPS),
    attack="fgsm",
    attack_subset=1000,
    attack_steps=10,
    attack_alpha=None,
):
    """Adversarial evaluation (`004_…` §4.3), after training, on a fixed stratified subset of ``attack_subset``
    test images (the same for every run): accuracy under ``attack`` ("fgsm" or "pgd", torchattacks) at each ε in
    ``attack_eps`` (units of 1/255; an empty list disables it). Metrics ``<attack>8`` (accuracy at ε = 8/255,
    if listed) and ``<attack>_auc`` (trapezoid area under accuracy-vs-ε/255, divided by the ε range, see
    :mod:`bench.measure.robustness`); the curve is ``curves[<attack>]``. PGD: ``attack_steps`` steps of
    ``attack_alpha``/255 (None: ε/4)."""
    data = ctx.dataset(spec).subset(spec.protocol.get("train_subset"), spec.protocol.get("test_subset"))
    device = ctx.device
    torch.manual_seed(spec.seed)
    mean, std = data.channel_stats()
    example = data.test_x[:1].float().div(255)
    model = build_classifier(spec.backbone, spec.layer, data.shape[0], data.num_classes, mean, std, example)
    model = model.to(device)
    init_from_data(model, data.train_x, spec.seed, device)
    speed_paths = _speed_paths(spec, ctx, model, data, device)
    channels_last = speed_paths["channels_last"]
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = count_parameters(model)
    param_ratio = standard_conv_param_ratio(
        spec.backbone, params["learned"], data.shape[0], data.num_classes, mean, std, example
    )
    macs = count_macs(model, example.to(device))
    # one training batch, prepared as the training loop prepares it; counts training-only work (whitening stats)
    train_macs = count_training_macs(
        model, prepare(data.train_x[: spec.protocol["batch_size"]].to(device), channels_last)
    )
    reset_peak_memory(device)
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
        desc=f"{spec.backbone['name']}/{spec.label}/s{spec.seed}",
        compile=speed_paths["compile"],
        channels_last=channels_last,
    )
    memory = peak_memory(device)
    speed = inference_speed(
        model,
        example.to(device),
        min(throughput_batch, max(1, len(data.test_y))),
        device,
        repeats=timing_repeats,
        amp=uses_amp(spec.protocol, device),
    )
    hist = fit["history"]
    metrics = {
        "top1": hist[-1]["test_acc"],
        "top1_best": max(h["test_acc"] for h in hist if h["test_acc"] is not None),
        "test_loss": hist[-1]["test_loss"],
        "train_loss": hist[-1]["train_loss"],
        "param_ratio": param_ratio,
    }
    timing = {
        **fit["timing"],
        **speed,
        "speed_paths": speed_paths,
        "to_threshold": time_to_threshold(hist, spec.protocol.get("threshold"), train_macs),
        "train_forward_macs": train_macs,
        "train_macs_estimate": TRAIN_MACS_PER_IMAGE * train_macs * hist[-1]["images_seen"] if train_macs else None,
    }
    curves = {}
    if attack_eps:
        adv = data.subset(None, attack_subset)
        rob = adversarial_accuracy(
            model,
            adv.test_x,
            adv.test_y.to(device),
            attack_eps,
            attack,
            batch_size=spec.protocol.get("eval_batch_size", 256),
            steps=attack_steps,
            alpha_255=attack_alpha,
            seed=spec.seed,
        )
        if rob["acc_at_8"] is not None:
            metrics[f"{attack}8"] = rob["acc_at_8"]
        if rob["auc"] is not None:
            metrics[f"{attack}_auc"] = rob["auc"]
        metrics[f"{attack}_images"] = len(adv.test_y)
        curves[attack] = {"x": rob["eps"], "y": rob["acc"], "xlabel": "ε (/255)", "ylabel": "accuracy (%)"}
    return {
        "metrics": metrics,
        "history": hist,
        "params": params,
        "macs": macs,
        "timing": timing,
        "memory": memory,
        "curves": curves,
        "data": {
            "train": len(data.train_y),
            "test": len(data.test_y),
            "shape": list(data.shape),
            "source": data.source,
        },
    }
