"""i-RevNet: the invertible RevNet of `002_…` chapter 6 (§6.3, Eq. 39, Fig. 16–17, Table 9).

Structure (thesis §6.3.1):

* a splitting operator S̃: an invertible space-to-depth downsampling ``psi`` of block size ``init_ds``
  (1 = none), then, for the *injective* i-RevNet (a), a linear injective embedding that concatenates zero
  channels up to ``2 × width``; the result is split along channels into the pair (x₀, x̃₀);
* a cascade of blocks, Eq. (39)::

      x_{j+1} = S_{j+1} x̃_j             x̃_j = S_{j+1}^{-1} x_{j+1}
      x̃_{j+1} = S_{j+1} x_j + F_{j+1} x̃_j   ⇔   x_j = S_{j+1}^{-1}(x̃_{j+1} − F_{j+1} x̃_j)

  where S_j is either the identity or ``psi`` (space-to-depth by 2, channels × 4) and F_j is a bottleneck of
  3 convolutions, each preceded by batch normalisation and ReLU, the middle one with 4× fewer channels
  (``mult``), kernel sizes 1×1, 3×3, 1×1 (§6.3.2). F_j need not be invertible: the coupling is;
* the merged final pair Φx = (x_J, x̃_J) is the feature map (``features``); a classifier head
  BN → ReLU → spatial average → linear sits on top (§6.3.1 "averaged along the spatial dimension, followed
  by a ReLU non-linearity and finally a linear projection").

``inverse(features)`` reconstructs the input exactly up to round-off (left inverse for the injective
variant: the zero channels are dropped). All convolutions of F_j come from ``ops.conv`` and all
normalisations from ``ops.norm`` so any layer family drops in; invertibility never depends on F_j.

Variants and where the authors' code (jhjacobsen/pytorch-i-revnet) differs, exposed as options:

* ``kernels`` — thesis: (1, 3, 1) (default; it reproduces Table 9's 29M parameters for i-RevNet (b),
  see tests); the code uses 3×3 for all three convolutions: ``kernels=(3, 3, 3)``.
* ``psi_order`` — thesis: ``psi`` is "the inverse of the operation described in [119]" (sub-pixel /
  pixel shuffle), i.e. ``pixel_unshuffle`` channel order c·b² + offset (default ``"pixel-shuffle"``); the
  code orders channels offset-major, offset·C + c (``"offset-major"``). Both are exact permutations.
* ``first_preact`` — thesis: every convolution of F_j is preceded by BN + ReLU (default True); the code
  skips BN + ReLU before the very first convolution of the network (``False``).
* the stride of a downsampling block's F_j: the code puts it on F's first convolution (3×3 there); with the
  thesis' 1×1 first convolution we put it on the first convolution with a kernel > 1 (the 3×3), so F does not
  discard 3/4 of its input pixels. ``dropout`` (code: 0.1 on CIFAR) sits after F's second convolution.
* ``init_ds`` is the block size of S̃ (the code's ``init_ds`` is the same number, with 0 meaning none).

The injective variant places the zero channels in S̃ (thesis); the code injects them inside the first block
(merge, pad, split), which is the same map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.spec.schema import FRACTION, POSITIVE


# -- invertible downsampling ----------------------------------------------------------------------------


def psi(x: torch.Tensor, block: int, order: str = "pixel-shuffle") -> torch.Tensor:
    """Space-to-depth: (B, C, H, W) → (B, C·b², H/b, W/b), a permutation of the coefficients."""
    if block <= 1:
        return x
    y = F.pixel_unshuffle(x, block)  # channel = c·b² + (dr·b + dc)
    if order == "offset-major":  # channel = (dr·b + dc)·C + c (authors' code)
        b, c = x.shape[0], x.shape[1]
        y = y.reshape(b, c, block * block, *y.shape[-2:]).transpose(1, 2).reshape(b, -1, *y.shape[-2:])
    elif order != "pixel-shuffle":
        raise ValueError(f"psi_order must be 'pixel-shuffle' or 'offset-major', not {order!r}")
    return y


def psi_inverse(y: torch.Tensor, block: int, order: str = "pixel-shuffle") -> torch.Tensor:
    """Depth-to-space, the exact inverse of :func:`psi`."""
    if block <= 1:
        return y
    if order == "offset-major":
        b = y.shape[0]
        c = y.shape[1] // (block * block)
        y = y.reshape(b, block * block, c, *y.shape[-2:]).transpose(1, 2).reshape(b, -1, *y.shape[-2:])
    elif order != "pixel-shuffle":
        raise ValueError(f"psi_order must be 'pixel-shuffle' or 'offset-major', not {order!r}")
    return F.pixel_shuffle(y, block)


class Psi(nn.Module):
    """The invertible downsampling S_j of Fig. 17 (no parameters)."""

    def __init__(self, block: int, order: str = "pixel-shuffle"):
        super().__init__()
        self.block, self.order = block, order

    def forward(self, x):
        return psi(x, self.block, self.order)

    def inverse(self, y):
        return psi_inverse(y, self.block, self.order)


# -- blocks ------------------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """F_j: three convolutions, each preceded by BN + ReLU; the middle one has ``mult``× fewer channels."""

    def __init__(
        self,
        ops: Ops,
        cin: int,
        cout: int,
        stride: int,
        kernels,
        mult: int,
        preact_first: bool,
        stem: bool,
        dropout: float,
    ):
        super().__init__()
        mid = max(1, cout // mult)
        k = [int(v) for v in kernels]
        s_at = next((i for i, kk in enumerate(k) if kk > 1), 0)
        strides = [stride if i == s_at else 1 for i in range(3)]
        chans = [cin, mid, mid, cout]
        layers: list[nn.Module] = []
        for i in range(3):
            if i > 0 or preact_first:
                layers += [ops.norm(chans[i]), nn.ReLU()]
            layers.append(
                ops.conv(chans[i], chans[i + 1], k[i], strides[i], role="stem" if (stem and i == 0) else "body")
            )
            if i == 1 and dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class IRevBlock(nn.Module):
    """One coupling of Eq. (39): (x, x̃) ↦ (S x̃, S x + F x̃); S = psi(2) when ``stride == 2`` else identity."""

    def __init__(
        self,
        ops: Ops,
        in_half: int,
        out_half: int,
        stride: int,
        kernels,
        mult: int,
        preact_first: bool,
        stem: bool,
        dropout: float,
        psi_order: str,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"i-RevNet block stride must be 1 or 2, got {stride}")
        if in_half * stride * stride != out_half:
            raise ValueError(
                f"an invertible block maps {in_half} channels to {in_half * stride * stride} "
                f"(stride {stride}), not {out_half}"
            )
        self.stride = stride
        self.S = Psi(stride, psi_order)
        self.F = Bottleneck(ops, in_half, out_half, stride, kernels, mult, preact_first, stem, dropout)

    def forward(self, x, xt):
        return self.S(xt), self.S(x) + self.F(xt)

    def inverse(self, y, yt):
        xt = self.S.inverse(y)
        return self.S.inverse(yt - self.F(xt)), xt


class IRevNet(nn.Module):
    """i-RevNet: S̃ → invertible blocks → Φx; classifier head BN → ReLU → average → linear."""

    def __init__(
        self,
        ops: Ops,
        in_channels: int,
        num_classes: int,
        *,
        blocks,
        strides,
        width,
        init_ds,
        variant,
        kernels,
        mult,
        psi_order,
        first_preact,
        dropout,
    ):
        super().__init__()
        blocks, strides = [int(b) for b in blocks], [int(s) for s in strides]
        if len(blocks) != len(strides):
            raise ValueError("blocks and strides must have one entry per stage")
        self.init_ds = max(1, int(init_ds))
        self.psi_order = psi_order
        self.in_channels = in_channels
        c0 = in_channels * self.init_ds**2
        if variant == "bijective":
            if c0 % 2:
                raise ValueError(
                    f"a bijective i-RevNet needs an even channel count after S̃; {in_channels} "
                    f"channels × {self.init_ds}² = {c0}: use init_ds ≥ 2 or variant='injective'"
                )
            half = c0 // 2
        elif variant == "injective":
            half = int(width)
            if 2 * half < c0:
                raise ValueError(f"width {half} per half cannot embed {c0} channels (need ≥ {(c0 + 1) // 2})")
        else:
            raise ValueError(f"variant must be 'injective' or 'bijective', not {variant!r}")
        self.variant, self.c0, self.pad = variant, c0, 2 * half - c0
        layers, c = [], half
        for si, (nb, s) in enumerate(zip(blocks, strides)):
            for bi in range(nb):
                stride = s if bi == 0 else 1
                layers.append(
                    IRevBlock(
                        ops,
                        c,
                        c * stride * stride,
                        stride,
                        kernels,
                        mult,
                        preact_first=first_preact or bool(layers),
                        stem=not layers,
                        dropout=dropout,
                        psi_order=psi_order,
                    )
                )
                c = c * stride * stride
        self.blocks = nn.ModuleList(layers)
        self.feature_channels = 2 * c
        self.bn = ops.norm(2 * c)
        self.fc = ops.linear(2 * c, num_classes)

    # S̃ and its (pseudo-)inverse S̃⁺
    def split(self, x):
        z = psi(x, self.init_ds, self.psi_order)
        if self.pad:
            z = torch.cat([z, z.new_zeros(z.shape[0], self.pad, *z.shape[2:])], 1)
        n = z.shape[1] // 2
        return z[:, :n], z[:, n:]

    def split_inverse(self, x, xt):
        z = torch.cat([x, xt], 1)[:, : self.c0]
        return psi_inverse(z, self.init_ds, self.psi_order)

    def features(self, x):
        """Φx: the merged final pair (B, feature_channels, H', W'); no information about x is lost."""
        a, b = self.split(x)
        for block in self.blocks:
            a, b = block(a, b)
        return torch.cat([a, b], 1)

    def inverse(self, features):
        """Φ⁻¹ (Φ⁺ for the injective variant): reconstruct the input from ``features(x)``. Use eval mode (or
        the same batch) so batch normalisation inside F_j gives the same output as in the forward pass."""
        n = features.shape[1] // 2
        a, b = features[:, :n], features[:, n:]
        for block in reversed(self.blocks):
            a, b = block.inverse(a, b)
        return self.split_inverse(a, b)

    def head(self, features):
        out = F.relu(self.bn(features))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))

    def forward(self, x):
        return self.head(self.features(x))


@BACKBONES.register(
    "irevnet",
    document="002",
    section="ch. 6 §6.3, Eq. 39, Fig. 16–17 (i-RevNet)",
    ranges={"blocks": POSITIVE, "width": POSITIVE, "init_ds": POSITIVE, "mult": POSITIVE, "dropout": FRACTION},
)
def irevnet(
    ops,
    in_channels,
    num_classes,
    *,
    blocks=(2, 2, 2),
    strides=(1, 2, 2),
    width=16,
    init_ds=2,
    variant="injective",
    kernels=(1, 3, 1),
    mult=4,
    psi_order="pixel-shuffle",
    first_preact=True,
    dropout=0.0,
):
    """i-RevNet (invertible RevNet): injective (a, zero-channel embedding) or bijective (b); has inverse()."""
    return IRevNet(
        ops,
        in_channels,
        num_classes,
        blocks=blocks,
        strides=strides,
        width=width,
        init_ds=init_ds,
        variant=variant,
        kernels=kernels,
        mult=mult,
        psi_order=psi_order,
        first_preact=first_preact,
        dropout=dropout,
    )


# Configurations of the documents (options for ``irevnet``), used by the tests and available to suites.
PRESETS = {
    # §6.3.2 / Table 9 (b): 100 blocks, downsampling at blocks 1, 7, 23, 95 (depth 3j = 3, 21, 69, 285),
    # S̃ = psi(2): 3 → 12 channels, half-channels 24, 96, 384, 1536. Thesis: 29M parameters.
    "imagenet-b": dict(blocks=(6, 16, 72, 6), strides=(2, 2, 2, 2), init_ds=2, variant="bijective"),
    # §6.3.2 / Table 9 (a): 56 layers (18 blocks), S̃ = psi(4): 48 → 96 channels by zeros, downsampling at
    # blocks 5, 9, 15 (depth 3j = 15, 27, 45), half-channels 48, 192, 768, 3072. Thesis: 181M parameters
    # (not reproduced by this reading of the text: 48.4M with kernels (1,3,1), 199M with (3,3,3)).
    "imagenet-a": dict(blocks=(4, 4, 6, 4), strides=(1, 2, 2, 2), init_ds=4, width=48, variant="injective"),
    # authors' code README: "small i-RevNet on Cifar-10 … ~94.5%": --nBlocks 18 18 18 --nStrides 1 2 2
    # --nChannels 16 64 256 (init_ds 0 = none, dropout 0.1, all kernels 3×3).
    "cifar-code": dict(
        blocks=(18, 18, 18),
        strides=(1, 2, 2),
        init_ds=1,
        width=16,
        variant="injective",
        kernels=(3, 3, 3),
        dropout=0.1,
        psi_order="offset-major",
        first_preact=False,
    ),
}
