"""Layer families: drop-in replacements for a spatial convolution.

A family is one file in this package (or any file/package registering into ``LAYERS``)::

    from bench.zoo.layers import LAYERS, fixed_buffer

    @LAYERS.register("my-layer", document="mine", section="Eq. 1",
                     fixed="nothing", learned="k×k weights",
                     learned_params=lambda cin, cout, k, bias, **o: cin * cout * k * k + bias * cout)
    def my_layer(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, gain=1.0):
        ...return an nn.Module mapping (B, in_channels, H, W) -> (B, out_channels, ceil(H/stride), ceil(W/stride))

Keyword-only arguments are the family's options; their defaults are shown by ``bench layers``.
Fixed (never trained) tensors are registered with :func:`fixed_buffer`, so they are saved in the
state dict, never see an optimiser, and are counted as *fixed* parameters. A family that computes with its
own ``torch.autograd.Function`` tells the MAC counter (fvcore) what it costs through :data:`MAC_HANDLES`.
A module with a faster path computing the same function (e.g. the separable convolution folded into one dense
convolution) exposes it as a boolean ``fold`` attribute, on where the path pays (:func:`fold_pays`): MACs are
counted with it off (:func:`as_written`), so they describe the layer as its document writes it, whichever path
trains.
"""

from __future__ import annotations

import contextvars
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from bench.zoo.registry import Entry, Registry

#: fvcore op handles for custom autograd Functions, keyed by the traced op's name
#: (``"prim::PythonOp.<ClassName>"``); each maps (inputs, outputs) to a MAC count. Read by ``bench.measure.measure``.
MAC_HANDLES: dict[str, Callable[[list, list], int]] = {}


@dataclass(frozen=True)
class LayerFamily(Entry):
    document: str = ""  # seed document id, e.g. "000", or a citation for user families
    section: str = ""  # section / equation in that document
    fixed: str = ""  # what is fixed (not learned)
    learned: str = ""  # what is learned
    # formula for the learned parameter count of one layer: f(cin, cout, k, bias, **options) -> int
    learned_params: Callable[..., int] | None = None
    # True, or a string saying why the family cannot run under torch.compile
    compile: bool | str = True
    # "spatial": replaces k×k convolutions with k > 1 only (1×1 projections stay standard);
    # "all": replaces every convolution, 1×1 included.
    applies_to: str = "spatial"
    # optional replacements for the backbone's normalisation and linear layers (e.g. network deconvolution),
    # called as norm(channels, **options) and linear(in_features, out_features, **options)
    norm: Callable[..., nn.Module] | None = None
    linear: Callable[..., nn.Module] | None = None
    # whether the first (stem) convolution is replaced by default; backbones accept stem="conv"|"family"
    stem: str = "family"
    # True when the factory also builds grouped (e.g. depthwise) convolutions (called with ``groups=``);
    # otherwise backbones keep their grouped convolutions as plain nn.Conv2d
    grouped: bool = False
    # True when the factory takes ``hints=``: the layer's role ("stem"/"body") and per-layer settings a
    # backbone declares for this family's document (e.g. the authors' code's iteration count for one layer)
    accepts_hints: bool = False

    def build(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        *,
        groups: int = 1,
        hints: dict | None = None,
        **options: Any,
    ) -> nn.Module:
        opts = self.options(options)
        if groups != 1:
            if not self.grouped:
                raise ValueError(f"layer family {self.name!r} does not build grouped convolutions")
            opts["groups"] = groups
        if self.accepts_hints:
            opts["hints"] = dict(hints or {})
        return self.obj(in_channels, out_channels, kernel_size, stride, padding, bias, **opts)

    def expected_learned(
        self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = False, **options: Any
    ) -> int | None:
        if self.learned_params is None:
            return None
        return int(self.learned_params(in_channels, out_channels, kernel_size, bias, **self.options(options)))


#: the entry-point group keeps its name from before the package tree (installed plug-ins register under it)
ENTRY_POINT_GROUP = "bench.layers"  # move_tree: keep
LAYERS: Registry[LayerFamily] = Registry("layer family", "bench.zoo.layers", LayerFamily, group=ENTRY_POINT_GROUP)


# -- fixed tensors ------------------------------------------------------------------------------------


_FOLDING = contextvars.ContextVar("bench_folding", default=True)  # off: bench run --no-fold


@contextmanager
def folding(enabled: bool):
    """Within the block, layers built take their folded speed paths where they pay (``enabled``, the default)
    or never (``bench run --no-fold``: every layer as written from its first forward, in any task)."""
    token = _FOLDING.set(bool(enabled))
    try:
        yield
    finally:
        _FOLDING.reset(token)


FOLD_MAX_KERNEL = 9  # the largest k×k at which the folded dense convolution was measured faster
FOLD_MIN_BANK = 2  # the fewest bank filters per input channel at which it was measured faster


def fold_pays(kernel_size: int, per_channel: int) -> bool:
    """Whether a filter bank of ``per_channel`` k×k filters per input channel followed by a 1×1 should train
    folded into one dense k×k convolution (the default of the layers' ``fold`` switch). Measured on CPU, bf16,
    one thread, forward and backward of one layer (benchmarks/fold_step.py, its ``sweep``): folded faster at
    k ≤ 9 with ≥ 2 filters per channel (separable d = 3–81: 1.4–5.8×; rfnn k = 5, 9: 1.2×, 1.1×); slower with
    one filter per channel (separable d = 1: 0.6×) and at large kernels (rfnn k = 17, 33: 0.5×, 0.2×), where a
    dense k×k convolution costs more than the bank's depthwise one and its 1×1 together. Never inside
    ``folding(False)``."""
    return _FOLDING.get() and kernel_size <= FOLD_MAX_KERNEL and per_channel >= FOLD_MIN_BANK


def fold_weights(equation: str, mix: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """The dense (c_out, c_in, k, k) weights of a bank then 1×1 (``torch.einsum(equation, mix, bank)``), made
    outside autocast in the weights' own precision; the convolution then casts them like any weight."""
    with torch.autocast(mix.device.type, enabled=False):
        return torch.einsum(equation, mix, bank)


@contextmanager
def as_written(model: nn.Module):
    """Within the block, every module of ``model`` whose ``fold`` switch is on computes in its as-written form
    (``fold = False``); restored afterwards. The MAC counter uses it: a fold is a speed path, not a cost."""
    switched = [m for m in model.modules() if getattr(m, "fold", None) is True]
    for m in switched:
        m.fold = False
    try:
        yield model
    finally:
        for m in switched:
            m.fold = True


def fixed_buffer(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Register ``tensor`` as a fixed (non-learned) weight of ``module``: a buffer, saved in the
    state dict, never returned by ``parameters()``, counted as fixed by :func:`count_parameters`."""
    module.register_buffer(name, tensor)
    names = module.__dict__.setdefault("_fixed_buffer_names", set())
    names.add(name)


def fixed_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for mod_name, mod in model.named_modules():
        for name in getattr(mod, "_fixed_buffer_names", ()):
            buf = getattr(mod, name)
            if buf is not None:
                out[f"{mod_name}.{name}" if mod_name else name] = buf
    return out


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Learned / fixed / total parameter counts. Fixed = fixed buffers + frozen parameters."""
    learned = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    fixed = frozen + sum(t.numel() for t in fixed_tensors(model).values())
    return {"learned": learned, "fixed": fixed, "total": learned + fixed}


def same_padding(kernel_size: int, padding: int | None) -> int:
    return kernel_size // 2 if padding is None else padding


def default_conv_init(shape: tuple[int, ...], fan_in: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The distribution PyTorch uses for a fresh nn.Conv2d weight (Kaiming-uniform, a=√5):
    U(−1/√fan_in, 1/√fan_in). Used for filters frozen "at their random initialisation"."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)
