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
(:func:`bench.measure.measure.count_training_macs`) includes them, and ``benchmarks/deconv_vs_bn.py`` measures the step.

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

Per-layer settings of the authors' code (``code_layer_settings``, on by default, variant ``code`` only). The
code sets some layers apart; a backbone passes these as ``hints`` through ``Ops.conv`` and the family applies
them: the stem's Newton–Schulz iteration count (15 in VGG, 10 in PreAct-ResNet and MobileNetV2, 5 in ResNet
and DenseNet) and its freezing (VGG, PreAct-ResNet and MobileNetV2 stems stop updating their statistics after
``freeze_iter`` = 100 training steps in every 10 × 100 and use the running averages in between, the code's
``counter``; §A.3 of the text says "after 200"), MobileNetV2's depthwise 3×3 convolutions whitened per channel
(``groups``) with one iteration, and its projections with a block of the block's input channels and one
iteration. Without hints (another backbone, ``code_layer_settings: false`` or variant ``paper``), the role
decides: a stem uses ``stem_iterations``, every other layer ``iterations``; with no role given (a layer built
directly) a layer whose input has ≤ 3 channels counts as a stem.

Grouped convolutions (``groups`` > 1, the code's ``groups`` branch): the block is c_in / groups and every
group whitens its own contiguous channels with its own covariance and running whitening matrix.

The classifier (:class:`DeconvLinear`, the code's ``Delinear`` with ``--block-fc 512``): features in
contiguous chunks of 512 (gcd rule) stacked as samples of one covariance, 5 iterations, ε = 1e-5, running
average of D. The harness builds it without the family's options, so ``variant`` and friends do not reach it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, MAC_HANDLES, same_padding
from bench.spec.schema import NON_NEGATIVE, POSITIVE

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

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
        *,
        variant: str = "code",
        eps: float = 1e-5,
        iterations: int = 5,
        block: int = 64,
        sampling_stride: int = 3,
        momentum: float = 0.1,
        stem_iterations: int = 15,
        role: str | None = None,
        groups: int = 1,
        freeze_iter: int = 0,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        if int(block) < 1 or int(sampling_stride) < 1 or int(iterations) < 0 or int(freeze_iter) < 0:
            raise ValueError("block and sampling_stride must be >= 1, iterations and freeze_iter >= 0")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, same_padding(kernel_size, padding)
        self.variant, self.eps, self.momentum = variant, float(eps), float(momentum)
        stem = role == "stem" if role is not None else in_channels <= 3
        self.iterations = int(stem_iterations) if stem else int(iterations)
        self.conv_groups = int(groups)
        # grouped: one block per group (contiguous channels); else the block-size rule
        self.block = in_channels // groups if groups > 1 else resolve_block(in_channels, int(block))
        self.groups_ = in_channels // self.block
        self.features = self.block * kernel_size * kernel_size
        self.sample_stride = int(sampling_stride) * stride
        # the code's freezing: statistics update for the first freeze_iter + 1 steps of every 10·freeze_iter
        self.freeze_iter = int(freeze_iter)
        self.register_buffer("step", torch.zeros((), dtype=torch.long), persistent=False)
        # one covariance shared by all blocks (code, dense) or one per block (paper, or any grouped layer)
        self.shared = variant == "code" and groups == 1

        fan_in = in_channels // groups * kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialisation
        if bias:
            bound = 1.0 / math.sqrt(fan_in)
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

        cols = block_columns(in_channels, kernel_size, self.block, variant)
        self.register_buffer("columns", cols, persistent=False)  # documents the layout; see to_blocks
        g, f = self.groups_, self.features
        if self.shared:
            self.register_buffer("running_mean", torch.zeros(f))
            self.register_buffer("running_deconv", torch.eye(f))
        elif variant == "code":  # grouped, code: a running mean and whitening matrix per group
            self.register_buffer("running_mean", torch.zeros(g, f))
            self.register_buffer("running_deconv", torch.eye(f).repeat(g, 1, 1))
        else:
            self.register_buffer("running_mean", torch.zeros(g, f))
            self.register_buffer("running_cov", torch.eye(f).repeat(g, 1, 1))

    # -- block layout ---------------------------------------------------------------------------------
    def to_blocks(self, t: torch.Tensor) -> torch.Tensor:
        """(…, C·k²) im2col columns → (…, G, F) blocks; equals ``t[..., self.columns]`` (as views)."""
        g, f = self.groups_, self.features
        if not self.shared:
            return t.reshape(*t.shape[:-1], g, f)
        return t.reshape(*t.shape[:-1], f, g).transpose(-1, -2)

    def from_blocks(self, t: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_blocks`: (…, G, F) → (…, C·k²)."""
        if not self.shared:
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
        if self.shared:
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
            deconv = isqrt_newton_schulz(cov + self.eps * eye, self.iterations, normalise=self.variant == "code")
        return mean, cov, deconv

    def frozen(self) -> bool:
        """Whether this training step uses the running statistics (the code's ``freeze``: after
        ``freeze_iter`` + 1 updating steps, frozen until the step counter wraps at 10 · ``freeze_iter``)."""
        return self.freeze_iter > 0 and int(self.step) > self.freeze_iter

    def _statistics(self, x: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, D) in the variant's own shapes (code: one shared (F,), (F, F); paper or grouped: per block)."""
        if self.training and x is not None:
            frozen = self.frozen()
            if self.freeze_iter > 0:
                self.step.add_(1).remainder_(10 * self.freeze_iter)
            if not frozen:
                mean, cov, deconv = self.batch_statistics(x)
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                    if self.variant == "code":
                        self.running_deconv.lerp_(deconv.detach().to(self.running_deconv.dtype), self.momentum)
                    else:
                        self.running_cov.lerp_(cov.detach().to(self.running_cov.dtype), self.momentum)
                return mean, deconv
        if self.variant == "code":
            return self.running_mean, self.running_deconv
        eye = torch.eye(self.features, dtype=self.running_cov.dtype, device=self.running_cov.device)
        return self.running_mean, isqrt_newton_schulz(
            self.running_cov + self.eps * eye, self.iterations, normalise=False
        )

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
        if self.conv_groups > 1:  # grouped: group g's outputs see only block g, whitened by D_g
            w = self.weight.reshape(g, cout // g, f)
            wd = w @ deconv.to(w.dtype)  # (G, cout/G, F)
            b = -(wd @ mean.to(w.dtype).unsqueeze(-1)).reshape(cout)
            if self.bias is not None:
                b = b + self.bias
            return wd.reshape(self.weight.shape), b
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

    def _eval_key(self) -> tuple:
        tensors = [self.weight, self.bias] + [b for b in self.buffers(recurse=False)]
        return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors if t is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            # evaluation: D and μ are constants, so the folded weights are computed once and reused until a
            # parameter or running statistic changes (a deployed network folds once; without this, every
            # evaluation forward would pay cout·G·F² multiply-adds, charged to one image at batch 1)
            key = self._eval_key()
            cache = self.__dict__.get("_eval_cache")
            if cache is None or cache[0] != key:
                with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
                    w, b = self.folded(*self._statistics(None))
                cache = self.__dict__["_eval_cache"] = (key, w, b)
            _, w, b = cache
            return F.conv2d(x, w.to(x.dtype), b.to(x.dtype), self.stride, self.padding, 1, self.conv_groups)
        self.__dict__.pop("_eval_cache", None)
        with torch.autocast(x.device.type, enabled=False):
            stats_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
            w, b = self.folded(*self._statistics(x.to(stats_dtype)))
        return F.conv2d(x, w.to(x.dtype), b.to(x.dtype), self.stride, self.padding, 1, self.conv_groups)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"variant={self.variant!r}, block={self.block}, iterations={self.iterations}, "
            f"sampling_stride={self.sample_stride}, groups={self.conv_groups}, freeze_iter={self.freeze_iter}"
        )


class DeconvLinear(nn.Module):
    """A linear layer whose input features are whitened (the code's ``Delinear``): contiguous chunks of
    ``block`` features are stacked as samples of one covariance; D folded into the weights."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        eps: float = 1e-5,
        iterations: int = 5,
        momentum: float = 0.1,
        block: int = 512,
    ):
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
                p = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32).reshape(-1, self.block)
                mean = p.mean(0)
                pc = p - mean
                eye = torch.eye(self.block, dtype=p.dtype, device=p.device)
                deconv = isqrt_newton_schulz(pc.t() @ pc / pc.shape[0] + self.eps * eye, self.iterations)
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                    self.running_deconv.lerp_(deconv.detach().to(self.running_deconv.dtype), self.momentum)
            else:
                mean, deconv = self.running_mean, self.running_deconv
            w = self.weight.reshape(-1, self.block) @ deconv.to(self.weight.dtype)
            mean = mean.to(self.weight.dtype)
            b = -(w @ mean.unsqueeze(1)).reshape(self.out_features, -1).sum(1)  # 2-D: fvcore counts it
            if self.bias is not None:
                b = b + self.bias
            w = w.reshape(self.weight.shape)
        return F.linear(x, w.to(x.dtype), b.to(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, block={self.block}"


def _learned(cin, cout, k, bias, *, force_bias=True, **_):
    return cin * cout * k * k + (cout if (bias or force_bias) else 0)


def layer_settings(
    hints: dict | None, *, variant: str, code_layer_settings: bool, iterations: int, block: int, stem_iterations: int
) -> dict:
    """Deconv2d keyword arguments for one layer from the backbone's ``hints`` (its role and the authors'
    code's per-layer settings: ``iterations``, ``block``, ``freeze_iter``). The code's settings apply only in
    variant ``code`` with ``code_layer_settings``; the role always does."""
    hints = dict(hints or {})
    out = {
        "role": hints.get("role"),
        "iterations": iterations,
        "block": block,
        "stem_iterations": stem_iterations,
        "freeze_iter": 0,
    }
    if variant == "code" and code_layer_settings:
        if "iterations" in hints:
            out["iterations"] = out["stem_iterations"] = int(hints["iterations"])
        if "block" in hints:
            out["block"] = int(hints["block"])
        out["freeze_iter"] = int(hints.get("freeze_iter", 0))
    return out


@LAYERS.register(
    "deconv",
    document="003",
    section="§4.2 Alg. 1, §4.5 (implicit deconvolution, sampling, coupled Newton–Schulz)",
    fixed="nothing (running mean / whitening statistics are buffers, not learned)",
    learned="k×k×c_in×c_out weights + bias (whitening D = (Cov+εI)^−½ is computed, not learned)",
    learned_params=_learned,
    applies_to="all",
    grouped=True,
    accepts_hints=True,
    norm=lambda channels, **options: nn.Identity(),
    linear=lambda fin, fout, eps=1e-5, iterations=5, momentum=0.1, **options: DeconvLinear(
        fin, fout, eps=eps, iterations=iterations, momentum=momentum
    ),
    summary="Network deconvolution: im2col patches whitened by (Cov+εI)^−½ (Newton–Schulz), batch norm removed.",
    ranges={
        "eps": NON_NEGATIVE,
        "iterations": POSITIVE,
        "block": POSITIVE,
        "momentum": NON_NEGATIVE,
        "stem_iterations": POSITIVE,
    },
)
def deconv(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    variant="code",
    eps=1e-5,
    iterations=5,
    block=64,
    sampling_stride=3,
    momentum=0.1,
    stem_iterations=15,
    force_bias=True,
    code_layer_settings=True,
    groups=1,
    hints=None,
):
    settings = layer_settings(
        hints,
        variant=variant,
        code_layer_settings=code_layer_settings,
        iterations=iterations,
        block=block,
        stem_iterations=stem_iterations,
    )
    return Deconv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        bool(bias or force_bias),
        variant=variant,
        eps=eps,
        sampling_stride=sampling_stride,
        momentum=momentum,
        groups=groups,
        **settings,
    )
