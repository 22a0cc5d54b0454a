"""i-RevNet (002 ch. 6): exact invertible downsampling, round trips x → Φx → Φ⁻¹Φx, shapes, the head trains,
and the parameter count of Table 9's bijective i-RevNet (b)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.zoo.backbones import BACKBONES, Ops, build_backbone
from bench.zoo.backbones.irevnet import PRESETS, psi, psi_inverse
from bench.zoo.layers import LAYERS, count_parameters


def build(options=None, family="conv", in_channels=3, num_classes=10):
    return build_backbone("irevnet", Ops.of(family), in_channels, num_classes, options or {})


# -- psi ----------------------------------------------------------------------------------------------------


def test_psi_hand_example_both_orders():
    x = torch.arange(2 * 2 * 2, dtype=torch.float32).view(1, 2, 2, 2)  # c0 = [[0,1],[2,3]], c1 = [[4,5],[6,7]]
    # inverse of pixel shuffle: channel = c·4 + (row offset·2 + col offset)
    assert psi(x, 2).flatten().tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    # authors' code order: channel = (row offset·2 + col offset)·C + c
    assert psi(x, 2, "offset-major").flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


@pytest.mark.parametrize("order", ["pixel-shuffle", "offset-major"])
@pytest.mark.parametrize("block", [2, 4])
def test_psi_is_an_exact_permutation(order, block):
    x = torch.randn(2, 3, 8, 8)
    y = psi(x, block, order)
    assert y.shape == (2, 3 * block * block, 8 // block, 8 // block)
    assert torch.equal(torch.sort(y.flatten()).values, torch.sort(x.flatten()).values)
    assert torch.equal(psi_inverse(y, block, order), x)
    # each output channel holds one (colour, offset) subsampling of the input
    assert torch.equal(y[:, 0], x[:, 0, ::block, ::block])


# -- round trips ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["injective", "bijective"])
def test_round_trip_float32(variant):
    torch.manual_seed(0)
    model = build({"variant": variant}).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        z = model.features(x)
        err = (model.inverse(z) - x).abs().max().item()
    assert err < 1e-4
    assert z.shape == ((4, 512, 4, 4) if variant == "injective" else (4, 192, 4, 4))
    if variant == "bijective":  # dimension is preserved: Φ is a bijection of R^(3·32·32)
        assert z[0].numel() == x[0].numel()


@pytest.mark.parametrize(
    "variant,extra",
    [
        ("injective", {"kernels": (3, 3, 3), "psi_order": "offset-major", "first_preact": False, "init_ds": 1}),
        ("bijective", {"blocks": (3, 3, 3), "strides": (2, 2, 1)}),
    ],
)
def test_round_trip_float64_deeper(variant, extra):
    torch.manual_seed(1)
    model = build({"variant": variant, **extra}).double().eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        z = model.features(x)
        assert (model.inverse(z) - x).abs().max().item() < 1e-10
        # a perturbed feature map inverts to a different image (the inverse is not a constant map)
        assert (model.inverse(z + 0.1 * torch.randn_like(z)) - x).abs().max().item() > 1e-3


def test_trained_batchnorm_statistics_do_not_break_inversion():
    torch.manual_seed(2)
    model = build({"variant": "bijective"})
    x = torch.rand(8, 3, 16, 16)
    for _ in range(3):  # update running statistics in train mode
        model(x * 3 + 1)
    model.eval()
    with torch.no_grad():
        assert (model.inverse(model.features(x)) - x).abs().max().item() < 1e-4


@pytest.mark.parametrize("family", [f for f in ("conv", "pnn") if f in LAYERS])
def test_round_trip_with_other_families(family):
    torch.manual_seed(3)
    model = build({"variant": "injective", "blocks": (1, 1, 1)}, family=family).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert (model.inverse(model.features(x)) - x).abs().max().item() < 1e-4


def test_injective_inverse_is_a_left_inverse_dropping_zero_channels():
    model = build({"variant": "injective", "width": 8, "blocks": (1,), "strides": (1,)}).eval()
    x = torch.randn(1, 3, 8, 8)
    a, b = model.split(x)
    z = torch.cat([a, b], 1)
    assert z.shape[1] == 16 and torch.equal(z[:, 12:], torch.zeros_like(z[:, 12:]))  # 3·2² = 12 data channels
    assert torch.equal(model.split_inverse(a, b), x)


def test_invalid_configurations_raise():
    with pytest.raises(ValueError, match="even"):
        build({"variant": "bijective", "init_ds": 1})  # 3 channels cannot be split in halves
    with pytest.raises(ValueError, match="cannot embed"):
        build({"variant": "injective", "width": 4})  # 12 channels do not fit in 2 × 4


# -- construction through ops ----------------------------------------------------------------------------------


class SpyOps(Ops):
    def __init__(self):
        super().__init__(LAYERS.get("conv"))
        self.convs, self.norms = [], 0

    def conv(self, cin, cout, k=3, stride=1, padding=None, bias=False, role="body"):
        self.convs.append((cin, cout, k, stride, role))
        return super().conv(cin, cout, k, stride, padding, bias, role)

    def norm(self, c):
        self.norms += 1
        return super().norm(c)


def test_every_conv_and_norm_comes_from_ops():
    ops = SpyOps()
    model = BACKBONES.get("irevnet").obj(ops, 3, 10, blocks=(2, 1), strides=(1, 2), width=8)
    n_blocks = 3
    assert len(ops.convs) == 3 * n_blocks
    assert ops.norms == 3 * n_blocks + 1  # BN before each conv + head BN
    assert ops.convs[0][4] == "stem" and all(c[4] == "body" for c in ops.convs[1:])
    assert [c[2] for c in ops.convs[:3]] == [1, 3, 1]  # thesis kernels 1×1, 3×3, 1×1
    # downsampling block: stride on its 3×3 convolution
    assert [c[3] for c in ops.convs[6:9]] == [1, 2, 1]
    n_conv2d = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert n_conv2d == 3 * n_blocks


def test_parameter_count_of_a_small_config_by_hand():
    model = build({"blocks": (1, 1), "strides": (1, 2), "width": 8, "init_ds": 2})
    block1 = 2 * 8 + 8 * 2 + 2 * 2 + 2 * 2 * 9 + 2 * 2 + 2 * 8  # BN(8) 1×1 BN(2) 3×3 BN(2) 1×1
    block2 = 2 * 8 + 8 * 8 + 2 * 8 + 8 * 8 * 9 + 2 * 8 + 8 * 32  # 8 → 32 channels, stride 2
    head = 2 * 64 + 64 * 10 + 10
    assert count_parameters(model)["learned"] == block1 + block2 + head


def test_table9_irevnet_b_has_29M_parameters():
    """002 Table 9: i-RevNet (b), bijective, 29M parameters (counted without allocating: meta device)."""
    with torch.device("meta"):
        model = build(PRESETS["imagenet-b"], num_classes=1000)
    learned = count_parameters(model)["learned"]
    assert round(learned / 1e6) == 29
    # 300 layers = 100 blocks of 3 convolutions
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 300
    assert model.feature_channels * 7 * 7 == 3 * 224 * 224  # bijective: 3 × 224² coefficients at the end


# -- training ------------------------------------------------------------------------------------------------


def test_classifier_head_trains():
    torch.manual_seed(4)
    model = build({"blocks": (1, 1), "strides": (1, 2), "width": 8})
    x = torch.randn(8, 3, 8, 8)
    y = torch.arange(8) % 4
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is not None for p in model.parameters())
