"""Frame-based convolutions of `002_…` ch. 4 §4.3, Eq. 24 and Table 6 ("CNN bases beyond pixels").

A k×k filter is written over a fixed spanning set (a *frame*) {φ_m} of the k×k pixel space instead of the
pixel basis {e_n}:

    W_j ⋆ x = Σ_n w_n e_n ⋆ x ≡ Σ_m w_m φ_m ⋆ x          (Eq. 24)

with learned coefficients w_m for every (output, input) channel pair. The frame is a fixed buffer; the layer
forms the effective filter Σ_m w_m φ_m and runs one ordinary convolution. "After optimization … the resulting
network can be rewritten in terms of the standard pixel basis" (§4.3): :meth:`FrameConv2d.to_conv2d` returns that
``nn.Conv2d``; frames only change the optimisation (parameterisation), not the function class.

Frames (Fig. 9; the thesis gives no formulas, reconstructed as follows — see also the report):

* ``frame-gauss`` — Gaussian derivatives G_{m_x}(x;σ)G_{m_y}(y;σ), m_x + m_y ≤ N (Hermite × Gaussian, as in
  ch. 3). "Overcomplete" (§4.3) and shown as "first 9 atoms" for 3×3 (Fig. 9b), so the default order is the
  smallest that spans the k×k space: N = 2(k−1) (3×3: N = 4, 15 atoms spanning R⁹), σ = (k−1)/2 (σ = 1 for 3×3).
* ``frame-framelet`` — "non-orthogonal but not overcomplete" framelets designed for images [81]: the tensor
  products of the 1-D B-spline framelet filters of Ron & Shen, h_j ∝ √C(m,j)·2^{−m}·(1+z)^{m−j}(1−z)^j,
  j = 0..m, m = k−1 (3×3: ¼[1,2,1], (√2/4)[1,0,−1], ¼[1,−2,1]); k² atoms.
* ``frame-naive`` — the "naive frame of the form x^p y^q derived from steerability requirements" (§4.3): all
  monomials with p + q ≤ 2(k−1) on the integer grid centred at 0 (3×3: 15 atoms spanning R⁹).
  NB: the *pixel* basis of Table 6's first row is the ``conv`` family, not this one.

Table 6's "Image Frame" row alternates the Gaussian-derivative and framelet frames layer by layer; a layer
factory cannot know its position, so the two are separate families here (see suites/frames.yaml notes).

Atoms are scaled to unit ℓ2 norm (``normalise=True``; the thesis does not say). Coefficients are initialised
so that the effective filter has the variance of PyTorch's default conv initialisation: w ~ U(±b/ρ) with
b = 1/√(c_in k²) and ρ² = mean over pixels of Σ_m φ_m(p)² (the thesis used Keras defaults, not stated).
Learned parameters: c_out·c_in·M (+ c_out bias), M the number of atoms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, default_conv_init, fixed_buffer, same_padding
from bench.zoo.layers.rfnn import derivative_orders, gaussian_derivative_1d
from bench.spec.schema import POSITIVE


def gauss_frame(k: int, order: int | None = None, sigma: float | None = None) -> torch.Tensor:
    order = 2 * (k - 1) if order is None else int(order)
    sigma = max((k - 1) / 2, 0.5) if sigma is None else float(sigma)
    r = k // 2
    pos = torch.arange(-r, k - r, dtype=torch.float64)
    return torch.stack(
        [
            torch.outer(gaussian_derivative_1d(my, sigma, pos), gaussian_derivative_1d(mx, sigma, pos))
            for mx, my in derivative_orders(order)
        ]
    )


def framelet_filters_1d(k: int) -> torch.Tensor:
    """(k, k): row j is the j-th 1-D B-spline framelet filter of length k (Ron & Shen), m = k − 1."""
    m = k - 1
    rows = []
    for j in range(m + 1):
        poly = torch.tensor([1.0], dtype=torch.float64)
        for factor in [(1.0, 1.0)] * (m - j) + [(1.0, -1.0)] * j:
            poly = (
                torch.cat([poly, torch.zeros(1, dtype=torch.float64)]) * factor[0]
                + torch.cat([torch.zeros(1, dtype=torch.float64), poly]) * factor[1]
            )
        rows.append(math.sqrt(math.comb(m, j)) * 2.0 ** (-m) * poly)
    return torch.stack(rows)


def framelet_frame(k: int) -> torch.Tensor:
    h = framelet_filters_1d(k)
    return torch.stack([torch.outer(h[a], h[b]) for a in range(k) for b in range(k)])


def naive_frame(k: int, degree: int | None = None) -> torch.Tensor:
    degree = 2 * (k - 1) if degree is None else int(degree)
    r = k // 2
    pos = torch.arange(-r, k - r, dtype=torch.float64)
    return torch.stack([torch.outer(pos**q, pos**p) for p, q in derivative_orders(degree)])


class FrameConv2d(nn.Module):
    """k×k convolution whose filters are learned coefficients over a fixed frame (Eq. 24)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        frame: torch.Tensor,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        normalise: bool = True,
    ):
        super().__init__()
        frame = frame.to(torch.float64)
        if normalise:
            frame = frame / frame.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)
        m, k, _ = frame.shape
        self.in_channels, self.out_channels, self.k, self.num_atoms = in_channels, out_channels, k, m
        self.stride, self.padding = stride, same_padding(k, padding)
        fixed_buffer(self, "frame", frame.to(torch.float32))
        rho = math.sqrt(float((frame**2).sum(0).mean()))
        bound_scale = 1.0 / max(rho, 1e-12)
        self.coeff = nn.Parameter(
            default_conv_init((out_channels, in_channels, m), fan_in=in_channels * k * k) * bound_scale
        )
        self.bias = nn.Parameter(default_conv_init((out_channels,), fan_in=in_channels * k * k)) if bias else None

    def effective_weight(self) -> torch.Tensor:
        return torch.einsum("oim,mhw->oihw", self.coeff, self.frame)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding)

    @torch.no_grad()
    def to_conv2d(self) -> nn.Conv2d:
        """The same layer written in the pixel basis: an ordinary nn.Conv2d with identical outputs."""
        conv = nn.Conv2d(
            self.in_channels, self.out_channels, self.k, self.stride, self.padding, bias=self.bias is not None
        ).to(self.coeff.device)
        conv.weight.copy_(self.effective_weight())
        if self.bias is not None:
            conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, k={self.k}, stride={self.stride}, atoms={self.num_atoms}"


def to_conv2d(module: nn.Module) -> nn.Module:
    """Replace every frame / RFNN layer inside ``module`` by its equivalent nn.Conv2d (returns the module)."""
    if callable(getattr(module, "to_conv2d", None)) and not isinstance(module, nn.Conv2d):
        return module.to_conv2d()
    for name, child in module.named_children():
        setattr(module, name, to_conv2d(child))
    return module


def _gauss_atoms(k, order=None):
    order = 2 * (k - 1) if order is None else int(order)
    return (order + 1) * (order + 2) // 2


_COMMON = dict(document="002", learned="frame coefficients w_m per (output, input) channel pair (Eq. 24)", compile=True)


@LAYERS.register(
    "frame-gauss",
    section="ch. 4 §4.3 Eq. 24, Fig. 9b, Table 6 (Gaussian-derivative frame)",
    fixed="overcomplete Gaussian-derivative frame (orders ≤ 2(k−1), σ = (k−1)/2)",
    learned_params=lambda cin, cout, k, bias, order=None, **o: cin * cout * _gauss_atoms(k, order) + bias * cout,
    summary="k×k filters as learned coefficients over a fixed Gaussian-derivative frame (foldable to conv).",
    **_COMMON,
    ranges={"sigma": POSITIVE},
)
def frame_gauss(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    order=None,
    sigma=None,
    normalise=True,
):
    return FrameConv2d(
        in_channels, out_channels, gauss_frame(kernel_size, order, sigma), stride, padding, bias, normalise
    )


@LAYERS.register(
    "frame-framelet",
    section="ch. 4 §4.3 Eq. 24, Fig. 9c, Table 6 (framelet frame)",
    fixed="non-orthogonal B-spline framelet basis (k² tensor-product atoms)",
    learned_params=lambda cin, cout, k, bias, **o: cin * cout * k * k + bias * cout,
    summary="k×k filters as learned coefficients over fixed B-spline framelets (foldable to conv).",
    **_COMMON,
)
def frame_framelet(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, normalise=True):
    return FrameConv2d(in_channels, out_channels, framelet_frame(kernel_size), stride, padding, bias, normalise)


@LAYERS.register(
    "frame-naive",
    section="ch. 4 §4.3 Eq. 24, Fig. 9d, Table 6 (naive x^p y^q frame)",
    fixed="monomials x^p y^q, p + q ≤ 2(k−1), on the pixel grid",
    learned_params=lambda cin, cout, k, bias, degree=None, **o: cin * cout * _gauss_atoms(k, degree) + bias * cout,
    summary="k×k filters as learned coefficients over a naive x^p·y^q frame (foldable to conv).",
    **_COMMON,
)
def frame_naive(
    in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, degree=None, normalise=True
):
    return FrameConv2d(in_channels, out_channels, naive_frame(kernel_size, degree), stride, padding, bias, normalise)
