"""ConvMixer ("Patches are all you need?", ref. [2] of `004_…`), as used by `004_…` §3.3 and §4.2.

Architecture (as in the ConvMixer authors' code, locuslab/convmixer and its CIFAR-10 script)::

    patch embedding  conv p×p, stride p (c_in → h, bias)  → GELU → BN
    depth × [ residual( depthwise k×k, "same" padding (h → h, groups h, bias) → GELU → BN )
              → pointwise 1×1 (h → h, bias) → GELU → BN ]
    global average pool → linear (h → classes)

Defaults are the CIFAR-10 ConvMixer-256/8 with patch 2 and kernel 5 of the authors' CIFAR script; `004_…`
§4.2 uses width 128, patch 1 and various depths (set ``width``, ``depth``, ``patch``).

``learn`` — what is learned (`004_…` §4.2, Figs. 7–9, 14; the paper drops the "Sep" prefix because the
ConvMixer is already separable, so the variants are made here, in the backbone, not by a layer family):

* ``"full"``  — everything learned (the original model);
* ``"chans"`` — every depthwise k×k layer (weight and bias) frozen at its random initialisation: only channel
  mixing (pointwise 1×1, patch embedding, norms, classifier) is learned;
* ``"space"`` — every pointwise 1×1 layer (weight and bias) frozen at its random initialisation.

Frozen layers keep the default ``nn.Conv2d`` initialisation and are stored as fixed buffers (never optimised,
counted as fixed). The random draws are the same for all three variants, so under one seed ``chans`` and
``full`` start from identical weights. ``smoothing`` (an int, default None = off) low-passes the frozen
depthwise filters by zeroing that many highest-order DCT coefficients (`004_…` §4.3.3, App. A.3, Fig. 14; see
:mod:`bench.zoo.layers.separable_dct`); it requires ``learn="chans"``.

How layer families interact (``ops``):

* patch embedding → ``ops.conv(c_in, h, p, stride=p, padding=0, bias=True, role="stem")``: a family replaces
  it like any stem (a p×p conv with p > 1 is spatial; the layer item's ``stem`` option decides as elsewhere);
  with patch 1 it is a 1×1 conv and only ``applies_to="all"`` families replace it.
* depthwise k×k (spatial mixing): with the ``conv`` family it is the ConvMixer's own depthwise convolution
  (``learn`` applies). Families only provide dense c_in → c_out replacements, not depthwise ones, so with any
  other family it becomes ``ops.conv(h, h, k, bias=True)`` — that family's dense spatial layer in place of the
  depthwise one (a different, heavier model). ``learn="chans"`` and ``smoothing`` then raise an error: the
  family decides what its spatial layer learns.
* pointwise 1×1 → ``ops.conv(h, h, 1, bias=True)`` (a plain 1×1 conv unless the family has
  ``applies_to="all"``); with ``learn="space"`` it is the ConvMixer's own frozen 1×1 whatever the family.
* norms → ``ops.norm``; classifier → ``ops.linear``.

For `004_…`'s experiments use the ``conv`` family and vary ``learn``; the suites list the three variants as
three backbone entries with options.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.zoo.layers import fixed_buffer
from bench.zoo.layers.separable_dct import smooth_filters
from bench.spec.schema import POSITIVE

LEARN = ("full", "chans", "space")


class StaticConv2d(nn.Module):
    """A convolution frozen at the weights of a freshly initialised ``nn.Conv2d`` (fixed buffers)."""

    def __init__(self, conv: nn.Conv2d, weight: torch.Tensor | None = None):
        super().__init__()
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups
        fixed_buffer(self, "weight", (conv.weight if weight is None else weight).detach().clone())
        if conv.bias is not None:
            fixed_buffer(self, "bias", conv.bias.detach().clone())
        else:
            self.bias = None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)

    def extra_repr(self) -> str:
        return f"weight={tuple(self.weight.shape)}, groups={self.groups}, frozen"


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class ConvMixer(nn.Module):
    def __init__(
        self,
        ops: Ops,
        in_channels: int,
        num_classes: int,
        width: int,
        depth: int,
        patch: int,
        kernel: int,
        learn: str = "full",
        smoothing: int | None = None,
    ):
        super().__init__()
        if learn not in LEARN:
            raise ValueError(f"convmixer: learn must be one of {', '.join(LEARN)}, not {learn!r}")
        own_depthwise = ops.family.name == "conv"
        if not own_depthwise and learn == "chans":
            raise ValueError(
                f"convmixer: learn='chans' freezes the ConvMixer's own depthwise layers, which the "
                f"{ops.family.name!r} family replaces; use the conv family"
            )
        if smoothing is not None and (learn != "chans" or not own_depthwise):
            raise ValueError(
                "convmixer: smoothing applies to frozen random depthwise filters: "
                "it needs learn='chans' and the conv family"
            )
        h = width
        self.learn = learn
        self.stem = nn.Sequential(
            ops.conv(in_channels, h, patch, patch, padding=0, bias=True, role="stem"), nn.GELU(), ops.norm(h)
        )
        blocks = []
        for _ in range(depth):
            if own_depthwise:
                dw: nn.Module = nn.Conv2d(h, h, kernel, groups=h, padding="same")
                if learn == "chans":
                    weight = None
                    if smoothing is not None:
                        weight = smooth_filters(dw.weight.detach(), smoothing)
                    dw = StaticConv2d(dw, weight)
            else:
                dw = ops.conv(h, h, kernel, 1, bias=True)
            if learn == "space":
                pw: nn.Module = StaticConv2d(nn.Conv2d(h, h, 1))
            else:
                pw = ops.conv(h, h, 1, 1, bias=True)
            blocks.append(
                nn.Sequential(Residual(nn.Sequential(dw, nn.GELU(), ops.norm(h))), pw, nn.GELU(), ops.norm(h))
            )
        self.blocks = nn.Sequential(*blocks)
        self.fc = ops.linear(h, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@BACKBONES.register(
    "convmixer",
    document="004",
    section="§3.3, §4.2 (ConvMixer [2]); Figs. 7–9, 14",
    ranges={"width": POSITIVE, "depth": POSITIVE, "patch": POSITIVE, "kernel": POSITIVE},
)
def convmixer(ops, in_channels, num_classes, *, width=256, depth=8, patch=2, kernel=5, learn="full", smoothing=None):
    """ConvMixer-width/depth (patch embedding, depthwise+pointwise blocks); learn = full | chans | space."""
    return ConvMixer(ops, in_channels, num_classes, width, depth, patch, kernel, learn, smoothing)
