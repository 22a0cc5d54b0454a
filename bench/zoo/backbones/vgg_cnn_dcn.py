"""VGG-16 CNN-DCN (`001_…` §2.1, Figure 1, Table 1): an image → image network for the ``reconstruction`` task.

The encoder ("CNN") is VGG-16's convolutional part up to the layer named by ``depth``: ``conv1`` … ``conv5``
(the last convolution of that block, e.g. Conv2 = conv1_1, conv1_2, pool1, conv2_1, conv2_2) or a single
convolution such as ``conv1_1`` (§4.3's Conv1_1-DeConv1_1). Blocks have 64, 128, 256, 512, 512 channels
(2, 2, 3, 3, 3 convolutions), 3×3 kernels, stride 1, "same" padding, and 2×2/2 max pooling in Caffe's
ceil mode between blocks, so a 227×227 input gives the feature maps of Table 1 (227, 114, 57, 29, 15).
The representation is taken after the activation and *before* the pooling (§2.1); ``pool_after=True``
adds the block's pooling (and a matching upsampling) as in §4.2's rrVGG Conv1-DeConv1 ("two convolutional
operators, one pooling operator, one upsampling operator and another two convolutional operators").

The decoder ("DCN") mirrors the encoder: one convolution per encoder convolution, in reverse order and with
mirrored channel counts (c_out → c_in), an upsampling where the encoder pooled (``upsample="zero"``: each
value goes to the top-left of a 2×2 block of zeros, the unpooling of Dosovitskiy & Brox used in the
appendix proofs; ``"nearest"`` repeats it), an activation after every convolution but the last, and a final
crop to the input size. The last decoder convolution maps to ``num_classes`` channels, which this builder
reads as the number of *output image channels* (the task passes the image's channel count).

* ``decoder="random"``: decoder convolutions come from the layer family too (``random-conv`` → the purely
  random rrVGG of §4); ``decoder="trained"``: standard learned convolutions with bias, "MSRA" (He) normal
  initialisation (§3.1).
* The encoder always comes from the layer family (``random-conv`` with ``learned_mix: false`` → the frozen
  random CNN of §3).
* ``activation="auto"``: leaky ReLU, slope 0.2, when the decoder is trained (§2.1) and plain ReLU when it is
  random (§4 "we use the normal ReLU nonlinearity"); or ``"relu"`` / ``"leaky_relu"``.
* ``channels``: ``None`` keeps VGG's widths; an integer uses that many channels in every layer except the
  output (§4.2 "the same number of channels in all layers except the output layer").
* ``kernel_size``: the k of every convolution (§4.3).
* ``last="mean"``: the §4.2 / Figure 9(b) variant whose last convolution is replaced by the mean over the
  channels of the previous feature maps (the output is that one map, repeated over the output channels).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.spec.schema import POSITIVE

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def parse_depth(depth: str) -> tuple[int, int]:
    """``"conv3"`` → (3, 3) (block 3, all its convolutions); ``"conv1_1"`` → (1, 1)."""
    m = re.fullmatch(r"conv([1-5])(?:_([1-3]))?", str(depth))
    if not m:
        raise ValueError(f"depth must be conv1 … conv5 or convB_i (e.g. conv1_1), not {depth!r}")
    block = int(m.group(1))
    n = VGG16_BLOCKS[block - 1][1]
    idx = int(m.group(2)) if m.group(2) else n
    if idx > n:
        raise ValueError(f"VGG-16 block {block} has {n} convolutions; {depth!r} does not exist")
    return block, idx


def encoder_plan(depth: str, channels: int | None = None, pool_after: bool = False) -> list[tuple]:
    """The encoder as a list of ("conv", c_in, c_out) and ("pool",) steps, input channels excluded."""
    block, idx = parse_depth(depth)
    plan = []
    for b in range(1, block + 1):
        width, n = VGG16_BLOCKS[b - 1]
        for i in range(1, (idx if b == block else n) + 1):
            plan.append(("conv", channels or width))
        if b < block or pool_after:
            plan.append(("pool",))
    return plan


def feature_shape(depth: str, size: int, channels: int | None = None, pool_after: bool = False) -> tuple[int, int, int]:
    """(C, H, W) of the representation for a size×size input (Table 1's shapes for size 227)."""
    c, s = None, size
    for step in encoder_plan(depth, channels, pool_after):
        if step[0] == "conv":
            c = step[1]
        else:
            s = -(-s // 2)  # ceil mode
    return c, s, s


class ZeroUnpool(nn.Module):
    """2× upsampling that puts each value at the top-left of a 2×2 block of zeros."""

    def forward(self, x):
        b, c, h, w = x.shape
        y = torch.stack([x, torch.zeros_like(x)], dim=-1).reshape(b, c, h, 2 * w)
        return torch.stack([y, torch.zeros_like(y)], dim=-2).reshape(b, c, 2 * h, 2 * w)


class ChannelMean(nn.Module):
    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels

    def forward(self, x):
        return x.mean(dim=1, keepdim=True).expand(-1, self.out_channels, -1, -1)


class CNNDCN(nn.Module):
    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x):
        return self.encoder(x)

    def forward(self, x):
        y = self.decoder(self.encoder(x))
        return y[..., : x.shape[-2], : x.shape[-1]]  # the final Crop layer


def _msra_conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=True)
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    return conv


@BACKBONES.register(
    "vgg16-cnn-dcn",
    provides=("autoencoder",),
    document="001",
    section="§2.1 Fig. 1, Table 1 (VGG-16 Conv-DeConv)",
    ranges={"depth": POSITIVE, "channels": POSITIVE, "kernel_size": POSITIVE},
)
def vgg16_cnn_dcn(
    ops: Ops,
    in_channels,
    num_classes,
    *,
    depth="conv2",
    channels=None,
    kernel_size=3,
    decoder="random",
    activation="auto",
    pool_after=False,
    upsample="zero",
    last="conv",
):
    """VGG-16 encoder up to ConvN and its mirrored decoder (image → image; num_classes = output channels)."""
    if decoder not in ("random", "trained"):
        raise ValueError(f"decoder must be 'random' or 'trained', not {decoder!r}")
    if activation == "auto":
        activation = "leaky_relu" if decoder == "trained" else "relu"
    act = {"relu": lambda: nn.ReLU(), "leaky_relu": lambda: nn.LeakyReLU(0.2)}[activation]
    up = {"zero": ZeroUnpool, "nearest": lambda: nn.Upsample(scale_factor=2, mode="nearest")}[upsample]
    k = int(kernel_size)
    plan = encoder_plan(depth, channels, pool_after)

    enc, c = [], in_channels
    convs = []  # (c_in, c_out) of every encoder conv, in order
    for step in plan:
        if step[0] == "conv":
            role = "stem" if not convs else "body"
            enc += [ops.conv(c, step[1], k, 1, role=role), act()]
            convs.append((c, step[1]))
            c = step[1]
        else:
            enc.append(nn.MaxPool2d(2, 2, ceil_mode=True))

    dec = []
    for step in reversed(plan):
        if step[0] == "pool":
            dec.append(up())
            continue
        enc_in, enc_out = convs.pop()  # the decoder conv mirrors it: enc_out → enc_in channels
        is_output = not convs
        cout = num_classes if is_output else enc_in
        if is_output and last == "mean":
            dec.append(ChannelMean(num_classes))
            break
        conv = _msra_conv(enc_out, cout, k) if decoder == "trained" else ops.conv(enc_out, cout, k, 1)
        dec.append(conv)
        if not is_output:
            dec.append(act())
    return CNNDCN(nn.Sequential(*enc), nn.Sequential(*dec))
