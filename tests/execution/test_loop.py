"""bench/execution/loop.py, the one training loop (issue 21): timing by the injected Clock only around training, the
finite-loss check, the per-epoch row. A fake clock makes every number exact (no wall-clock assertion)."""

from __future__ import annotations

import math

import pytest

import bench.execution.loop as loop
from bench.errors import RunFailed
from bench.measure.measure import EPOCH_TIMING_FIELDS


class FakeClock:
    """Each timed region lasts exactly 2 s; evaluating calls nothing of it."""

    source = "fake"

    def __init__(self, device):
        self.calls = []

    def start(self):
        self.calls.append("start")
        return 0.0

    def stop(self, started):
        self.calls.append("stop")
        return 2.0


@pytest.fixture()
def clock(monkeypatch):
    made = []
    monkeypatch.setattr(loop, "Clock", lambda device: made.append(FakeClock(device)) or made[-1])
    return made


def test_fit_times_training_only_and_builds_the_rows(clock):
    order = []

    def train_epoch(epoch):
        order.append(("train", epoch, list(clock[0].calls)))
        return {"train_loss": 1.0 / epoch, "images": 10, "lr": 0.1 * epoch}

    def evaluate(epoch):
        order.append(("eval", epoch, list(clock[0].calls)))
        return {"test_acc": 50.0 + epoch} if epoch % 2 == 0 else None

    seen_rows = []
    out = loop.fit(3, train_epoch, device="cpu", steps=5, evaluate=evaluate, on_epoch=seen_rows.append)
    h = out["history"]
    assert [r["epoch"] for r in h] == [1, 2, 3] and seen_rows == h
    assert [r["train_s_cum"] for r in h] == [2.0, 4.0, 6.0] and [r["images_seen"] for r in h] == [10, 20, 30]
    assert "test_acc" not in h[0] and h[1]["test_acc"] == 52.0 and h[2]["lr"] == pytest.approx(0.3)
    # every evaluation starts after its epoch's clock stopped: it is never inside the timed region
    assert all(calls[-1] == "stop" for kind, _, calls in order if kind == "eval")
    assert set(EPOCH_TIMING_FIELDS) <= set(out["timing"])
    assert out["timing"]["train_s"] == 6.0 and out["timing"]["steps_per_epoch"] == 5
    assert out["timing"]["clock"] == "fake"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_training_loss_fails_the_run_naming_the_epoch(clock, bad):
    with pytest.raises(RunFailed, match=r"training loss became .* in epoch 2 \(lr 9\)"):
        loop.fit(3, lambda e: {"train_loss": 1.0 if e == 1 else bad}, device="cpu", steps=1, what=" (lr 9)")


def test_zero_epochs_give_the_same_timing_fields(clock):
    out = loop.fit(0, None, device="cpu", steps=0)
    assert out["history"] == [] and set(EPOCH_TIMING_FIELDS) <= set(out["timing"]) and out["timing"]["train_s"] == 0
