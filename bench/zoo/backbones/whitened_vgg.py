"""A fast-training CIFAR network with a data-whitened stem, after the design of airbench94 (Jordan, "94 % on
CIFAR-10 in 3.29 seconds on a single GPU", 2024; KellerJordan/cifar10-airbench): the backbone of the harness's
shared fast protocol v2 (``suites/fast-cifar-v2.yaml``). Not one of the five documents' networks.

Architecture (``width`` scales every block's channels; 1.0 is airbench94's 64 / 256 / 256)::

    stem   2×2 patch-whitening filters, stride 1, no padding (3 → 24, bias), frozen → GELU
    3 × [ conv 3×3 (c_in → c) → max-pool 2 → norm → GELU → conv 3×3 (c → c) → norm → GELU ]
    max-pool 3 → linear (c → classes, no bias) → × logit_scale

**What the layer families replace.** Every 3×3 convolution (six of them) is a family slot (``ops.conv``),
every norm is ``ops.norm`` and the classifier is ``ops.linear``, so a family that brings its own normalisation
(network deconvolution) or classifier uses it here too. The **stem is not a family slot**: it is the same
fixed, data-derived filter bank for every family (``whiten=True``, the default). Its 24 filters are the 12
eigenvectors of the covariance of all 2×2 patches of a seeded sample of training images, each scaled by
1/√(eigenvalue + ε), and their negatives; they are computed once before training by
:meth:`PatchWhitening.init_from_data` (called by the classification task through
:func:`bench.zoo.models.init_from_data`) and stored as fixed buffers; only the stem's bias is learned.
With ``whiten=False`` the stem is an ordinary 2×2 ``ops.conv(..., role="stem")`` (then the layer item's
``stem`` option decides, as in every backbone).

Details taken from the airbench94 design (and options to turn them off): batch norms without a learned scale
(``bn_scale=False``: the weight is frozen at 1, the bias learned), running-statistics momentum 0.4 in
PyTorch's convention (``bn_momentum``) and ε = 1e-12; the logits multiplied by ``logit_scale`` = 1/9; plain
convolutions initialised as partial identities (``dirac=True``: the first ``c_in`` output channels of each
``nn.Conv2d`` start as the identity, the rest at PyTorch's default). These apply only to modules the family
leaves as PyTorch's own ``nn.BatchNorm2d`` / ``nn.Conv2d``; a family's own layers keep their own
initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.zoo.layers import default_conv_init, fixed_buffer
from bench.spec.schema import POSITIVE

BASE_WIDTHS = (64, 256, 256)


class PatchWhitening(nn.Module):
    """Fixed k×k filters that whiten the input's k×k patches (ZCA-like, in the eigenbasis), and their negatives.

    Before :meth:`init_from_data` the filters are PyTorch's default random convolution initialisation (a
    frozen random stem), so a caller that never fits them still gets a working network; the shape, MAC count
    and state-dict keys are the same before and after."""

    def __init__(self, in_channels: int, kernel_size: int = 2, eps: float = 5e-4):
        super().__init__()
        d = in_channels * kernel_size * kernel_size
        self.in_channels, self.kernel_size, self.eps = in_channels, kernel_size, eps
        self.out_channels = 2 * d
        fixed_buffer(self, "weight", default_conv_init((2 * d, in_channels, kernel_size, kernel_size), fan_in=d))
        self.fitted = False
        self.bias = nn.Parameter(torch.zeros(2 * d))

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Set the filters from ``x`` (N, C, H, W), already normalised as the network's input is. Computed in
        float64 (a 12×12 eigen-decomposition; cheap)."""
        k = self.kernel_size
        patches = x.double().unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, self.in_channels * k * k)
        cov = patches.T @ patches / len(patches)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        evals, evecs = evals.flip(0), evecs.flip(1)  # largest first
        filters = evecs.T / torch.sqrt(evals.clamp_min(0) + self.eps)[:, None]
        filters = filters.reshape(-1, self.in_channels, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))
        self.fitted = True

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels} → {self.out_channels}, {self.kernel_size}×{self.kernel_size}, fixed (data-whitened)"


class _Scale(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


class ConvGroup(nn.Module):
    def __init__(self, ops: Ops, cin: int, cout: int, norm_setup):
        super().__init__()
        self.conv1 = ops.conv(cin, cout, 3, 1)
        self.norm1 = norm_setup(ops.norm(cout))
        self.conv2 = ops.conv(cout, cout, 3, 1)
        self.norm2 = norm_setup(ops.norm(cout))

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class WhitenedVGG(nn.Module):
    def __init__(
        self,
        ops: Ops,
        in_channels: int,
        num_classes: int,
        width: float,
        whiten: bool,
        bn_scale: bool,
        bn_momentum: float,
        logit_scale: float,
        dirac: bool,
    ):
        super().__init__()
        if width <= 0:
            raise ValueError(f"whitened-vgg: width must be positive, got {width}")
        widths = [max(1, round(w * width)) for w in BASE_WIDTHS]

        def norm_setup(m: nn.Module) -> nn.Module:
            if type(m) is nn.BatchNorm2d:
                m.momentum, m.eps = bn_momentum, 1e-12
                m.weight.requires_grad_(bn_scale)
            return m

        if whiten:
            self.stem: nn.Module = PatchWhitening(in_channels, 2)
            cin = self.stem.out_channels
        else:
            cin = 2 * in_channels * 4
            self.stem = ops.conv(in_channels, cin, 2, 1, padding=0, bias=True, role="stem")
        groups = []
        for w in widths:
            groups.append(ConvGroup(ops, cin, w, norm_setup))
            cin = w
        self.groups = nn.Sequential(*groups)
        self.fc = ops.linear(cin, num_classes)
        if isinstance(self.fc, nn.Linear) and self.fc.bias is not None:
            self.fc = nn.Linear(cin, num_classes, bias=False)
        self.scale = _Scale(logit_scale)
        if dirac:
            for m in self.groups.modules():
                if type(m) is nn.Conv2d and m.groups == 1:
                    with torch.no_grad():
                        n = min(m.in_channels, m.out_channels)
                        nn.init.dirac_(m.weight[:n])

    def forward(self, x):
        x = self.groups(F.gelu(self.stem(x)))
        x = F.adaptive_max_pool2d(x, 1)  # airbench's max-pool 3 on the 3×3 map a 32×32 input leaves
        return self.scale(self.fc(torch.flatten(x, 1)))


@BACKBONES.register(
    "whitened-vgg",
    document="harness",
    section="fast protocol v2 (after airbench94: Jordan 2024, KellerJordan/cifar10-airbench)",
    ranges={"width": POSITIVE},
)
def whitened_vgg(
    ops,
    in_channels,
    num_classes,
    *,
    width=1.0,
    whiten=True,
    bn_scale=False,
    bn_momentum=0.4,
    logit_scale=1 / 9,
    dirac=True,
):
    """Fast-training VGG-like net (3 conv groups, 64/256/256 × width) with a frozen 2×2 patch-whitening stem."""
    return WhitenedVGG(
        ops,
        in_channels,
        num_classes,
        float(width),
        bool(whiten),
        bool(bn_scale),
        float(bn_momentum),
        float(logit_scale),
        bool(dirac),
    )
