"""The standard k×k convolution: the baseline every family is compared with."""

from __future__ import annotations

from torch import nn

from bench.zoo.layers import LAYERS, same_padding


@LAYERS.register(
    "conv",
    document="004",
    section="§3.2 Eq. 1 (standard 2D convolution)",
    fixed="nothing",
    learned="k×k×c_in×c_out weights (+ bias)",
    learned_params=lambda cin, cout, k, bias, **o: cin * cout * k * k + (cout if bias else 0),
    summary="Standard k×k convolution (baseline).",
)
def conv(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False):
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, padding=same_padding(kernel_size, padding), bias=bias
    )
