"""Perturbation layer (`000_…` Eq. 2, Eq. 28) and local binary convolution (Eq. 1): behaviour beyond the contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.zoo.layers import LAYERS, count_parameters, fixed_tensors
from bench.zoo.models import materialise


def build(name, cin=4, cout=6, k=3, stride=1, hw=8, seed=0, **opts):
    torch.manual_seed(seed)
    layer = LAYERS.get(name).build(cin, cout, k, stride, None, False, **opts)
    materialise(layer, torch.zeros(1, cin, hw, hw))
    return layer


# -- PNN -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,fanout", [(3, 1), (3, 3), (5, 1), (7, 7)])
def test_eq28_parameter_ratio_on_real_layers(k, fanout):
    """# param. in CNN / # param. in PNN = h·w / (m/p)  (Eq. 28), counted on built layers."""
    cin, cout = 8, 12
    conv = LAYERS.get("conv").build(cin, cout, k)
    pnn = build("pnn", cin, cout, k, fanout=fanout)
    n_conv, n_pnn = count_parameters(conv)["learned"], count_parameters(pnn)["learned"]
    assert n_conv == cin * cout * k * k
    assert n_pnn == cin * fanout * cout
    assert n_conv / n_pnn == pytest.approx(k * k / fanout)
    # fixed: p·fanout input-sized masks
    assert count_parameters(pnn)["fixed"] == cin * fanout * 8 * 8


def test_code_order_adds_batchnorm_parameters():
    layer = build("pnn", 4, 6, fanout=2, order="code")
    assert count_parameters(layer)["learned"] == 4 * 2 * 6 + 2 * 4 * 2
    assert LAYERS.get("pnn").expected_learned(4, 6, 3, fanout=2, order="code") == 4 * 2 * 6 + 2 * 4 * 2


@pytest.mark.parametrize("level", [0.01, 0.5, 5.0])
def test_uniform_masks_within_bounds(level):
    layer = build("pnn", 16, 4, fanout=4, hw=16, noise_level=level)
    m = layer.masks
    assert m.shape == (16, 4, 16, 16)
    assert m.abs().max() <= level
    # U[−ℓ, ℓ]: mean 0, std ℓ/√3, and the range is actually used
    assert m.mean().abs() < 0.05 * level
    assert m.std().item() == pytest.approx(level / 3**0.5, rel=0.05)
    assert m.abs().max() > 0.99 * level


def test_normal_masks_have_scale_level():
    layer = build("pnn", 16, 4, fanout=4, hw=16, noise_level=0.3, distribution="normal")
    assert layer.masks.std().item() == pytest.approx(0.3, rel=0.05)
    assert layer.masks.abs().max() > 0.3  # unbounded, unlike the uniform masks


def test_shared_vs_per_channel_masks():
    per = build("pnn", 5, 4, fanout=2)
    shared = build("pnn", 5, 4, fanout=2, shared_masks=True)
    assert per.masks.shape == (5, 2, 8, 8) and shared.masks.shape == (1, 2, 8, 8)
    assert not torch.equal(per.masks[0], per.masks[1])
    # shared: every input channel gets the same perturbations → two equal input channels give equal maps
    x = torch.randn(1, 1, 8, 8).repeat(1, 5, 1, 1)
    y = F.relu(x.unsqueeze(2) + shared.masks)
    assert torch.equal(y[:, 0], y[:, 3])


def test_forward_is_eq2_and_masks_identical_across_batch():
    layer = build("pnn", 3, 5, fanout=2, noise_level=0.7)
    layer.eval()
    x = torch.randn(4, 3, 8, 8)
    # Eq. 2 by hand: y_t = Σ_i relu(x_s(i) + N_i) · V_{i,t}
    n = layer.masks  # (3, 2, 8, 8)
    v = layer.mix.weight.view(5, 3, 2)
    expect = torch.einsum("bchw,tc->bthw", F.relu(x.unsqueeze(2) + n).reshape(4, 6, 8, 8), v.reshape(5, 6))
    assert torch.allclose(layer(x), expect, atol=1e-5)
    # the same sample gives the same output wherever it sits in the batch: one set of masks for all samples
    y = layer(x)
    swapped = layer(x.flip(0))
    assert torch.allclose(y, swapped.flip(0), atol=1e-6)
    single = layer(x[2:3])
    assert torch.allclose(single, y[2:3], atol=1e-6)


def test_masks_do_not_move_in_training():
    layer = build("pnn", 3, 5, fanout=2, order="code")
    before = layer.masks.clone()
    opt = torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(2, 3, 8, 8)).pow(2).mean().backward()
        opt.step()
    assert torch.equal(layer.masks, before)
    assert not layer.masks.requires_grad
    assert all(not n.endswith("masks") for n, _ in layer.named_parameters())


def test_state_dict_round_trip_of_masks(tmp_path):
    layer = build("pnn", 3, 5, fanout=2, seed=1)
    path = tmp_path / "pnn.pt"
    torch.save(layer.state_dict(), path)
    # a fresh layer from another seed, masks not yet drawn (empty), loads the saved masks exactly
    torch.manual_seed(7)
    other = LAYERS.get("pnn").build(3, 5, 3, fanout=2)
    assert other.masks.numel() == 0
    other.load_state_dict(torch.load(path))
    assert torch.equal(other.masks, layer.masks)
    layer.eval(), other.eval()
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(other(x), layer(x))
    assert set(fixed_tensors(other)) == {"masks"}


def test_same_seed_same_masks_other_seed_other_masks():
    a, b, c = build("pnn", 3, 4, seed=3), build("pnn", 3, 4, seed=3), build("pnn", 3, 4, seed=4)
    assert torch.equal(a.masks, b.masks)
    assert not torch.equal(a.masks, c.masks)


def test_bad_options_rejected():
    with pytest.raises(ValueError):
        build("pnn", distribution="laplace")
    with pytest.raises(ValueError):
        build("pnn", order="other")


# -- LBCNN ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9, 1.0])
def test_lbcnn_sparsity_fraction_and_binary_values(sparsity):
    layer = build("lbcnn", 8, 16, 3, sparsity=sparsity)
    w = layer.weight
    assert w.shape == (16, 8, 3, 3)
    assert set(w.unique().tolist()) <= {-1.0, 0.0, 1.0}
    nnz = int((w != 0).sum())
    assert nnz == round(sparsity * w.numel())
    # signs are balanced (±1 with probability ½)
    pos = int((w == 1).sum())
    assert abs(pos / nnz - 0.5) < 0.15


def test_lbcnn_is_eq1():
    layer = build("lbcnn", 3, 5, 3, num_filters=7)
    x = torch.randn(2, 3, 8, 8)
    diff = F.conv2d(x, layer.weight, padding=1)  # m difference maps
    expect = F.conv2d(F.relu(diff), layer.mix.weight)  # learned 1×1 combination
    assert torch.allclose(layer(x), expect, atol=1e-5)


@pytest.mark.parametrize("opts,m", [({}, 6), ({"num_filters": 11}, 11), ({"filter_multiplier": 2.0}, 12)])
def test_lbcnn_num_filters_and_learned_count(opts, m):
    layer = build("lbcnn", 4, 6, 3, **opts)
    assert layer.weight.shape[0] == m
    counts = count_parameters(layer)
    assert counts["learned"] == m * 6 == LAYERS.get("lbcnn").expected_learned(4, 6, 3, **opts)
    assert counts["fixed"] == m * 4 * 9


def test_lbcnn_filters_fixed_and_reload(tmp_path):
    layer = build("lbcnn", 3, 4, 3, order="code")
    before = layer.weight.clone()
    opt = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.5, weight_decay=0.1)
    for _ in range(2):
        opt.zero_grad()
        layer(torch.randn(2, 3, 8, 8)).pow(2).mean().backward()
        opt.step()
    assert torch.equal(layer.weight, before)
    other = build("lbcnn", 3, 4, 3, order="code", seed=5)
    assert not torch.equal(other.weight, layer.weight)
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other.weight, layer.weight)


def test_lbcnn_code_variant_draws_with_replacement_and_has_a_bias():
    """lbcnn.pytorch draws int(s·n) positions with replacement: ≈ 1 − e^(−s) of the weights end up non-zero
    (0.39 at s = 0.5), and its 1×1 nn.Conv2d keeps its default bias."""
    import math

    torch.manual_seed(0)
    layer = build("lbcnn", 64, 64, 3, sparsity=0.5, variant="code")
    w = layer.weight
    frac = float((w != 0).float().mean())
    assert abs(frac - (1 - math.exp(-0.5))) < 0.01 and set(w.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert layer.mix.bias is not None
    counts = count_parameters(layer)
    assert counts["learned"] == 64 * 64 + 64 == LAYERS.get("lbcnn").expected_learned(64, 64, 3, variant="code")
    paper = build("lbcnn", 64, 64, 3, sparsity=0.5)
    assert float((paper.weight != 0).float().mean()) == 0.5 and paper.mix.bias is None
