"""Image reconstruction through a CNN-DCN (`001_…` §3 random-CNN-trained-DCN, §4 random-CNN-random-DCN).

The backbone is an image → image network (``vgg16-cnn-dcn``: VGG-16 encoder up to ConvN + mirrored decoder)
built with the suite's layer family — ``random-conv`` with ``learned_mix: false`` gives the document's
frozen random encoder (and decoder, when the backbone's ``decoder`` is ``random``).

* **What is trained.** If the network has learned parameters (``decoder: trained``), they are trained to
  minimise the L2 loss between output and input image (§3.1 Eq. 1) with the suite protocol's optimiser
  (the document: Adam, lr 1e-4, weight decay 4e-4, batch 32, multistep decay) on the data set's *train*
  split, and scored on its *test* split. Without learned parameters (``decoder: random``, §4) nothing is
  trained: the random network is applied as it is.
* **Scores** (§4): input and output are converted to grey-scale (scikit-image's ``rgb2gray`` weights) and
  compared with SSIM (Wang et al. 2004: 11×11 Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1)
  and the Pearson correlation ρ. **Sign rule**: "in case of negative SSIM value, we invert the luminosity
  of the grayscale image for calculation" — when SSIM(x, y) < 0 the score is SSIM(x, 1 − y). Pearson is
  reported signed (``pearson``) and as |ρ| (``pearson_abs``: "an extreme ρ, either positive or negative,
  indicates a high correlation"). As in §4.2, each network's scores are averaged over the test images and
  the mean ± std is taken over ``networks`` random networks (``trained_networks`` when training).
* **Pixel scale** (harness choice): the network is fed pixels × ``pixel_scale`` (default 255, Caffe's 0–255
  range: with σ = 0.015 filters the random features of [0, 1] images are ~250× smaller and a trained decoder
  only learns the mean image in a short run), while the training target and all scores use the [0, 1]
  image. The purely random network has no bias and ReLU is positively homogeneous, so there the scale
  changes nothing (its output is min–max normalised).
* **Output scaling** (not stated in the document): a random decoder's output has an arbitrary scale and
  offset, so with ``output_scaling="auto"`` it is min–max normalised to [0, 1] per image; a trained
  decoder's output (trained against [0, 1] pixels) is clipped to [0, 1].
* **Sweeps** (§4.1 depth, §4.2 channels, §4.3 kernel size; Figures 7–10): ``sweeps`` is a list of
  ``{option, values, with, rows, name}``; for each value of the backbone option ``option`` (other backbone
  options overridden by ``with``) ``networks`` random networks are scored, giving curves
  ``ssim_vs_<name>`` / ``pearson_vs_<name>`` (mean, with ``yerr`` = std). ``rows`` limits a sweep to some
  layer labels. Sweeps run only for untrained (fully random) networks, as in §4; a depth sweep uses
  x = block number (Conv1 … Conv5).
* **Artifacts**: PNGs of originals and reconstructions (colour output and the grey, sign-corrected image
  the score is computed on) and, for each sweep, the first test image's reconstruction at every value. They
  are written under the run's ``ctx.artifact_dir`` (else ``<results_dir>/artifacts/<run id>``,
  else a temporary folder) and listed with paths relative to ``ctx.results_dir``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.zoo.backbones import BACKBONES, Ops
from bench.zoo.layers import count_parameters
from bench.execution.loop import fit
from bench.measure.measure import count_macs
from bench.tasks import TASKS, RunContext
from bench.execution.train import lr_factor, make_optimizer
from bench.spec.schema import NON_NEGATIVE, POSITIVE

COLUMNS = (
    ("ssim", "SSIM (grey)", True, ".3f"),
    ("pearson_abs", "|Pearson ρ|", True, ".3f"),
    ("mse", "L2 loss (MSE)", False, ".4f"),
)
GREY = (0.2125, 0.7154, 0.0721)  # skimage.color.rgb2gray


# -- scores --------------------------------------------------------------------------------------------


def to_grey(img: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] → (H, W) grey."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        return img
    if img.shape[0] == 1:
        return img[0]
    return np.tensordot(np.asarray(GREY), img[:3], axes=1)


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two grey images in [0, 1] (Wang et al. 2004 settings)."""
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    )


def ssim_sign_rule(x: np.ndarray, y: np.ndarray) -> tuple[float, bool]:
    """SSIM with the document's sign rule: if SSIM(x, y) < 0, score SSIM(x, 1 − y). Returns (score, inverted)."""
    s = ssim(x, y)
    if s < 0:
        return ssim(x, 1.0 - y), True
    return s, False


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def scale_output(y: torch.Tensor, how: str) -> torch.Tensor:
    """(B, C, H, W) network output → [0, 1]: per-image min–max or clipping."""
    if how == "clip":
        return y.clamp(0, 1)
    flat = y.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    span = (hi - lo).clamp_min(1e-12)
    out = (y - lo[:, None, None, None]) / span[:, None, None, None]
    return torch.where((hi - lo > 0)[:, None, None, None], out, torch.full_like(y, 0.5))


def score_images(x: torch.Tensor, y01: torch.Tensor) -> list[dict]:
    """Per-image SSIM (sign rule) and Pearson on grey-scale of inputs x and scaled outputs y01."""
    out = []
    for a, b in zip(x.cpu().numpy(), y01.cpu().numpy()):
        ga, gb = to_grey(a), to_grey(b)
        s, inverted = ssim_sign_rule(ga, gb)
        out.append({"ssim": s, "inverted": inverted, "pearson": pearson(ga, gb)})
    return out


# -- networks -------------------------------------------------------------------------------------------


def build_network(spec, in_channels: int, backbone_overrides: dict | None = None):
    entry = BACKBONES.get(spec.backbone["name"])
    opts = entry.options({**spec.backbone.get("options", {}), **(backbone_overrides or {})})
    ops = Ops.of(spec.layer["name"], spec.layer.get("options"), spec.layer.get("stem"))
    return entry.obj(ops, in_channels, in_channels, **opts)


def has_learned(model) -> bool:
    return any(p.requires_grad for p in model.parameters())


@torch.no_grad()
def reconstruct(model, x: torch.Tensor, batch_size: int, pixel_scale: float = 1.0) -> torch.Tensor:
    """Output for images x in [0, 1] fed to the network as x·pixel_scale."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size] * pixel_scale) for i in range(0, len(x), batch_size)])


def train_decoder(
    model, train_x: torch.Tensor, test_x: torch.Tensor, protocol: dict, seed: int, pixel_scale: float = 1.0
) -> tuple[list[dict], list[float], dict]:
    """Minimise the L2 loss ‖output − input‖² over the learned parameters (§3.1 Eq. 1); the network is fed
    pixels·pixel_scale and its output is compared with the [0, 1] image. Returns the per-epoch history, the
    per-step losses and the training timing (:func:`bench.execution.loop.fit`)."""

    opt = make_optimizer(model, protocol["optimizer"])
    bs = protocol["batch_size"]
    n = len(train_x)
    steps_per_epoch = max(1, math.ceil(n / bs))
    if protocol.get("max_batches"):
        steps_per_epoch = min(steps_per_epoch, protocol["max_batches"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(protocol["schedule"], protocol["epochs"], steps_per_epoch))
    g = torch.Generator(device="cpu").manual_seed(seed)
    step_losses: list[float] = []

    def train_epoch(epoch: int) -> dict:
        model.train()
        order = torch.randperm(n, generator=g)
        total, count = 0.0, 0
        for b in range(steps_per_epoch):
            idx = order[b * bs : (b + 1) * bs]
            if len(idx) == 0:
                break
            xb = train_x[idx.to(train_x.device)]
            loss = F.mse_loss(model(xb * pixel_scale), xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step_losses.append(loss.item())
            total += step_losses[-1] * len(idx)
            count += len(idx)
        return {"train_loss": total / max(1, count), "images": count}

    def evaluate_epoch(epoch: int) -> dict:
        return {"test_loss": float(F.mse_loss(reconstruct(model, test_x, bs, pixel_scale), test_x))}

    out = fit(protocol["epochs"], train_epoch, device=train_x.device, steps=steps_per_epoch, evaluate=evaluate_epoch)
    return out["history"], step_losses, out["timing"]


def evaluate_network(model, test_x: torch.Tensor, scaling: str, batch_size: int, pixel_scale: float = 1.0):
    y = reconstruct(model, test_x, batch_size, pixel_scale)
    mse = float(F.mse_loss(y, test_x)) if y.shape == test_x.shape else float("nan")
    y01 = scale_output(y, scaling)
    return score_images(test_x, y01), y01, mse


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


# -- artifacts ------------------------------------------------------------------------------------------


def _to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) in [0, 1] → (H, W, 3) uint8."""
    img = np.asarray(img)
    if img.ndim == 3:
        img = img.transpose(1, 2, 0)
        if img.shape[2] == 1:
            img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_grid(rows: list[list[np.ndarray]], path: Path, pad: int = 2) -> None:
    """Save a grid of images (each (C,H,W) or (H,W) in [0, 1]) with white gaps, upscaled to ≥128 px cells."""
    from PIL import Image

    cells = [[_to_rgb_uint8(c) for c in row] for row in rows]
    h = max(c.shape[0] for row in cells for c in row)
    w = max(c.shape[1] for row in cells for c in row)
    zoom = max(1, 128 // max(h, w))
    h, w = h * zoom, w * zoom
    ncol = max(len(r) for r in cells)
    canvas = np.full((len(cells) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            c = np.kron(c, np.ones((zoom, zoom, 1), np.uint8))
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            canvas[top : top + c.shape[0], left : left + c.shape[1]] = c
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)


def _grey_view(y01: np.ndarray, inverted: bool) -> np.ndarray:
    g = to_grey(y01)
    return 1.0 - g if inverted else g


def _artifact_dirs(spec, ctx: RunContext) -> tuple[Path, Path]:
    results = ctx.results_dir
    out = ctx.artifact_dir
    if out is None:
        out = (
            Path(results) / "artifacts" / spec.id
            if results is not None
            else Path(tempfile.mkdtemp(prefix="bench-reconstruction-"))
        )
    out = Path(out)
    base = Path(results) if results is not None else out
    return out, base


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


# -- the task -------------------------------------------------------------------------------------------


@TASKS.register(
    "reconstruction",
    needs="autoencoder",
    document="001 §3–4",
    columns=COLUMNS,
    primary="ssim",
    metrics=(
        "ssim",
        "ssim_std",
        "pearson",
        "pearson_std",
        "pearson_abs",
        "pearson_abs_std",
        "mse",
        "mse_std",
        "inverted_fraction",
        "networks",
        "images",
        "ssim[*]",
    ),
    summary="Invert images through a (random) CNN-DCN; SSIM / Pearson on grey-scale, sweeps.",
    ranges={
        "networks": POSITIVE,
        "trained_networks": POSITIVE,
        "test_images": POSITIVE,
        "pixel_scale": NON_NEGATIVE,
        "eval_batch_size": POSITIVE,
        "artifact_images": POSITIVE,
    },
)
def reconstruction(
    spec,
    ctx: RunContext,
    *,
    networks=5,
    trained_networks=1,
    test_images=None,
    output_scaling="auto",
    pixel_scale=255.0,
    eval_batch_size=16,
    artifact_images=4,
    sweeps=(),
):
    t_start = time.monotonic()
    device = ctx.device
    proto = spec.protocol
    data = ctx.dataset(spec).subset(proto.get("train_subset"), proto.get("test_subset"))
    test_x = data.test_x[:test_images].float().div(255).to(device)
    train_x = data.train_x.float().div(255).to(device)
    channels = int(test_x.shape[1])
    names = data.meta.get("test_names") or [data.classes[int(c)] for c in data.test_y[: len(test_x)]]

    torch.manual_seed(spec.seed)
    probe = build_network(spec, channels)
    trained = has_learned(probe)
    scaling = output_scaling if output_scaling != "auto" else ("clip" if trained else "minmax")
    n_nets = trained_networks if trained else networks
    if trained and len(train_x) == 0:
        raise ValueError("the network has learned parameters but the data set has no training images")

    per_net, mses, histories, timings, first = [], [], [], [], None
    for i in range(n_nets):
        torch.manual_seed(spec.seed * 100003 + i)
        model = build_network(spec, channels).to(device)
        if trained:
            hist, step_losses, timing = train_decoder(
                model, train_x, test_x, proto, spec.seed * 100003 + i, pixel_scale
            )
            histories.append((hist, step_losses))
            timings.append(timing)
        scores, y01, mse = evaluate_network(model, test_x, scaling, eval_batch_size, pixel_scale)
        per_net.append(scores)
        mses.append(mse)
        if first is None:
            first = (model, scores, y01)

    net_ssim = [float(np.mean([s["ssim"] for s in sc])) for sc in per_net]
    net_rho = [float(np.mean([s["pearson"] for s in sc])) for sc in per_net]
    net_abs = [float(np.mean([abs(s["pearson"]) for s in sc])) for sc in per_net]
    metrics = {}
    for key, vals in (("ssim", net_ssim), ("pearson", net_rho), ("pearson_abs", net_abs), ("mse", mses)):
        metrics[key], metrics[f"{key}_std"] = _mean_std(vals)
    metrics["inverted_fraction"] = float(np.mean([s["inverted"] for sc in per_net for s in sc]))
    metrics["networks"] = n_nets
    metrics["images"] = len(test_x)
    for j, name in enumerate(names):  # per-image SSIM (mean over networks), e.g. ssim[chelsea]
        metrics[f"ssim[{name}]"] = float(np.mean([sc[j]["ssim"] for sc in per_net]))

    out_dir, base = _artifact_dirs(spec, ctx)
    artifacts, curves = [], {}
    model, scores, y01 = first
    k = min(artifact_images, len(test_x))
    rows = [
        [
            test_x[j].cpu().numpy(),
            to_grey(test_x[j].cpu().numpy()),
            y01[j].cpu().numpy(),
            _grey_view(y01[j].cpu().numpy(), scores[j]["inverted"]),
        ]
        for j in range(k)
    ]
    path = out_dir / "reconstructions.png"
    save_grid(rows, path)
    caption = (
        "Columns: input, input (grey), output, output (grey, luminosity inverted where SSIM < 0). "
        + "; ".join(f"{names[j]}: SSIM {scores[j]['ssim']:.3f}, ρ {scores[j]['pearson']:+.3f}" for j in range(k))
        + f". {spec.backbone['name']} {spec.backbone.get('options', {})}, {spec.label}, network 0."
    )
    artifacts.append({"path": _rel(path, base), "caption": caption})

    if trained:
        hist, step_losses = histories[0]
        curves["train_loss"] = {
            "x": list(range(1, len(step_losses) + 1)),
            "y": step_losses,
            "xlabel": "iteration",
            "ylabel": "L2 training loss (MSE)",
        }

    sweep_meta = []
    if not trained:
        for sw in sweeps or ():
            if sw.get("rows") and spec.label not in sw["rows"]:
                continue
            res = run_sweep(spec, channels, test_x, scaling, eval_batch_size, networks, sw)
            name = sw.get("name") or sw["option"]
            for metric in ("ssim", "pearson_abs"):
                curves[f"{metric}_vs_{name}"] = {
                    "x": res["x"],
                    "y": res[metric],
                    "yerr": res[f"{metric}_std"],
                    "xlabel": res["xlabel"],
                    "ylabel": {"ssim": "SSIM (grey, sign rule)", "pearson_abs": "|Pearson ρ|"}[metric],
                    "labels": [str(v) for v in sw["values"]],
                }
            spath = out_dir / f"sweep_{name}.png"
            save_grid([[to_grey(test_x[0].cpu().numpy())] + res["images"]], spath)
            artifacts.append(
                {
                    "path": _rel(spath, base),
                    "caption": (
                        f"{names[0]} (grey) and its reconstruction for {sw['option']} = "
                        + ", ".join(f"{v} (SSIM {s:.2f})" for v, s in zip(sw["values"], res["first_ssim"]))
                        + f"; with {sw.get('with', {})}, network 0."
                    ),
                }
            )
            sweep_meta.append(
                {"name": name, "option": sw["option"], "values": list(sw["values"]), "with": dict(sw.get("with", {}))}
            )

    example = test_x[:1]
    result = {
        "metrics": metrics,
        "params": count_parameters(model),
        "macs": count_macs(model, example),
        # the first trained network's epoch timing (bench.execution.loop.fit, as every task's), training summed over all
        "timing": {
            **(timings[0] if timings else fit(0, None, device=device, steps=0)["timing"]),
            "train_s": sum(t["train_s"] for t in timings),
            "networks_trained": len(timings),
            "total_s": time.monotonic() - t_start,
        },
        "curves": curves,
        "artifacts": artifacts,
        "data": {
            "train": len(train_x),
            "test": len(test_x),
            "shape": list(data.shape),
            "source": data.source,
            "test_names": list(names),
        },
        "reconstruction": {
            "trained": trained,
            "output_scaling": scaling,
            "per_network_ssim": net_ssim,
            "per_network_pearson": net_rho,
            "sweeps": sweep_meta,
        },
    }
    if histories:
        result["history"] = histories[0][0]
    return result


def run_sweep(
    spec, channels: int, test_x: torch.Tensor, scaling: str, batch_size: int, networks: int, sw: dict
) -> dict:
    """Score ``networks`` random networks for every value of one backbone option."""
    from bench.zoo.backbones.vgg_cnn_dcn import parse_depth

    option, values, base = sw["option"], list(sw["values"]), dict(sw.get("with", {}))
    n_nets = int(sw.get("networks", networks))
    out = {
        "x": [],
        "ssim": [],
        "ssim_std": [],
        "pearson_abs": [],
        "pearson_abs_std": [],
        "images": [],
        "first_ssim": [],
    }
    for vi, v in enumerate(values):
        net_ssim, net_abs = [], []
        for i in range(n_nets):
            torch.manual_seed(spec.seed * 100003 + 7919 * (vi + 1) + i)
            model = build_network(spec, channels, {**base, option: v}).to(test_x.device)
            if has_learned(model):
                raise ValueError(
                    f"sweep {option}={v}: the network has learned parameters; sweeps are for "
                    "untrained (random) networks"
                )
            scores, y01, _ = evaluate_network(model, test_x, scaling, batch_size)
            net_ssim.append(float(np.mean([s["ssim"] for s in scores])))
            net_abs.append(float(np.mean([abs(s["pearson"]) for s in scores])))
            if i == 0:
                out["images"].append(_grey_view(y01[0].cpu().numpy(), scores[0]["inverted"]))
                out["first_ssim"].append(scores[0]["ssim"])
        for key, vals in (("ssim", net_ssim), ("pearson_abs", net_abs)):
            m, s = _mean_std(vals)
            out[key].append(m)
            out[f"{key}_std"].append(s)
        out["x"].append(parse_depth(v)[0] if option == "depth" else v)
    out["xlabel"] = {
        "depth": "encoder depth (ConvN block)",
        "channels": "number of random channels",
        "kernel_size": "kernel size",
    }.get(option, option)
    return out
