"""Folded speed paths: a layer written as a fixed or learned bank of k×k filters followed by a 1×1 mixing
(the separable families of `004_…` §3.2–3.4, RFNN of `002_…` ch. 3, the static steerable block of `002_…`
ch. 4 at θ = 0) trains as one dense k×k convolution with the folded filters. It must compute the same function,
with the same gradients, as the layer as written; MACs are counted as written."""

from __future__ import annotations

import json

import pytest
import torch

from bench.measure.measure import count_macs
from bench.zoo.layers import LAYERS, as_written, fold_pays

CASES = [
    ("sep-full", 3, 1, False, {}),
    ("sep-full", 3, 2, True, {"multiplier": 2}),
    ("sep-chans", 5, 1, True, {"multiplier": 3}),
    ("sep-space", 3, 2, False, {}),
    ("sep-chans-dct", 3, 1, True, {}),
    ("rfnn", 3, 1, True, {}),
    ("rfnn", 3, 2, False, {"scales": (1, 2)}),
    ("rfnn", 3, 1, False, {"basis": "free"}),
    ("steer-static", 5, 1, False, {}),
    ("steer-static", 3, 2, True, {"max_order": 1}),
]


def _switch(layer):
    (mod,) = [m for m in layer.modules() if isinstance(getattr(m, "fold", None), bool)]
    return mod


def _run(layer, x, fold: bool):
    _switch(layer).fold = fold
    for p in list(layer.parameters()) + [x]:
        p.grad = None
    y = layer(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.requires_grad}
    return y.detach(), x.grad.clone(), grads


@pytest.mark.parametrize(("family", "k", "stride", "bias", "opts"), CASES)
def test_fold_equals_the_layer_as_written(family, k, stride, bias, opts):
    torch.manual_seed(0)
    layer = LAYERS.get(family).build(5, 7, k, stride, None, bias, **opts).double()
    assert _switch(layer).fold is True  # on by default
    x = torch.randn(2, 5, 11, 11, dtype=torch.float64, requires_grad=True)
    y_fold, gx_fold, g_fold = _run(layer, x, True)
    y_ref, gx_ref, g_ref = _run(layer, x, False)
    assert y_fold.shape == y_ref.shape == (2, 7, -(-11 // stride), -(-11 // stride))
    torch.testing.assert_close(y_fold, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_fold, gx_ref, rtol=1e-12, atol=1e-12)
    assert g_fold.keys() == g_ref.keys() and g_fold  # the learned tensors get gradients on both paths
    for name in g_ref:
        torch.testing.assert_close(g_fold[name], g_ref[name], rtol=1e-12, atol=1e-12)


def test_the_fold_is_on_only_where_it_was_measured_faster():
    """Small kernels with a bank of ≥ 2 filters per channel fold; one filter per channel or kernels over 9×9
    train as written (the dense k×k convolution was measured slower there: bench.zoo.layers.fold_pays)."""
    assert fold_pays(3, 9) and fold_pays(9, 19) and not fold_pays(3, 1) and not fold_pays(17, 28)
    assert LAYERS.get("sep-full").build(4, 6, 3, multiplier=3).fold is True
    assert LAYERS.get("sep-full").build(4, 6, 3, multiplier=1).fold is False
    assert LAYERS.get("rfnn").build(4, 6, 3, scales=(1, 2)).fold is True  # 9×9 support
    big = LAYERS.get("rfnn").build(4, 6, 3, scales=(1, 2, 4))  # 17×17 support
    assert big.k == 17 and big.fold is False
    x = torch.randn(1, 4, 20, 20)
    with torch.no_grad():
        ref = big(x)
        with as_written(big):  # nothing to switch off: the same (as-written) path
            torch.testing.assert_close(big(x), ref, rtol=0, atol=0)
    assert big.fold is False  # as_written restores only the switches it turned off


def test_folding_off_builds_every_layer_as_written():
    from bench.zoo.layers import folding

    with folding(False):
        assert not fold_pays(3, 9)
        off = [LAYERS.get(f).build(4, 6, 3) for f in ("sep-chans", "rfnn", "steer-static")]
    assert all(layer.fold is False for layer in off)
    assert fold_pays(3, 9) and LAYERS.get("sep-chans").build(4, 6, 3).fold is True  # restored after the block


def test_a_wrong_fold_would_be_caught():
    torch.manual_seed(1)
    layer = LAYERS.get("sep-chans").build(4, 6, 3, multiplier=2).double()
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        folded = layer(x)
        layer.depthwise.copy_(layer.depthwise.flip(0))  # pair each pointwise weight with another filter
        assert not torch.allclose(layer(x), folded)


def test_steered_static_block_and_dynamic_block_keep_their_own_paths():
    """Only the unsteered static block folds: at a fixed angle ≠ 0 it steers (and must differ from θ = 0)."""
    torch.manual_seed(3)
    static0 = LAYERS.get("steer-static").build(2, 3, 5, 1, None, False)
    turned = LAYERS.get("steer-static").build(2, 3, 5, 1, None, False, angle=0.8)
    turned.weight.data.copy_(static0.weight.data)
    x = torch.randn(1, 2, 9, 9)
    calls = []
    frame = type(static0).frame
    type(static0).frame = lambda self, inp: calls.append(self) or frame(self, inp)
    try:
        a, b = static0(x), turned(x)
    finally:
        type(static0).frame = frame
    assert calls == [turned]  # the θ = 0 block never built its frame responses
    assert (a - b).abs().max() > 1e-3
    # only a block that takes the fold says so (records' speed_paths.fold reads the switches)
    assert static0.fold is True and turned.fold is False
    assert LAYERS.get("steer-dynamic").build(2, 3, 5, 1, None, False).fold is False


def test_bf16_autocast_fold_close_to_the_layer_as_written():
    """Under CPU bf16 autocast the fold is made in float32, then cast: both paths are within bf16 rounding of
    the float64 function (they round at different places)."""
    torch.manual_seed(2)
    layer = LAYERS.get("sep-full").build(16, 16, 3)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a = layer(x).float()
        with as_written(layer):
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
    rf = LAYERS.get("rfnn").build(4, 6, 3)  # basis layer (c_in·M depthwise k×k) and 1×1, per output pixel
    m, kk = rf.num_basis, rf.k
    assert count_macs(rf, torch.randn(1, 4, 5, 5)) == 25 * (4 * m * kk * kk + 4 * m * 6)


def test_no_fold_on_the_command_line_trains_as_written(tmp_path, monkeypatch):
    """`bench run --no-fold`: the separable layers never fold (the path of records made before the fold, which
    carry no speed_paths.fold); without it they fold and the record says so."""
    from pathlib import Path

    from bench.cli import main
    from bench.zoo.layers.separable import SeparableConv2d

    calls = []
    folded_weight = SeparableConv2d.folded_weight
    monkeypatch.setattr(SeparableConv2d, "folded_weight", lambda self: calls.append(1) or folded_weight(self))
    suite = Path(__file__).resolve().parents[2] / "suites" / "quick.yaml"
    records = {}
    for flags in (["--no-fold"], []):
        calls.clear()
        out = tmp_path / ("as-written" if flags else "folded")
        args = ["run", str(suite), "--only", "sep-chans", "--epochs", "1", "--max-batches", "2", "--device", "cpu"]
        assert main(args + ["--no-progress", "--results", str(out)] + flags) == 0
        (path,) = (out / "quick").glob("*.json")
        records[bool(flags)] = (json.loads(path.read_text()), len(calls))
    (plain, plain_calls), (folded, folded_calls) = records[True], records[False]
    assert plain_calls == 0 and "fold" not in plain["timing"]["speed_paths"]
    assert plain["invocation"]["no_fold"] is True
    assert (
        folded_calls > 0 and folded["timing"]["speed_paths"]["fold"] is True and "no_fold" not in folded["invocation"]
    )
    assert plain["id"] == folded["id"] and plain["macs"] == folded["macs"]  # same run, same MACs (as written)
