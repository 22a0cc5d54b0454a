"""bf16 autocast on CPU against fp32, family by family (issue 22): a bf16 run and an fp32 run of each registered
layer family, same seed, at a small setting (scikit-learn's digits, the quick suite's pre-activation ResNet-8,
2 epochs, some families 1 or 3: EPOCHS), agree within seed noise — the fp32 difference between two seeds, times three, and never less than
3 points (11 of the 360 test images). A family whose numerics break under bf16 (a covariance or basis computed
in bf16, an overflow) falls to chance or NaN and fails here."""

from __future__ import annotations

import pytest
import torch

from bench.zoo.datasets import DATASETS
from bench.zoo.layers import LAYERS
from bench.zoo.models import build_classifier, init_from_data
from bench.execution.train import fit_classifier

pytestmark = pytest.mark.slow  # a bf16 and an fp32 training run of every family: left out of `pytest -m "not slow"`

PROTOCOL = {
    "epochs": 2,
    "batch_size": 64,
    "eval_batch_size": 512,
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
    "schedule": {"name": "cosine"},
    "augment": [],
    "crop_padding": 0,
    "label_smoothing": 0.0,
}
FLOOR = 3.0
#: epochs per family where the default (2) does not fit: deconv is 23× conv's step time on the digits and reaches
#: 94-96 % after one epoch; random-conv needs a third to leave chance. Sized to keep the test within CI's budget.
EPOCHS = {"deconv": 1, "random-conv": 3}


@pytest.fixture(scope="module")
def digits():
    return DATASETS.get("digits").obj(None, False)


def _run(data, family: str, seed: int, precision: str) -> float:
    torch.manual_seed(seed)
    mean, std = data.channel_stats()
    model = build_classifier(
        {"name": "preact-resnet", "options": {"n": 1, "width": 1}},
        {"name": family},
        1,
        10,
        mean,
        std,
        data.test_x[:1].float() / 255,
    )
    init_from_data(model, data.train_x, seed, "cpu")
    protocol = {**PROTOCOL, "precision": precision, "epochs": EPOCHS.get(family, PROTOCOL["epochs"])}
    fit = fit_classifier(
        model, data.train_x, data.train_y, data.test_x, data.test_y, protocol, torch.device("cpu"), seed
    )
    return fit["history"][-1]["test_acc"]


#: families whose bf16 runs are known not to agree at this setting, with what was measured (kept visible as xfail)
KNOWN = {
    "pnn": "measured at 3 epochs: fp32 seeds 0-4 reach 56.0 / 42.3 / 69.9 / 61.0 / 45.7 %, bf16 14.2 / 77.4 / 66.0 / 16.7 / "
    "62.7 % (two of five collapse to chance; still two of five with the perturbation layer itself in "
    "fp32): the PNN network trains unstably and bf16 tips some seeds over; see suites/fast-cifar-v2.yaml",
}


@pytest.mark.parametrize(
    "family",
    [
        pytest.param(f, marks=pytest.mark.xfail(reason=KNOWN[f], strict=False)) if f in KNOWN else f
        for f in LAYERS.names()
    ],
)
def test_bf16_and_fp32_runs_agree_within_seed_noise(digits, family):
    fp32 = [_run(digits, family, s, "fp32") for s in (0, 1)]
    bf16 = _run(digits, family, 0, "bf16")
    band = max(FLOOR, 3 * abs(fp32[0] - fp32[1]))
    assert abs(bf16 - fp32[0]) <= band, (family, fp32, bf16, band)
    # far above chance (10 %) in both precisions: the comparison is between two runs that trained
    assert min(fp32[0], bf16) > 30.0, (family, fp32, bf16)
