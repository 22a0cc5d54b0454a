"""Parameter and MAC counts against hand-computed values; frozen parts unchanged by training."""

from __future__ import annotations

import torch
from torch import nn

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.layers import LAYERS, count_parameters, fixed_tensors
from bench.measure.measure import count_macs
from bench.zoo.models import materialise


def test_conv_layer_params_and_macs():
    torch.manual_seed(0)
    layer = LAYERS.get("conv").build(3, 8, 3, 1, None, False)
    assert count_parameters(layer) == {"learned": 3 * 8 * 9, "fixed": 0, "total": 216}
    # one MAC per weight per output pixel: 8×8 output, 216 weights
    assert count_macs(layer, torch.randn(1, 3, 8, 8)) == 216 * 64


def test_separable_counts_follow_eqs_1_to_4():
    cin, cout, k = 16, 32, 3
    d = k * k
    full = count_parameters(LAYERS.get("sep-full").build(cin, cout, k))
    chans = count_parameters(LAYERS.get("sep-chans").build(cin, cout, k))
    space = count_parameters(LAYERS.get("sep-space").build(cin, cout, k))
    assert full == {"learned": cin * k * k * d + cin * d * cout, "fixed": 0, "total": cin * k * k * d + cin * d * cout}
    assert chans["learned"] == cin * d * cout == cin * cout * k * k  # Eq. 4: d = k² gives parity with conv
    assert chans["fixed"] == cin * k * k * d
    assert space["learned"] == cin * k * k * d and space["fixed"] == cin * d * cout
    # MACs on a 4×4 input: depthwise cin·d·k² + pointwise cin·d·cout per pixel
    macs = count_macs(LAYERS.get("sep-chans").build(cin, cout, k), torch.randn(1, cin, 4, 4))
    assert macs == 16 * (cin * d * k * k + cin * d * cout)


def test_pnn_parameter_ratio_eq_28():
    for fanout in (1, 2, 4):
        pnn = LAYERS.get("pnn").build(8, 16, 3, fanout=fanout)
        conv = LAYERS.get("conv").build(8, 16, 3)
        materialise(pnn, torch.randn(1, 8, 6, 6))
        p, c = count_parameters(pnn), count_parameters(conv)
        assert p["learned"] == 8 * fanout * 16
        assert c["learned"] / p["learned"] == 9 / fanout  # CNN/PNN = h·w / (m/p)
        assert p["fixed"] == 8 * fanout * 6 * 6  # one input-sized mask per fan-out map


def test_small_resnet_counts_by_hand():
    """preact-resnet n=1, width 1, conv: every weight counted by hand."""
    torch.manual_seed(0)
    net = build_backbone("preact-resnet", Ops.of("conv"), 3, 10, {"n": 1, "width": 1})
    conv = lambda cin, cout, k: cin * cout * k * k
    bn = lambda c: 2 * c
    expected = conv(3, 16, 3)
    expected += bn(16) + conv(16, 16, 3) + bn(16) + conv(16, 16, 3)  # stage 1
    expected += bn(16) + conv(16, 32, 3) + bn(32) + conv(32, 32, 3) + conv(16, 32, 1)  # stage 2 + proj
    expected += bn(32) + conv(32, 64, 3) + bn(64) + conv(64, 64, 3) + conv(32, 64, 1)  # stage 3 + proj
    expected += bn(64) + 64 * 10 + 10
    assert count_parameters(net) == {"learned": expected, "fixed": 0, "total": expected}


def test_stem_variants():
    net_conv = build_backbone("preact-resnet", Ops.of("pnn", stem="conv"), 3, 10, {"n": 1})
    net_frozen = build_backbone("preact-resnet", Ops.of("pnn", stem="frozen-conv"), 3, 10, {"n": 1})
    assert isinstance(net_conv.stem, nn.Conv2d)
    assert count_parameters(net_frozen.stem) == {"learned": 0, "fixed": 3 * 16 * 9, "total": 3 * 16 * 9}


def test_frozen_parts_unchanged_by_training_steps():
    torch.manual_seed(0)
    net = build_backbone("preact-resnet", Ops.of("sep-chans"), 3, 10, {"n": 1})
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    materialise(net, x)
    before = {k: v.clone() for k, v in fixed_tensors(net).items()}
    assert before
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    after = fixed_tensors(net)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(k in net.state_dict() for k in before)
