"""CIFAR backbones of `003_…` Table 1 (VGG-16, PreAct-ResNet-18, DenseNet-121, MobileNetV2).

The document adapts its CIFAR models from kuangliu/pytorch-cifar (§A.1); these follow those architectures
(as copied into the authors' repository yechengxi/deconvolution, ``models/``), built through ``ops`` so
that batch norm (``conv`` family) and network deconvolution (``deconv``: norms become identities, every
convolution and the classifier whiten their input) drop in. ResNet-18 is ``resnet18`` in ``resnet_cifar.py``.

``width`` scales every channel count (``max(1, round(c × width))``) for CPU-sized runs; ``width=1`` is the
document's network. Global average pooling replaces the original fixed-size pooling (identical for 32×32
inputs, and it lets other input sizes through).

* ``vgg16`` — 13 3×3 conv–norm–ReLU layers (64-64-M-128-128-M-256×3-M-512×3-M-512×3-M), linear 512→classes.
* ``preact-resnet18`` — 3×3 stem (no norm after it), 4 stages of 2 pre-activation basic blocks (norm–ReLU–
  conv), 1×1 projection shortcuts taken after the first norm–ReLU, no final norm (as in the code), linear.
* ``densenet121`` — growth rate 32 (× width), blocks 6-12-24-16, bottleneck norm–ReLU–1×1(4g)–norm–ReLU–3×3(g),
  transitions norm–ReLU–1×1 (reduction 0.5)–2×2 average pool, final norm–ReLU, linear.
* ``mobilenetv2`` — CIFAR variant (stem stride 1, second stage stride 1): 3×3 stem 32, inverted residual
  blocks (1×1 expand, 3×3 depthwise, 1×1 project, norm after each, ReLU after the first two), 1×1 to 1280,
  linear. The 3×3 **depthwise** convolutions go through ``ops.conv(groups=channels)``: a family that builds
  grouped convolutions (``deconv``: each channel's 3×3 patches whitened, one Newton–Schulz iteration, as
  the authors' code) takes them; for every other family they stay plain ``nn.Conv2d(groups=channels)``.

Under ``deconv`` (variant ``code``), the stems and MobileNetV2's projections carry the authors' per-layer
settings as ``hints`` (see ``bench/zoo/layers/deconv.py``): stem iterations 15 (VGG), 10 (PreAct, MobileNetV2),
5 (ResNet-18, DenseNet), the stem frozen after 100 steps in every 1,000 (VGG, PreAct, MobileNetV2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones.resnet_cifar import PreActBlock  # the same pre-activation block
from bench.zoo.backbones import BACKBONES, Ops
from bench.spec.schema import POSITIVE


def _w(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def _head(x: torch.Tensor, fc: nn.Module) -> torch.Tensor:
    return fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# -- VGG-16 ----------------------------------------------------------------------------------------------

# Per-layer settings of the authors' code (yechengxi/deconvolution, models/*.py) for network deconvolution
# (variant "code"): the stem's Newton–Schulz iterations and its freezing after 100 steps in every 1,000.
VGG_STEM_HINTS = {"deconv": {"iterations": 15, "freeze_iter": 100}}
PREACT_STEM_HINTS = MOBILENETV2_STEM_HINTS = {"deconv": {"iterations": 10, "freeze_iter": 100}}
DENSENET_STEM_HINTS = {"deconv": {"iterations": 5}}

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, cfg, width: float):
        super().__init__()
        layers, cin, first = [], in_channels, True
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            cout = _w(item, width)
            layers += [
                ops.conv(cin, cout, 3, 1, role="stem" if first else "body", hints=VGG_STEM_HINTS if first else None),
                ops.norm(cout),
                nn.ReLU(inplace=True),
            ]
            cin, first = cout, False
        self.features = nn.Sequential(*layers)
        self.fc = ops.linear(cin, num_classes)

    def forward(self, x):
        return _head(self.features(x), self.fc)


@BACKBONES.register(
    "vgg16", document="003", section="Table 1 (VGG-16, kuangliu/pytorch-cifar)", ranges={"width": POSITIVE}
)
def vgg16(ops, in_channels, num_classes, *, width=1.0):
    """CIFAR VGG-16 with a norm after every 3×3 convolution; channels × width."""
    return VGG(ops, in_channels, num_classes, VGG16, width)


# -- PreAct-ResNet-18 --------------------------------------------------------------------------------------


class PreActResNet18(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, width: float, blocks=(2, 2, 2, 2)):
        super().__init__()
        widths = [_w(c, width) for c in (64, 128, 256, 512)]
        self.stem = ops.conv(in_channels, widths[0], 3, 1, role="stem", hints=PREACT_STEM_HINTS)
        layers, cin = [], widths[0]
        for i, (w, nb) in enumerate(zip(widths, blocks)):
            for j in range(nb):
                layers.append(PreActBlock(ops, cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = ops.linear(cin, num_classes)

    def forward(self, x):
        return _head(self.layers(self.stem(x)), self.fc)


@BACKBONES.register(
    "preact-resnet18", document="003", section="Table 1 (Preact-18, kuangliu/pytorch-cifar)", ranges={"width": POSITIVE}
)
def preact_resnet18(ops, in_channels, num_classes, *, width=1.0):
    """CIFAR pre-activation ResNet-18 (64-128-256-512 × width, no final norm as in the code)."""
    return PreActResNet18(ops, in_channels, num_classes, width)


# -- DenseNet-121 ------------------------------------------------------------------------------------------


class DenseBottleneck(nn.Module):
    def __init__(self, ops: Ops, cin: int, growth: int):
        super().__init__()
        self.bn1 = ops.norm(cin)
        self.conv1 = ops.conv(cin, 4 * growth, 1)
        self.bn2 = ops.norm(4 * growth)
        self.conv2 = ops.conv(4 * growth, growth, 3)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, ops: Ops, cin: int, cout: int):
        super().__init__()
        self.bn = ops.norm(cin)
        self.conv = ops.conv(cin, cout, 1)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, blocks, growth: int, reduction: float = 0.5):
        super().__init__()
        planes = 2 * growth
        self.stem = ops.conv(in_channels, planes, 3, 1, role="stem", hints=DENSENET_STEM_HINTS)
        stages = []
        for i, nb in enumerate(blocks):
            layers = []
            for _ in range(nb):
                layers.append(DenseBottleneck(ops, planes, growth))
                planes += growth
            if i < len(blocks) - 1:
                out = int(planes * reduction)
                layers.append(Transition(ops, planes, out))
                planes = out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.bn = ops.norm(planes)
        self.fc = ops.linear(planes, num_classes)

    def forward(self, x):
        return _head(F.relu(self.bn(self.stages(self.stem(x)))), self.fc)


@BACKBONES.register(
    "densenet121", document="003", section="Table 1 (DenseNet-121, kuangliu/pytorch-cifar)", ranges={"width": POSITIVE}
)
def densenet121(ops, in_channels, num_classes, *, width=1.0):
    """CIFAR DenseNet-121 (blocks 6-12-24-16, growth rate 32 × width)."""
    return DenseNet(ops, in_channels, num_classes, (6, 12, 24, 16), _w(32, width))


# -- MobileNetV2 -------------------------------------------------------------------------------------------

# (expansion, out_planes, blocks, stride); CIFAR: stride 1 in the stem and the second stage
MOBILENETV2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    def __init__(self, ops: Ops, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        planes = expansion * cin
        self.stride = stride
        self.conv1 = ops.conv(cin, planes, 1)
        self.bn1 = ops.norm(planes)
        # depthwise: a family that builds grouped convolutions takes it (deconv: per-channel whitening, one
        # iteration, as the code); any other stays a plain grouped nn.Conv2d
        self.conv2 = ops.conv(planes, planes, 3, stride, 1, groups=planes, hints={"deconv": {"iterations": 1}})
        self.bn2 = ops.norm(planes)
        # code: the projection whitens with a block of the block's input channels and one iteration
        self.conv3 = ops.conv(planes, cout, 1, hints={"deconv": {"block": cin, "iterations": 1}})
        self.bn3 = ops.norm(cout)
        self.shortcut = None
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(ops.conv(cin, cout, 1), ops.norm(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 1:
            out = out + (self.shortcut(x) if self.shortcut is not None else x)
        return out


class MobileNetV2(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, width: float):
        super().__init__()
        cin = _w(32, width)
        self.stem = ops.conv(in_channels, cin, 3, 1, role="stem", hints=MOBILENETV2_STEM_HINTS)
        self.bn1 = ops.norm(cin)
        layers = []
        for expansion, out, nb, stride in MOBILENETV2:
            out = _w(out, width)
            for j in range(nb):
                layers.append(InvertedResidual(ops, cin, out, expansion, stride if j == 0 else 1))
                cin = out
        self.layers = nn.Sequential(*layers)
        last = _w(1280, width)
        self.conv2 = ops.conv(cin, last, 1)
        self.bn2 = ops.norm(last)
        self.fc = ops.linear(last, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.stem(x))))
        return _head(F.relu(self.bn2(self.conv2(out))), self.fc)


@BACKBONES.register(
    "mobilenetv2", document="003", section="Table 1 (MobileNet v2, kuangliu/pytorch-cifar)", ranges={"width": POSITIVE}
)
def mobilenetv2(ops, in_channels, num_classes, *, width=1.0):
    """CIFAR MobileNetV2 (stride-1 stem); depthwise 3×3 convs whitened per channel under deconv."""
    return MobileNetV2(ops, in_channels, num_classes, width)


# -- PNASNet-A -------------------------------------------------------------------------------------------


class SepConv(nn.Module):
    """PNASNet's "separable" convolution as in the CIFAR code: one k×k convolution grouped by input channel
    (c_in groups, c_out/c_in outputs each), then a norm. Under ``deconv`` it is whitened per group."""

    def __init__(self, ops: Ops, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.conv = ops.conv(cin, cout, k, stride, (k - 1) // 2, groups=cin)
        self.bn = ops.norm(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class CellA(nn.Module):
    """ReLU(SepConv7×7(x) + MaxPool3×3(x)); when downsampling, the pooled branch gets a 1×1 conv + norm."""

    def __init__(self, ops: Ops, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.sep = SepConv(ops, cin, cout, 7, stride)
        self.proj = nn.Sequential(ops.conv(cin, cout, 1), ops.norm(cout)) if stride == 2 else None

    def forward(self, x):
        y = F.max_pool2d(x, 3, self.stride, 1)
        if self.proj is not None:
            y = self.proj(y)
        return F.relu(self.sep(x) + y)


class PNASNetA(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, width: float, cells: int = 6):
        super().__init__()
        planes = _w(44, width)
        self.stem = ops.conv(in_channels, planes, 3, 1, role="stem", hints=PREACT_STEM_HINTS)
        self.bn = ops.norm(planes)
        layers, cin = [], planes
        for stage, mult in enumerate((1, 2, 4)):
            cout = planes * mult
            if stage > 0:
                layers.append(CellA(ops, cin, cout, 2))
                cin = cout
            layers += [CellA(ops, cin, cout, 1) for _ in range(cells)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = ops.linear(cin, num_classes)

    def forward(self, x):
        return _head(self.layers(F.relu(self.bn(self.stem(x)))), self.fc)


@BACKBONES.register(
    "pnasnet-a", document="003", section="Table 1 (PNASNetA, kuangliu/pytorch-cifar)", ranges={"width": POSITIVE}
)
def pnasnet_a(ops, in_channels, num_classes, *, width=1.0):
    """CIFAR PNASNet-A: 3×3 stem (44), 3 stages of 6 cells A (7×7 channel-grouped conv + max-pool branch),
    downsampling cells between stages (44 → 88 → 176), linear. Under deconv: grouped convs whitened per group,
    the stem with 10 iterations and frozen after 100 steps in every 1,000 (authors' models/pnasnet.py)."""
    return PNASNetA(ops, in_channels, num_classes, width)
