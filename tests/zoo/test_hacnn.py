"""Hierarchical Attribute CNN (002 ch. 5): the thesis' parameter counts (Tables 7–8, §5.4.2), layer shapes,
covariance of W_j to translations along attributes (Prop. 5.3.1), the factorisation of Eq. (37)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.zoo.backbones import BACKBONES, Ops, build_backbone
from bench.zoo.backbones.hacnn import HConv, filter_coefficients
from bench.zoo.layers import LAYERS, count_parameters


CONV = Ops.of("conv")


@pytest.mark.parametrize(
    "backbone,options,classes,thesis,digits",
    [
        # Table 7 / §5.4.2: "approximately 0.098M" (CIFAR-10, equivalent filters w_vj, 7×11 attribute support)
        ("hacnn-cifar", {"factorized": False}, 10, 0.098, 3),
        # Table 7 / §5.4.2: (+) "approximatively 0.34M" coefficients of h_{j,q}, g_{vj,q}
        ("hacnn-cifar-plus", {}, 10, 0.34, 2),
        # Table 8 / §5.4.2: CIFAR-100, 11×11 attribute support, 100 classes: 0.25M and 0.89M
        ("hacnn-cifar", {"factorized": False, "attr_kernel": (11, 11)}, 100, 0.25, 2),
        ("hacnn-cifar-plus", {"attr_kernel": (11, 11)}, 100, 0.89, 2),
    ],
)
def test_thesis_parameter_counts(backbone, options, classes, thesis, digits):
    model = build_backbone(backbone, CONV, 3, classes, options)
    assert round(filter_coefficients(model) / 1e6, digits) == thesis
    if backbone == "hacnn-cifar":  # the whole learned count (with BN affine) rounds the same
        assert round(count_parameters(model)["learned"] / 1e6, digits) == thesis


def test_parameter_counts_by_hand():
    """W1: 3·16·3², W2: 16 filters 3²×11, W3…W10: 16 filters 3²×7×11, W11: 10 filters 3²×7×11."""
    direct = build_backbone("hacnn-cifar", CONV, 3, 10, {"factorized": False})
    assert filter_coefficients(direct) == 3 * 16 * 9 + 16 * 9 * 11 + 8 * 16 * 9 * 77 + 10 * 9 * 77 == 97650
    # factorised training parametrisation (Q = 32): more coefficients than the filters it represents
    q = 32
    fact = 3 * 16 * 9 + 16 * 9 * 11 + 8 * (q * 9 + q * 16 * 77) + (q * 9 + q * 10 * 77)
    plain = build_backbone("hacnn-cifar", CONV, 3, 10, {})
    plus = build_backbone("hacnn-cifar-plus", CONV, 3, 10, {})
    assert filter_coefficients(plain) == filter_coefficients(plus) == fact == 344640
    # BN affine: W1, W2, 8 layers × K for the outputs (+: also Q per factorised layer, and the last layer)
    assert count_parameters(plus)["learned"] - fact == 2 * (16 + 16 + 9 * q + 8 * 16 + 10)


def small(backbone="hacnn-cifar", **options):
    opts = {"K": 8, "Q": 4, "attr_kernel": (3, 5), **options}
    return build_backbone(backbone, CONV, 3, 5, opts)


@pytest.mark.parametrize("factorized", [True, False])
def test_attribute_shapes(factorized):
    torch.manual_seed(0)
    model = small(factorized=factorized).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert model.attributes(x, 3).shape == (2, 2, 4, 8, 8, 8)  # K/4 × K/2 × K attributes
        assert model.attributes(x, 4).shape == (2, 2, 4, 8, 8, 8)
        assert model.attributes(x, 5).shape == (2, 2, 4, 8, 4, 4)  # downsampled along u at j = 5
        assert model.attributes(x, 9).shape == (2, 2, 4, 8, 2, 2)  # and at j = 9
        assert model.attributes(x).shape == (2, 2, 4, 5, 2, 2)  # x_{J−1}: last attribute = class
        logits = model(x)
    assert logits.shape == (2, 5)
    assert torch.allclose(logits, model.attributes(x).mean(dim=(1, 2, 4, 5)))


@pytest.mark.parametrize("mode", ["direct", "factorized", "plus"])
def test_layer_is_a_convolution_along_attributes(mode):
    """W_j sums over v_{j−3} (invariance) and is covariant to translations along (v_{j−2}, v_{j−1}); with
    periodic attribute borders (§5.5.3) a shift by 2 of the input is a shift by 1 of the subsampled output."""
    torch.manual_seed(1)
    layer = HConv(CONV, 6, (3, 5), (2, 2), 1, mode=mode, Q=4, attr_padding="circular").eval()
    x = torch.randn(2, 3, 4, 8, 5, 5)  # (B, v_{j−3}, v_{j−2}, v_{j−1}, H, W)
    with torch.no_grad():
        y = layer(x)
        assert y.shape == (2, 2, 4, 6, 5, 5)
        assert torch.allclose(layer(torch.roll(x, 1, dims=1)), y, atol=1e-5)
        assert torch.allclose(layer(torch.roll(x, 2, dims=2)), torch.roll(y, 1, dims=1), atol=1e-5)
        assert torch.allclose(layer(torch.roll(x, 2, dims=3)), torch.roll(y, 1, dims=2), atol=1e-5)
        # spatial translation covariance (interior, away from the zero-padded image border)
        ys = layer(torch.roll(x, 1, dims=4))
        assert torch.allclose(ys[..., 2:4, :], y[..., 1:3, :], atol=1e-5)
        # and it is not trivially invariant along the convolved attributes
        assert not torch.allclose(layer(torch.roll(x, 2, dims=3)), y, atol=1e-3)


def test_factorisation_collapses_to_equivalent_filters():
    """Eq. (37): w_vj(u, a, b) = Σ_q h_q(u) g_{vj,q}(a, b); with BN in eval mode (affine per q) the factorised
    layer equals a direct layer whose filters are the collapsed sum (plus a constant bias)."""
    torch.manual_seed(2)
    kp, kr, Q, K = 3, 5, 4, 6
    fac = HConv(CONV, K, (kp, kr), (2, 2), 2, mode="factorized", Q=Q, attr_padding="circular").eval()
    with torch.no_grad():
        fac.norm_h.running_mean.uniform_(-1, 1)
        fac.norm_h.running_var.uniform_(0.5, 2)
        fac.norm_h.weight.uniform_(0.5, 2)
        fac.norm_h.bias.uniform_(-1, 1)
    bn = fac.norm_h
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (Q,)
    shift = bn.bias - bn.running_mean * scale
    h = fac.h.weight[:, 0]  # (Q, 3, 3)
    g = fac.g.weight  # (K, Q, kp, kr)
    w = torch.einsum("q,quv,kqab->kabuv", scale, h, g).reshape(K, kp * kr, 3, 3)
    bias = torch.einsum("q,kqab->k", shift, g) + fac.g.bias

    direct = HConv(CONV, K, (kp, kr), (2, 2), 2, mode="direct", Q=Q, attr_padding="circular").eval()
    with torch.no_grad():
        direct.spatial.weight.copy_(w)
        direct.norm.running_mean.zero_()
        direct.norm.running_var.fill_(1 - direct.norm.eps)
        direct.norm.weight.fill_(1)
        direct.norm.bias.copy_(bias)
        x = torch.randn(2, 2, 4, 8, 6, 6)
        assert torch.allclose(fac(x), direct(x), atol=1e-5)
    assert filter_coefficients(direct) == K * kp * kr * 9  # the equivalent filters w_vj


class SpyOps(Ops):
    def __init__(self):
        super().__init__(LAYERS.get("conv"))
        self.convs = []

    def conv(self, cin, cout, k=3, stride=1, padding=None, bias=False, role="body"):
        self.convs.append((cin, cout, k, stride, role))
        return super().conv(cin, cout, k, stride, padding, bias, role)


@pytest.mark.parametrize("factorized", [True, False])
def test_spatial_convolutions_come_from_ops(factorized):
    ops = SpyOps()
    BACKBONES.get("hacnn-cifar").obj(
        ops,
        3,
        10,
        K=16,
        Q=32,
        attr_kernel=(7, 11),
        depth=12,
        downsample_at=(5, 9),
        factorized=factorized,
        attr_padding="zeros",
    )
    assert ops.convs[0] == (3, 16, 3, 1, "stem")  # W1
    assert ops.convs[1] == (11, 16, 3, 1, "body")  # W2: 3×3×11 filters
    body = ops.convs[2:]
    assert len(body) == 9  # W3 … W11
    expect_in = 1 if factorized else 77
    assert all(c[0] == expect_in and c[2] == 3 for c in body)
    assert [c[3] for c in body] == [1, 1, 2, 1, 1, 1, 2, 1, 1]  # spatial subsampling at j = 5, 9


@pytest.mark.parametrize("backbone", ["hacnn-cifar", "hacnn-cifar-plus"])
def test_trains_on_a_tiny_batch(backbone):
    torch.manual_seed(3)
    model = small(backbone)
    x = torch.randn(8, 3, 8, 8)
    y = torch.arange(8) % 5
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert losses[-1] < 0.7 * losses[0]
