"""Structured receptive field layer (RFNN) of `002_…` ch. 3 (§3.3.1–§3.3.4, Eqs. 18–23, Algorithm 1).

A k×k convolution is replaced by a *fixed* basis layer followed by a *learned* linear 1×1 recombination,
with no non-linearity in between (§3.3.4):

    basis layer:  ζ_{i,m} = φ_m ⋆ x_i          every input channel i convolved with every basis filter φ_m
    1×1 layer:    y_j = Σ_i Σ_m α_{ijm} ζ_{i,m}  (Eq. 23 / Algorithm 1 step 3)

so the effective filter between input i and output j is F_ij = Σ_m α_ijm φ_m (Eq. 23), and
:meth:`RFConv2d.to_conv2d` returns that ordinary ``nn.Conv2d``. Training uses the same identity as a speed path
(``fold``, on for kernels up to 9×9: :func:`bench.zoo.layers.fold_pays`; larger dense kernels were measured slower
than the basis layer and its 1×1): every forward convolves with F (folded in the weights' precision, outside
autocast; gradients reach α, and the bank when it is learned) instead of building the c_in·M basis responses: the
same function (tests/zoo/test_fold_paths.py, float64), 1.6× faster per bf16 training step of fast-cifar-v2's
network on CPU (benchmarks/fold_step.py). The MAC count is the layer as written, basis layer and 1×1
(:func:`bench.zoo.layers.as_written`). The basis φ_m are 2-D Gaussian derivatives G_{m_x}(x;σ)·G_{m_y}(y;σ) with
m_x + m_y ≤ N (``order``), each 1-D derivative built from Hermite polynomials times a Gaussian (Eq. 20):

    G_m(x; σ) = (−1)^m (σ√2)^{−m} H_m(x / (σ√2)) · G(x; σ),   G(x; σ) = exp(−x²/2σ²) / (√(2π) σ)

(H_m the physicists' Hermite polynomials: H_0 = 1, H_1 = 2u, H_{n+1} = 2u H_n − 2n H_{n−1}). Order N gives
(N+1)(N+2)/2 functions per scale: 3, 6, 10, 15 for N = 1..4, the thesis' 12/24/40/60 "2DFilters" of Table 1
(rows 1–4) divided by its 4 basis layers. Filters are sampled on the integer pixel grid, x = column offset,
y = row offset from the kernel centre, and applied as PyTorch cross-correlation (the thesis' "convolution with
flipped versions" only flips the sign of odd derivatives, which the learned α absorb).

Scales (``scales``): several σ can be stacked (§3.3.4: σ_s = 2^s, s = 0..3). Following the authors' code (README
of jhjacobsen/RFNN: "37 basis filters for a 4-scale 3rd-order basis: 10 with σ=1, 9 with σ=2, 9 with σ=4, 9 with
σ=8"), the zero-order Gaussian is kept at the smallest scale only (``zeroth="lowest"``): this is what reproduces
Table 1's totals 24/54/94/144 for the 4-3-2-1-scale network; ``zeroth="all"`` keeps it at every scale.
The per-layer dropping of the largest scale after each pooling (§3.3.4, "in each subsequent layer we discard the
lowest scale" — the lowest relative to the *input* resolution, i.e. σ = 1,2,4,8 / 1,2,4 / 1,2 / 1 in each layer's
own pixels, as §3.4.1 lists) is a *backbone* behaviour: the NiN backbones (``bench/zoo/backbones/nin.py``, option
``drop_scales``) pass ``scales[:S−ℓ]`` to the ℓ-th spatial layer of any family that has a ``scales`` option.

Kernel size (``support``): the basis fixes the support, so the factory's ``kernel_size`` is overridden:
``"sigma"`` (default) uses radius ⌈truncate·σ_max⌉ (truncate = 2: σ=1 → 5×5, 2 → 9×9, 4 → 17×17, 8 → 33×33);
``"caffe"`` uses the authors' Caffe kernels 5/7/9/11 for 1/2/3/4 scales (3 + 2·S); ``"factory"`` keeps the
backbone's kernel_size. The thesis states no rule. Padding is always k//2, so the output is H/stride.

Normalisation (``normalisation``): ``"paper"`` (default) is Eq. 20 as written — exact derivatives of the unit-mass
continuous Gaussian, also what the Caffe code behind Tables 1–4 uses (recursive Gaussian + derivative filters,
no scale normalisation); ``"code"`` is the Theano (MNIST) code's variant: the sampled Gaussian renormalised to sum
1 and each derivative multiplied by σ^m (scale-normalised derivatives).

Basis (``basis``): ``"gauss"`` (default) is the RFNN; ``"free"`` is Table 2's "NiN-refactor": the same factorised
layer (a shared bank of M k×k filters per layer, then a 1×1) with the bank learned instead of fixed.

Learned parameters: c_in·M·c_out (+ c_out bias) for M basis functions (+ M·k² for ``basis="free"``).
In the NiN backbones this layer's 1×1 *is* the stage's first 1×1 layer (§3.3.4), which reproduces Table 1's
#Params (e.g. RFNiN-Scale 3rd-order 6.8M) and Table 2's NiN-refactor 6.87M (learned bank, k = 33/17/9/5, i.e. the
radius-2σ support) — evidence for the default ``support``.
The 1×1 recombination uses PyTorch's default conv initialisation (the authors' Caffe prototxts use "msra").
Default ``order=3``: the thesis' champion and main setting (RFNiN-Scale 3rd-order, Tables 1–4; §3.5 "a third
order basis is sufficient"). Default ``scales=(1,)`` (Table 1 rows 1–4, the MNIST RFNN): a drop-in layer in an
arbitrary backbone would otherwise carry 33×33 filters in every layer; the multi-scale RFNiN is a suite row
(``scales: [1, 2, 4, 8]`` in the NiN backbones, which drop scales per layer).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, default_conv_init, fixed_buffer, fold_pays, fold_weights
from bench.spec.schema import NON_NEGATIVE, POSITIVE


def hermite(m: int, u: torch.Tensor) -> torch.Tensor:
    """Physicists' Hermite polynomial H_m(u) by the three-term recurrence."""
    h_prev, h = torch.ones_like(u), 2 * u
    if m == 0:
        return h_prev
    for n in range(1, m):
        h_prev, h = h, 2 * u * h - 2 * n * h_prev
    return h


def gaussian_derivative_1d(m: int, sigma: float, x: torch.Tensor, normalisation: str = "paper") -> torch.Tensor:
    """m-th derivative of the 1-D Gaussian of scale σ at positions x (Eq. 20)."""
    x = x.to(torch.float64)
    g = torch.exp(-(x**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    if normalisation == "code":
        g = g / g.sum()
    elif normalisation != "paper":
        raise ValueError(f"normalisation must be 'paper' or 'code', not {normalisation!r}")
    s2 = sigma * math.sqrt(2)
    d = (-1) ** m * s2 ** (-m) * hermite(m, x / s2) * g
    if normalisation == "code":
        d = d * sigma**m
    return d


def derivative_orders(order: int) -> list[tuple[int, int]]:
    """(m_x, m_y) with m_x + m_y ≤ order, by total order, then from pure-x to pure-y."""
    return [(n - my, my) for n in range(order + 1) for my in range(n + 1)]


def basis_count(order: int, n_scales: int = 1, zeroth: str = "lowest") -> int:
    per = (order + 1) * (order + 2) // 2
    return per + (n_scales - 1) * (per - (1 if zeroth == "lowest" else 0))


def kernel_size_for(scales, support: str = "sigma", truncate: float = 2.0, kernel_size: int = 3) -> int:
    scales = tuple(scales)
    if support == "sigma":
        return 2 * math.ceil(truncate * max(scales) - 1e-9) + 1
    if support == "caffe":
        return 3 + 2 * len(scales)
    if support == "factory":
        return int(kernel_size)
    raise ValueError(f"support must be 'sigma', 'caffe' or 'factory', not {support!r}")


def gaussian_basis(
    order: int, scales=(1.0,), k: int = 5, zeroth: str = "lowest", normalisation: str = "paper"
) -> torch.Tensor:
    """The (M, k, k) Gaussian-derivative basis; atom[row, col] = G_my(y) · G_mx(x), y = row − r, x = col − r."""
    if zeroth not in ("lowest", "all"):
        raise ValueError(f"zeroth must be 'lowest' or 'all', not {zeroth!r}")
    if order < 0:
        raise ValueError("order must be ≥ 0")
    r = k // 2
    pos = torch.arange(-r, k - r, dtype=torch.float64)
    atoms = []
    for s, sigma in enumerate(sorted(float(v) for v in scales)):
        for mx, my in derivative_orders(order):
            if (mx, my) == (0, 0) and zeroth == "lowest" and s > 0:
                continue
            gx = gaussian_derivative_1d(mx, sigma, pos, normalisation)
            gy = gaussian_derivative_1d(my, sigma, pos, normalisation)
            atoms.append(torch.outer(gy, gx))
    return torch.stack(atoms).to(torch.float32)


class RFConv2d(nn.Module):
    """Fixed basis layer (depthwise, every channel × every basis filter) followed by a learned 1×1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        bias: bool = False,
        *,
        order: int = 3,
        scales=(1,),
        support: str = "sigma",
        truncate: float = 2.0,
        kernel_size: int = 3,
        zeroth: str = "lowest",
        normalisation: str = "paper",
        basis: str = "gauss",
    ):
        super().__init__()
        if basis not in ("gauss", "free"):
            raise ValueError(f"basis must be 'gauss' or 'free', not {basis!r}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.order, self.scales, self.basis_kind = int(order), tuple(float(s) for s in scales), basis
        self.k = kernel_size_for(self.scales, support, truncate, kernel_size)
        phi = gaussian_basis(self.order, self.scales, self.k, zeroth, normalisation)
        self.num_basis = phi.shape[0]
        if basis == "gauss":
            fixed_buffer(self, "basis", phi)
        else:  # Table 2 "NiN-refactor": the same factorisation with a learned bank
            self.basis = nn.Parameter(default_conv_init(tuple(phi.shape), fan_in=self.k * self.k))
        self.mix = nn.Conv2d(in_channels * self.num_basis, out_channels, 1, bias=bias)
        # the speed path: one convolution with the effective filters F (module docstring) where it pays (k ≤ 9);
        # False: basis layer then 1×1, as written
        self.fold = fold_pays(self.k, self.num_basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fold:
            return F.conv2d(x, self.effective_weight(), self.mix.bias, self.stride, self.k // 2)
        w = self.basis.unsqueeze(1).repeat(self.in_channels, 1, 1, 1)  # (cin·M, 1, k, k)
        z = F.conv2d(x, w, None, self.stride, self.k // 2, groups=self.in_channels)
        return self.mix(z)

    def effective_weight(self) -> torch.Tensor:
        """F_ij = Σ_m α_ijm φ_m (Eq. 23): (c_out, c_in, k, k)."""
        alpha = self.mix.weight.reshape(self.out_channels, self.in_channels, self.num_basis)
        return fold_weights("oim,mhw->oihw", alpha, self.basis)

    @torch.no_grad()
    def to_conv2d(self) -> nn.Conv2d:
        """An ordinary nn.Conv2d computing the same function (linearity of convolution, §3.3.3)."""
        conv = nn.Conv2d(
            self.in_channels, self.out_channels, self.k, self.stride, self.k // 2, bias=self.mix.bias is not None
        ).to(self.mix.weight.device)
        conv.weight.copy_(self.effective_weight())
        if self.mix.bias is not None:
            conv.bias.copy_(self.mix.bias)
        return conv

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.k}, stride={self.stride}, order={self.order}, "
            f"scales={self.scales}, num_basis={self.num_basis}, basis={self.basis_kind}"
        )


def _learned(
    cin, cout, k, bias, order=3, scales=(1,), support="sigma", truncate=2.0, zeroth="lowest", basis="gauss", **_
):
    m = basis_count(int(order), len(tuple(scales)), zeroth)
    n = cin * m * cout + (cout if bias else 0)
    if basis == "free":
        n += m * kernel_size_for(scales, support, truncate, k) ** 2
    return n


@LAYERS.register(
    "rfnn",
    document="002",
    section="ch. 3 §3.3.1–3.3.4, Eqs. 18–23 (structured receptive fields)",
    fixed="Gaussian-derivative basis up to order N (Hermite × Gaussian, Eq. 20) at scales σ",
    learned="linear 1×1 recombination α of the basis responses (Eq. 23), no non-linearity between",
    learned_params=_learned,
    summary="Structured receptive field: fixed Gaussian-derivative basis + learned linear 1×1 (RFNN).",
    ranges={"scales": POSITIVE, "truncate": NON_NEGATIVE},
)
def rfnn(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    order=3,
    scales=(1,),
    support="sigma",
    truncate=2.0,
    zeroth="lowest",
    normalisation="paper",
    basis="gauss",
):
    return RFConv2d(
        in_channels,
        out_channels,
        stride,
        bias,
        order=order,
        scales=scales,
        support=support,
        truncate=truncate,
        kernel_size=kernel_size,
        zeroth=zeroth,
        normalisation=normalisation,
        basis=basis,
    )
