"""Perturbation layer of `000_…` (Perturbative Neural Networks), §3.2 Eq. 2 and §4.

For each input channel, ``fanout`` (= m/p) fixed additive noise masks with the spatial size of the input,
drawn i.i.d. uniform in [−ℓ, ℓ] (§4.2, §5.2), are added to the input; the m = p·fanout perturbed maps go
through a ReLU and a learned 1×1 convolution combines them into the q output maps:

    y_t = Σ_i σ_relu(x_s(i) + n_i) · v_{i,t}          (Eq. 2)

The masks are buffers (in the state dict, never updated) shared by every sample of a batch. Their spatial
size is that of the layer's input, which a factory cannot know, so they are drawn on the first forward pass
from a generator seeded when the layer is built (the harness runs one example forward right after building a
model). With stride s the layer downsamples like the document's ResNet (authors' code, PerturbBasicBlock):
an s×s pooling after the perturbation layer.

Learned parameters: m·q = p·fanout·q (+ q bias), so CNN/PNN = h·w / fanout (Eq. 28).

Options (defaults follow the document; the authors' code is reachable through options):

* ``fanout`` — m/p, masks per input channel (§4.1). The document's tables count "#Mask" as the *width* of the
  network (its ResNet-18 with 64/128/256 "masks" is the standard / 2× / 4× wide network with one mask per
  input channel, cf. the parameter ratios of Tables 1 and 5); with this harness that is ``fanout=1`` and the
  backbone's ``width`` option.
* ``noise_level`` — ℓ, masks ~ U[−ℓ, ℓ] (§5.2, Table 3 sweeps 0.01…5). Default 0.1: the value of the authors'
  code (``config.py``: level 0.1; their update README names 0.1 as the right level). The document gives no
  single default for its other tables.
* ``distribution`` — ``"uniform"`` (§4.2, §5.2: "independently uniformly distributed") or ``"normal"``
  (the later code's ``noise_type='normal'``: N(0, ℓ²), i.e. a standard normal scaled by ℓ).
* ``order`` — ``"paper"`` is Eq. 2 (perturb → ReLU → 1×1). ``"code"`` is the authors' public implementation
  (``naiveresnet.NoiseLayer``: perturb → ReLU → BatchNorm → 1×1), which adds 2·m learned BN parameters.
* ``shared_masks`` — one set of ``fanout`` masks for all input channels (the later code's
  ``unique_masks=False``); default False: Eq. 2 has one mask N_i per perturbed map.
* ``pool`` — pooling used for stride > 1 (``"avg"``; the original code uses ``"max"``).

The first layer (stem) is a family choice of the suite row (``stem: conv|frozen-conv|family``, see
``bench.zoo.backbones.Ops.conv``): the document's CVPR networks use a regular 3×3/7×7 convolution there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.layers import LAYERS, fixed_buffer
from bench.spec.schema import NON_NEGATIVE, POSITIVE


class PerturbationLayer(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        bias: bool = False,
        *,
        fanout: int = 1,
        noise_level: float = 0.1,
        pool: str = "avg",
        order: str = "paper",
        shared_masks: bool = False,
        distribution: str = "uniform",
    ):
        super().__init__()
        if distribution not in ("uniform", "normal"):
            raise ValueError(f"distribution must be 'uniform' or 'normal', not {distribution!r}")
        if int(fanout) < 1:
            raise ValueError(f"fanout must be >= 1, got {fanout}")
        if order not in ("paper", "code"):
            raise ValueError(f"order must be 'paper' or 'code', not {order!r}")
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.fanout, self.noise_level, self.pool, self.order = int(fanout), float(noise_level), pool, order
        self.shared_masks = bool(shared_masks)
        self.distribution = distribution
        # Drawn from the global RNG at construction, so masks depend only on the model seed.
        self.mask_seed = int(torch.randint(0, 2**62, ()).item())
        fixed_buffer(self, "masks", torch.empty(0))
        m = in_channels * self.fanout
        self.norm = nn.BatchNorm2d(m) if order == "code" else None
        self.mix = nn.Conv2d(m, out_channels, 1, bias=bias)

    def materialise(self, height: int, width: int, device=None) -> None:
        gen = torch.Generator().manual_seed(self.mask_seed)
        channels = 1 if self.shared_masks else self.in_channels
        shape = (channels, self.fanout, height, width)
        if self.distribution == "uniform":
            masks = (torch.rand(shape, generator=gen) * 2 - 1) * self.noise_level
        else:
            masks = torch.randn(shape, generator=gen) * self.noise_level
        self.masks = masks.to(device=device if device is not None else self.mix.weight.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "masks"
        if key in state_dict and state_dict[key].shape != self.masks.shape:
            self.masks = torch.empty_like(state_dict[key], device=self.mix.weight.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.masks.numel() == 0 or self.masks.shape[-2:] != (h, w):
            if self.masks.numel() != 0:
                raise RuntimeError(
                    f"perturbation masks were drawn for {tuple(self.masks.shape[-2:])} inputs, got {(h, w)}"
                )
            self.materialise(h, w, x.device)
        y = x.unsqueeze(2) + self.masks.to(x.dtype)  # (B, C, fanout, H, W), masks broadcast over B
        y = F.relu(y.reshape(b, c * self.fanout, h, w))
        if self.norm is not None:
            y = self.norm(y)
        y = self.mix(y)
        if self.stride > 1:
            pool = F.avg_pool2d if self.pool == "avg" else F.max_pool2d
            y = pool(y, self.stride, self.stride, ceil_mode=True)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, stride={self.stride}, fanout={self.fanout}, "
            f"noise_level={self.noise_level}, distribution={self.distribution}, order={self.order}, "
            f"shared_masks={self.shared_masks}"
        )


@LAYERS.register(
    "pnn",
    document="000",
    section="§3.2 Eq. 2, §4.1 Eq. 28",
    fixed="p·fanout additive noise masks ~U[−ℓ, ℓ] (input-sized; fanout masks in all if shared_masks)",
    learned="1×1 combination of the ReLU-activated perturbed maps",
    learned_params=lambda cin, cout, k, bias, fanout=1, order="paper", **o: (
        cin * fanout * cout + (cout if bias else 0) + (2 * cin * fanout if order == "code" else 0)
    ),
    summary="Perturbation layer: fixed additive noise masks, ReLU, learned 1×1.",
    ranges={"fanout": POSITIVE, "noise_level": NON_NEGATIVE},
)
def pnn(
    in_channels,
    out_channels,
    kernel_size=3,
    stride=1,
    padding=None,
    bias=False,
    *,
    fanout=1,
    noise_level=0.1,
    pool="avg",
    order="paper",
    shared_masks=False,
    distribution="uniform",
):
    return PerturbationLayer(
        in_channels,
        out_channels,
        stride,
        bias,
        fanout=fanout,
        noise_level=noise_level,
        pool=pool,
        order=order,
        shared_masks=shared_masks,
        distribution=distribution,
    )
