"""Per-pixel (boundary-detection) networks of `002_…` chapter 4 §4.4.2, built around the convolution factory.

* ``blob-fcn`` — the textured-blob experiment: ``depth`` k×k blocks of ``width`` channels (the first one is
  "a single dynamic steerable block" when the row's family is ``steer-dynamic``; with ``conv`` it is "a fully
  convolutional network baseline of the same size"), ReLU, and a 1×1 convolution to one boundary logit per pixel.
* ``dynresnet-bsd`` — the BSD500 network ``Conv2d[64] → 2×(DynResBlock[128] → StatResBlock[128]) → Conv2D[256]``
  (followed here by a 1×1 convolution to one logit). A DynResBlock is the row's family block (Eq. 29 for
  ``steer-dynamic``) + BN + ReLU; a StatResBlock is the additive residual block of Eq. 28
  (x + BN(conv(ReLU(BN(conv(x)))))). When the row is ``steer-dynamic`` the StatResBlocks use ``steer-static`` with
  the same frame (the thesis alternates dynamic and static blocks); for any other family they use that family.
  The thesis' exact block setup is in an appendix the seed text does not contain, so widths beyond the ones
  quoted are guesses. BSD500 is not available here; the suite only shows the thesis' numbers for it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.zoo.layers import LAYERS
from bench.spec.schema import POSITIVE


class BlobFCN(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, width: int, depth: int, kernel_size: int):
        super().__init__()
        blocks, c = [], in_channels
        for _ in range(depth):
            blocks.append(ops.conv(c, width, kernel_size, 1, bias=True))
            c = width
        self.blocks = nn.ModuleList(blocks)
        self.head = ops.conv(width, num_classes, 1, 1, bias=True)

    def forward(self, x):
        for block in self.blocks:
            x = F.relu(block(x))
        return self.head(x)


@BACKBONES.register(
    "blob-fcn",
    provides=("dense",),
    document="002",
    section="ch. 4 §4.4.2 (textured blobs: one block + 1×1 head)",
    ranges={"width": POSITIVE, "depth": POSITIVE, "kernel_size": POSITIVE},
)
def blob_fcn(ops, in_channels, num_classes, *, width=8, depth=1, kernel_size=5):
    """Fully convolutional per-pixel net: depth × (k×k block, ReLU), then a 1×1 conv to the logits."""
    return BlobFCN(ops, in_channels, num_classes, width, depth, kernel_size)


class DynBlock(nn.Module):
    def __init__(self, conv: nn.Module, cout: int, ops: Ops):
        super().__init__()
        self.conv, self.bn = conv, ops.norm(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class StatResBlock(nn.Module):
    def __init__(self, make_conv, c: int, ops: Ops):
        super().__init__()
        self.bn1, self.conv1 = ops.norm(c), make_conv(c, c)
        self.bn2, self.conv2 = ops.norm(c), make_conv(c, c)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        return x + self.conv2(F.relu(self.bn2(out)))


class DynResNetBSD(nn.Module):
    def __init__(
        self, ops: Ops, in_channels: int, num_classes: int, stem: int, width: int, top: int, pairs: int, k: int
    ):
        super().__init__()
        if ops.family.name == "steer-dynamic":
            static = LAYERS.get("steer-static")
            keep = {key: v for key, v in ops.options.items() if key in static.defaults}
            make_static = lambda ci, co: static.build(ci, co, k, 1, None, False, **keep)  # noqa: E731
        else:
            make_static = lambda ci, co: ops.conv(ci, co, k)  # noqa: E731
        self.stem = ops.conv(in_channels, stem, k, role="stem")
        blocks, c = [], stem
        for _ in range(pairs):
            blocks += [DynBlock(ops.conv(c, width, k), width, ops), StatResBlock(make_static, width, ops)]
            c = width
        self.blocks = nn.Sequential(*blocks)
        self.top = ops.conv(width, top, k)
        self.head = ops.conv(top, num_classes, 1, bias=True)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.blocks(x)
        return self.head(F.relu(self.top(x)))


@BACKBONES.register(
    "dynresnet-bsd",
    provides=("dense",),
    document="002",
    section="ch. 4 §4.4.2 BSD500: Conv2d[64]→2×(DynResBlock[128]→StatResBlock[128])→Conv2D[256]",
    ranges={"stem": POSITIVE, "width": POSITIVE, "top": POSITIVE, "pairs": POSITIVE, "kernel_size": POSITIVE},
)
def dynresnet_bsd(ops, in_channels, num_classes, *, stem=64, width=128, top=256, pairs=2, kernel_size=3):
    """The thesis' BSD500 boundary net: alternating dynamic and static blocks, one logit per pixel."""
    return DynResNetBSD(ops, in_channels, num_classes, stem, width, top, pairs, kernel_size)
