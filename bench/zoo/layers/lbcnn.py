"""Local binary convolution (LBCNN, Juefei-Xu et al. CVPR 2017) as revisited by `000_…` §3.1, Eq. 1.

The input is convolved with m fixed, randomly generated, sparse binary filters b_i (entries in {−1, 0, +1}),
the m difference maps go through a ReLU and a learned 1×1 convolution combines them into the q output maps:

    x_{l+1}^t = Σ_i σ_relu( Σ_s b_{l,i}^s * x_l^s ) · W_{l,i}^t          (Eq. 1)

Only W (and the 1×1 bias, if any) is learned; the binary filters are a fixed buffer of shape (m, p, k, k).

Options:

* ``sparsity`` — the fraction of non-zero filter weights (the LBCNN paper's "sparsity level"). Default 0.5
  (the harness's choice; the authors' code is not uniform: the ``RandomBinaryConv`` class of lbcnn.pytorch
  defaults to 0.9, and the levels in its CIFAR model files differ between commits — 0.9, 0.5 and 0.1 have all
  been used; ``models/vgg.py`` at the branch head uses 0.1).
* ``variant`` — ``"paper"`` (default): the documented meaning, round(sparsity · m·p·k²) positions chosen
  without replacement (the realised non-zero fraction is exactly ``sparsity``), each +1 or −1 with
  probability ½, and the 1×1 has a bias only if the backbone asks for one. ``"code"``: lbcnn.pytorch's
  ``RandomBinaryConv`` + ``LBConv``: int(sparsity · n) positions drawn *with* replacement
  (``np.random.choice(n, int(s·n))``), so the realised non-zero fraction is ≈ 1 − e^(−s) (0.39 at s = 0.5),
  and the 1×1 ``nn.Conv2d(q, q, 1)`` keeps PyTorch's default bias.
* ``num_filters`` — m, the number of fixed binary filters (= intermediate channels). ``None`` (default) means
  ``round(filter_multiplier · out_channels)``; with the default multiplier 1 that is m = q, which is what the
  authors' ``LBConv`` / ``LBConvBN`` do (binary conv p → q, then 1×1 q → q). An int fixes m for every layer.
* ``filter_multiplier`` — m / q when ``num_filters`` is None (the LBCNN paper also uses more filters than
  outputs; the option lets a suite sweep it).
* ``order`` — ``"paper"``: binary conv → ReLU → 1×1 (Eq. 1). ``"code"``: binary conv → BatchNorm → ReLU → 1×1,
  lbcnn.pytorch's ``LBConvBN`` (adds 2·m learned BN parameters).

Stride is applied by the binary convolution (as in the authors' code); padding is "same".
Learned parameters: m·q (+ q bias, always in ``variant="code"``) (+ 2m BN in ``order="code"``); fixed: m·p·k²
binary weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, fixed_buffer, same_padding
from bench.spec.schema import FRACTION, POSITIVE


def binary_filters(shape: tuple[int, ...], sparsity: float, variant: str = "paper") -> torch.Tensor:
    """Sparse {−1, 0, +1} filters (global torch RNG). ``paper``: exactly round(sparsity · numel) non-zeros;
    ``code``: int(sparsity · numel) positions drawn with replacement (≈ 1 − e^(−sparsity) non-zero)."""
    if not 0.0 < sparsity <= 1.0:
        raise ValueError(f"sparsity (fraction of non-zero weights) must be in (0, 1], got {sparsity}")
    n = 1
    for s in shape:
        n *= s
    weight = torch.zeros(n)
    if variant == "code":
        draws = max(1, int(sparsity * n))
        idx = torch.randint(0, n, (draws,))
        weight[idx] = torch.randint(0, 2, (draws,)).float() * 2 - 1  # a repeated position keeps its last sign
        return weight.view(shape)
    nnz = max(1, int(round(sparsity * n)))
    idx = torch.randperm(n)[:nnz]
    weight[idx] = torch.randint(0, 2, (nnz,)).float() * 2 - 1
    return weight.view(shape)


def _num_filters(out_channels: int, num_filters, filter_multiplier: float) -> int:
    if num_filters is not None:
        return int(num_filters)
    return max(1, int(round(filter_multiplier * out_channels)))


class LocalBinaryConv(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        *,
        sparsity: float = 0.5,
        num_filters: int | None = None,
        filter_multiplier: float = 1.0,
        order: str = "paper",
        variant: str = "paper",
    ):
        super().__init__()
        if order not in ("paper", "code"):
            raise ValueError(f"order must be 'paper' or 'code', not {order!r}")
        if variant not in ("paper", "code"):
            raise ValueError(f"variant must be 'paper' or 'code', not {variant!r}")
        m = _num_filters(out_channels, num_filters, filter_multiplier)
        self.in_channels, self.out_channels, self.num_filters = in_channels, out_channels, m
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = same_padding(kernel_size, padding)
        self.sparsity, self.order, self.variant = float(sparsity), order, variant
        fixed_buffer(self, "weight", binary_filters((m, in_channels, kernel_size, kernel_size), self.sparsity, variant))
        self.norm = nn.BatchNorm2d(m) if order == "code" else None
        self.mix = nn.Conv2d(m, out_channels, 1, bias=bias or variant == "code")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight.to(x.dtype), None, self.stride, self.padding)
        if self.norm is not None:
            y = self.norm(y)
        return self.mix(F.relu(y))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"num_filters={self.num_filters}, sparsity={self.sparsity}, order={self.order}"
        )


@LAYERS.register(
    "lbcnn",
    document="000",
    section="§3.1 Eq. 1 (LBCNN, Juefei-Xu et al. 2017)",
    fixed="m sparse binary k×k filters (entries ±1, a `sparsity` fraction non-zero)",
    learned="1×1 combination of the m ReLU-activated difference maps",
    learned_params=lambda cin, cout, k, bias, num_filters=None, filter_multiplier=1.0, order="paper", variant="paper", **o: (
        _num_filters(cout, num_filters, filter_multiplier) * (cout + (2 if order == "code" else 0))
        + (cout if (bias or variant == "code") else 0)
    ),
    summary="Local binary convolution: fixed sparse ±1 filters, ReLU, learned 1×1.",
    ranges={"sparsity": FRACTION, "num_filters": POSITIVE, "filter_multiplier": POSITIVE},
)
def lbcnn(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    sparsity=0.5,
    num_filters=None,
    filter_multiplier=1.0,
    order="paper",
    variant="paper",
):
    return LocalBinaryConv(
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        bias,
        sparsity=sparsity,
        num_filters=num_filters,
        filter_multiplier=filter_multiplier,
        order=order,
        variant=variant,
    )
