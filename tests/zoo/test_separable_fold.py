"""The separable convolution's speed path (`004_…` §3.2–3.4 layers folded into one dense k×k convolution)
computes the same function, with the same gradients, as depthwise-then-pointwise; MACs are counted as written."""

from __future__ import annotations

import pytest
import torch

from bench.measure.measure import count_macs
from bench.zoo.layers import LAYERS, as_written


def _sep(layer):
    return layer.sep if hasattr(layer, "sep") else layer


def _run(layer, x, fold: bool):
    _sep(layer).fold = fold
    for p in list(layer.parameters()) + [x]:
        p.grad = None
    y = layer(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return y.detach(), x.grad.clone(), grads


@pytest.mark.parametrize("family", ["sep-full", "sep-chans", "sep-space", "sep-chans-dct"])
@pytest.mark.parametrize(("k", "stride", "multiplier", "bias"), [(3, 1, None, False), (3, 2, 2, True), (5, 1, 3, True)])
def test_fold_equals_depthwise_then_pointwise(family, k, stride, multiplier, bias):
    torch.manual_seed(0)
    layer = LAYERS.get(family).build(5, 7, k, stride, None, bias, multiplier=multiplier).double()
    x = torch.randn(2, 5, 9, 9, dtype=torch.float64, requires_grad=True)
    y_fold, gx_fold, g_fold = _run(layer, x, True)
    y_ref, gx_ref, g_ref = _run(layer, x, False)
    assert y_fold.shape == y_ref.shape == (2, 7, -(-9 // stride), -(-9 // stride))
    torch.testing.assert_close(y_fold, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_fold, gx_ref, rtol=1e-12, atol=1e-12)
    assert g_fold.keys() == g_ref.keys() and g_fold  # the learned tensors get gradients on both paths
    for name in g_ref:
        torch.testing.assert_close(g_fold[name], g_ref[name], rtol=1e-12, atol=1e-12)


def test_fold_is_on_by_default_and_a_wrong_fold_would_be_caught():
    torch.manual_seed(1)
    layer = LAYERS.get("sep-chans").build(4, 6, 3, multiplier=2).double()
    assert layer.fold is True
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        folded = layer(x)
        layer.depthwise.copy_(layer.depthwise.flip(0))  # pair each pointwise weight with another filter
        assert not torch.allclose(layer(x), folded)


def test_bf16_autocast_fold_close_to_separable():
    """Under CPU bf16 autocast the fold is made in float32, then cast: equal to the two-step path within bf16
    rounding (both round to bf16, at different places)."""
    torch.manual_seed(2)
    layer = LAYERS.get("sep-full").build(16, 16, 3)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        layer.fold = True
        a = layer(x).float()
        layer.fold = False
        b = layer(x).float()
    exact = layer.double()(x.double()).float()
    assert (a - exact).abs().max() < 0.05 * exact.abs().max()
    assert (b - exact).abs().max() < 0.05 * exact.abs().max()


def test_macs_are_counted_as_written_and_the_fold_restored():
    cin, cout, k = 16, 32, 3
    d = k * k
    layer = LAYERS.get("sep-chans").build(cin, cout, k)
    assert count_macs(layer, torch.randn(1, cin, 4, 4)) == 16 * (cin * d * k * k + cin * d * cout)
    assert layer.fold is True  # the counter switched it off only while counting
    with as_written(layer):
        assert layer.fold is False
    assert layer.fold is True
