"""sep-chans-dct (`004_…` App. A.3): frozen random depthwise filters with their highest-order DCT coefficients
zeroed (the "smoothing index" counts the removed components), learned pointwise 1×1 (Eq. 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.fft import dctn

from bench.zoo.layers import LAYERS, count_parameters, fixed_tensors
from bench.zoo.layers.separable_dct import dct2, idct2, smoothing_mask


def build(name, cin=3, cout=5, k=8, seed=0, **opts):
    torch.manual_seed(seed)
    return LAYERS.get(name).build(cin, cout, k, 1, None, False, **opts)


def filters(layer):
    mod = layer.sep if hasattr(layer, "sep") else layer
    return mod.depthwise.detach().double().numpy()[:, 0]  # (c_in·d, k, k)


def dct_np(w):
    return dctn(w, type=2, norm="ortho", axes=(-2, -1))


def test_dct_matches_scipy_and_inverts():
    w = torch.randn(4, 1, 5, 5, dtype=torch.float64)
    np.testing.assert_allclose(dct2(w).numpy(), dct_np(w.numpy()), atol=1e-12)
    torch.testing.assert_close(idct2(dct2(w)), w)


@pytest.mark.parametrize("smoothing,keep", [(15, 7), (28, 6), (0, 8)])
def test_document_examples_8x8(smoothing, keep):
    """A.3: on an 8×8 filter removing the last 15 keeps the first 7×7; removing 28 keeps 6×6."""
    raw = dct_np(filters(build("sep-chans", multiplier=2)))
    got = dct_np(filters(build("sep-chans-dct", multiplier=2, smoothing=smoothing)))
    expect = np.zeros_like(raw)
    expect[:, :keep, :keep] = raw[:, :keep, :keep]
    # zeros exactly where the index says, the other coefficients those of the same-seed unsmoothed filters
    np.testing.assert_allclose(got, expect, atol=1e-6)
    assert np.abs(got[:, :keep, :keep]).min() > 1e-6
    assert (~smoothing_mask(8, smoothing)).sum() == smoothing


def test_default_removes_outermost_shell():
    # k=3: 2k−1 = 5 removed, keep 2×2; k=8 default is the document's 15
    got = dct_np(filters(build("sep-chans-dct", k=3)))
    assert np.abs(got[:, 2, :]).max() < 1e-6 and np.abs(got[:, :, 2]).max() < 1e-6
    assert np.abs(got[:, :2, :2]).min() > 1e-6
    assert build("sep-chans-dct", k=8).smoothing == 15


def test_partial_shell_order():
    # one component: the highest-order corner; three: corner, then (2,1) then (1,2) — larger u first
    assert smoothing_mask(3, 1).logical_not().nonzero().tolist() == [[2, 2]]
    assert sorted(smoothing_mask(3, 3).logical_not().nonzero().tolist()) == [[1, 2], [2, 1], [2, 2]]
    assert smoothing_mask(3, 2).logical_not().nonzero().tolist() == [[2, 1], [2, 2]]
    with pytest.raises(ValueError):
        smoothing_mask(3, 9)


def test_filters_frozen_pointwise_learned():
    layer = build("sep-chans-dct", k=3, multiplier=3)
    before = {k: v.clone() for k, v in fixed_tensors(layer).items()}
    assert list(before) == ["sep.depthwise"]
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["sep.pointwise"]
    w0 = layer.sep.pointwise.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    x = torch.randn(2, 3, 8, 8)
    for _ in range(2):
        opt.zero_grad()
        layer(x).square().mean().backward()
        opt.step()
    assert torch.equal(layer.sep.depthwise, before["sep.depthwise"])
    assert not torch.equal(layer.sep.pointwise, w0)


@pytest.mark.parametrize("cin,cout,k,d,bias", [(3, 5, 3, None, False), (4, 6, 3, 3, True), (2, 7, 8, 4, False)])
def test_learned_count_eq3(cin, cout, k, d, bias):
    torch.manual_seed(0)
    layer = LAYERS.get("sep-chans-dct").build(cin, cout, k, 1, None, bias, multiplier=d)
    dd = k * k if d is None else d
    assert count_parameters(layer)["learned"] == cin * dd * cout + (cout if bias else 0)
    assert count_parameters(layer)["fixed"] == cin * dd * k * k
