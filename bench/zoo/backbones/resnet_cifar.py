"""CIFAR ResNets.

* ``preact-resnet`` — the pre-activation CIFAR ResNet of He et al. (identity mappings) used by `004_…` §4.1.1:
  a 1-layer stem, 3 stages of n basic blocks (2n layers each) and a linear classifier, 6n+2 layers; widths
  16/32/64 × ``width``. n = 3 is ResNet-20, n = 9 ResNet-56.
* ``resnet18`` — the CIFAR ResNet-18 (3×3 stem, 4 stages of 2 basic blocks, 64–512 channels × ``width``)
  used by `003_…` Table 1 and by `000_…` Table 5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.spec.schema import POSITIVE


class PreActBlock(nn.Module):
    def __init__(self, ops: Ops, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = ops.norm(cin)
        self.conv1 = ops.conv(cin, cout, 3, stride)
        self.bn2 = ops.norm(cout)
        self.conv2 = ops.conv(cout, cout, 3, 1)
        self.shortcut = ops.conv(cin, cout, 1, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNetCifar(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, n: int, width: int):
        super().__init__()
        widths = [16 * width, 32 * width, 64 * width]
        self.stem = ops.conv(in_channels, widths[0], 3, 1, role="stem")
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(n):
                layers.append(PreActBlock(ops, cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.bn = ops.norm(cin)
        self.fc = ops.linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        x = F.relu(self.bn(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@BACKBONES.register(
    "preact-resnet",
    document="004",
    section="§4.1.1 (CIFAR ResNet, 6n+2 layers)",
    ranges={"n": POSITIVE, "width": POSITIVE},
)
def preact_resnet(ops, in_channels, num_classes, *, n=3, width=1):
    """Pre-activation CIFAR ResNet with 6n+2 layers (n=3: ResNet-20)."""
    return PreActResNetCifar(ops, in_channels, num_classes, n, width)


class BasicBlock(nn.Module):
    def __init__(self, ops: Ops, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = ops.conv(cin, cout, 3, stride)
        self.bn1 = ops.norm(cout)
        self.conv2 = ops.conv(cout, cout, 3, 1)
        self.bn2 = ops.norm(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(ops.conv(cin, cout, 1, stride), ops.norm(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet18Cifar(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, width: float, blocks=(2, 2, 2, 2)):
        super().__init__()
        widths = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        # authors' code (models/resnet.py): the stem whitens with the body's 5 iterations, never frozen
        self.stem = ops.conv(in_channels, widths[0], 3, 1, role="stem", hints={"deconv": {"iterations": 5}})
        self.bn = ops.norm(widths[0])
        layers, cin = [], widths[0]
        for i, (w, nb) in enumerate(zip(widths, blocks)):
            for j in range(nb):
                layers.append(BasicBlock(ops, cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = ops.linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@BACKBONES.register("resnet18", document="003", section="Table 1 (CIFAR ResNet-18)", ranges={"width": POSITIVE})
def resnet18(ops, in_channels, num_classes, *, width=1.0):
    """CIFAR ResNet-18 (3×3 stem, 64-128-256-512 × width)."""
    return ResNet18Cifar(ops, in_channels, num_classes, width)
