"""Dynamic steerable two-factor blocks (`002_…` chapter 4, §4.3–§4.3.1, Eqs. 24–29) and their static baseline.

The block replaces the additive residual model ``H(x) = F(x) + Wx`` (Eq. 28) by the multiplicative two-factor
model ``H(x) = F(Φ(x)) Φ(x) W`` (Eq. 29), in four steps (§4.3.1):

1. change from input to frame space: every input channel is convolved with a fixed Gaussian-derivative frame Φ
   (all derivatives ∂xᵃ∂yᵇ G_σ with ``min_order ≤ a+b ≤ max_order``), Eq. 24;
2. a small pose ("interpolator") network F(Φ(x)) — three k×k conv layers, 16 units, tanh (the thesis: "8-16
   units and three layers with tanh") — predicts a pose variable θ per location (``pose_per="location"``), per
   location and input channel (``"input"``) or per location and output channel (``"output"``);
3. the steering functions are applied to θ: each order-n block of the frame is rotated by θ (Eqs. 25–27).
   For first order this is the thesis' Eq. 22 rule G_θ = cos θ·G_x + sin θ·G_y (and −sin θ·G_x + cos θ·G_y
   for the orthogonal atom); order n uses the binomial expansion of (cos θ ∂x + sin θ ∂y)ᵃ(−sin θ ∂x + cos θ
   ∂y)ᵇ, whose a = n member is Eq. 22's G_xx^θ, G_xxx^θ. Coordinates: x = column, y = row (downwards), θ from
   +x towards +y. With y pointing up Eq. 22's signs appear exactly as printed (G_xy, G_yyy change sign);
4. a 1×1 convolution W (the canonical feature weights w_j^i) maps the steered frame responses to the outputs.

``steering="trig"`` (default; the thesis found the trigonometric steering activations to be "important
regularizers" for boundary detection) passes θ through cos/sin. ``steering="linear"`` is the thesis'
"optional" variant without them: the pose net emits the pair (a, b) used in place of (cos θ, sin θ), i.e. it
predicts the projection coefficients directly (an order-n atom is then rotated *and* scaled by |(a,b)|ⁿ).

The static block ``steer-static`` is the same block without a pose network (θ fixed at ``angle``, default 0): a
frame-based convolution Φ(x)W. At θ = 0 it trains through a speed path (``fold``, on where it pays,
:func:`bench.zoo.layers.fold_pays`): Φ(x)W is one k×k convolution with filters Σₘ W[o, i·M+m] φₘ, folded in the
weights' precision outside autocast, so the c_in·M frame responses are never built: the same function
(tests/zoo/test_fold_paths.py, float64), 1.7× faster per bf16 training step of fast-cifar-v2's network on CPU
(benchmarks/fold_step.py); MACs are counted as written (:func:`bench.zoo.layers.as_written`). No public code of the
authors was found, so this follows the text; the thesis' scale steering (σ 0.8–1.5) is not implemented.
``forward(x, theta=...)`` accepts a pose map that replaces the pose network (used by the equivariance test and for
analysis); ``record_pose = True`` keeps the last predicted pose in ``last_pose``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, fixed_buffer, fold_pays, fold_weights, same_padding
from bench.spec.schema import POSITIVE

# ---------------------------------------------------------------------------------------------------------
# Gaussian-derivative frame (implemented here, independently of any other family)
# ---------------------------------------------------------------------------------------------------------


def hermite_prob(n: int, t: torch.Tensor) -> torch.Tensor:
    """Probabilists' Hermite polynomial Heₙ(t) (He₀=1, He₁=t, Heₙ₊₁ = t Heₙ − n Heₙ₋₁)."""
    h0, h1 = torch.ones_like(t), t
    if n == 0:
        return h0
    for k in range(1, n):
        h0, h1 = h1, t * h1 - k * h0
    return h1


def gaussian_derivative(a: int, b: int, sigma: float, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂xᵃ ∂yᵇ of the 2-D Gaussian G_σ, scale-normalised by σ^(a+b), evaluated at points (x, y).

    d/dxⁿ exp(−x²/2σ²) = (−1)ⁿ σ⁻ⁿ Heₙ(x/σ) exp(−x²/2σ²); the normalisation is the same for every atom of one
    order, so steering (a linear map within an order) is unaffected by it."""
    g = torch.exp(-(x**2 + y**2) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    return ((-1) ** (a + b)) * hermite_prob(a, x / sigma) * hermite_prob(b, y / sigma) * g


def atoms(min_order: int, max_order: int) -> list[tuple[int, int]]:
    """Frame atoms (a, b) = ∂xᵃ∂yᵇ, ordered by order n = a+b, then by decreasing a."""
    return [(n - j, j) for n in range(min_order, max_order + 1) for j in range(n + 1)]


def grid(kernel_size: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r = (kernel_size - 1) / 2
    c = torch.arange(kernel_size, dtype=dtype) - r
    y, x = torch.meshgrid(c, c, indexing="ij")  # rows = y (downwards), columns = x
    return x, y


def gaussian_basis(
    kernel_size: int,
    sigma: float,
    min_order: int,
    max_order: int,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """(M, k, k) sampled Gaussian-derivative frame; (x, y) optionally replaces the sampling grid."""
    if x is None:
        x, y = grid(kernel_size)
    return torch.stack([gaussian_derivative(a, b, sigma, x, y) for a, b in atoms(min_order, max_order)])


def _polymul(p: dict, q: dict) -> dict:
    out: dict = {}
    for (i1, j1, k1), v1 in p.items():
        for (i2, j2, k2), v2 in q.items():
            key = (i1 + i2, j1 + j2, k1 + k2)
            out[key] = out.get(key, 0) + v1 * v2
    return out


def steering_tensor(n: int) -> torch.Tensor:
    """C of shape (n+1 monomials t, n+1 steered atoms, n+1 source atoms) such that the order-n atom (a, b)
    steered by θ is Σ_t cosⁿ⁻ᵗθ sinᵗθ Σ_i C[t, (a,b), i] · atom_i.

    Polynomials are kept as {(power of ∂x, power of cos, power of sin): coefficient}; the steered atom is
    (c ∂x + s ∂y)ᵃ (−s ∂x + c ∂y)ᵇ with ∂y's power implied by the order."""
    du = {(1, 1, 0): 1.0, (0, 0, 1): 1.0}  # c ∂x + s ∂y
    dv = {(1, 0, 1): -1.0, (0, 1, 0): 1.0}  # −s ∂x + c ∂y
    C = torch.zeros(n + 1, n + 1, n + 1, dtype=torch.float64)
    for row, (a, b) in enumerate(atoms(n, n)):
        poly = {(0, 0, 0): 1.0}
        for _ in range(a):
            poly = _polymul(poly, du)
        for _ in range(b):
            poly = _polymul(poly, dv)
        for (px, pc, ps), v in poly.items():
            assert pc + ps == n
            C[ps, row, n - px] += v  # source atom index: a' = px → position n − px in atoms(n, n)
    return C


def steer_basis(basis: torch.Tensor, theta: float, min_order: int, max_order: int) -> torch.Tensor:
    """Steer a (M, k, k) frame by angle θ (radians) with the steering equations."""
    out, i = [], 0
    c, s = math.cos(theta), math.sin(theta)
    for n in range(min_order, max_order + 1):
        C = steering_tensor(n).to(basis.dtype)
        mono = torch.tensor([c ** (n - t) * s**t for t in range(n + 1)], dtype=basis.dtype)
        R = torch.einsum("t,tmi->mi", mono, C)
        out.append(torch.einsum("mi,ihw->mhw", R, basis[i : i + n + 1]))
        i += n + 1
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------------------
# The block
# ---------------------------------------------------------------------------------------------------------


class SteerableBlock(nn.Module):
    """H(x) = F(Φ(x)) Φ(x) W (dynamic) or Φ_θ₀(x) W (static). See the module docstring."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        stride: int,
        padding: int,
        bias: bool,
        *,
        sigma: float,
        min_order: int,
        max_order: int,
        dynamic: bool,
        angle: float = 0.0,
        pose_per: str = "location",
        pose_hidden: int = 16,
        pose_layers: int = 3,
        pose_kernel: int = 3,
        steering: str = "trig",
    ):
        super().__init__()
        if pose_per not in ("location", "input", "output"):
            raise ValueError(f"pose_per must be 'location', 'input' or 'output', not {pose_per!r}")
        if steering not in ("trig", "linear"):
            raise ValueError(f"steering must be 'trig' or 'linear', not {steering!r}")
        if not 0 <= min_order <= max_order:
            raise ValueError("need 0 ≤ min_order ≤ max_order")
        self.cin, self.cout, self.stride, self.padding = cin, cout, stride, padding
        self.min_order, self.max_order = min_order, max_order
        self.orders = list(range(min_order, max_order + 1))
        self.M = len(atoms(min_order, max_order))
        self.dynamic, self.angle, self.pose_per, self.steering = dynamic, float(angle), pose_per, steering
        # the speed path exists only for the unsteered static block: one convolution with the folded filters
        # (module docstring); False: as written. Blocks that steer have no such path (and no switch on).
        self.fold = not dynamic and self.angle == 0.0 and fold_pays(k, self.M)
        self.record_pose = False
        self.last_pose: torch.Tensor | None = None
        basis = gaussian_basis(k, sigma, min_order, max_order).float()  # (M, k, k)
        fixed_buffer(self, "basis", basis.repeat(cin, 1, 1).unsqueeze(1))  # (cin·M, 1, k, k), depthwise
        for n in self.orders:
            fixed_buffer(self, f"steer{n}", steering_tensor(n).float())
        # canonical feature weights W (1×1 over the steered frame responses), default conv init
        self.weight = nn.Parameter(torch.empty(cout, cin * self.M))
        bound = 1.0 / math.sqrt(cin * self.M)
        nn.init.uniform_(self.weight, -bound, bound)
        self.bias = nn.Parameter(torch.empty(cout).uniform_(-bound, bound)) if bias else None
        if dynamic:
            n_pose = {"location": 1, "input": cin, "output": cout}[pose_per]
            self.n_pose = n_pose
            q = 1 if steering == "trig" else 2
            layers, c = [], cin * self.M
            for i in range(pose_layers):
                last = i == pose_layers - 1
                layers.append(nn.Conv2d(c, n_pose * q if last else pose_hidden, pose_kernel, padding=pose_kernel // 2))
                if not last:
                    layers.append(nn.Tanh())
                c = pose_hidden
            self.pose = nn.Sequential(*layers)
        else:
            self.pose = None

    # frame responses Φ(x): (B, cin·M, H', W')
    def frame(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.basis, None, self.stride, self.padding, 1, self.cin)

    def pose_of(self, phi: torch.Tensor) -> torch.Tensor:
        """Pose variables: θ (B, P, H, W) for trig steering, (a, b) pairs (B, P, 2, H, W) for linear."""
        out = self.pose(phi)
        if self.steering == "trig":
            return out
        return out.view(out.shape[0], -1, 2, *out.shape[-2:])

    def folded_weight(self) -> torch.Tensor:
        """The (c_out, c_in, k, k) filters of the unsteered block: Σₘ W[o, i·M+m] φₘ (outside autocast)."""
        k = self.basis.shape[-1]
        return fold_weights(
            "oim,imhw->oihw", self.weight.view(self.cout, self.cin, self.M), self.basis.view(self.cin, self.M, k, k)
        )

    def _cos_sin(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if pose.dim() == 5:  # linear steering: the pose net's own coefficients
            return pose[:, :, 0], pose[:, :, 1]
        return torch.cos(pose), torch.sin(pose)

    def forward(self, x: torch.Tensor, theta: torch.Tensor | float | None = None) -> torch.Tensor:
        if self.fold and theta is None and self.pose is None and self.angle == 0.0:
            return F.conv2d(x, self.folded_weight(), self.bias, self.stride, self.padding)
        phi = self.frame(x)
        b, _, h, w = phi.shape
        if theta is None:
            if self.pose is None:
                if self.angle == 0.0:  # steering by 0 is the identity
                    return F.conv2d(phi, self.weight[:, :, None, None], self.bias)
                theta = torch.full((b, 1, h, w), self.angle, dtype=phi.dtype, device=phi.device)
            else:
                theta = self.pose_of(phi)
                if self.record_pose:
                    self.last_pose = theta.detach()
        elif not torch.is_tensor(theta):
            theta = torch.full((b, 1, h, w), float(theta), dtype=phi.dtype, device=phi.device)
        c, s = self._cos_sin(theta)  # (B, P, H, W)
        phi = phi.view(b, self.cin, self.M, h, w)
        if c.shape[1] == 1 or (self.pose_per == "output" and c.shape[1] == self.cout):
            return self._forward_folded(phi, c, s)
        return self._forward_steered_atoms(phi, c, s)

    def _forward_steered_atoms(self, phi, c, s):
        """Steer every atom of Φ, then mix with W: the equations as written (one pose per location or per
        location and input channel). (B, cin, M, H, W) → (B, cout, H, W)."""
        b, _, _, h, w = phi.shape
        c, s = c[:, :, None], s[:, :, None]  # (B, P, 1, H, W), P ∈ {1, cin}
        steered, i = [], 0
        for n in self.orders:
            C = getattr(self, f"steer{n}")  # (T, m, i)
            part = phi[:, :, i : i + n + 1]  # (B, cin, n+1, H, W)
            acc = 0
            for t in range(n + 1):
                mixed = torch.einsum("mi,bcihw->bcmhw", C[t], part)
                acc = acc + (c ** (n - t) * s**t) * mixed
            steered.append(acc)
            i += n + 1
        steered = torch.cat(steered, 2).reshape(b, self.cin * self.M, h, w)
        return F.conv2d(steered, self.weight[:, :, None, None], self.bias)

    def _forward_folded(self, phi, c, s):
        """The same function with the steering folded into W, for a pose shared by all input channels (one per
        location, or one per location and output channel): steering is linear in Φ and W is linear, so
        y = Σₙ Σₜ cosⁿ⁻ᵗθ sinᵗθ · [(W ∘ Cₜ) Φₙ] — per order n one 1×1 convolution of Φₙ to (n+1)·cout channels
        (weights Σₘ W[o, c, m] Cₜ[m, i]), weighted by the pose monomials and summed over t. Equal to
        :meth:`_forward_steered_atoms` up to float rounding (tests/zoo/test_steerable.py) and 1.13× faster per
        training step on CPU, since no steered copy of Φ is built (bf16, fast-cifar-v2's network, one thread:
        benchmarks/steer_fold_step.py → results/benchmarks/steer_fold_step.json).
        (B, cin, M, H, W), c/s (B, P, H, W) with P ∈ {1, cout} → (B, cout, H, W)."""
        b, _, _, h, w = phi.shape
        W = self.weight.view(self.cout, self.cin, self.M)
        out, i = 0, 0
        for n in self.orders:
            C = getattr(self, f"steer{n}")  # (T, m, i)
            part = phi[:, :, i : i + n + 1].reshape(b, self.cin * (n + 1), h, w)
            Wn = torch.einsum("ocm,tmi->toci", W[:, :, i : i + n + 1], C).reshape((n + 1) * self.cout, -1)
            y = F.conv2d(part, Wn[:, :, None, None]).view(b, n + 1, self.cout, h, w)
            mono = torch.stack([c ** (n - t) * s**t for t in range(n + 1)], 1)  # (B, T, P, H, W)
            out = out + (y * mono).sum(1)
            i += n + 1
        if self.bias is not None:
            out = out + self.bias[None, :, None, None]
        return out


def _n_atoms(min_order: int, max_order: int) -> int:
    return len(atoms(min_order, max_order))


def _dynamic_count(
    cin, cout, k, bias, *, sigma, min_order, max_order, pose_per, pose_hidden, pose_layers, pose_kernel, steering
):
    m = _n_atoms(min_order, max_order)
    n_pose = {"location": 1, "input": cin, "output": cout}[pose_per] * (1 if steering == "trig" else 2)
    chans = [cin * m] + [pose_hidden] * (pose_layers - 1) + [n_pose]
    pose = sum(a * b * pose_kernel**2 + b for a, b in zip(chans[:-1], chans[1:]))
    return cin * m * cout + (cout if bias else 0) + pose


@LAYERS.register(
    "steer-dynamic",
    document="002",
    section="ch. 4 §4.3.1 Eqs. 25–29 (dynamic steerable two-factor block, Gaussian-derivative frame)",
    fixed="Gaussian-derivative frame Φ (orders min_order..max_order, σ) and its steering equations",
    learned="pose network F (3 k_p×k_p conv layers, tanh) and the 1×1 canonical weights W (+ bias)",
    learned_params=_dynamic_count,
    summary="Dynamic steerable block H(x)=F(Φ(x))Φ(x)W: a pose net steers a Gaussian-derivative frame per location.",
    ranges={"sigma": POSITIVE, "pose_hidden": POSITIVE, "pose_layers": POSITIVE, "pose_kernel": POSITIVE},
)
def steer_dynamic(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    sigma=1.0,
    min_order=0,
    max_order=2,
    pose_per="location",
    pose_hidden=16,
    pose_layers=3,
    pose_kernel=3,
    steering="trig",
):
    return SteerableBlock(
        in_channels,
        out_channels,
        kernel_size,
        stride,
        same_padding(kernel_size, padding),
        bias,
        sigma=sigma,
        min_order=min_order,
        max_order=max_order,
        dynamic=True,
        pose_per=pose_per,
        pose_hidden=pose_hidden,
        pose_layers=pose_layers,
        pose_kernel=pose_kernel,
        steering=steering,
    )


@LAYERS.register(
    "steer-static",
    document="002",
    section="ch. 4 §4.3 Eq. 24 / §4.4.2 static baseline (frame block, fixed pose)",
    fixed="Gaussian-derivative frame Φ (orders min_order..max_order, σ), steered to the fixed angle",
    learned="1×1 canonical weights W (+ bias)",
    learned_params=lambda cin, cout, k, bias, *, min_order, max_order, **o: (
        cin * _n_atoms(min_order, max_order) * cout + (cout if bias else 0)
    ),
    summary="Static steerable block Φ_θ₀(x)W: the dynamic block without its pose network (fixed angle).",
    ranges={"sigma": POSITIVE},
)
def steer_static(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    sigma=1.0,
    min_order=0,
    max_order=2,
    angle=0.0,
):
    return SteerableBlock(
        in_channels,
        out_channels,
        kernel_size,
        stride,
        same_padding(kernel_size, padding),
        bias,
        sigma=sigma,
        min_order=min_order,
        max_order=max_order,
        dynamic=False,
        angle=angle,
    )
