"""000 Table 5 "Ratio" (param_ratio of the classification task): learned parameters of the standard CNN (the
same backbone at its default width, conv family) over those of the run's model, checked against hand counts."""

import torch

from bench.zoo.layers import count_parameters
from bench.zoo.models import build_classifier
from bench.tasks.classification import standard_conv_param_ratio

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
EXAMPLE = torch.rand(1, 3, 32, 32)

# Pre-activation ResNet-8 (preact-resnet, n = 1), 3 input channels, 10 classes, no conv biases.
# Standard CNN at width 1 (16-32-64): stem 3·16·9 = 432; block 16→16: BN 32 + 16·16·9 + BN 32 + 16·16·9 = 4672;
# block 16→32 (stride 2): BN 32 + 16·32·9 + BN 64 + 32·32·9 + 1×1 shortcut 16·32 = 14432; block 32→64:
# BN 64 + 32·64·9 + BN 128 + 64·64·9 + 32·64 = 57536; final BN 128; classifier 64·10 + 10 = 650.
CNN_W1 = 432 + 4672 + 14432 + 57536 + 128 + 650  # 77,850
# PNN (Eq. 2, fan-out 1: a k×k conv becomes a learned cin·cout 1×1; 1×1 shortcuts stay convolutions), width 2
# (32-64-128), regular 3×3 first layer: stem 3·32·9 = 864; block 32→32: 64 + 32·32 + 64 + 32·32 = 2176;
# block 32→64: 64 + 32·64 + 128 + 64·64 + 32·64 = 8384; block 64→128: 128 + 64·128 + 256 + 128·128 + 64·128
# = 33152; final BN 256; classifier 128·10 + 10 = 1290.
PNN_W2 = 864 + 2176 + 8384 + 33152 + 256 + 1290  # 46,122


def _learned(layer: dict, width: int) -> int:
    torch.manual_seed(0)
    model = build_classifier(
        {"name": "preact-resnet", "options": {"n": 1, "width": width}}, layer, 3, 10, MEAN, STD, EXAMPLE
    )
    return count_parameters(model)["learned"]


def test_hand_counts_match_the_built_models():
    assert _learned({"name": "conv", "options": {}}, 1) == CNN_W1
    assert _learned({"name": "pnn", "options": {"fanout": 1}, "stem": "conv"}, 2) == PNN_W2


def test_ratio_is_standard_cnn_over_run_model():
    ratio = standard_conv_param_ratio(
        {"name": "preact-resnet", "options": {"n": 1, "width": 2}}, PNN_W2, 3, 10, MEAN, STD, EXAMPLE
    )
    assert abs(ratio - CNN_W1 / PNN_W2) < 1e-12  # 1.688: Table 5 divides by the standard-width CNN
    # the standard CNN itself reads 1
    assert (
        standard_conv_param_ratio(
            {"name": "preact-resnet", "options": {"n": 1, "width": 1}}, CNN_W1, 3, 10, MEAN, STD, EXAMPLE
        )
        == 1.0
    )


def test_ratio_leaves_the_run_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    standard_conv_param_ratio(
        {"name": "preact-resnet", "options": {"n": 1, "width": 1}}, CNN_W1, 3, 10, MEAN, STD, EXAMPLE
    )
    assert torch.equal(torch.rand(3), expected)
