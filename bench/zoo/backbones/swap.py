"""Swap a layer family into an existing (torchvision) network, and torchvision backbones built that way.

:func:`swap_layers` walks a built model and replaces, in place:

* every ``nn.Conv2d`` with a square kernel, ``groups == 1`` and zero padding whose kernel is > 1 (or any
  kernel, when the family declares ``applies_to="all"``) by the family's layer with the same in/out
  channels, kernel, stride, padding and bias. Convolutions named in ``stem`` go through
  :meth:`Ops.conv` with ``role="stem"`` so the suite's stem policy (family / conv / frozen-conv) applies;
* when the family defines ``norm``: every ``nn.BatchNorm2d`` and torchvision ``FrozenBatchNorm2d`` by
  ``family.norm(channels)``; when it defines ``linear``: every ``nn.Linear`` by ``family.linear``.

**Dilated convolutions** (DeepLabV3's layer3/4 and ASPP) — ``dilated=``:

* ``"space-to-batch"`` (default): the input is split into its d×d polyphase components (pixels with the same
  row and column residue mod d), the family's *undilated* k×k layer runs on each component (as d²× the
  batch), and the outputs are interleaved back. For a standard convolution this is exactly the dilated
  convolution (the "atrous via space-to-batch" identity; checked in the tests), so every family gets the
  receptive field the architecture asks for without knowing about dilation. Stride-1 "same" convolutions
  only (all torchvision uses); anything else falls back to ``"undilated"`` and is listed in the report.
* ``"undilated"``: the family's layer without dilation and with "same" padding k//2 (receptive field shrinks);
* ``"keep"``: dilated convolutions stay standard ``nn.Conv2d`` (learned) and are listed in the report.

A family whose factory takes a ``dilation`` option is given the dilation directly (and the policy is not used).

The backbones registered here (``tv-resnet50``, ``tv-resnet101``, ``tv-vgg16``) are torchvision's classifiers
built with ``weights=None`` and then swapped: the detection and segmentation tasks cut them into trunk and
head; the classification task can use them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.spec.schema import POSITIVE

DILATED_POLICIES = ("space-to-batch", "undilated", "keep")


class SpaceToBatch(nn.Module):
    """Run an undilated layer as a dilation-``d`` layer: d×d polyphase split → layer → interleave back.

    The wrapped layer must keep the spatial size (stride 1, "same" padding)."""

    def __init__(self, layer: nn.Module, dilation: int):
        super().__init__()
        self.layer = layer
        self.dilation = int(dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dilation
        b, c, h, w = x.shape
        # Only phases holding a real output pixel are computed: with d > h there are h row phases of one row.
        dh, dw = min(d, h), min(d, w)
        ho, wo = -(-h // d), -(-w // d)
        if (ho * dh, wo * dw) != (h, w):  # zeros beyond the edge are what the zero padding reads anyway
            x = F.pad(x, (0, wo * dw - w, 0, ho * dh - h))
        x = x.reshape(b, c, ho, dh, wo, dw).permute(3, 5, 0, 1, 2, 4).reshape(dh * dw * b, c, ho, wo)
        y = self.layer(x)
        co, yh, yw = y.shape[1:]
        y = y.reshape(dh, dw, b, co, yh, yw).permute(2, 3, 4, 0, 5, 1).reshape(b, co, yh * dh, yw * dw)
        return y[:, :, :h, :w]

    def extra_repr(self) -> str:
        return f"dilation={self.dilation}"


@dataclass
class SwapReport:
    """What :func:`swap_layers` replaced (module names), and what it left alone and why."""

    spatial: list = field(default_factory=list)  # k > 1 convolutions now of the family (stem included)
    pointwise: list = field(default_factory=list)  # 1×1 convolutions (families with applies_to="all")
    stem: list = field(default_factory=list)  # convolutions built with role="stem"
    dilated: dict = field(default_factory=dict)  # name → how the dilation was handled
    norms: list = field(default_factory=list)
    linears: list = field(default_factory=list)
    kept: dict = field(default_factory=dict)  # name → reason a convolution stayed standard

    def counts(self) -> dict:
        return {
            "spatial": len(self.spatial),
            "pointwise": len(self.pointwise),
            "stem": len(self.stem),
            "dilated": len(self.dilated),
            "norms": len(self.norms),
            "linears": len(self.linears),
            "kept": len(self.kept),
        }


def _set(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def swap_layers(
    module: nn.Module,
    ops: Ops | str,
    *,
    stem: tuple | list = (),
    dilated: str = "space-to-batch",
    norms: bool = True,
    linears: bool = True,
) -> SwapReport:
    """Replace the convolutions (and norms / linears, when the family defines them) of ``module`` in place.

    ``ops`` is an :class:`Ops` or a family name. ``stem`` names the convolution(s) that are the network's first
    layer (``"conv1"`` in a ResNet). Returns a :class:`SwapReport`.
    """
    if isinstance(ops, str):
        ops = Ops.of(ops)
    if dilated not in DILATED_POLICIES:
        raise ValueError(f"dilated must be one of {', '.join(DILATED_POLICIES)}, not {dilated!r}")
    family = ops.family
    native_dilation = "dilation" in family.defaults
    frozen_bn = _frozen_bn_type()
    report = SwapReport()
    stem = set(stem)
    for name in list(stem):
        if not isinstance(module.get_submodule(name), nn.Conv2d):
            raise ValueError(f"stem {name!r} is not an nn.Conv2d")
    targets = [(n, m) for n, m in module.named_modules() if n]
    for name, m in targets:
        if type(m) is nn.Conv2d:
            k, kw = _pair(m.kernel_size)
            s, sw = _pair(m.stride)
            p, pw = _pair(m.padding) if not isinstance(m.padding, str) else (None, None)
            d, dw = _pair(m.dilation)
            bias = m.bias is not None
            reason = None
            if m.groups != 1:
                reason = f"groups={m.groups}"
            elif k != kw or s != sw or p != pw or d != dw or p is None:
                reason = "non-square kernel, stride, padding or dilation"
            elif m.padding_mode != "zeros":
                reason = f"padding_mode={m.padding_mode}"
            elif k == 1 and family.applies_to != "all" and name not in stem:
                continue  # 1×1 projections stay standard for spatial families (not a "kept" exception)
            if reason:
                report.kept[name] = reason
                continue
            if name in stem:
                new = ops.conv(m.in_channels, m.out_channels, k, s, p, bias, role="stem")
                report.stem.append(name)
            elif d > 1 and native_dilation:
                new = family.build(m.in_channels, m.out_channels, k, s, p, bias, **{**ops.options, "dilation": d})
                report.dilated[name] = f"native dilation={d}"
            elif d > 1:
                policy = dilated
                if policy == "space-to-batch" and (s != 1 or p != d * (k // 2)):
                    policy = "undilated"
                if policy == "keep":
                    report.kept[name] = f"dilation={d} kept as nn.Conv2d (dilated='keep')"
                    continue
                inner = family.build(m.in_channels, m.out_channels, k, s, k // 2, bias, **ops.options)
                new = SpaceToBatch(inner, d) if policy == "space-to-batch" else inner
                report.dilated[name] = f"{policy} (dilation={d})"
            else:
                new = family.build(m.in_channels, m.out_channels, k, s, p, bias, **ops.options)
            (report.spatial if k > 1 else report.pointwise).append(name)
            _set(module, name, new)
        elif (
            norms
            and family.norm is not None
            and (type(m) is nn.BatchNorm2d or (frozen_bn is not None and type(m) is frozen_bn))
        ):
            _set(module, name, ops.norm(int(m.weight.shape[0]) if m.weight is not None else m.num_features))
            report.norms.append(name)
        elif linears and family.linear is not None and type(m) is nn.Linear:
            _set(module, name, ops.linear(m.in_features, m.out_features))
            report.linears.append(name)
    return report


def _frozen_bn_type():
    try:
        from torchvision.ops.misc import FrozenBatchNorm2d

        return FrozenBatchNorm2d
    except ImportError:  # pragma: no cover
        return None


# -- torchvision backbones, swapped ---------------------------------------------------------------------

RESNET_LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def tv_resnet(
    ops: Ops,
    in_channels: int,
    num_classes: int,
    depth: int,
    layers=None,
    width_per_group: int = 64,
    replace_stride_with_dilation=None,
    dilated: str = "space-to-batch",
) -> nn.Module:
    """torchvision's ResNet (Bottleneck for depth ≥ 50), ``weights=None``, with the family swapped in.
    ``layers`` overrides the blocks per stage (e.g. ``[1, 1, 1, 1]`` for smoke runs)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    block = Bottleneck if depth >= 50 else BasicBlock
    model = ResNet(
        block,
        list(layers or RESNET_LAYERS[depth]),
        num_classes=num_classes,
        width_per_group=width_per_group,
        replace_stride_with_dilation=replace_stride_with_dilation,
    )
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    model.swap_report = swap_layers(model, ops, stem=("conv1",), dilated=dilated)
    return model


@BACKBONES.register(
    "tv-resnet50",
    provides=("classifier", "detection-trunk", "dilated-resnet"),
    document="000 §5.4 Table 7 / 003 A.2",
    section="torchvision ResNet-50 (He et al.), weights=None, family swapped in",
    ranges={"width_per_group": POSITIVE},
)
def tv_resnet50(
    ops,
    in_channels,
    num_classes,
    *,
    layers=None,
    width_per_group=64,
    replace_stride_with_dilation=None,
    dilated="space-to-batch",
):
    """torchvision ResNet-50 with every spatial conv (and norms, if the family has one) replaced."""
    return tv_resnet(ops, in_channels, num_classes, 50, layers, width_per_group, replace_stride_with_dilation, dilated)


@BACKBONES.register(
    "tv-resnet101",
    provides=("classifier", "detection-trunk", "dilated-resnet"),
    document="000 §5.4 Table 7",
    section="torchvision ResNet-101 (He et al.), weights=None, family swapped in",
    ranges={"width_per_group": POSITIVE},
)
def tv_resnet101(
    ops,
    in_channels,
    num_classes,
    *,
    layers=None,
    width_per_group=64,
    replace_stride_with_dilation=None,
    dilated="space-to-batch",
):
    """torchvision ResNet-101 with every spatial conv (and norms, if the family has one) replaced."""
    return tv_resnet(ops, in_channels, num_classes, 101, layers, width_per_group, replace_stride_with_dilation, dilated)


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


@BACKBONES.register(
    "tv-vgg16",
    provides=("classifier", "detection-trunk"),
    document="000 §5.4 Table 7",
    section="torchvision VGG-16 (no BN), weights=None",
    ranges={"width": POSITIVE, "fc_dim": POSITIVE},
)
def tv_vgg16(ops, in_channels, num_classes, *, width=1.0, fc_dim=4096, batch_norm=False):
    """torchvision VGG-16 with its 13 3×3 convolutions replaced; ``width`` scales every conv's channels and
    ``fc_dim`` the two hidden fully connected layers (4096 in VGG-16) for smoke runs."""
    from torchvision.models.vgg import VGG, make_layers

    cfg = [v if v == "M" else max(1, int(round(v * width))) for v in VGG16_CFG]
    features = make_layers(cfg, batch_norm=batch_norm)
    if in_channels != 3:
        features[0] = nn.Conv2d(in_channels, cfg[0], 3, padding=1)
    model = VGG(features, num_classes=num_classes)
    last = cfg[-2]
    model.classifier = nn.Sequential(
        nn.Linear(last * 7 * 7, fc_dim),
        nn.ReLU(True),
        nn.Dropout(0.5),
        nn.Linear(fc_dim, fc_dim),
        nn.ReLU(True),
        nn.Dropout(0.5),
        nn.Linear(fc_dim, num_classes),
    )
    for m in model.classifier:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)
    model.swap_report = swap_layers(model, ops, stem=("features.0",))
    return model
