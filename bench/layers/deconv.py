"""Network deconvolution of `003_…` (whitening instead of batch normalisation), §4.2, §4.5, Algorithm 1.

Every convolution (1×1 included: ``applies_to="all"``) whitens its im2col patches before multiplying them
with its weights, and every batch norm of the backbone is removed (``norm=nn.Identity``); the classifier
whitens its input features too (``linear=``):

    y = (X − μ) · D · w + b = X · (D·w) + (b − μ·D·w),      D ≈ (Cov + εI)^−½          (§4.2, §4.5.1)

* **Patches and blocks** (Algorithm 1). X holds the k×k patches of the C input channels (columns ordered
  channel-major, as ``F.unfold`` gives them). The C·k² columns are split into C/B blocks of F = B·k²
  columns; each block is whitened on its own (B = ``block``, default 64; when B does not divide C the block
  is gcd(B, C), and C when B > C, as in the authors' code).
* **Sampling** (§4.5.2). The statistics use only the patches at every S-th position (S = ``sampling_stride``
  × the convolution's stride; 1×1 layers take every S²-th pixel), S = 3 by default.
* **Inverse square root** (§4.5.3): coupled Newton–Schulz iterations Y₀ = Cov, Z₀ = I,
  T = ½(3I − Z_k Y_k), Y_{k+1} = Y_k T, Z_{k+1} = T Z_k, Z → Cov^−½; ``iterations`` (5) in the body,
  ``stem_iterations`` (15, §A.3) in a layer that sees the image. Gradients flow through Cov, μ and D (§A.8).
* **Implicit deconvolution** (§4.5.1): D is folded into the weights and the mean into the bias, so the
  layer runs one ordinary ``F.conv2d`` on the unmodified input; the explicit whitening is never formed.
* **Evaluation**: running averages (momentum 0.1) replace the mini-batch statistics.

Implementation (same values as the straightforward code, tested against it): the sampled patches are one copy
out of a strided view of the padded input (``Tensor.unfold``), not a per-image ``F.unfold``/col2im; the
covariance's backward is one product X(G + Gᵀ) (:func:`gram`); a shared D is folded into the weights with one
matrix product. Cost: at B = 64 the 576×576 Newton–Schulz products dominate; the training-mode MAC count
(:func:`bench.measure.count_training_macs`) includes them, and ``benchmarks/deconv_vs_bn.py`` measures the step.

Two variants (``variant``):

* ``"code"`` (default) — the authors' public implementation (``models/deconv.py``, ``FastDeconv``), which
  produced the document's tables. It differs from the text in ways that change the numbers:
  (1) block g takes every (C/B)-th patch column (columns g, g + C/B, g + 2C/B, …) instead of B contiguous
  channels; (2) the C/B blocks are stacked as extra samples of ONE shared F×F covariance (and one mean of
  length F) rather than each block having its own; (3) the covariance is divided by its Frobenius norm before
  iterating and Z is rescaled by ‖Cov‖_F^−½ afterwards; (4) it keeps a running average of the whitening
  matrix D itself (and of μ), initialised to I (and 0), not of the covariance.
* ``"paper"`` — the text: B contiguous channels per block, a covariance and mean per block (batched), the
  iteration started from Cov itself (it converges only while Cov's eigenvalues lie in (0, 5)), a running
  average of each block's covariance (initialised to I) and mean, from which D is recomputed in evaluation.

Both keep a bias in every layer (``force_bias``, as the code's ``--bias True`` and the text's y = … + b): it
takes over the role of batch norm's shift. Learned parameters: the convolution's weights and bias.

Not reproduced from the code: the first layer's freezing (VGG/PreAct/MobileNetV2 stems stop updating D after
100 steps in every 1,000; §A.3 says after 200) and per-model iteration counts for the stem (10 in
PreAct-ResNet/MobileNetV2, 15 in VGG, 5 in ResNet-18/DenseNet); here every layer whose input has ≤ 3 channels
(the image) uses ``stem_iterations``, because a factory is not told the layer's role. Grouped (depthwise)
convolutions are not produced by this family (the harness's factory has no ``groups``).

The classifier (:class:`DeconvLinear`, the code's ``Delinear`` with ``--block-fc 512``): features in
contiguous chunks of 512 (gcd rule) stacked as samples of one covariance, 5 iterations, ε = 1e-5, running
average of D. The harness builds it without the family's options, so ``variant`` and friends do not reach it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.layers import LAYERS, MAC_HANDLES, same_padding

VARIANTS = ("code", "paper")


def isqrt_newton_schulz(a: torch.Tensor, iterations: int, normalise: bool = True) -> torch.Tensor:
    """Inverse square root of a batch (…, F, F) of symmetric positive definite matrices by coupled
    Newton–Schulz iterations (§4.5.3). ``normalise`` divides by the Frobenius norm first (authors' code).
    Differentiable (autograd goes through the iterations)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    if normalise:
        norm = torch.linalg.matrix_norm(a).unsqueeze(-1).unsqueeze(-1)
        y = a / norm
    else:
        y = a
    z = None  # Z_0 = I: the first step needs no product with it
    for i in range(iterations):
        last = i == iterations - 1
        if z is None:
            t = 0.5 * (3.0 * eye - y)
            z = t
        else:
            t = 0.5 * (3.0 * eye - z @ y)
            z = t @ z
        if not last:
            y = y @ t
    if z is None:
        z = eye.expand_as(a)
    return z / norm.sqrt() if normalise else z


class _Gram(torch.autograd.Function):
    """(…, M, F) → (…, F, F) = Xᵀ X. Backward needs one product, X (G + Gᵀ), where autograd would run two
    (one per operand); same values."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.transpose(-1, -2) @ x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return x @ (grad + grad.transpose(-1, -2))


def gram(x: torch.Tensor) -> torch.Tensor:
    """Xᵀ X of the last two dimensions, differentiable with a single matrix product in the backward pass."""
    return _Gram.apply(x)


def _gram_macs(inputs, outputs) -> int:
    shape = inputs[0].type().sizes()  # (…, M, F): M·F² per matrix
    return int(math.prod(shape) * shape[-1])


MAC_HANDLES[f"prim::PythonOp.{_Gram.__name__}"] = _gram_macs  # the name fvcore sees when tracing


def resolve_block(channels: int, block: int) -> int:
    """Block size actually used for ``channels`` input channels (authors' rule)."""
    if block >= channels:
        return channels
    return math.gcd(int(block), channels)


def block_columns(channels: int, kernel_size: int, block: int, variant: str) -> torch.Tensor:
    """(G, F) indices of the im2col columns (channel-major, ``F.unfold`` order) that form each block.

    ``paper``: block g = channels gB … (g+1)B − 1, i.e. columns gF … (g+1)F − 1.
    ``code``: block g = columns g, g + G, g + 2G, … (the code's ``view(-1, F, C//B).transpose(1, 2)``)."""
    kk = kernel_size * kernel_size
    g = channels // block
    f = block * kk
    cols = torch.arange(channels * kk)
    if variant == "paper":
        return cols.view(g, f)
    return cols.view(f, g).t().contiguous()


class Deconv2d(nn.Module):
    """A convolution whose input patches are whitened (network deconvolution), folded into the weights."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, bias: bool = True, *, variant: str = "code", eps: float = 1e-5,
                 iterations: int = 5, block: int = 64, sampling_stride: int = 3, momentum: float = 0.1,
                 stem_iterations: int = 15):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        if int(block) < 1 or int(sampling_stride) < 1 or int(iterations) < 0:
            raise ValueError("block and sampling_stride must be >= 1 and iterations >= 0")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, same_padding(kernel_size, padding)
        self.variant, self.eps, self.momentum = variant, float(eps), float(momentum)
        self.iterations = int(stem_iterations) if in_channels <= 3 else int(iterations)
        self.block = resolve_block(in_channels, int(block))
        self.groups_ = in_channels // self.block
        self.features = self.block * kernel_size * kernel_size
        self.sample_stride = int(sampling_stride) * stride

        fan_in = in_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialisation
        if bias:
            bound = 1.0 / math.sqrt(fan_in)
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

        cols = block_columns(in_channels, kernel_size, self.block, variant)
        self.register_buffer("columns", cols, persistent=False)  # documents the layout; see to_blocks
        g, f = self.groups_, self.features
        if variant == "code":
            self.register_buffer("running_mean", torch.zeros(f))
            self.register_buffer("running_deconv", torch.eye(f))
        else:
            self.register_buffer("running_mean", torch.zeros(g, f))
            self.register_buffer("running_cov", torch.eye(f).repeat(g, 1, 1))

    # -- block layout ---------------------------------------------------------------------------------
    def to_blocks(self, t: torch.Tensor) -> torch.Tensor:
        """(…, C·k²) im2col columns → (…, G, F) blocks; equals ``t[..., self.columns]`` (as views)."""
        g, f = self.groups_, self.features
        if self.variant == "paper":
            return t.reshape(*t.shape[:-1], g, f)
        return t.reshape(*t.shape[:-1], f, g).transpose(-1, -2)

    def from_blocks(self, t: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_blocks`: (…, G, F) → (…, C·k²)."""
        if self.variant == "paper":
            return t.reshape(*t.shape[:-2], -1)
        return t.transpose(-1, -2).reshape(*t.shape[:-2], -1)

    # -- statistics ---------------------------------------------------------------------------------
    def sampled_patches(self, x: torch.Tensor) -> torch.Tensor:
        """(M, C·k²) patches at every S-th position, columns channel-major (``F.unfold(x, k, padding=p,
        stride=S)``'s order); 1×1 layers take every S²-th pixel of the (N·H·W, C) matrix, as the code does.

        Built from a strided view of the padded input (``Tensor.unfold``) and one copy of the sampled
        patches: no per-image im2col in the forward pass and no col2im in the backward pass."""
        s, k, c = self.sample_stride, self.kernel_size, self.in_channels
        if k == 1:
            hw = x.shape[2] * x.shape[3]
            if hw % (s * s) == 0:  # every s²-th of N·H·W = every s²-th pixel of each image
                return x.flatten(2)[:, :, :: s * s].transpose(1, 2).reshape(-1, c)
            return x.permute(0, 2, 3, 1).reshape(-1, c)[:: s * s]
        p = self.padding
        xp = F.pad(x, (p, p, p, p)) if p else x
        view = xp.unfold(2, k, s).unfold(3, k, s)  # (N, C, L_h, L_w, k, k), no copy
        return view.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)

    def batch_statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mini-batch mean, covariance (without ε) and whitening matrix, in the variant's shapes:
        code → (F,), (F, F), (F, F); paper → (G, F), (G, F, F), (G, F, F)."""
        p = self.sampled_patches(x)  # (M, C·k²)
        g, f = self.groups_, self.features
        eye = torch.eye(f, dtype=p.dtype, device=p.device)
        if self.variant == "code":
            if g > 1:  # blocks (every G-th column) stacked as samples: (M·G, F)
                p = p.reshape(-1, f, g).transpose(1, 2).reshape(-1, f)
            mean = p.mean(0)
            pc = p - mean
            cov = gram(pc) / pc.shape[0]
            deconv = isqrt_newton_schulz(cov + self.eps * eye, self.iterations, normalise=True)
        else:
            p = p.reshape(-1, g, f)  # contiguous blocks
            mean = p.mean(0)  # (G, F)
            pc = (p - mean).transpose(0, 1)  # (G, M, F)
            cov = gram(pc) / pc.shape[1]
            deconv = isqrt_newton_schulz(cov + self.eps * eye, self.iterations, normalise=False)
        return mean, cov, deconv

    def _statistics(self, x: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, D) in the variant's own shapes (code: one shared (F,), (F, F); paper: per block)."""
        if self.training and x is not None:
            mean, cov, deconv = self.batch_statistics(x)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                if self.variant == "code":
                    self.running_deconv.lerp_(deconv.detach(), self.momentum)
                else:
                    self.running_cov.lerp_(cov.detach(), self.momentum)
            return mean, deconv
        if self.variant == "code":
            return self.running_mean, self.running_deconv
        eye = torch.eye(self.features, dtype=self.running_cov.dtype, device=self.running_cov.device)
        return self.running_mean, isqrt_newton_schulz(self.running_cov + self.eps * eye, self.iterations,
                                                      normalise=False)

    def statistics(self, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, D) broadcast to (G, F) and (G, F, F): from the batch ``x`` in training mode (updating the
        running averages), from the running averages in evaluation mode (or when ``x`` is None)."""
        mean, deconv = self._statistics(x)
        g, f = self.groups_, self.features
        return mean.expand(g, f), deconv.expand(g, f, f)

    # -- implicit deconvolution --------------------------------------------------------------------------
    def folded(self, mean: torch.Tensor, deconv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights D·w and bias b − μ·D·w of the equivalent plain convolution (§4.5.1). ``mean``/``deconv``
        are per block, (G, F)/(G, F, F), or one shared (F,)/(F, F) for all blocks (one matrix product)."""
        cout, g, f = self.out_channels, self.groups_, self.features
        w = self.to_blocks(self.weight.reshape(cout, -1))  # (cout, G, F)
        if deconv.dim() == 2:
            wd = (w.reshape(cout * g, f) @ deconv).reshape(cout, g, f)
            b = -(wd.reshape(cout, g * f) @ mean.repeat(g).unsqueeze(1)).squeeze(1)  # 2-D: fvcore counts it
        else:
            wd = torch.einsum("ogf,gfh->ogh", w, deconv)
            b = -(wd.reshape(cout, g * f) @ mean.reshape(g * f, 1)).squeeze(1)
        if self.bias is not None:
            b = b + self.bias
        return self.from_blocks(wd).reshape(self.weight.shape), b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            w, b = self.folded(*self._statistics(x.float()))
        return F.conv2d(x, w.to(x.dtype), b.to(x.dtype), self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"variant={self.variant!r}, block={self.block}, iterations={self.iterations}, "
                f"sampling_stride={self.sample_stride}")


class DeconvLinear(nn.Module):
    """A linear layer whose input features are whitened (the code's ``Delinear``): contiguous chunks of
    ``block`` features are stacked as samples of one covariance; D folded into the weights."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, eps: float = 1e-5,
                 iterations: int = 5, momentum: float = 0.1, block: int = 512):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.eps, self.iterations, self.momentum = float(eps), int(iterations), float(momentum)
        self.block = resolve_block(in_features, int(block))
        ref = nn.Linear(in_features, out_features, bias=bias)  # nn.Linear's initialisation
        self.weight = ref.weight
        self.bias = ref.bias
        self.register_buffer("running_mean", torch.zeros(self.block))
        self.register_buffer("running_deconv", torch.eye(self.block))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            if self.training:
                p = x.float().reshape(-1, self.block)
                mean = p.mean(0)
                pc = p - mean
                eye = torch.eye(self.block, dtype=p.dtype, device=p.device)
                deconv = isqrt_newton_schulz(pc.t() @ pc / pc.shape[0] + self.eps * eye, self.iterations)
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach(), self.momentum)
                    self.running_deconv.lerp_(deconv.detach(), self.momentum)
            else:
                mean, deconv = self.running_mean, self.running_deconv
            w = self.weight.reshape(-1, self.block) @ deconv
            b = -(w @ mean.unsqueeze(1)).reshape(self.out_features, -1).sum(1)  # 2-D: fvcore counts it
            if self.bias is not None:
                b = b + self.bias
            w = w.reshape(self.weight.shape)
        return F.linear(x, w.to(x.dtype), b.to(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, block={self.block}"


def _learned(cin, cout, k, bias, *, force_bias=True, **_):
    return cin * cout * k * k + (cout if (bias or force_bias) else 0)


@LAYERS.register(
    "deconv",
    document="003",
    section="§4.2 Alg. 1, §4.5 (implicit deconvolution, sampling, coupled Newton–Schulz)",
    fixed="nothing (running mean / whitening statistics are buffers, not learned)",
    learned="k×k×c_in×c_out weights + bias (whitening D = (Cov+εI)^−½ is computed, not learned)",
    learned_params=_learned,
    applies_to="all",
    norm=lambda channels, **options: nn.Identity(),
    linear=lambda fin, fout, eps=1e-5, iterations=5, momentum=0.1, **options:
        DeconvLinear(fin, fout, eps=eps, iterations=iterations, momentum=momentum),
    summary="Network deconvolution: im2col patches whitened by (Cov+εI)^−½ (Newton–Schulz), batch norm removed.",
)
def deconv(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, variant="code",
           eps=1e-5, iterations=5, block=64, sampling_stride=3, momentum=0.1, stem_iterations=15,
           force_bias=True):
    return Deconv2d(in_channels, out_channels, kernel_size, stride, padding, bool(bias or force_bias),
                    variant=variant, eps=eps, iterations=iterations, block=block,
                    sampling_stride=sampling_stride, momentum=momentum, stem_iterations=stem_iterations)
