"""Backbones: architectures built around a convolution factory so that any layer family drops in.

A backbone is registered with ``@BACKBONES.register(name, document=..., section=...)`` on a builder
``builder(ops, in_channels, num_classes, *, option=default, ...) -> nn.Module``. Builders never create
``nn.Conv2d`` / ``nn.BatchNorm2d`` / ``nn.Linear`` directly for the layers a family may replace; they ask
``ops`` (:class:`Ops`), which routes to the chosen family.
"""

from __future__ import annotations

from dataclasses import dataclass, field


import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, LayerFamily, default_conv_init, fixed_buffer
from bench.zoo.registry import Entry, Registry


@dataclass(frozen=True)
class Backbone(Entry):
    document: str = ""
    section: str = ""
    # what the builder's network can serve as; a task names the one it needs (TaskEntry.needs), and a suite
    # pairing a task with a backbone that cannot serve it is refused when it loads
    provides: tuple = ("classifier",)


#: the entry-point group keeps its name from before the package tree (installed plug-ins register under it)
ENTRY_POINT_GROUP = "bench.backbones"  # move_tree: keep
BACKBONES: Registry[Backbone] = Registry("backbone", "bench.zoo.backbones", Backbone, group=ENTRY_POINT_GROUP)


@dataclass
class Ops:
    """The convolution factory a backbone is built with."""

    family: LayerFamily
    options: dict = field(default_factory=dict)
    stem: str | None = None  # "family", "conv" or "frozen-conv"; None → the family's default

    @classmethod
    def of(cls, name: str, options: dict | None = None, stem: str | None = None) -> "Ops":
        return cls(LAYERS.get(name), dict(options or {}), stem)

    def conv(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        role: str = "body",
        *,
        groups: int = 1,
        hints: dict | None = None,
    ) -> nn.Module:
        """A convolution in the backbone. ``role="stem"`` marks the first layer (see ``stem``). ``groups`` > 1
        (e.g. depthwise) goes to the family only if it builds grouped convolutions, else to nn.Conv2d.
        ``hints``: per-layer settings keyed by family name (``{"deconv": {"iterations": 1}}``), given to a
        family that accepts hints together with the layer's role."""
        use_family = kernel_size > 1 or self.family.applies_to == "all"
        if groups != 1 and not self.family.grouped:
            use_family = False
        pad = kernel_size // 2 if padding is None else padding
        if role == "stem":
            stem = self.stem or self.family.stem
            if stem == "frozen-conv":
                return FrozenConv2d(in_channels, out_channels, kernel_size, stride, pad, bias)
            if stem == "conv":
                use_family = False
        if use_family:
            layer_hints = {"role": role, **((hints or {}).get(self.family.name, {}))}
            return self.family.build(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                bias,
                groups=groups,
                hints=layer_hints,
                **self.options,
            )
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=pad, bias=bias, groups=groups)

    def norm(self, channels: int) -> nn.Module:
        """The family's replacement for batch norm (called with the family's resolved options), else BN."""
        if self.family.norm:
            return self.family.norm(channels, **self.family.options(self.options))
        return nn.BatchNorm2d(channels)

    def linear(self, in_features: int, out_features: int) -> nn.Module:
        """The family's classifier layer (called with the family's resolved options), else nn.Linear."""
        if self.family.linear:
            return self.family.linear(in_features, out_features, **self.family.options(self.options))
        return nn.Linear(in_features, out_features)


class FrozenConv2d(nn.Module):
    """A k×k convolution frozen at its random initialisation (the stem variant an independent PNN
    reproduction found the published CIFAR-10 numbers depend on)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, bias: bool):
        super().__init__()
        self.stride, self.padding = stride, padding
        fixed_buffer(self, "weight", default_conv_init((cout, cin, k, k), fan_in=cin * k * k))
        if bias:
            fixed_buffer(self, "bias", default_conv_init((cout,), fan_in=cin * k * k))
        else:
            self.bias = None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def build_backbone(name: str, ops: Ops, in_channels: int, num_classes: int, options: dict | None = None) -> nn.Module:
    entry = BACKBONES.get(name)
    return entry.obj(ops, in_channels, num_classes, **entry.options(options))
