"""Training building blocks: device-resident batches, on-device augmentation, optimisers and schedules.

The whole training set sits on the device as uint8; each step gathers a batch by index, converts it and
augments it there (random crop after padding, horizontal flip) with batched tensor ops: no per-image Python.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


def random_crop_flip(x: torch.Tensor, padding: int, crop: bool, flip: bool, generator=None) -> torch.Tensor:
    """Batched pad-and-random-crop and horizontal flip of (B, C, H, W) float images, all on x's device."""
    b, c, h, w = x.shape
    if crop and padding > 0:
        xp = F.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B,1,H,1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B,1,1,W)
        bidx = torch.arange(b, device=x.device)[:, None, None, None]
        cidx = torch.arange(c, device=x.device)[None, :, None, None]
        x = xp[bidx, cidx, rows, cols]
    if flip:
        mask = torch.rand(b, device=x.device, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, cfg: dict) -> list[dict] | list[nn.Parameter]:
    """The trained parameters; with ``norm_lr_scale`` s (optimizer option) the parameters of normalisation
    layers form a group with learning rate × s and weight decay ÷ s (so their lr × wd product, the decay per
    step, is unchanged), the scheme of airbench94's "bias_scaler"."""
    params = [p for p in model.parameters() if p.requires_grad]
    scale = cfg.get("norm_lr_scale")
    if not scale:
        return params
    norm_ids = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    norm = [p for p in params if id(p) in norm_ids]
    rest = [p for p in params if id(p) not in norm_ids]
    groups = [{"params": rest}]
    if norm:
        groups.append({"params": norm, "lr": cfg["lr"] * scale, "weight_decay": cfg["weight_decay"] / scale})
    return groups


def make_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    params = param_groups(model, cfg)
    name = cfg["name"]
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg["lr"],
            momentum=cfg["momentum"],
            nesterov=cfg["nesterov"] and cfg["momentum"] > 0,
            weight_decay=cfg["weight_decay"],
        )
    betas = tuple(cfg["betas"]) if cfg.get("betas") else (0.9, 0.999)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg["lr"], betas=betas, weight_decay=cfg["weight_decay"])


def lr_factor(cfg: dict, epochs: int, steps_per_epoch: int):
    """Per-step learning-rate multiplier for the schedule ``cfg`` (linear warm-up first, if any)."""
    total = max(1, epochs * steps_per_epoch)
    warm = int(cfg.get("warmup_epochs", 0) * steps_per_epoch)
    milestones = [m * steps_per_epoch for m in cfg.get("milestones", [])]
    name = cfg["name"]

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if name == "constant":
            return 1.0
        if name == "step":
            return cfg["gamma"] ** sum(step >= m for m in milestones)
        t = (step - warm) / max(1, total - warm)
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        if name == "onecycle":  # triangular: up for the first 20 %, then linearly down to 0
            return t / 0.2 if t < 0.2 else max(0.0, (1 - t) / 0.8)
        if name == "triangle":  # linear from `start` up to 1 at fraction `peak` of the steps, then down to `end`
            start, peak, end = cfg.get("start", 0.0), cfg.get("peak", 0.2), cfg.get("end", 0.0)
            if t < peak:
                return start + (1 - start) * t / peak
            return 1 + (end - 1) * min(1.0, (t - peak) / max(1e-12, 1 - peak))
        raise ValueError(name)

    return f


def _batches(n: int, batch_size: int, device, generator=None, shuffle: bool = True, drop_last: bool = False):
    order = torch.randperm(n, device=device, generator=generator) if shuffle else torch.arange(n, device=device)
    stop = n - (n % batch_size) if (drop_last and n >= batch_size) else n
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


class WeightEMA:
    """Exponential moving average of a model's floating-point state (parameters and buffers such as batch-norm
    statistics), kept in a copy of the model that is used for evaluation (protocol option ``ema``).

    After step t the average is ``avg ← avg + (1 − d)(live − avg)`` with ``d = decay``, or with ``warmup``
    ``d = min(decay, (1 + t) / (10 + t))`` so early averages are not dominated by the random initialisation.
    Fixed (never trained) tensors stay bit-identical (a lerp between equal values returns them); integer buffers
    (batch counters) are copied.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.steps = float(decay), bool(warmup), 0
        live, avg = model.state_dict(), self.model.state_dict()
        self._float = [(avg[k], live[k]) for k in live if live[k].is_floating_point()]
        self._other = [(avg[k], live[k]) for k in live if not live[k].is_floating_point()]

    def current_decay(self) -> float:
        t = self.steps
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        w = 1.0 - self.current_decay()
        if self._float:
            avg, live = zip(*self._float)
            torch._foreach_lerp_(list(avg), list(live), w)
        for a, l in self._other:
            a.copy_(l)


def _flip_tta(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """Logits averaged over each image and its horizontal mirror (protocol option ``tta: flip``)."""
    return 0.5 * (model(xb).float() + model(xb.flip(3)).float())


def _flip_translate_tta(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """``tta: flip-translate``: half the weight on the flip-averaged logits of the image, half on the mean of
    the flip-averaged logits of the image shifted by one pixel up-left and down-right (reflect padding): six
    views, weighted as airbench94's test-time augmentation."""
    h, w = xb.shape[-2:]
    padded = F.pad(xb, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * (_flip_tta(model, padded[..., :h, :w]) + _flip_tta(model, padded[..., 2:, 2:]))
    return 0.5 * _flip_tta(model, xb) + 0.5 * shifted


TTA = {None: lambda model, xb: model(xb), "flip": _flip_tta, "flip-translate": _flip_translate_tta}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x_u8: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    amp: bool,
    tta: str | None = None,
    channels_last: bool | None = None,
) -> tuple[float, float]:
    """Mean loss and top-1 accuracy (%) on device-resident uint8 images (``tta="flip"``: logits averaged
    with the mirrored image's)."""
    model.eval()
    loss_sum = torch.zeros((), device=x_u8.device)
    correct = torch.zeros((), device=x_u8.device, dtype=torch.long)
    for i in range(0, len(y), batch_size):
        xb = prepare(x_u8[i : i + batch_size], channels_last)
        with _autocast(x_u8.device, amp):
            out = TTA[tta](model, xb)
        loss_sum += F.cross_entropy(out.float(), y[i : i + batch_size], reduction="sum")
        correct += (out.argmax(1) == y[i : i + batch_size]).sum()
    model.train()
    n = max(1, len(y))
    return float(loss_sum) / n, 100.0 * float(correct) / n


def prepare(x_u8: torch.Tensor, channels_last: bool | None = None) -> torch.Tensor:
    """uint8 → float in [0, 1]; channels_last memory format if asked (default: on CUDA)."""
    x = x_u8.float().div_(255)
    if channels_last is None:
        channels_last = x.device.type == "cuda"
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _autocast(device, amp: bool):
    """bf16 autocast on ``device`` (CUDA or CPU) when ``amp``; numerically sensitive code inside a family
    (network deconvolution's covariance and inverse square root) turns it off locally."""
    if amp and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def uses_amp(protocol: dict, device: torch.device) -> bool:
    """Whether a run computes under bf16 autocast: the protocol's ``precision`` ("bf16" / "fp32"), or when
    it is unset the harness's old default (bf16 on CUDA, fp32 elsewhere), so older suites keep their numerics."""
    precision = protocol.get("precision")
    if precision is None:
        return device.type == "cuda"
    return precision == "bf16"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 / AMX); without them CPU autocast still works, slowly."""
    probe = getattr(torch.backends.cpu, "get_cpu_capability", None)
    is_bf16 = getattr(getattr(torch, "_C", None), "_cpu", None)
    try:
        if is_bf16 is not None and hasattr(is_bf16, "_is_avx512_bf16_supported"):
            return bool(
                is_bf16._is_avx512_bf16_supported() or getattr(is_bf16, "_is_amx_tile_supported", lambda: False)()
            )
    except Exception:  # pragma: no cover - private API moved
        pass
    return bool(probe and "AVX512" in probe())


class Lookahead:
    """Lookahead weight averaging as in airbench94 (protocol option ``lookahead: {every, decay}``): every
    ``every`` steps the slow copy moves towards the live weights, ``slow ← slow + (1 − α)(live − slow)``, and
    the live weights are reset to it; α = decay^every × (t / T)³ at step t of T, so the averaging is off early
    and strongest at the end. After the last step the live weights are set to the slow copy. Floating-point
    parameters and buffers (batch-norm statistics) take part; fixed tensors stay bit-identical."""

    def __init__(self, model: nn.Module, total_steps: int, every: int = 5, decay: float = 0.95):
        self.every, self.decay, self.total = int(every), float(decay), max(1, int(total_steps))
        live = model.state_dict()
        self._pairs = [(v.detach().clone(), v) for v in live.values() if v.is_floating_point()]
        self.steps = 0

    @torch.no_grad()
    def _sync(self, alpha: float) -> None:
        slow, live = [a for a, _ in self._pairs], [b for _, b in self._pairs]
        if slow:
            torch._foreach_lerp_(slow, live, 1.0 - alpha)
            torch._foreach_copy_(live, slow)

    def update(self) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self._sync(self.decay**self.every * (min(self.steps, self.total) / self.total) ** 3)

    def finish(self) -> None:
        self._sync(1.0)


def alternating_flip_bits(n: int, device, generator=None) -> torch.Tensor:
    """One random flip bit per training image, drawn once (augment ``flip-alternate``: image i is mirrored in
    epoch e when bit_i XOR (e odd), so every image is seen in both orientations in turn)."""
    return torch.rand(n, device=device, generator=generator) < 0.5


def fit_classifier(
    model: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    protocol: dict,
    device: torch.device,
    seed: int,
    progress: bool = False,
    desc: str = "",
    on_epoch=None,
    compile: bool = False,
    channels_last: bool | None = None,
) -> dict:
    """Train ``model`` with cross-entropy under ``protocol`` on device-resident uint8 tensors.

    Returns ``history`` (per epoch: train loss/acc, test loss/acc, training seconds, cumulative seconds and
    images seen) and ``timing`` (training time excluding evaluation; the first epoch, which includes warm-up
    and any compilation, is reported separately as ``warmup_epoch_s``). Raises RunFailed on a non-finite loss.

    Protocol options: ``ema: {decay, warmup}`` evaluates (every epoch, and leaves in ``model`` at the end) an
    exponential moving average of the weights (:class:`WeightEMA`); ``tta: flip`` evaluates with flip test-time
    augmentation. ``compile=True`` trains and evaluates through ``torch.compile(model)``; ``channels_last``
    (default: on CUDA) sets the input memory format.
    """
    from bench.execution.loop import fit

    amp = uses_amp(protocol, device)
    train_x, train_y = train_x.to(device), train_y.to(device)
    test_x, test_y = test_x.to(device), test_y.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    epochs, bs = protocol["epochs"], protocol["batch_size"]
    n = len(train_y)
    steps = len(_batches(n, bs, "cpu", shuffle=False, drop_last=True))
    if protocol.get("max_batches"):
        steps = min(steps, protocol["max_batches"])
    opt = make_optimizer(model, protocol["optimizer"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(protocol["schedule"], epochs, steps))
    crop, flip = "crop" in protocol["augment"], "flip" in protocol["augment"]
    alt_flip = alternating_flip_bits(n, device, gen) if "flip-alternate" in protocol["augment"] else None
    smoothing = protocol.get("label_smoothing", 0.0)
    tta = protocol.get("tta")
    ema = WeightEMA(model, **protocol["ema"]) if protocol.get("ema") else None
    lookahead = Lookahead(model, epochs * steps, **protocol["lookahead"]) if protocol.get("lookahead") else None
    eval_at = set(protocol.get("eval_epochs") or range(1, epochs + 1)) | {epochs}
    fwd = torch.compile(model) if compile else model

    def train_epoch(epoch: int) -> dict:
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        count = 0
        for idx in _batches(n, bs, device, gen, drop_last=True)[:steps]:
            xb = prepare(train_x[idx], channels_last)
            if crop or flip:
                xb = random_crop_flip(xb, protocol["crop_padding"], crop, flip, gen)
            if alt_flip is not None:
                xb = torch.where((alt_flip[idx] ^ bool(epoch % 2 == 0))[:, None, None, None], xb.flip(3), xb)
            yb = train_y[idx]
            with _autocast(device, amp):
                out = fwd(xb)
                loss = F.cross_entropy(out.float(), yb, label_smoothing=smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update()
            if lookahead is not None:
                lookahead.update()
            loss_sum += loss.detach() * len(idx)
            correct += (out.detach().argmax(1) == yb).sum()
            count += len(idx)
        if lookahead is not None and epoch == epochs:
            lookahead.finish()
        return {
            "train_loss": float(loss_sum) / max(1, count),
            "images": count,
            "train_acc": 100.0 * float(correct) / max(1, count),
            "lr": opt.param_groups[0]["lr"],
        }

    def evaluate_epoch(epoch: int) -> dict:
        if epoch not in eval_at:  # epochs outside ``eval_epochs`` are not evaluated (time-to-accuracy checkpoints)
            return {"test_loss": None, "test_acc": None}
        test_loss, test_acc = evaluate(
            ema.model if ema is not None else fwd, test_x, test_y, protocol["eval_batch_size"], amp, tta, channels_last
        )
        return {"test_loss": test_loss, "test_acc": test_acc}

    model.train()
    result = fit(
        epochs,
        train_epoch,
        device=device,
        steps=steps,
        evaluate=evaluate_epoch,
        progress=progress,
        desc=desc or "train",
        on_epoch=on_epoch,
        show="test_acc",
    )
    if ema is not None:  # what was evaluated is what the caller measures further (speed, robustness)
        model.load_state_dict(ema.model.state_dict())
    return result
