"""Every loop over plot data terminates (issue 19): ticks for equal, ulp-apart, huge and tiny values are few
round numbers; non-finite values never reach an axis."""

from __future__ import annotations

import math

import pytest

from bench.report import svg
from tests._guard import within

A = 100 * 36 / 359  # one row at chance on the 359-image digits test set
B = (100 * 35 / 359 + 100 * 37 / 359) / 2  # another row's mean over two seeds: 2 ulp from A


def _round_step(step: float) -> bool:
    """1, 2, 2.5 or 5 × a power of ten."""
    mant = step / 10 ** math.floor(math.log10(step))
    return any(abs(mant - m) < 1e-6 for m in (1, 2, 2.5, 5, 10))


def _round_ticks(ticks: list[float]) -> bool:
    """Multiples of one round step (a single tick: a number with at most 3 significant digits)."""
    if len(ticks) == 1:
        return float(f"{ticks[0]:.3g}") == ticks[0]
    step = ticks[1] - ticks[0]
    return _round_step(step) and all(abs(t / step - round(t / step)) < 1e-6 for t in ticks)


def _round(t: float) -> bool:
    """A power of ten times 1, 2, 2.5, 3 or 5 (log-axis ticks)."""
    mant = abs(t) / 10 ** math.floor(math.log10(abs(t)))
    return any(abs(mant - m) < 1e-6 for m in (1, 2, 2.5, 3, 5, 10))


@pytest.mark.parametrize(
    "ys",
    [
        [A, B],
        [A, A],
        [1e16, 1.0000000000000002e16],
        [5.0, 5.0],
        [0.0, 0.0],
        [-3.0, -3.0000000000000004],
        [1e-12, 3e-12],
        [1e-300, 1e-300],
        [-1e300, 1e300],
        [0.1, 0.2, 0.3],
        [0, 97.3],
    ],
)
def test_linear_axis_ticks_terminate_and_are_round(ys):
    assert B != A and abs(B - A) < 4 * math.ulp(A)
    with within(5, f"ticks of {ys}"):
        fr = svg._Frame([1, 2], ys, False, False, 640, 320)
    ticks = [t for t, _ in fr.yticks]
    assert 1 <= len(ticks) <= svg.MAX_TICKS
    assert all(fr.y0 <= t <= fr.y1 for t in ticks)
    assert _round_ticks(ticks), ticks
    assert len({text for _, text in fr.yticks}) == len(fr.yticks)


@pytest.mark.parametrize("xs", [[3.0, 3.0], [3.0, 3.0000000000000004], [1e-300, 1e300], [1e5, 1e9], [1.5e5, 3e5]])
def test_log_axis_ticks_terminate_and_are_round(xs):
    with within(5, f"log ticks of {xs}"):
        fr = svg._Frame(xs, [1, 2], True, False, 640, 320)
    ticks = [t for t, _ in fr.xticks]
    assert 2 <= len(ticks) <= svg.MAX_TICKS
    assert all(_round(t) for t in ticks) or _round_ticks(ticks), ticks  # decades, or linear within one


def test_ticks_refuse_non_finite_bounds():
    for lo, hi in ((math.nan, 1.0), (0.0, math.inf), (-math.inf, math.inf)):
        with pytest.raises(ValueError, match="finite"):
            svg._ticks(lo, hi, False)


def test_plots_of_ulp_apart_values_render_quickly():
    with within(10, "plots of ulp-apart values"):
        line = svg.lines([{"label": "a", "x": [1, 2], "y": [1e16, 1.0000000000000002e16]}], "epoch", "acc")
        sc = svg.scatter(
            [{"x": 1e6, "y": A, "label": "chance"}, {"x": 2e6, "y": B, "label": "also", "yerr": 0.0}], "macs", "top1"
        )
    assert line.count('class="mark"') == 2 and sc.count('class="mark"') == 2


def test_non_finite_and_unplottable_values_are_left_out():
    out = svg.lines([{"label": "s", "x": [1, 2, 3, 4, 5], "y": [math.nan, math.inf, 1e308, 2.0, 3.0]}], "x", "y")
    assert out.count('class="mark"') == 2 and "nan" not in out.lower() and "inf" not in out
    assert svg.scatter([{"x": math.inf, "y": 1.0, "label": "a"}, {"x": 0.0, "y": 1.0, "label": "b"}], "x", "y") == ""
    assert svg.lines([{"label": "s", "x": "12", "y": "34"}], "x", "y") == ""  # not lists: nothing to draw


def test_pareto_fronts_never_join_two_networks():
    """One dashed front per group (a backbone): four points of two networks give two fronts of two points."""
    pts = [
        {"x": 1, "y": 80, "label": "a (n1)", "group": "n1"},
        {"x": 2, "y": 85, "label": "b (n1)", "group": "n1"},
        {"x": 1.5, "y": 60, "label": "a (n2)", "group": "n2"},
        {"x": 3, "y": 70, "label": "b (n2)", "group": "n2"},
    ]
    out = svg.scatter(pts, "time", "top-1", frontier=True)
    fronts = out.count('<polyline class="front"')
    assert fronts == 2 and "Pareto front of n1" in out and "Pareto front of n2" in out
    # without groups, one front over all four points
    one = svg.scatter([dict(p, group=None) for p in pts], "time", "top-1", frontier=True)
    assert one.count('<polyline class="front"') == 1


def test_a_single_point_or_a_single_x_is_said_not_drawn():
    one = svg.scatter([{"x": 5e6, "y": 87.4, "label": "conv"}], "MACs", "top-1 (%)", title="accuracy vs MACs")
    assert "<svg" not in one and "plot-statement" in one and "conv: top-1 (%) 87.4" in one
    flat = svg.lines(
        [{"label": "conv", "x": [1], "y": [52.25]}, {"label": "<b>x</b>", "x": [1], "y": [40.0]}],
        "epoch",
        "test accuracy (%)",
    )
    assert "<svg" not in flat and "conv: test accuracy (%) 52.25 at epoch 1" in flat and "&lt;b&gt;" in flat
    two = svg.lines([{"label": "conv", "x": [1, 2], "y": [50, 60]}], "epoch", "acc")
    assert two.startswith("<svg")
