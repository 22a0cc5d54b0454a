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
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]   # (B,1,H,1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]   # (B,1,1,W)
        bidx = torch.arange(b, device=x.device)[:, None, None, None]
        cidx = torch.arange(c, device=x.device)[None, :, None, None]
        x = xp[bidx, cidx, rows, cols]
    if flip:
        mask = torch.rand(b, device=x.device, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def make_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    name = cfg["name"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                               nesterov=cfg["nesterov"] and cfg["momentum"] > 0, weight_decay=cfg["weight_decay"])
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
        raise ValueError(name)

    return f


def _batches(n: int, batch_size: int, device, generator=None, shuffle: bool = True, drop_last: bool = False):
    order = torch.randperm(n, device=device, generator=generator) if shuffle else torch.arange(n, device=device)
    stop = n - (n % batch_size) if (drop_last and n >= batch_size) else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


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


@torch.no_grad()
def evaluate(model: nn.Module, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int, amp: bool,
             tta: str | None = None, channels_last: bool | None = None) -> tuple[float, float]:
    """Mean loss and top-1 accuracy (%) on device-resident uint8 images (``tta="flip"``: logits averaged
    with the mirrored image's)."""
    model.eval()
    loss_sum = torch.zeros((), device=x_u8.device)
    correct = torch.zeros((), device=x_u8.device, dtype=torch.long)
    for i in range(0, len(y), batch_size):
        xb = prepare(x_u8[i:i + batch_size], channels_last)
        with _autocast(x_u8.device, amp):
            out = _flip_tta(model, xb) if tta == "flip" else model(xb)
        loss_sum += F.cross_entropy(out.float(), y[i:i + batch_size], reduction="sum")
        correct += (out.argmax(1) == y[i:i + batch_size]).sum()
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
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def fit_classifier(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                   test_y: torch.Tensor, protocol: dict, device: torch.device, seed: int,
                   progress: bool = False, desc: str = "", on_epoch=None, compile: bool = False,
                   channels_last: bool | None = None) -> dict:
    """Train ``model`` with cross-entropy under ``protocol`` on device-resident uint8 tensors.

    Returns ``history`` (per epoch: train loss/acc, test loss/acc, training seconds, cumulative seconds and
    images seen) and ``timing`` (training time excluding evaluation; the first epoch, which includes warm-up
    and any compilation, is reported separately as ``warmup_epoch_s``). Raises RunFailed on a non-finite loss.

    Protocol options: ``ema: {decay, warmup}`` evaluates (every epoch, and leaves in ``model`` at the end) an
    exponential moving average of the weights (:class:`WeightEMA`); ``tta: flip`` evaluates with flip test-time
    augmentation. ``compile=True`` trains and evaluates through ``torch.compile(model)``; ``channels_last``
    (default: on CUDA) sets the input memory format.
    """
    from bench.errors import RunFailed
    from bench.measure import Clock, epoch_timing

    amp = device.type == "cuda"
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
    smoothing = protocol.get("label_smoothing", 0.0)
    tta = protocol.get("tta")
    ema = WeightEMA(model, **protocol["ema"]) if protocol.get("ema") else None
    fwd = torch.compile(model) if compile else model
    clock = Clock(device)
    history, cum, seen = [], 0.0, 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=epochs, desc=desc or "train", unit="ep", leave=False)
    model.train()
    for epoch in range(1, epochs + 1):
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        count = 0
        t0 = clock.start()
        for idx in _batches(n, bs, device, gen, drop_last=True)[:steps]:
            xb = prepare(train_x[idx], channels_last)
            if crop or flip:
                xb = random_crop_flip(xb, protocol["crop_padding"], crop, flip, gen)
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
            loss_sum += loss.detach() * len(idx)
            correct += (out.detach().argmax(1) == yb).sum()
            count += len(idx)
        epoch_s = clock.stop(t0)
        train_loss = float(loss_sum) / max(1, count)
        if not math.isfinite(train_loss):
            raise RunFailed(f"training loss became {train_loss} in epoch {epoch}")
        cum += epoch_s
        seen += count
        test_loss, test_acc = evaluate(ema.model if ema is not None else fwd, test_x, test_y,
                                       protocol["eval_batch_size"], amp, tta, channels_last)
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": 100.0 * float(correct) / max(1, count),
               "test_loss": test_loss, "test_acc": test_acc, "epoch_s": epoch_s, "train_s_cum": cum,
               "images_seen": seen, "lr": opt.param_groups[0]["lr"]}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if bar is not None:
            bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{test_acc:.1f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    if ema is not None:  # what was evaluated is what the caller measures further (speed, robustness)
        model.load_state_dict(ema.model.state_dict())
    timing = epoch_timing(history, steps, clock)
    return {"history": history, "timing": timing}
