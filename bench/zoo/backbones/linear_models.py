"""One-layer linear models of `003_…` Fig. 5(a, b): linear regression with L2 loss and logistic regression.

Both are one linear map from the C·H·W input pixels to the classes, built as one H×W convolution without
padding (the document's own reading: "10 optimal 28 × 28 kernels to convolve with the inputs", §6), so the
layer family decides what the layer is:

* ``conv`` family: batch normalisation of the input, per input feature (``nn.BatchNorm1d`` over the C·H·W
  pixels, the normalisation of a non-convolutional layer), then an ordinary ``nn.Conv2d``;
* ``deconv`` family: network deconvolution, :class:`bench.zoo.layers.deconv.Deconv2d` — the C·H·W pixels of each
  image form one patch, whitened by (Cov + εI)^−½ (Newton–Schulz) and folded into the weights; the family's
  norm (``nn.Identity``) replaces the batch norm;
* any family with the layer row's ``stem: conv``: the plain layer (``nn.Conv2d``, no normalisation with a
  family that removes batch norm such as ``deconv``): the "vanilla SGD" curve.

The layer is the model's stem (``role="stem"``). Every model has a bias. The loss belongs to the model: the
attribute ``loss`` is ``"l2"`` (linear regression: mean squared error against one-hot targets) or
``"logistic"`` (softmax cross-entropy); the ``linear-fit`` task reads it.
"""

from __future__ import annotations

from torch import nn

from bench.zoo.backbones import BACKBONES, Ops
from bench.spec.schema import POSITIVE


class LinearModel(nn.Module):
    def __init__(self, ops: Ops, in_channels: int, num_classes: int, size: int, loss: str):
        super().__init__()
        features = in_channels * size * size
        self.loss = loss
        self.size = size
        # a family that replaces batch norm (deconv: Identity) decides; otherwise BN of the input features
        self.norm = ops.norm(features) if ops.family.norm else nn.BatchNorm1d(features)
        self.layer = ops.conv(in_channels, num_classes, kernel_size=size, stride=1, padding=0, bias=True, role="stem")

    def forward(self, x):
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            raise ValueError(
                f"{type(self).__name__} expects {self.size}×{self.size} inputs, got "
                f"{tuple(x.shape[-2:])} (backbone option size)"
            )
        if not isinstance(self.norm, nn.Identity):
            x = self.norm(x.flatten(1)).view_as(x)
        return self.layer(x).flatten(1)


@BACKBONES.register(
    "linear-regression",
    provides=("linear-model",),
    document="003",
    section="§6, Fig. 5(a); §3.1 Eq. 1",
    summary="One linear layer (C·H·W → classes), L2 loss on one-hot targets (003 Fig. 5a).",
    ranges={"size": POSITIVE},
)
def linear_regression(ops: Ops, in_channels: int, num_classes: int, *, size=28):
    return LinearModel(ops, in_channels, num_classes, size, "l2")


@BACKBONES.register(
    "logistic-regression",
    provides=("linear-model",),
    document="003",
    section="§6, Fig. 5(b)",
    summary="One linear layer (C·H·W → classes), softmax cross-entropy loss (003 Fig. 5b).",
    ranges={"size": POSITIVE},
)
def logistic_regression(ops: Ops, in_channels: int, num_classes: int, *, size=28):
    return LinearModel(ops, in_channels, num_classes, size, "logistic")
