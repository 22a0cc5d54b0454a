"""Adversarial robustness: accuracy under FGSM (or PGD) as a function of ε (`004_…` §4.3, Figs. 10, 14, 15).

FGSM (`004_…` Eq. 5, Goodfellow et al.): x̃ = clip₀¹(x + ε·sign(∇ₓ CE(F(x), y))), computed as
``torchattacks.FGSM`` computes it but with the gradient sign shared by every ε (it does not depend on ε: one
backward pass per batch for the whole curve, checked equal to ``torchattacks.FGSM`` in the tests); PGD
(``torchattacks.PGD``: ``steps`` steps of size ``alpha`` from a random start in the ε-ball) is available as an option. Attacks act on pixels in [0, 1]: models built by :mod:`bench.zoo.models` carry
their input normalisation inside, so ε is measured in pixel units (ε = 8/255 is 8 grey levels). The model is
attacked in eval mode (torchattacks switches it) and in float32 (no autocast).

Summary numbers:

* accuracy at ε = 8/255 (``acc_at_8``) — the usual single-number FGSM robustness;
* area under the accuracy-versus-ε curve (``auc``): the trapezoid rule over ε in units of 1/255, divided by the
  ε range (max − min). It is the mean accuracy (%) over the attacked range, comparable across runs only when
  they share the ε list. With the default ε ∈ {0, 1, 2, 4, 8, 16}/255 the range is 16.

The document's curves (Figs. 10, 14, 15) have an ε axis whose exact values did not survive text extraction;
the default list covers the usual range up to 16/255 on a roughly logarithmic grid.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

DEFAULT_EPS = (0, 1, 2, 4, 8, 16)  # in units of 1/255


def make_attack(model: nn.Module, name: str, eps: float, steps: int = 10, alpha: float | None = None):
    """A torchattacks attack on pixels in [0, 1]; ``eps`` and ``alpha`` in pixel units (not /255)."""
    import torchattacks

    if name == "fgsm":
        return torchattacks.FGSM(model, eps=eps)
    if name == "pgd":
        if alpha is None:
            alpha = max(eps / 4, 0.5 / 255)
        return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    raise ValueError(f"unknown attack {name!r} (known: fgsm, pgd)")


def adversarial_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps_255: Sequence[float] = DEFAULT_EPS,
    attack: str = "fgsm",
    batch_size: int = 256,
    steps: int = 10,
    alpha_255: float | None = None,
    seed: int = 0,
) -> dict:
    """Accuracy (%) of ``model`` on ``images`` (float in [0, 1] or uint8) under ``attack`` at every ε/255.

    Returns ``{"attack", "eps": [ε·255…], "acc": [%…], "acc_at_8": % or None, "auc": % or None}``.
    PGD takes ``steps`` steps of ``alpha_255``/255 (default ε/4, at least 0.5/255) from a random start drawn
    from the RNG seeded with ``seed`` (in a forked RNG state: the caller's RNG is left untouched).
    At ε = 0 the clean images are used (both attacks return them unchanged there).
    """
    if attack not in ("fgsm", "pgd"):
        raise ValueError(f"unknown attack {attack!r} (known: fgsm, pgd)")
    if images.dtype == torch.uint8:
        images = images.float().div(255)
    device = next(model.parameters()).device
    eps_list = [float(e) for e in eps_255]
    was_training = model.training
    model.eval()
    try:
        if attack == "fgsm":
            counts = _fgsm_counts(model, images, labels, eps_list, batch_size, device)
        else:
            counts = _attack_counts(model, images, labels, eps_list, attack, batch_size, steps, alpha_255, seed, device)
        # one transfer for the whole curve
        accs = [100.0 * c / max(1, len(labels)) for c in torch.stack(counts).tolist()] if counts else []
    finally:
        model.train(was_training)
    return {
        "attack": attack,
        "eps": eps_list,
        "acc": accs,
        "acc_at_8": next((a for e, a in zip(eps_list, accs) if e == 8), None),
        "auc": normalised_auc(eps_list, accs),
    }


def _attack_counts(model, images, labels, eps_list, attack, batch_size, steps, alpha_255, seed, device):
    """Correct counts per ε for a torchattacks attack (PGD), one attack per ε, counts kept on the device."""
    counts = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for e in eps_list:
            torch.manual_seed(seed)
            atk = make_attack(model, attack, e / 255, steps, None if alpha_255 is None else alpha_255 / 255)
            correct = torch.zeros((), dtype=torch.long, device=device)
            for i in range(0, len(labels), batch_size):
                x = images[i : i + batch_size].to(device, non_blocking=True)
                y = labels[i : i + batch_size].to(device, non_blocking=True)
                x_adv = atk(x, y) if e > 0 else x
                with torch.no_grad():
                    correct += (model(x_adv).argmax(1) == y).sum()
            counts.append(correct)
    return counts


def fgsm_sign(model: nn.Module, x: torch.Tensor, y: torch.Tensor, return_logits: bool = False):
    """sign(∇ₓ CE(F(x), y)) with the mean cross-entropy, as ``torchattacks.FGSM`` computes it; with
    ``return_logits`` also the clean logits F(x) of that forward pass (detached)."""
    x = x.clone().detach().requires_grad_(True)
    logits = model(x)
    cost = nn.functional.cross_entropy(logits, y)
    sign = torch.autograd.grad(cost, x, retain_graph=False, create_graph=False)[0].sign()
    return (sign, logits.detach()) if return_logits else sign


def _fgsm_counts(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps_list: list[float],
    batch_size: int,
    device: torch.device,
) -> list[torch.Tensor]:
    """Correct counts per ε for FGSM. FGSM's direction sign(∇ₓ loss) does not depend on ε, so it is computed
    once per batch (one forward + backward) and every ε > 0 costs one forward; ε = 0 reuses the clean logits
    of the gradient's forward pass. The adversarial images are ``clip₀¹(x + ε·sign)``, the same expression as
    ``torchattacks.FGSM`` (tests/measure/test_robustness.py checks the two agree exactly). Counts stay on the device
    (no host sync per batch)."""
    counts = [torch.zeros((), dtype=torch.long, device=device) for _ in eps_list]
    attacked = any(e > 0 for e in eps_list)
    for i in range(0, len(labels), batch_size):
        x = images[i : i + batch_size].to(device, non_blocking=True)
        y = labels[i : i + batch_size].to(device, non_blocking=True)
        sign, clean = fgsm_sign(model, x, y, return_logits=True) if attacked else (None, None)
        with torch.no_grad():
            for j, e in enumerate(eps_list):
                if e > 0:
                    logits = model(torch.clamp(x + (e / 255) * sign, min=0, max=1))
                else:
                    logits = clean if clean is not None else model(x)
                counts[j] += (logits.argmax(1) == y).sum()
    return counts


def normalised_auc(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Trapezoid area under y(x), divided by the x range (so: the mean of y over the range). None if < 2 points."""
    pts = sorted(zip(x, y))
    if len(pts) < 2 or pts[-1][0] == pts[0][0]:
        return None
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts, pts[1:]))
    return area / (pts[-1][0] - pts[0][0])
