"""The headline comparison (bench/report/headline.py): Welch intervals, verdicts, remaining cost."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from bench.report.headline import headline, overview_points, step_ratios_from, verdict, welch_interval


def test_welch_interval_matches_scipys_welch_t_test():
    a, b = np.array([90.1, 89.7, 90.4]), np.array([88.0, 88.9, 87.6, 88.4])
    delta, lo, hi = welch_interval(a.mean(), a.std(ddof=1), 3, b.mean(), b.std(ddof=1), 4)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert delta == pytest.approx(a.mean() - b.mean())
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    assert welch_interval(90.0, 0.3, 1, 89.0, 0.2, 3) is None  # one seed: no interval


def test_verdict_speaks_only_when_the_interval_excludes_zero():
    assert verdict((1.0, 0.2, 1.8)) == "better"
    assert verdict((-1.0, -1.8, -0.1)) == "worse"
    assert verdict((0.5, -0.3, 1.3)) == "no difference shown"
    assert verdict(None) == "needs 3 seeds"
    assert verdict((-1.0, -1.8, -0.1), n=2) == "needs 3 seeds"  # an interval from 2 seeds, but no verdict


def _row(label, family, mean, std, n, train_s, macs=1e6, fgsm=None):
    r = {
        "label": label,
        "family": family,
        "m:top1:mean": mean,
        "m:top1:std": std,
        "n": n,
        "train_s": train_s,
        "macs": macs,
        "run_ids": [f"{label}{i}" for i in range(n)],
    }
    if fgsm is not None:
        r["m:fgsm8:mean"] = fgsm
    return r


def test_headline_gives_delta_interval_ratios_and_remaining_cost():
    rows = [_row("conv", "conv", 90.0, 0.2, 3, 800.0, 1e6, 20.0), _row("pnn", "pnn", 87.0, 0.3, 2, 1600.0, 2e6)]
    view = {
        "rows": rows,
        "metric_cols": [("top1", "Top-1", True, ".2f")],
        "anchor": "b0",
        "board": SimpleNamespace(device="cpu: test", protocol={"name": "p"}),
    }
    suite = SimpleNamespace(
        seeds=[0, 1, 2],
        layers=[{"label": "conv", "name": "conv"}, {"label": "pnn", "name": "pnn"}, {"label": "rfnn", "name": "rfnn"}],
    )
    bench = [
        {
            "source": "benchmarks/precision_step.py",
            "rows": [{"family": "conv", "bf16-cl_s": 0.5}, {"family": "rfnn", "bf16-cl_s": 1.5}],
        }
    ]
    head = headline({"s": [view]}, {"s": suite}, step_ratios_from(bench), suite_name="s")
    by = {r["label"]: r for r in head["rows"]}
    assert by["conv"]["verdict"] == "baseline"
    pnn = by["pnn"]
    assert pnn["delta"] == pytest.approx(-3.0) and pnn["hi"] < 0 and pnn["verdict"] == "needs 3 seeds"
    assert pnn["macs"] == pytest.approx(2.0) and pnn["time"] == pytest.approx(2.0)
    assert by["rfnn"]["verdict"] == "not yet run" and by["rfnn"]["estimated"]
    assert by["rfnn"]["per_run_s"] == pytest.approx(800.0 * 3)
    # done: 3 × 800 + 2 × 1600; left: pnn 1 × 1600, rfnn 3 × 2400 (estimated)
    assert head["cpu_hours_done"] == pytest.approx((2400 + 3200) / 3600)
    assert head["cpu_hours_left"] == pytest.approx((1600 + 7200) / 3600) and head["left_estimated"]
    assert head["families_done"] == 2
    pts = overview_points(head)
    assert [p["label"] for p in pts] == ["conv (baseline)", "pnn"] and pts[1]["x"] == pytest.approx(2.0)
    assert (pts[0]["x"], pts[0]["y"]) == (1.0, 0.0)
    # the same plot with the MAC ratio on x (issue 20 item 1): the x of each family is its MAC ratio
    by["pnn"]["macs"] = 3.0
    assert [p["x"] for p in overview_points(head, "macs")] == [1.0, 3.0]
    from bench.report.pages.index import overview_plot

    assert "by MAC ratio" in overview_plot(head, "macs") and "by training-time ratio" in overview_plot(head)


def test_a_family_over_three_hours_a_run_is_planned_for_one_seed():
    rows = [_row("conv", "conv", 90.0, 0.2, 3, 1000.0)]
    view = {
        "rows": rows,
        "metric_cols": [("top1", "Top-1", True, ".2f")],
        "anchor": "b0",
        "board": SimpleNamespace(device="cpu", protocol={}),
    }
    suite = SimpleNamespace(
        seeds=[0, 1, 2], layers=[{"label": "conv", "name": "conv"}, {"label": "slow", "name": "slow"}]
    )
    head = headline({"s": [view]}, {"s": suite}, {"slow": 12.0}, suite_name="s")
    slow = next(r for r in head["rows"] if r["label"] == "slow")
    assert slow["seeds"] == 1 and slow["capped"]
    assert head["cpu_hours_left"] == pytest.approx(12000 / 3600)


def test_headline_is_none_without_the_suite_or_its_board():
    assert headline({}, {}) is None


def test_headline_counts_every_run_as_done_and_times_the_newest_path():
    """A row timed on its newest speed path (timed_n of n runs): the time ratio is that path's, the compute done
    is every run's (train_s_sum), and what is left is priced at the newest path's time."""
    conv = _row("conv", "conv", 90.0, 0.2, 3, 800.0)
    sep = dict(_row("sep-chans", "sep-chans", 88.0, 0.2, 2, 900.0), train_s_sum=5000.0, timed_n=1)
    view = {
        "rows": [conv, sep],
        "metric_cols": [("top1", "Top-1", True, ".2f")],
        "anchor": "b0",
        "board": SimpleNamespace(device="cpu: test", protocol={"name": "p"}),
    }
    suite = SimpleNamespace(
        seeds=[0, 1, 2], layers=[{"label": "conv", "name": "conv"}, {"label": "sep-chans", "name": "sep-chans"}]
    )
    head = headline({"s": [view]}, {"s": suite}, suite_name="s")
    by = {r["label"]: r for r in head["rows"]}
    assert by["sep-chans"]["time"] == pytest.approx(900.0 / 800.0) and by["sep-chans"]["timed_n"] == 1
    assert by["conv"]["timed_n"] == 3
    assert head["cpu_hours_done"] == pytest.approx((3 * 800.0 + 5000.0) / 3600)
    assert head["cpu_hours_left"] == pytest.approx(900.0 / 3600)  # one seed left, at the newest path's time
