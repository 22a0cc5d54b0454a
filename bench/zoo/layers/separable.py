"""Separable convolutions of `004_…` ("Do we need to learn spatial mixing?") §3.2–3.4.

A depthwise k×k convolution with depth multiplier d (c_in → c_in·d channels) followed by a pointwise 1×1
convolution (c_in·d → c_out). Three variants differ only in what is learned:

* ``sep-full``  — both learned, Eq. 2: p = c_in·k²·d + c_in·d·c_out
* ``sep-chans`` — depthwise frozen at its random initialisation ("static" convolution), Eq. 3: p = c_in·d·c_out
* ``sep-space`` — pointwise frozen at its random initialisation, only spatial mixing learned: p = c_in·k²·d

The default d = k² gives sep-chans the parameter count of the standard convolution (Eq. 4); the document
uses d = 9 for its ResNets (§4.1.1) and d = 3 for a one-third budget (Fig. 10).

Speed path (``fold``, on where it pays: k ≤ 9 and d ≥ 2, :func:`bench.zoo.layers.fold_pays`): both steps are linear
and the pointwise step has no stride, so the layer equals one dense k×k convolution with weights
W[o, i] = Σⱼ P[o, i·d + j] · D[i·d + j] (j < d), folded from the depthwise D and pointwise P at every forward (in the weights' own
precision, outside autocast), with gradients flowing to whichever of D and P is learned. The function is the same
(tests/zoo/test_fold_paths.py, float64); the c_in·d-channel intermediate tensor is never built, which made a bf16
training step of fast-cifar-v2's network 2.4–2.9× faster on CPU (benchmarks/fold_step.py →
results/benchmarks/fold_step.json). Parameters, frozen tensors and the MAC count (taken with ``fold`` off,
:func:`bench.zoo.layers.as_written`) are those of the separable layer as written.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, default_conv_init, fixed_buffer, fold_pays, fold_weights, same_padding
from bench.spec.schema import POSITIVE


class SeparableConv2d(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        *,
        multiplier: int | None = None,
        learn_spatial: bool = True,
        learn_channel: bool = True,
    ):
        super().__init__()
        d = kernel_size * kernel_size if multiplier is None else int(multiplier)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.multiplier = stride, same_padding(kernel_size, padding), d
        mid = in_channels * d
        # the speed path (module docstring) where it pays; False: depthwise then pointwise, as written
        self.fold = fold_pays(kernel_size, d)
        # Same initial distributions as nn.Conv2d, so "frozen at its random initialisation" means exactly that.
        depthwise = default_conv_init((mid, 1, kernel_size, kernel_size), fan_in=kernel_size * kernel_size)
        pointwise = default_conv_init((out_channels, mid, 1, 1), fan_in=mid)
        if learn_spatial:
            self.depthwise = nn.Parameter(depthwise)
        else:
            fixed_buffer(self, "depthwise", depthwise)
        if learn_channel:
            self.pointwise = nn.Parameter(pointwise)
        else:
            fixed_buffer(self, "pointwise", pointwise)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fold:
            return F.conv2d(x, self.folded_weight(), self.bias, self.stride, self.padding)
        y = F.conv2d(x, self.depthwise, None, self.stride, self.padding, groups=self.in_channels)
        return F.conv2d(y, self.pointwise, self.bias)

    def folded_weight(self) -> torch.Tensor:
        """The dense (c_out, c_in, k, k) weight equal to depthwise then pointwise: W[o, i] = Σⱼ P[o, i·d+j] D[i·d+j],
        computed outside autocast in the weights' dtype (the convolution then casts it like any weight)."""
        cin, d, k = self.in_channels, self.multiplier, self.kernel_size
        return fold_weights(
            "oij,ijkl->oikl", self.pointwise.reshape(self.out_channels, cin, d), self.depthwise.reshape(cin, d, k, k)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, stride={self.stride}, "
            f"d={self.multiplier}, learned=({'spatial' if isinstance(self.depthwise, nn.Parameter) else ''}"
            f"{'+' if isinstance(self.depthwise, nn.Parameter) and isinstance(self.pointwise, nn.Parameter) else ''}"
            f"{'channel' if isinstance(self.pointwise, nn.Parameter) else ''})"
        )


def _d(k: int, multiplier: int | None) -> int:
    return k * k if multiplier is None else int(multiplier)


_COMMON = dict(document="004", compile=True)


@LAYERS.register(
    "sep-full",
    section="§3.2 Eq. 2",
    fixed="nothing",
    learned="depthwise k×k filters (d per input channel) and pointwise 1×1",
    learned_params=lambda cin, cout, k, bias, multiplier=None, **o: (
        cin * k * k * _d(k, multiplier) + cin * _d(k, multiplier) * cout + (cout if bias else 0)
    ),
    summary="Separable convolution, depthwise and pointwise both learned.",
    **_COMMON,
    ranges={"multiplier": POSITIVE},
)
def sep_full(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, multiplier=None):
    return SeparableConv2d(in_channels, out_channels, kernel_size, stride, padding, bias, multiplier=multiplier)


@LAYERS.register(
    "sep-chans",
    section="§3.4 Eq. 3 (static convolution)",
    fixed="depthwise k×k filters at random initialisation",
    learned="pointwise 1×1 (channel mixing only)",
    learned_params=lambda cin, cout, k, bias, multiplier=None, **o: (
        cin * _d(k, multiplier) * cout + (cout if bias else 0)
    ),
    summary="Separable convolution learning only channel mixing (frozen random depthwise).",
    **_COMMON,
    ranges={"multiplier": POSITIVE},
)
def sep_chans(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, multiplier=None):
    return SeparableConv2d(
        in_channels, out_channels, kernel_size, stride, padding, bias, multiplier=multiplier, learn_spatial=False
    )


@LAYERS.register(
    "sep-space",
    section="§3.4, Fig. 3 (Sep-Space)",
    fixed="pointwise 1×1 at random initialisation",
    learned="depthwise k×k filters (spatial mixing only)",
    learned_params=lambda cin, cout, k, bias, multiplier=None, **o: (
        cin * k * k * _d(k, multiplier) + (cout if bias else 0)
    ),
    summary="Separable convolution learning only spatial mixing (frozen random pointwise).",
    **_COMMON,
    ranges={"multiplier": POSITIVE},
)
def sep_space(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, multiplier=None):
    return SeparableConv2d(
        in_channels, out_channels, kernel_size, stride, padding, bias, multiplier=multiplier, learn_channel=False
    )
