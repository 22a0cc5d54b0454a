"""ConvMixer backbone (`004_…` §3.3, §4.2): structure, learn = full | chans | space, DCT smoothing, families."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.fft import dctn
from torch import nn

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.backbones.convmixer import StaticConv2d
from bench.zoo.layers import count_parameters, fixed_tensors

SMALL = {"width": 8, "depth": 2, "kernel": 3, "patch": 2}


def net(learn="full", family="conv", seed=0, stem=None, **opts):
    torch.manual_seed(seed)
    return build_backbone("convmixer", Ops.of(family, stem=stem), 3, 10, {**SMALL, "learn": learn, **opts})


def hand_counts(c=3, h=8, depth=2, k=3, p=2, n=10):
    stem = c * h * p * p + h + 2 * h  # patch conv (+bias), BN
    dw, pw = h * k * k + h, h * h + h  # depthwise (+bias), pointwise (+bias)
    block = dw + 2 * h + pw + 2 * h  # each followed by a BN
    total = stem + depth * block + h * n + n  # classifier
    return {"full": (total, 0), "chans": (total - depth * dw, depth * dw), "space": (total - depth * pw, depth * pw)}


@pytest.mark.parametrize("learn", ["full", "chans", "space"])
def test_parameter_counts(learn):
    learned, fixed = hand_counts()[learn]
    assert (learned, fixed) == (
        {"full": 578, "chans": 418, "space": 434}[learn],
        {"full": 0, "chans": 160, "space": 144}[learn],
    )
    c = count_parameters(net(learn))
    assert (c["learned"], c["fixed"]) == (learned, fixed)


def test_structure_and_shapes():
    m = net()
    x = torch.randn(2, 3, 16, 16)
    assert m(x).shape == (2, 10)
    dw = m.blocks[0][0].fn[0]
    assert isinstance(dw, nn.Conv2d) and dw.groups == 8 and dw.weight.shape == (8, 1, 3, 3)
    assert m.stem[0].stride == (2, 2) and m.stem[0].kernel_size == (2, 2)
    assert m.stem[0](x).shape == (2, 8, 8, 8)
    # an even kernel with "same" padding keeps the size (the document's 8×8 filters)
    assert net(kernel=8).blocks[0][0].fn(torch.randn(1, 8, 5, 5)).shape == (1, 8, 5, 5)


@pytest.mark.parametrize("learn,frozen_idx", [("chans", "dw"), ("space", "pw")])
def test_frozen_parts_do_not_move(learn, frozen_idx):
    m = net(learn)
    full = net("full")  # same seed → the same random draws
    fixed = {k: v.clone() for k, v in fixed_tensors(m).items()}
    assert len(fixed) == 2 * 2  # weight + bias in each of the 2 blocks
    blk = m.blocks[0]
    dw, pw = blk[0].fn[0], blk[1]
    frozen, learned = (dw, pw) if frozen_idx == "dw" else (pw, dw)
    assert isinstance(frozen, StaticConv2d) and isinstance(learned, nn.Conv2d)
    fdw, fpw = full.blocks[0][0].fn[0], full.blocks[0][1]
    ref = fdw if frozen_idx == "dw" else fpw
    assert torch.equal(frozen.weight, ref.weight.detach())  # frozen at the same random initialisation
    learned0 = learned.weight.detach().clone()
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5, momentum=0.9, weight_decay=0.1)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    for k, v in fixed_tensors(m).items():
        assert torch.equal(v, fixed[k]), k
    assert not torch.equal(learned.weight, learned0)


def test_smoothed_chans_filters():
    m = net("chans", kernel=8, smoothing=15)
    raw = net("chans", kernel=8)
    got = dctn(m.blocks[1][0].fn[0].weight.double().numpy()[:, 0], norm="ortho", axes=(-2, -1))
    ref = dctn(raw.blocks[1][0].fn[0].weight.double().numpy()[:, 0], norm="ortho", axes=(-2, -1))
    expect = np.zeros_like(ref)
    expect[:, :7, :7] = ref[:, :7, :7]
    np.testing.assert_allclose(got, expect, atol=1e-6)
    with pytest.raises(ValueError):
        net("full", smoothing=15)


def test_other_families():
    # sep-full: the family replaces the patch embedding (stem) and the k×k spatial mixing (dense h → h);
    # the pointwise 1×1 stays a plain conv; learn="chans" is refused.
    m = net(family="sep-full")
    assert type(m.stem[0]).__name__ == "SeparableConv2d"
    assert type(m.blocks[0][0].fn[0]).__name__ == "SeparableConv2d" and isinstance(m.blocks[0][1], nn.Conv2d)
    assert isinstance(net(family="sep-full", stem="conv").stem[0], nn.Conv2d)
    assert isinstance(net("space", family="sep-full").blocks[0][1], StaticConv2d)
    assert m(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError):
        net("chans", family="sep-full")
    with pytest.raises(ValueError):
        net("half")
