"""The fast shared protocol's options: weight averaging (ema), flip test-time augmentation (tta), --compile,
--tune, and a 1-epoch smoke of suites/fast-cifar.yaml on a tiny subset."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from bench.errors import SpecError
from bench.spec.suite import load_suite
from bench.execution.train import WeightEMA, evaluate, fit_classifier

ROOT = Path(__file__).resolve().parents[2]


def _tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def test_ema_is_the_running_average_of_the_weights():
    model = _tiny_model()
    model.register_buffer("fixed", torch.randn(5))
    ema = WeightEMA(model, decay=0.9, warmup=False)
    w0 = model[0].weight.detach().clone()
    expected = w0.clone()
    for step in range(3):
        with torch.no_grad():
            model[0].weight.add_(1.0)
            model[1].running_mean.add_(0.5)
        ema.update()
        expected = 0.9 * expected + 0.1 * model[0].weight.detach()
    assert torch.allclose(ema.model[0].weight, expected, atol=1e-6)
    assert not torch.allclose(ema.model[0].weight, model[0].weight)
    # batch-norm statistics are averaged too: live 0.5, 1.0, 1.5 → 0.05, 0.145, 0.2805
    assert torch.allclose(ema.model[1].running_mean, torch.full((4,), 0.2805), atol=1e-6)
    assert torch.equal(ema.model.fixed, model.fixed)  # constants stay bit-identical
    assert int(ema.model[1].num_batches_tracked) == int(model[1].num_batches_tracked)
    assert not any(p.requires_grad for p in ema.model.parameters())
    warm = WeightEMA(model, decay=0.999, warmup=True)
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0): early steps follow the weights


def test_flip_tta_averages_the_mirrored_logits():
    model = _tiny_model().eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (12,), generator=g)
    xf = x.float() / 255
    with torch.no_grad():
        logits = 0.5 * (model(xf) + model(xf.flip(3)))
    loss, acc = evaluate(model, x, y, 5, amp=False, tta="flip")
    assert loss == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-5)
    assert acc == pytest.approx(100.0 * float((logits.argmax(1) == y).float().mean()))
    plain_loss, _ = evaluate(model, x, y, 5, amp=False)
    assert plain_loss != pytest.approx(loss)


def _write_suite(tmp_path, protocol_extra: str) -> Path:
    text = (ROOT / "suites" / "quick.yaml").read_text()
    p = tmp_path / "s.yaml"
    p.write_text(text.replace("protocol:\n", f"protocol:\n{protocol_extra}", 1))
    return p


def test_protocol_options_are_validated_and_left_out_when_unset(tmp_path):
    s = load_suite(_write_suite(tmp_path, "  ema: {decay: 0.95}\n  tta: flip\n"))
    assert s.protocol["ema"] == {"decay": 0.95, "warmup": True} and s.protocol["tta"] == "flip"
    plain = load_suite(ROOT / "suites" / "quick.yaml")
    assert "ema" not in plain.protocol and "tta" not in plain.protocol  # unchanged run ids for old suites
    with pytest.raises(SpecError, match="tta"):
        load_suite(_write_suite(tmp_path, "  tta: rotate\n"))
    with pytest.raises(SpecError, match="decay"):
        load_suite(_write_suite(tmp_path, "  ema: {decay: 1.5}\n"))
    fast = load_suite(ROOT / "suites" / "fast-cifar.yaml")
    assert fast.protocol["epochs"] <= 20 and fast.protocol["ema"] and fast.protocol["tta"] == "flip"
    assert fast.backbones == [{"name": "preact-resnet", "options": {"n": 3, "width": 1}}]
    from bench.zoo.layers import LAYERS

    assert sorted(l["name"] for l in fast.layers) == LAYERS.names()
    assert any("no per-family tuning" in n for n in fast.notes)


def _protocol(**extra):
    p = {
        "epochs": 2,
        "batch_size": 16,
        "eval_batch_size": 32,
        "augment": ["flip"],
        "crop_padding": 0,
        "label_smoothing": 0.1,
        "max_batches": None,
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        "schedule": {"name": "onecycle", "milestones": [], "gamma": 0.1, "warmup_epochs": 0.0},
    }
    p.update(extra)
    return p


def _data():
    g = torch.Generator().manual_seed(1)
    return (
        torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=g),
        torch.randint(0, 3, (64,), generator=g),
        torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=g),
        torch.randint(0, 3, (32,), generator=g),
    )


def test_fit_with_ema_leaves_the_average_in_the_model():
    trx, tr_y, tex, te_y = _data()
    plain, averaged = _tiny_model(), _tiny_model()
    fit_classifier(plain, trx, tr_y, tex, te_y, _protocol(), torch.device("cpu"), 0)
    fit = fit_classifier(
        averaged, trx, tr_y, tex, te_y, _protocol(ema={"decay": 0.9, "warmup": True}), torch.device("cpu"), 0
    )
    # same training trajectory, but the model handed back is the average, not the last weights
    assert not torch.allclose(plain[0].weight, averaged[0].weight)
    loss, acc = evaluate(averaged, tex, te_y, 32, amp=False)
    assert acc == pytest.approx(fit["history"][-1]["test_acc"]) and loss == pytest.approx(
        fit["history"][-1]["test_loss"], rel=1e-5
    )


def test_compile_trains_like_eager():
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    trx, tr_y, tex, te_y = _data()
    eager, compiled = _tiny_model(), _tiny_model()
    a = fit_classifier(eager, trx, tr_y, tex, te_y, _protocol(epochs=1), torch.device("cpu"), 0)
    try:
        b = fit_classifier(compiled, trx, tr_y, tex, te_y, _protocol(epochs=1), torch.device("cpu"), 0, compile=True)
    except Exception as exc:  # no C++ compiler / inductor unsupported here
        pytest.skip(f"torch.compile unavailable here: {type(exc).__name__}: {str(exc)[:120]}")
    assert b["history"][0]["train_loss"] == pytest.approx(a["history"][0]["train_loss"], rel=1e-3)
    assert torch.allclose(eager[0].weight, compiled[0].weight, atol=1e-4)


def test_tune_times_layouts_and_threads():
    from bench.measure.speed import choose_speed_paths

    trx, tr_y, _, _ = _data()
    model = _tiny_model()
    before = copy.deepcopy(model.state_dict())
    threads = torch.get_num_threads()
    try:
        out = choose_speed_paths(model, trx[:16], tr_y[:16], torch.device("cpu"), steps=1)
    finally:
        torch.set_num_threads(threads)
    assert out["tuned"] and isinstance(out["channels_last"], bool) and out["threads"] >= 1
    assert any(k.startswith("contiguous/") for k in out["tune_ms"]) and any(
        k.startswith("channels_last/") for k in out["tune_ms"]
    )
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the run's model untouched


@pytest.mark.slow
def test_fast_suite_one_epoch_smoke(tmp_path, monkeypatch):
    """suites/fast-cifar.yaml, 1 epoch on a tiny fake CIFAR-10 folder, conv row, through the command line."""
    from bench.cli import main

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        for c in ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]:
            d = tmp_path / "data" / "cifar10" / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i:04d}.jpg")
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp_path / "data"))
    rc = main(
        [
            "run",
            str(ROOT / "suites" / "fast-cifar.yaml"),
            "--only",
            "conv",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--no-progress",
            "--results",
            str(tmp_path / "results"),
        ]
    )
    assert rc == 0
    (rec_path,) = (tmp_path / "results" / "fast-cifar").glob("*.json")
    rec = json.loads(rec_path.read_text())
    assert rec["status"] == "ok" and rec["data"]["train"] == 40
    assert (
        rec["spec"]["protocol"]["tta"] == "flip"
        and rec["spec"]["protocol"]["ema"] == load_suite(ROOT / "suites" / "fast-cifar.yaml").protocol["ema"]
    )
    assert rec["timing"]["speed_paths"] == {
        "channels_last": False,
        "threads": torch.get_num_threads(),
        "compile": False,
        "tuned": False,
    }
    assert rec["timing"]["to_threshold"]["threshold"] == 90.0
