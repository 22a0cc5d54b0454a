"""swap_layers: which modules of a torchvision network it replaces (against hand counts), the exact
space-to-batch dilation, and that swapped networks still run."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.backbones.swap import SpaceToBatch, swap_layers
from bench.zoo.layers import LayerFamily

# torchvision ResNet-50 by hand: stem 7×7; blocks 3+4+6+3 = 16 bottlenecks, each 1×1, 3×3, 1×1 conv and a
# BN after each; 4 downsample 1×1 convs with BN; one BN after the stem.
R50_SPATIAL = 1 + 16
R50_POINTWISE = 16 * 2 + 4
R50_BN = 1 + 16 * 3 + 4


def _conv_factory(cin, cout, k=3, stride=1, padding=None, bias=False):
    return nn.Conv2d(cin, cout, k, stride, k // 2 if padding is None else padding, bias=bias)


class Tagged(nn.GroupNorm):
    pass


class TaggedLinear(nn.Linear):
    pass


def norm_family(applies_to="all"):
    """A stand-in family with norm and linear hooks (like network deconvolution declares)."""
    return LayerFamily(
        name="t-norm",
        obj=_conv_factory,
        applies_to=applies_to,
        norm=lambda c: Tagged(1, c),
        linear=lambda i, o: TaggedLinear(i, o),
    )


def test_resnet50_counts_spatial_family():
    m = torchvision.models.resnet50(weights=None)
    rep = swap_layers(m, Ops.of("pnn"), stem=("conv1",))
    assert rep.counts() == {
        "spatial": R50_SPATIAL,
        "pointwise": 0,
        "stem": 1,
        "dilated": 0,
        "norms": 0,
        "linears": 0,
        "kept": 0,
    }
    convs = [n for n, x in m.named_modules() if type(x) is nn.Conv2d and x.kernel_size == (3, 3)]
    assert all(".mix" in n for n in convs)  # the only 3×3-free convs left are PNN's own 1×1 mixers
    assert (
        sum(type(x) is nn.Conv2d and x.kernel_size == (1, 1) and ".mix" not in n for n, x in m.named_modules())
        == R50_POINTWISE
    )
    assert sum(type(x) is nn.BatchNorm2d for x in m.modules()) == R50_BN


def test_resnet50_counts_all_and_norm_hook():
    m = torchvision.models.resnet50(weights=None)
    rep = swap_layers(m, Ops(norm_family()))
    c = rep.counts()
    assert (c["spatial"], c["pointwise"], c["norms"], c["linears"]) == (R50_SPATIAL, R50_POINTWISE, R50_BN, 1)
    assert sum(type(x) is nn.BatchNorm2d for x in m.modules()) == 0
    assert sum(type(x) is Tagged for x in m.modules()) == R50_BN
    assert m.layer2[0].bn2.num_channels == 128 and m.layer4[2].bn3.num_channels == 2048
    assert type(m.fc) is TaggedLinear and (m.fc.in_features, m.fc.out_features) == (2048, 1000)


def test_frozen_batchnorm_replaced_and_groups_kept():
    from torchvision.ops.misc import FrozenBatchNorm2d

    net = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1),
        FrozenBatchNorm2d(8),
        nn.Conv2d(8, 8, 3, padding=1, groups=4),
        nn.Conv2d(8, 8, (3, 1), padding=(1, 0)),
    )
    rep = swap_layers(net, Ops(norm_family()))
    assert rep.norms == ["1"] and isinstance(net[1], Tagged)
    assert set(rep.kept) == {"2", "3"} and "groups=4" in rep.kept["2"]
    assert type(net[2]) is nn.Conv2d and net[2].groups == 4


def test_vgg16_counts_and_stem_policy():
    m = build_backbone("tv-vgg16", Ops.of("pnn", stem="conv"), 3, 10, {"fc_dim": 32, "width": 0.25})
    assert m.swap_report.counts()["spatial"] == 13 and m.swap_report.stem == ["features.0"]
    assert type(m.features[0]) is nn.Conv2d  # stem policy "conv" keeps the first layer a convolution
    assert sum(type(x) is nn.Conv2d and x.kernel_size == (3, 3) for x in m.modules()) == 1
    rep = build_backbone("tv-vgg16", Ops(norm_family()), 3, 10, {"fc_dim": 32, "width": 0.25}).swap_report
    assert rep.counts()["spatial"] == 13 and rep.counts()["linears"] == 3 and rep.counts()["norms"] == 0


def test_deeplab_dilated_counts_and_policies():
    # backbone: layer3 blocks 1..5 (dilation 2) + layer4 blocks 0 (2), 1..2 (4) = 8; ASPP: 12, 24, 36 = 3
    m = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=5)
    rep = swap_layers(m, Ops.of("conv"))
    assert rep.counts()["spatial"] == 16 + 1 + 3 + 1 and len(rep.dilated) == 11
    assert sorted(int(v.split("=")[1].rstrip(")")) for v in rep.dilated.values()) == [2] * 6 + [4] * 2 + [12, 24, 36]
    assert isinstance(m.backbone.layer4[1].conv2, SpaceToBatch)
    m = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=5)
    rep = swap_layers(m, Ops.of("pnn"), dilated="keep")
    assert len(rep.kept) == 11 and len(rep.dilated) == 0 and rep.counts()["spatial"] == 10
    assert type(m.classifier[0].convs[3][0]) is nn.Conv2d and m.classifier[0].convs[3][0].dilation == (36, 36)


@pytest.mark.parametrize("d", [2, 3, 12])
@pytest.mark.parametrize("hw", [(8, 8), (7, 10), (3, 5)])
def test_space_to_batch_is_exactly_a_dilated_conv(d, hw):
    torch.manual_seed(0)
    ref = nn.Conv2d(3, 5, 3, padding=d, dilation=d, bias=True)
    inner = nn.Conv2d(3, 5, 3, padding=1, bias=True)
    inner.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, *hw, requires_grad=True)
    y = SpaceToBatch(inner, d)(x)
    torch.testing.assert_close(y, ref(x), rtol=1e-5, atol=1e-5)
    (g1,) = torch.autograd.grad(y.sum(), x)
    (g2,) = torch.autograd.grad(ref(x).sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["conv", "pnn", "sep-chans"])
def test_swapped_resnet50_forward_and_backward(family):
    torch.manual_seed(0)
    m = build_backbone("tv-resnet50", Ops.of(family), 3, 7, {"layers": [1, 1, 1, 1], "width_per_group": 16})
    x = torch.randn(2, 3, 16, 16)
    y = m(x)
    assert y.shape == (2, 7) and torch.isfinite(y).all()
    y.sum().backward()
    spatial = m.layer2[0].conv2
    assert type(spatial).__name__ != "Conv2d" or family == "conv"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in spatial.parameters())
