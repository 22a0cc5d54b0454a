"""RFNN (002 ch. 3), frame bases (002 ch. 4) and the NiN backbones."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.layers import LAYERS, as_written, count_parameters
from bench.zoo.layers.frames import framelet_filters_1d, framelet_frame, gauss_frame, naive_frame, to_conv2d
from bench.zoo.layers.rfnn import RFConv2d, basis_count, gaussian_basis, gaussian_derivative_1d, hermite

G0_1 = math.exp(-0.5) / math.sqrt(2 * math.pi)  # unit Gaussian at x = 1: 0.24197072451914337


def test_hermite_polynomials_match_closed_forms():
    u = torch.linspace(-2, 2, 9, dtype=torch.float64)
    torch.testing.assert_close(hermite(0, u), torch.ones_like(u))
    torch.testing.assert_close(hermite(1, u), 2 * u)
    torch.testing.assert_close(hermite(2, u), 4 * u**2 - 2)
    torch.testing.assert_close(hermite(3, u), 8 * u**3 - 12 * u)
    torch.testing.assert_close(hermite(4, u), 16 * u**4 - 48 * u**2 + 12)


def test_gaussian_derivatives_hand_values_sigma1():
    x = torch.tensor([0.0, 1.0, 2.0])
    # hand-computed: G(1)=0.24197, G'(1)=-G(1), G''(1)=0, G'''(1)=2G(1), G''''(1)=-2G(1)
    vals = [gaussian_derivative_1d(m, 1.0, x) for m in range(5)]
    assert vals[0][0].item() == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert vals[0][1].item() == pytest.approx(G0_1)
    assert vals[1][1].item() == pytest.approx(-0.24197072451914337)
    assert vals[2][1].item() == pytest.approx(0.0, abs=1e-15)
    assert vals[3][1].item() == pytest.approx(0.48394144903828673)
    assert vals[4][1].item() == pytest.approx(-0.48394144903828673)
    assert vals[1][0].item() == 0.0 and vals[3][0].item() == 0.0  # odd derivatives vanish at 0
    assert vals[2][0].item() == pytest.approx(-1 / math.sqrt(2 * math.pi))


def test_gaussian_derivatives_closed_forms_and_scale():
    s = 2.5
    x = torch.linspace(-6, 6, 25, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * s * s)) / (math.sqrt(2 * math.pi) * s)
    closed = [
        g,
        -x / s**2 * g,
        (x**2 - s**2) / s**4 * g,
        -(x**3 - 3 * x * s**2) / s**6 * g,
        (x**4 - 6 * x**2 * s**2 + 3 * s**4) / s**8 * g,
    ]
    for m in range(5):
        torch.testing.assert_close(gaussian_derivative_1d(m, s, x), closed[m])
        # the Theano code's variant: sampled Gaussian summing to 1, σ^m scale normalisation
        code = gaussian_derivative_1d(m, s, x, "code")
        torch.testing.assert_close(code, closed[m] / g.sum() * s**m)
    # G_{m+1} is the derivative of G_m (central difference)
    h = 1e-5
    for m in range(4):
        fd = (gaussian_derivative_1d(m, s, x + h) - gaussian_derivative_1d(m, s, x - h)) / (2 * h)
        torch.testing.assert_close(fd, gaussian_derivative_1d(m + 1, s, x), atol=1e-8, rtol=1e-5)


def test_2d_atoms_are_separable_products_x_columns_y_rows():
    phi = gaussian_basis(2, (1.0,), 5).double()
    # order: (0,0) (1,0) (0,1) (2,0) (1,1) (0,2); centre at [2, 2]
    assert phi.shape == (6, 5, 5)
    assert phi[1, 2, 3].item() == pytest.approx(-G0_1 / math.sqrt(2 * math.pi), rel=1e-6)  # G_x at x=+1, y=0
    assert phi[1, 3, 2].item() == pytest.approx(0.0, abs=1e-9)  # G_x at x=0
    assert phi[2, 3, 2].item() == pytest.approx(-G0_1 / math.sqrt(2 * math.pi), rel=1e-6)  # G_y at y=+1
    assert phi[4, 3, 3].item() == pytest.approx(G0_1 * G0_1, rel=1e-6)  # G_xy at (1, 1)
    torch.testing.assert_close(phi[3], phi[5].T)  # G_xx = G_yyᵀ


@pytest.mark.parametrize("order,per_layer,table1", [(1, 3, 12), (2, 6, 24), (3, 10, 40), (4, 15, 60)])
def test_basis_counts_match_thesis_table1(order, per_layer, table1):
    assert per_layer == (order + 1) * (order + 2) // 2
    assert gaussian_basis(order, (1.0,), 5).shape[0] == per_layer
    assert 4 * per_layer == table1  # Table 1 rows 1-4 "2DFilters": 4 basis layers at σ = 1


@pytest.mark.parametrize("order,total", [(1, 24), (2, 54), (3, 94), (4, 144)])
def test_multiscale_counts_match_thesis_table1(order, total):
    # RFNiN-Scale: σ = 1,2,4,8 / 1,2,4 / 1,2 / 1 in the four layers; zero order at the lowest scale only
    counts = [gaussian_basis(order, (1, 2, 4, 8)[:s], 3, "lowest").shape[0] for s in (4, 3, 2, 1)]
    assert counts == [basis_count(order, s) for s in (4, 3, 2, 1)]
    assert sum(counts) == total
    assert basis_count(3, 4) == 37  # the authors' README: 10 + 9 + 9 + 9
    assert gaussian_basis(order, (1, 2), 3, "all").shape[0] == 2 * (order + 1) * (order + 2) // 2


def test_kernel_size_follows_scale_and_output_is_h_over_stride():
    for scales, k in [((1,), 5), ((1, 2), 9), ((1, 2, 4), 17), ((1, 2, 4, 8), 33)]:
        layer = LAYERS.get("rfnn").build(3, 4, 3, 2, None, False, scales=scales)
        assert layer.k == k and layer.basis.shape[-1] == k
        assert layer(torch.randn(1, 3, 10, 10)).shape == (1, 4, 5, 5)
    assert LAYERS.get("rfnn").build(3, 4, 3, 1, None, False, scales=(1, 2, 4, 8), support="caffe").k == 11
    assert LAYERS.get("rfnn").build(3, 4, 7, 1, None, False, support="factory").k == 7


@pytest.mark.parametrize("bias", [False, True])
def test_learned_count_and_fixed_basis(bias):
    torch.manual_seed(0)
    layer = LAYERS.get("rfnn").build(5, 7, 3, 1, None, bias, order=2, scales=(1, 2))
    m = 6 + 5
    counts = count_parameters(layer)
    assert counts["learned"] == 5 * m * 7 + (7 if bias else 0)
    assert counts["fixed"] == m * 9 * 9
    assert all("basis" not in n for n, _ in layer.named_parameters())
    free = LAYERS.get("rfnn").build(5, 7, 3, 1, None, bias, order=2, scales=(1, 2), basis="free")
    assert count_parameters(free)["learned"] == counts["learned"] + m * 81
    assert (
        LAYERS.get("rfnn").expected_learned(5, 7, 3, bias, order=2, scales=(1, 2), basis="free")
        == counts["learned"] + m * 81
    )


def test_rfnn_is_linear_no_nonlinearity_between_basis_and_recombination():
    torch.manual_seed(1)
    layer = LAYERS.get("rfnn").build(3, 4, 3, 1, None, False)
    a, b = torch.randn(2, 3, 9, 9), torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(layer(2 * a - 3 * b), 2 * layer(a) - 3 * layer(b), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "name,opts",
    [
        ("rfnn", {}),
        ("rfnn", {"scales": (1, 2)}),
        ("frame-gauss", {}),
        ("frame-framelet", {}),
        ("frame-naive", {}),
        ("frame-gauss", {"order": 2}),
    ],
)
@pytest.mark.parametrize("stride,bias", [(1, True), (2, False)])
def test_to_conv2d_gives_identical_conv(name, opts, stride, bias):
    torch.manual_seed(2)
    layer = LAYERS.get(name).build(4, 6, 3, stride, None, bias, **opts)
    with torch.no_grad():  # move away from the initialisation
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    conv = layer.to_conv2d()
    assert type(conv) is nn.Conv2d
    x = torch.randn(2, 4, 11, 11)
    with as_written(layer):  # rfnn: basis layer then 1×1, not its own folded speed path
        ref = layer(x)
    torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=1e-4)
    assert count_parameters(conv)["learned"] == 4 * 6 * conv.kernel_size[0] ** 2 + (6 if bias else 0)


def test_to_conv2d_a_whole_trained_backbone():
    torch.manual_seed(3)
    net = build_backbone("nin-cifar", Ops.of("frame-gauss"), 3, 10, {"width": 8})
    x = torch.randn(4, 3, 16, 16)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(x).square().mean().backward()
    opt.step()
    net.eval()
    ref = net(x)
    folded = to_conv2d(net)
    assert not any(type(m).__name__ == "FrameConv2d" for m in folded.modules())
    torch.testing.assert_close(folded(x), ref, atol=1e-5, rtol=1e-4)


def test_frames_span_pixel_space():
    for k in (3, 5):
        for frame, atoms in [
            (gauss_frame(k), (2 * k - 1) * (2 * k) // 2),
            (framelet_frame(k), k * k),
            (naive_frame(k), (2 * k - 1) * (2 * k) // 2),
        ]:
            assert frame.shape == (atoms, k, k)
            assert torch.linalg.matrix_rank(frame.flatten(1)).item() == k * k
    assert gauss_frame(3).shape[0] == 15 > 9  # overcomplete (Fig. 9b "first 9 atoms")


def test_framelet_hand_values_non_orthogonal_and_tight():
    h = framelet_filters_1d(3)
    torch.testing.assert_close(
        h,
        torch.tensor(
            [[0.25, 0.5, 0.25], [math.sqrt(2) / 4, 0, -math.sqrt(2) / 4], [0.25, -0.5, 0.25]], dtype=torch.float64
        ),
    )
    h5 = framelet_filters_1d(5)
    torch.testing.assert_close(h5[2], math.sqrt(6) / 16 * torch.tensor([1.0, 0, -2, 0, 1], dtype=torch.float64))
    for hk in (h, h5):  # unitary extension principle: Σ_j ‖h_j‖² = 1
        assert (hk**2).sum().item() == pytest.approx(1.0)
    gram = framelet_frame(3).flatten(1) @ framelet_frame(3).flatten(1).T
    assert (gram - torch.diag(torch.diagonal(gram))).abs().max() > 0.01  # non-orthogonal


def test_naive_frame_is_monomials():
    f = naive_frame(3)
    x = torch.tensor([-1.0, 0, 1], dtype=torch.float64)
    torch.testing.assert_close(f[0], torch.ones(3, 3, dtype=torch.float64))
    torch.testing.assert_close(f[1], x.expand(3, 3))  # x (columns)
    torch.testing.assert_close(f[2], x.view(3, 1).expand(3, 3))  # y (rows)
    torch.testing.assert_close(f[14], torch.outer(x**4, torch.ones(3, dtype=torch.float64)))  # y⁴


@pytest.mark.parametrize("name,m", [("frame-gauss", 15), ("frame-framelet", 9), ("frame-naive", 15)])
def test_frame_learned_counts(name, m):
    layer = LAYERS.get(name).build(4, 6, 3, 1, None, True)
    assert count_parameters(layer)["learned"] == 4 * 6 * m + 6
    assert count_parameters(layer)["fixed"] == m * 9


def test_frame_init_matches_conv_variance():
    torch.manual_seed(0)
    layer = LAYERS.get("frame-gauss").build(64, 64, 3, 1, None, False)
    target = 1 / math.sqrt(3 * 64 * 9)  # std of U(±1/√fan_in)
    assert layer.effective_weight().std().item() == pytest.approx(target, rel=0.1)


def test_nin_cifar_drops_scales_per_layer_and_merges_recombination():
    torch.manual_seed(0)
    net = build_backbone("nin-cifar", Ops.of("rfnn", {"scales": [1, 2, 4, 8]}), 3, 10, {"width": 8})
    rf = [m for m in net.modules() if isinstance(m, RFConv2d)]
    assert [m.num_basis for m in rf] == [37, 28, 19] and [m.k for m in rf] == [33, 17, 9]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m not in [r.mix for r in rf]]
    assert len(convs) == 2  # per stage one 1×1 after α; last stage's second 1×1 is the fc
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    keep = build_backbone("nin-cifar", Ops.of("rfnn", {"scales": [1, 2]}), 3, 10, {"width": 8, "drop_scales": False})
    assert [m.num_basis for m in keep.modules() if isinstance(m, RFConv2d)] == [19, 19, 19]
    plain = build_backbone("nin-cifar", Ops.of("conv"), 3, 10, {"width": 8})
    ks = [m.kernel_size[0] for m in plain.modules() if isinstance(m, nn.Conv2d)]
    assert ks == [5, 1, 1, 5, 1, 1, 3, 1]  # §3.4.2 / CIFAR NiN: 3 spatial layers, 192-unit 1×1s
    assert sum(isinstance(m, nn.MaxPool2d) for m in plain.modules()) == 2


@pytest.mark.parametrize(
    "scales,order,millions",
    [
        ([1], 2, 3.4),
        ([1], 3, 5.5),
        ([1], 4, 8.1),
        ([1, 2, 4, 8], 1, 2.2),
        ([1, 2, 4, 8], 2, 4.2),
        ([1, 2, 4, 8], 3, 6.8),
        ([1, 2, 4, 8], 4, 10.1),
    ],
)
def test_rfnin_parameter_counts_match_table1(scales, order, millions):
    # Table 1 "#Params" (ILSVRC2012-100). Row 1 (1st order, 1.8M) gives 1.87M here: not tested.
    net = build_backbone("nin", Ops.of("rfnn", {"scales": scales, "order": order}), 3, 100)
    assert round(count_parameters(net)["learned"] / 1e6, 1) == millions


def test_nin_parameter_count_table2():
    free = build_backbone("nin", Ops.of("rfnn", {"scales": [1, 2, 4, 8], "basis": "free"}), 3, 100)
    # Table 2 "NiN-refactor All Layers Free 6.87M": the learned bank adds Σ M·k² with k = 33/17/9/5
    assert round(count_parameters(free)["learned"] / 1e6, 2) == 6.87
