"""FGSM / PGD robustness harness (`004_…` §4.3) and its wiring into the classification task."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from torch import nn

from bench.zoo.models import Normalize
from bench.measure.robustness import adversarial_accuracy, normalised_auc

EPS = [0, 1, 2, 4, 8, 16, 32, 64]


@pytest.fixture(scope="module")
def trained():
    """A tiny model (normalisation inside, pixels in [0, 1]) trained to separate two noisy patterns."""
    g = torch.Generator().manual_seed(0)
    n = 384
    y = torch.randint(0, 2, (n,), generator=g)
    pattern = torch.rand(2, 3, 8, 8, generator=g) * 0.3 - 0.15
    x = (0.5 + pattern[y] + 0.1 * torch.randn(n, 3, 8, 8, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    model = nn.Sequential(
        Normalize([0.5] * 3, [0.25] * 3), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:256]), y[:256]).backward()
        opt.step()
    return model.eval(), x[256:], y[256:]


def test_fgsm_equals_torchattacks_directly(trained):
    model, x, y = trained
    res = adversarial_accuracy(model, x, y, [8, 16], batch_size=50)  # several batches
    for e, acc in zip([8, 16], res["acc"]):
        adv = torchattacks.FGSM(model, eps=e / 255)(x, y)
        direct = 100.0 * (model(adv).argmax(1) == y).float().mean().item()
        assert acc == pytest.approx(direct, abs=1e-9)
    assert res["acc_at_8"] == res["acc"][0]


def test_eps0_is_clean_and_accuracy_falls(trained):
    model, x, y = trained
    res = adversarial_accuracy(model, (x * 255).round().to(torch.uint8), y, EPS)
    xq = (x * 255).round() / 255
    clean = 100.0 * (model(xq).argmax(1) == y).float().mean().item()
    assert res["acc"][0] == pytest.approx(clean) and clean > 90
    assert all(b <= a for a, b in zip(res["acc"], res["acc"][1:])), res["acc"]
    assert res["acc"][-1] < clean - 40


def test_pgd_at_least_as_strong_and_rng_untouched(trained):
    model, x, y = trained
    state = torch.get_rng_state()
    fgsm = adversarial_accuracy(model, x, y, [4, 8])
    pgd = adversarial_accuracy(model, x, y, [4, 8], attack="pgd", steps=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(p <= f for p, f in zip(pgd["acc"], fgsm["acc"]))
    assert pgd == adversarial_accuracy(model, x, y, [4, 8], attack="pgd", steps=5)  # seeded start
    with pytest.raises(ValueError):
        adversarial_accuracy(model, x, y, [1], attack="cw")


def test_normalised_auc():
    # trapezoid over ε/255 divided by the range: (1·(100+90)/2 + 1·(90+80)/2 + 2·(80+60)/2) / 4
    assert normalised_auc([0, 1, 2, 4], [100, 90, 80, 60]) == pytest.approx((95 + 85 + 140) / 4)
    assert normalised_auc([0, 16], [50, 50]) == 50
    assert normalised_auc([8], [50]) is None


def test_classification_task_records_fgsm(tmp_path):
    from bench.spec.suite import RunSpec
    from bench.tasks import TASKS, RunContext

    task = TASKS.get("classification")
    protocol = {
        "epochs": 1,
        "batch_size": 64,
        "eval_batch_size": 256,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "augment": [],
        "crop_padding": 0,
        "label_smoothing": 0.0,
        "train_subset": 256,
        "test_subset": 60,
        "max_batches": 4,
        "threshold": None,
    }
    spec = RunSpec(
        "t",
        {"name": "classification"},
        {"name": "digits", "options": {}},
        {"name": "convmixer", "options": {"width": 8, "depth": 1, "patch": 1, "kernel": 3}},
        {"name": "conv", "options": {}, "label": "conv", "stem": None},
        protocol,
        0,
    )
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    out = task.obj(spec, ctx, **task.options({"timing_repeats": 1, "throughput_batch": 8, "attack_subset": 100}))
    curve = out["curves"]["fgsm"]
    assert curve["x"] == [0, 1, 2, 4, 8, 16] and curve["xlabel"] == "ε (/255)"
    assert curve["y"][0] == pytest.approx(out["metrics"]["top1"])  # all 60 test images attacked; ε=0 is clean
    assert out["metrics"]["fgsm8"] == curve["y"][4]
    assert out["metrics"]["fgsm_auc"] == pytest.approx(normalised_auc(curve["x"], curve["y"]))
    off = task.obj(spec, ctx, **task.options({"timing_repeats": 1, "throughput_batch": 8, "attack_eps": []}))
    assert "fgsm8" not in off["metrics"] and off["curves"] == {}


def test_shared_sign_fgsm_images_equal_torchattacks_bitwise(trained):
    """The harness computes FGSM's direction once for every ε; the adversarial images must be exactly
    torchattacks.FGSM's at each ε (same expression, same gradient)."""
    from bench.measure.robustness import fgsm_sign

    model, x, y = trained
    sign = fgsm_sign(model, x, y)
    for e in (1, 4, 8, 16):
        ours = torch.clamp(x + (e / 255) * sign, min=0, max=1)
        theirs = torchattacks.FGSM(model, eps=e / 255)(x, y)
        assert torch.equal(ours, theirs), e
    assert (sign != 0).float().mean() > 0.5  # a real gradient, not zeros


def test_fgsm_counts_need_no_host_sync_per_batch(trained, monkeypatch):
    """Correct counts are summed on the device: no .item()/int() per batch (one transfer at the end)."""
    model, x, y = trained
    calls = {"item": 0, "tolist": 0}
    orig_item, orig_tolist = torch.Tensor.item, torch.Tensor.tolist

    def item(self):
        calls["item"] += 1
        return orig_item(self)

    def tolist(self):
        calls["tolist"] += 1
        return orig_tolist(self)

    monkeypatch.setattr(torch.Tensor, "item", item)
    monkeypatch.setattr(torch.Tensor, "tolist", tolist)
    monkeypatch.setattr(torch.Tensor, "__int__", lambda self: (_ for _ in ()).throw(AssertionError("int()")))
    res = adversarial_accuracy(model, x, y, [0, 4, 8], batch_size=16)  # 8 batches
    assert calls["item"] == 0 and calls["tolist"] == 1
    assert len(res["acc"]) == 3


def test_fgsm_costs_one_gradient_and_one_forward_per_attacked_eps(trained):
    """Per batch: one forward + backward for the shared direction (its logits give ε = 0) and one forward per
    ε > 0, so the curve of n ε costs 1 + (n − 1) forwards, not 2n."""
    model, x, y = trained
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        res = adversarial_accuracy(model, x, y, [0, 2, 8], batch_size=64)  # 2 batches
    finally:
        handle.remove()
    assert len(calls) == 2 * 3, calls
    clean = 100.0 * (model(x).argmax(1) == y).float().mean().item()
    assert res["acc"][0] == pytest.approx(clean)
