"""Network in Network (Lin et al.) backbones of `002_…` ch. 3 (RFNiN).

* ``nin`` — the ImageNet NiN of §3.3.4 / §3.4.1 (Caffe model zoo definition): four spatial layers, each followed
  by two 1×1 layers, 3×3/2 max pooling after the first three stages, dropout before the last stage, global
  average pooling: conv 11×11/4 96 · 1×1 96 · 1×1 96 · pool · conv 5×5 256 · 1×1 256 · 1×1 256 · pool ·
  conv 3×3 384 · 1×1 384 · 1×1 384 · pool · dropout · conv 3×3 1024 · 1×1 1024 · 1×1 classes · GAP
  (12 convolutions + 4 poolings = the thesis' "16 layers").
* ``nin-cifar`` — the CIFAR RFNiN of §3.4.2: "similar to the model in experiment 1, just that it has one basis
  layer, two 1×1 convolution layers and one pooling layer less and the units in the 1×1 convolution layers are
  192 in the whole network": conv 5×5 192 · 1×1 192 · 1×1 192 · pool · dropout · conv 5×5 192 · 1×1 192 ·
  1×1 192 · pool · dropout · conv 3×3 192 · 1×1 192 · 1×1 classes · GAP (spatial widths and kernel sizes from
  the standard CIFAR NiN; max pooling as in experiment 1's model, where the CIFAR NiN's second pool is average).

Spatial layers are created with ``ops.conv`` (so an RFNN basis layer + linear 1×1 replaces them; an RFNN layer
sets its own kernel size from its scales), 1×1 layers with ``ops.conv(…, 1)`` (standard unless the family
replaces 1×1s too), the last 1×1 (classes) as ``ops.linear`` after the global average pooling, which is the same
linear map (averaging and a 1×1 commute); the ReLU the Caffe NiN applies to the class maps before pooling is
left out so the classifier emits unconstrained logits.

Options: ``drop_scales`` (default True) gives the ℓ-th spatial layer ``scales[:S−ℓ]`` (at least one) when the
family has a ``scales`` option (§3.3.4: the scale covered by the previous pooling is dropped; §3.4.1 lists
σ = 1,2,4,8 / 1,2,4 / 1,2 / 1); ``family_layers="first"`` keeps only the first spatial layer in the family and
uses standard convolutions elsewhere (Table 2's "Layer 1" refactor rows); ``merge_recombination`` (default
True): for a family whose layer already ends in a learned linear 1×1 (``rfnn``), that 1×1 *is* the stage's first
1×1 layer (§3.3.4: "the linear re-combination of the filter basis is done by the subsequent 1×1 convolution
layer"), so the stage is basis · α · ReLU · 1×1 … — this reproduces Table 1's parameter counts exactly
(1.8/3.4/5.5/8.1M single-scale, 2.2/4.2/6.8/10.1M multi-scale, ILSVRC-100); ``norm`` inserts ``ops.norm`` after every
convolution (the thesis' NiN has none; the authors' later "RFNiN BN" variant has it); ``dropout`` is NiN's 0.5.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.spec.schema import FRACTION, POSITIVE

# Families whose layer ends in its own learned linear 1×1 recombination of fixed basis responses.
RECOMBINING = {"rfnn"}


class NiN(nn.Module):
    def __init__(
        self,
        ops: Ops,
        in_channels: int,
        num_classes: int,
        stages,
        *,
        drop_scales: bool = True,
        family_layers: str = "all",
        norm: bool = False,
        dropout: float = 0.5,
        dropout_after=(),
        pool: str = "max",
        merge_recombination: bool = True,
    ):
        super().__init__()
        if family_layers not in ("all", "first"):
            raise ValueError(f"family_layers must be 'all' or 'first', not {family_layers!r}")
        base_scales = None
        if "scales" in ops.family.defaults:
            base_scales = list(ops.family.options(ops.options)["scales"])
        blocks, cin = [], in_channels
        self.pool = pool
        n = len(stages)
        for i, (k, stride, width, mlp) in enumerate(stages):
            layer_ops = ops
            if i > 0 and family_layers == "first":
                layer_ops = Ops.of("conv")
            elif base_scales is not None and drop_scales:
                keep = max(1, len(base_scales) - i)
                layer_ops = dataclasses.replace(ops, options={**ops.options, "scales": base_scales[:keep]})
            if merge_recombination and layer_ops.family.name in RECOMBINING:
                # the family's own linear 1×1 (α of Eq. 23) is the stage's first 1×1 layer (§3.3.4)
                mods = [layer_ops.conv(cin, mlp[0], k, stride, role="stem" if i == 0 else "body")]
                width, mlp = mlp[0], mlp[1:]
            else:
                mods = [layer_ops.conv(cin, width, k, stride, role="stem" if i == 0 else "body")]
            if norm:
                mods.append(ops.norm(width))
            mods.append(nn.ReLU(inplace=True))
            for c in mlp:
                mods.append(layer_ops.conv(width, c, 1, 1))
                if norm:
                    mods.append(ops.norm(c))
                mods.append(nn.ReLU(inplace=True))
                width = c
            if i < n - 1:
                mods.append(nn.MaxPool2d(3, 2, ceil_mode=True) if pool == "max" else nn.AvgPool2d(3, 2, ceil_mode=True))
            if i in dropout_after and dropout > 0:
                mods.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*mods))
            cin = width
        self.features = nn.Sequential(*blocks)
        self.fc = ops.linear(cin, num_classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@BACKBONES.register(
    "nin",
    document="002",
    section="ch. 3 §3.3.4, §3.4.1 (ImageNet NiN / RFNiN)",
    ranges={"family_layers": POSITIVE, "dropout": FRACTION, "width": POSITIVE},
)
def nin(
    ops,
    in_channels,
    num_classes,
    *,
    drop_scales=True,
    family_layers="all",
    norm=False,
    dropout=0.5,
    width=1.0,
    merge_recombination=True,
):
    """ImageNet Network in Network (Caffe zoo): 4 stages of spatial conv + two 1×1, GAP."""
    w = lambda c: max(1, int(round(c * width)))  # noqa: E731
    stages = [
        (11, 4, w(96), (w(96), w(96))),
        (5, 1, w(256), (w(256), w(256))),
        (3, 1, w(384), (w(384), w(384))),
        (3, 1, w(1024), (w(1024),)),
    ]
    # dropout sits between the third pooling and the last stage
    return NiN(
        ops,
        in_channels,
        num_classes,
        stages,
        drop_scales=drop_scales,
        family_layers=family_layers,
        norm=norm,
        dropout=dropout,
        dropout_after=(2,),
        merge_recombination=merge_recombination,
    )


@BACKBONES.register(
    "nin-cifar",
    document="002",
    section="ch. 3 §3.4.2 (CIFAR RFNiN, 192 units)",
    ranges={"family_layers": POSITIVE, "dropout": FRACTION, "width": POSITIVE},
)
def nin_cifar(
    ops,
    in_channels,
    num_classes,
    *,
    drop_scales=True,
    family_layers="all",
    norm=False,
    dropout=0.5,
    width=192,
    pool="max",
    merge_recombination=True,
):
    """CIFAR Network in Network of §3.4.2: 3 stages of spatial conv + 1×1s (192 units), GAP."""
    stages = [(5, 1, width, (width, width)), (5, 1, width, (width, width)), (3, 1, width, (width,))]
    return NiN(
        ops,
        in_channels,
        num_classes,
        stages,
        drop_scales=drop_scales,
        family_layers=family_layers,
        norm=norm,
        dropout=dropout,
        dropout_after=(0, 1),
        pool=pool,
        merge_recombination=merge_recombination,
    )
