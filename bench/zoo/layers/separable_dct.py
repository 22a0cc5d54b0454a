"""Static separable convolution with DCT-smoothed random depthwise filters (`004_…` §4.3.3, Figs. 13–15,
appendix A.3 "Filter Smoothing Method").

``sep-chans-dct`` is ``sep-chans`` (Eq. 3: depthwise k×k filters frozen at their random initialisation,
only the pointwise 1×1 learned) whose frozen filters are first low-pass filtered:

1. each k×k depthwise filter is projected onto its 2-D DCT basis (orthonormal DCT-II along rows and columns);
2. the ``smoothing`` highest-order coefficients are set to zero — the document's *smoothing index* is
   "the number of higher-order components removed";
3. the filter is projected back (inverse DCT) and frozen.

Which components are "higher-order": A.3 gives the index only through complete square shells — on an 8×8
filter, keeping the first 7×7 coefficients "is equivalent to removing the last 15", keeping 6×6 removing
the last 28. So coefficients are ranked by their shell ``max(u, v)`` (u, v = vertical/horizontal frequency
index, 0 = DC) and the last ``smoothing`` of that ranking are removed; ``k² − m²`` removes everything outside
the first m×m block, exactly as in A.3. For counts that cut a shell (the document uses none), the order
inside a shell is: larger ``u + v`` first (the corner before the edges), then larger ``u`` first. This
tie-break is ours, documented and tested.

Default ``smoothing=None`` removes the outermost shell, 2k − 1 coefficients (keep (k−1)×(k−1)). For the
document's 8×8 ConvMixer filters this is its first worked value, 15; the paper's Fig. 14 legend (which
indices were run) did not survive extraction, so no other default can be read from it. The paper's code is
not public (§4: "will be made public upon publication"), so there is no code variant to expose.

The filters are not rescaled after smoothing (A.3 mentions no rescaling; the following normalisation layer of
the backbone absorbs the scale). The learned parameter count is Eq. 3 unchanged: p = c_in·d·c_out (+ bias).
The separable module is :class:`bench.zoo.layers.separable.SeparableConv2d`, reused by composition.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.zoo.layers import LAYERS
from bench.zoo.layers.separable import SeparableConv2d, _d
from bench.spec.schema import POSITIVE


def dct_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``C`` (n×n): coefficients of a 1-D signal x are ``C @ x``; ``C.T`` inverts."""
    k = torch.arange(n, dtype=dtype)[:, None]
    i = torch.arange(n, dtype=dtype)[None, :]
    c = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c


def dct2(w: torch.Tensor) -> torch.Tensor:
    """2-D orthonormal DCT-II over the last two dimensions (square filters)."""
    c = dct_matrix(w.shape[-1], w.dtype).to(w.device)
    return c @ w @ c.T


def idct2(x: torch.Tensor) -> torch.Tensor:
    c = dct_matrix(x.shape[-1], x.dtype).to(x.device)
    return c.T @ x @ c


def default_smoothing(kernel_size: int) -> int:
    """The outermost shell: 2k − 1 coefficients (15 for the document's 8×8 filters)."""
    return min(2 * kernel_size - 1, kernel_size * kernel_size - 1)


def removal_order(kernel_size: int) -> list[tuple[int, int]]:
    """(u, v) DCT indices from highest to lowest order: shell max(u, v) first, then u + v, then u."""
    idx = [(u, v) for u in range(kernel_size) for v in range(kernel_size)]
    return sorted(idx, key=lambda uv: (max(uv), uv[0] + uv[1], uv[0]), reverse=True)


def smoothing_mask(kernel_size: int, smoothing: int | None) -> torch.Tensor:
    """Boolean k×k mask of the DCT coefficients that are kept (True) for a smoothing index."""
    s = default_smoothing(kernel_size) if smoothing is None else int(smoothing)
    if not 0 <= s < kernel_size * kernel_size:
        raise ValueError(
            f"smoothing index must be in [0, {kernel_size * kernel_size - 1}] for a "
            f"{kernel_size}×{kernel_size} filter (it counts removed DCT components), got {s}"
        )
    keep = torch.ones(kernel_size, kernel_size, dtype=torch.bool)
    for u, v in removal_order(kernel_size)[:s]:
        keep[u, v] = False
    return keep


def smooth_filters(w: torch.Tensor, smoothing: int | None) -> torch.Tensor:
    """Zero the ``smoothing`` highest-order 2-D DCT coefficients of every k×k filter in ``w`` (…, k, k)."""
    k = w.shape[-1]
    if w.shape[-2] != k:
        raise ValueError(f"DCT smoothing needs square filters, got {tuple(w.shape[-2:])}")
    keep = smoothing_mask(k, smoothing).to(w.device)
    coeffs = dct2(w.double())
    return idct2(coeffs * keep).to(w.dtype)


class SmoothedStaticSeparable(nn.Module):
    """A ``sep-chans`` separable convolution whose frozen depthwise filters were DCT-smoothed."""

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
        smoothing: int | None = None,
    ):
        super().__init__()
        self.smoothing = default_smoothing(kernel_size) if smoothing is None else int(smoothing)
        self.sep = SeparableConv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias, multiplier=multiplier, learn_spatial=False
        )
        with torch.no_grad():
            self.sep.depthwise.copy_(smooth_filters(self.sep.depthwise, self.smoothing))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sep(x)

    def extra_repr(self) -> str:
        return f"smoothing={self.smoothing} (DCT components removed)"


@LAYERS.register(
    "sep-chans-dct",
    document="004",
    section="§4.3.3, Figs. 13–15, App. A.3 (smoothed static convolution)",
    fixed="depthwise k×k random filters, low-passed by zeroing the `smoothing` highest-order DCT coefficients",
    learned="pointwise 1×1 (channel mixing only)",
    learned_params=lambda cin, cout, k, bias, multiplier=None, **o: (
        cin * _d(k, multiplier) * cout + (cout if bias else 0)
    ),
    compile=True,
    summary="Separable convolution learning only channel mixing, with DCT-smoothed frozen random depthwise filters.",
    ranges={"multiplier": POSITIVE},
)
def sep_chans_dct(
    in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, multiplier=None, smoothing=None
):
    return SmoothedStaticSeparable(
        in_channels, out_channels, kernel_size, stride, padding, bias, multiplier=multiplier, smoothing=smoothing
    )
