"""Random convolution (`001_…` §2.2): every spatial filter frozen at a random draw from a named distribution.

The document assigns random weights to the CNN (and, in §4, to the DCN as well) and never trains them. §2.2
names the distributions and their parameters; the ``distribution`` option picks one and ``scale`` (``None``
→ the document's value) sets its width:

* ``gaussian`` — N(0, σ²), σ = 0.015 ("a small variance around 0.015 yields minimal inverting loss"; the
  document's 0.015 is read as the Caffe ``gaussian`` filler's *std*, since its uniform interval
  [−0.04, 0.04) is said to match μ ± 3σ ≈ ±0.045 only for σ = 0.015);
* ``uniform`` — U[−0.04, 0.04) (``scale`` = half-width a; std = a/√3);
* ``logistic`` — mean 0, scale s = 0.015 ("0.015-scale of decay"; std = sπ/√3);
* ``laplace`` — mean 0; the document's parameter did not survive its text extraction ("0 mean and
  variance ()"). Default: scale b = 0.015/√2, i.e. the *same variance as the Gaussian* (std = b√2 = 0.015);
  pass ``scale`` to use another b.

Weights (and a bias when asked for) are :func:`fixed_buffer` tensors drawn with the global torch RNG, so the
harness seed fixes them. ``bias_init="zero"`` (default: the theory of §5 has no bias term and Caffe's default
bias filler is the constant 0) or ``"distribution"`` (bias drawn like the weights).

**Classification row (the harness's adaptation).** The document's recipe is "random encoder fixed, only
what follows is learned" (§3: a DCN is trained on top of random features). A layer that replaces a
convolution inside a classifier must itself carry something learned, so with ``learned_mix=True``
(default) the frozen random k×k convolution (c_in → c_out) is followed by a *learned 1×1 convolution*
(c_out → c_out): a learned linear read-out of the random features at every layer, the closest per-layer
analogue of "train what follows the random features". It adds c_out² learned weights and c_out·c_in·k²
fixed ones. Without an activation in between, the composition is a k×k convolution whose filters are
restricted to the span of the c_out random filters (the full space only when c_out ≥ c_in·k²).
``learned_mix=False`` gives the document's pure random layer (no learned parameter): use it in the
``reconstruction`` task, where the decoder (or nothing) is what is learned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, fixed_buffer, same_padding
from bench.spec.schema import NON_NEGATIVE

# the document's parameter for each distribution (see the module docstring)
DEFAULT_SCALE = {
    "gaussian": 0.015,  # σ
    "uniform": 0.04,  # half-width a of U[−a, a)
    "logistic": 0.015,  # scale s
    "laplace": 0.015 / math.sqrt(2),  # scale b (variance 2b² = 0.015²)
}
DISTRIBUTIONS = tuple(DEFAULT_SCALE)


def distribution_std(distribution: str, scale: float | None = None) -> float:
    """Standard deviation of the named distribution with the given (or the document's) scale."""
    s = DEFAULT_SCALE[distribution] if scale is None else float(scale)
    return {
        "gaussian": s,
        "uniform": s / math.sqrt(3),
        "logistic": s * math.pi / math.sqrt(3),
        "laplace": s * math.sqrt(2),
    }[distribution]


def sample(shape: tuple[int, ...], distribution: str = "gaussian", scale: float | None = None) -> torch.Tensor:
    """Draw a tensor of i.i.d. zero-mean samples with the global torch RNG."""
    if distribution not in DEFAULT_SCALE:
        raise ValueError(f"unknown distribution {distribution!r} (known: {', '.join(DISTRIBUTIONS)})")
    s = DEFAULT_SCALE[distribution] if scale is None else float(scale)
    if distribution == "gaussian":
        return torch.randn(shape) * s
    if distribution == "uniform":
        return (torch.rand(shape) * 2 - 1) * s  # [−s, s)
    eps = torch.finfo(torch.float32).eps
    u = torch.rand(shape).clamp_(eps, 1 - eps)  # open interval (0, 1): finite inverse CDFs
    if distribution == "logistic":
        return s * torch.log(u / (1 - u))
    v = u - 0.5  # laplace: inverse CDF
    return -s * torch.sign(v) * torch.log1p(-2 * v.abs())


class RandomConv2d(nn.Module):
    """A k×k convolution with frozen random weights, optionally followed by a learned 1×1 mix."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        stride: int,
        padding: int,
        bias: bool,
        distribution: str,
        scale: float | None,
        bias_init: str,
        learned_mix: bool,
    ):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.distribution = distribution
        fixed_buffer(self, "weight", sample((cout, cin, k, k), distribution, scale))
        if bias:
            if bias_init not in ("zero", "distribution"):
                raise ValueError(f"bias_init must be 'zero' or 'distribution', not {bias_init!r}")
            b = torch.zeros(cout) if bias_init == "zero" else sample((cout,), distribution, scale)
            fixed_buffer(self, "bias", b)
        else:
            self.bias = None
        self.mix = nn.Conv2d(cout, cout, 1, bias=False) if learned_mix else None

    def forward(self, x):
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return self.mix(y) if self.mix is not None else y

    def extra_repr(self) -> str:
        cout, cin, k, _ = self.weight.shape
        return f"{cin}, {cout}, k={k}, stride={self.stride}, {self.distribution}, learned_mix={self.mix is not None}"


@LAYERS.register(
    "random-conv",
    document="001",
    section="§2.2 (random weight distributions), §3–4 (random CNN / random DCN)",
    fixed="k×k×c_in×c_out weights (and bias) drawn from the chosen distribution",
    learned="1×1 c_out×c_out mix after the random k×k (learned_mix=True; harness adaptation); nothing otherwise",
    learned_params=lambda cin, cout, k, bias, learned_mix=True, **o: cout * cout if learned_mix else 0,
    summary="Frozen random k×k filters (Gaussian/uniform/logistic/Laplace) + optional learned 1×1 mix.",
    ranges={"scale": NON_NEGATIVE},
)
def random_conv(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    distribution="gaussian",
    scale=None,
    bias_init="zero",
    learned_mix=True,
):
    return RandomConv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride,
        same_padding(kernel_size, padding),
        bias,
        distribution,
        scale,
        bias_init,
        learned_mix,
    )
