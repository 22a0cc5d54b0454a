"""Network deconvolution (`003_…`): whitening, implicit = explicit, Newton–Schulz, running statistics,
block layouts of the two variants, the classifier, and the Table 1 backbones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.layers import LAYERS, count_parameters
from bench.measure.measure import count_macs, count_training_macs
from bench.zoo.layers.deconv import Deconv2d, DeconvLinear, block_columns, gram, isqrt_newton_schulz, resolve_block

VARIANTS = ("code", "paper")


def correlated_images(n=16, c=4, hw=12, seed=0, scale=1.0):
    """Spatially blurred, channel-mixed noise: strongly correlated patches, like natural images."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, hw + 4, hw + 4, generator=g)
    x = F.avg_pool2d(x, 3, stride=1)[:, :, :hw, :hw]  # pixel-wise correlation
    mix = torch.eye(c) + 0.5 * torch.randn(c, c, generator=g)
    x = torch.einsum("dc,nchw->ndhw", mix, x) + 0.3  # channel-wise correlation, non-zero mean
    return x * scale


def inv_sqrt_eig(a):
    vals, vecs = torch.linalg.eigh(a.double())
    return (vecs @ torch.diag_embed(vals.rsqrt()) @ vecs.transpose(-1, -2)).float()


def naive_coupled_ns(a, iters, normalise):
    eye = torch.eye(a.shape[-1])
    norm = torch.linalg.matrix_norm(a)[..., None, None] if normalise else torch.ones(())
    y, z = a / norm, eye.expand_as(a)
    for _ in range(iters):
        t = 0.5 * (3 * eye - z @ y)
        y, z = y @ t, t @ z
    return z / norm.sqrt()


# -- Newton–Schulz ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalise", [True, False])
def test_newton_schulz_matches_eigendecomposition(normalise):
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(3, 10, 10, generator=g, dtype=torch.float64))
    lam = torch.rand(3, 10, generator=g, dtype=torch.float64) * 1.9 + 0.1  # spectrum in [0.1, 2]: converges both ways
    a = (q @ torch.diag_embed(lam) @ q.transpose(1, 2)).float()
    d = isqrt_newton_schulz(a, 40, normalise=normalise)
    torch.testing.assert_close(d, inv_sqrt_eig(a), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(d @ a @ d, torch.eye(10).expand(3, 10, 10), rtol=0, atol=1e-4)
    # few iterations: not yet converged, and equal to the textbook coupled iteration (Z0 = I) step for step
    for it in (1, 2, 5):
        torch.testing.assert_close(isqrt_newton_schulz(a, it, normalise), naive_coupled_ns(a, it, normalise))
    assert (isqrt_newton_schulz(a, 2, normalise) - inv_sqrt_eig(a)).abs().max() > 1e-2


def test_newton_schulz_without_normalisation_needs_small_spectrum():
    """The text's iteration (Y0 = Cov) diverges for eigenvalues > 5; the code's Frobenius scaling does not."""
    a = torch.diag(torch.tensor([0.5, 1.0, 8.0]))
    assert (
        not torch.isfinite(isqrt_newton_schulz(a, 20, normalise=False)).all()
        or (isqrt_newton_schulz(a, 20, normalise=False) - inv_sqrt_eig(a)).abs().max() > 1
    )
    torch.testing.assert_close(isqrt_newton_schulz(a, 20, normalise=True), inv_sqrt_eig(a), rtol=1e-4, atol=1e-4)


# -- block layouts --------------------------------------------------------------------------------------


def test_block_size_rule_and_stem_iterations():
    assert resolve_block(3, 64) == 3 and resolve_block(64, 64) == 64 and resolve_block(128, 64) == 64
    assert resolve_block(96, 64) == 32 and resolve_block(1280, 512) == 256
    assert Deconv2d(3, 8, 3, stem_iterations=15, iterations=5).iterations == 15
    assert Deconv2d(8, 8, 3, stem_iterations=15, iterations=5).iterations == 5
    layer = Deconv2d(128, 8, 3, block=64)
    assert (layer.block, layer.groups_, layer.features) == (64, 2, 576)


def test_interleaved_vs_contiguous_blocks():
    # C = 4 channels, 3×3 kernel, B = 2 → G = 2 blocks of F = 18 im2col columns (column = channel·9 + tap)
    code, paper = block_columns(4, 3, 2, "code"), block_columns(4, 3, 2, "paper")
    assert code.shape == paper.shape == (2, 18)
    assert code[0].tolist() == list(range(0, 36, 2)) and code[1].tolist() == list(range(1, 36, 2))
    assert paper[0].tolist() == list(range(18)) and paper[1].tolist() == list(range(18, 36))
    # contiguous blocks hold whole channels; interleaved blocks mix taps of all four channels
    assert set((paper[0] // 9).tolist()) == {0, 1} and set((code[0] // 9).tolist()) == {0, 1, 2, 3}
    # each variant's blocks partition the columns
    for cols in (code, paper):
        assert sorted(cols.flatten().tolist()) == list(range(36))
    # the layers' reshaping views pick exactly these columns, and invert
    t = torch.randn(5, 36)
    for variant, cols in (("code", code), ("paper", paper)):
        layer = Deconv2d(4, 3, 3, block=2, variant=variant)
        assert torch.equal(layer.to_blocks(t), t[:, cols])
        assert torch.equal(layer.from_blocks(layer.to_blocks(t)), t)
    # with one block both layouts coincide
    assert torch.equal(block_columns(4, 3, 4, "code"), block_columns(4, 3, 4, "paper"))


@pytest.mark.parametrize(
    "k,stride,sampling,hw",
    [
        (3, 1, 3, 12),
        (3, 1, 4, 13),
        (3, 1, 1, 7),
        (3, 1, 2, 9),
        (3, 2, 3, 11),
        (5, 1, 3, 10),
        (1, 1, 3, 12),
        (1, 1, 3, 7),
        (1, 2, 3, 8),
    ],
)
def test_sampled_patches_equal_strided_im2col(k, stride, sampling, hw):
    """The strided-view patch sampler gives F.unfold's patches at stride S (1×1: every S²-th pixel of the
    (N·H·W, C) matrix), values and gradients, overlapping (S < k) or not."""
    x = correlated_images(n=3, c=4, hw=hw).requires_grad_(True)
    layer = Deconv2d(4, 6, k, stride, block=2, sampling_stride=sampling)
    s = sampling * stride
    if k == 1:
        ref = x.permute(0, 2, 3, 1).reshape(-1, 4)[:: s * s]
    else:
        ref = F.unfold(x, k, padding=layer.padding, stride=s).transpose(1, 2).reshape(-1, 4 * k * k)
    got = layer.sampled_patches(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    weights = torch.randn(ref.shape)
    (g_ref,) = torch.autograd.grad((ref * weights).sum(), x)
    (g_got,) = torch.autograd.grad((got * weights).sum(), x)
    torch.testing.assert_close(g_got, g_ref)


def test_code_variant_pools_blocks_into_one_covariance():
    """code: blocks are stacked as samples → one (F, F) covariance = mean of per-block covariances about
    the shared mean; paper: one covariance per block."""
    x = correlated_images()
    code = Deconv2d(4, 6, 3, block=2, variant="code", sampling_stride=1)
    paper = Deconv2d(4, 6, 3, block=2, variant="paper", sampling_stride=1)
    mean, cov, d = code.batch_statistics(x)
    assert mean.shape == (18,) and cov.shape == d.shape == (18, 18)
    p = code.sampled_patches(x)[:, code.columns]  # (M, G, F)
    per_block = torch.einsum("mgf,mgh->gfh", p - mean, p - mean) / p.shape[0]
    torch.testing.assert_close(cov, per_block.mean(0), rtol=1e-4, atol=1e-5)
    pm, pc, pd = paper.batch_statistics(x)
    assert pm.shape == (2, 18) and pc.shape == pd.shape == (2, 18, 18)
    pp = paper.sampled_patches(x)[:, paper.columns]
    torch.testing.assert_close(pc[1], torch.cov(pp[:, 1].t(), correction=0), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(pd[0], d, atol=1e-2)


# -- whitening --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_whitened_patches_have_identity_covariance(variant):
    x = correlated_images()
    layer = Deconv2d(4, 6, 3, block=2, variant=variant, sampling_stride=1, iterations=40, eps=1e-6)
    p = layer.sampled_patches(x)[:, layer.columns]  # (M, G, F)
    if variant == "paper":  # the text's unnormalised iteration needs Cov's spectrum inside (0, 5)
        top = torch.linalg.eigvalsh(torch.cov(p.reshape(-1, 18).t())).max()
        x = x / top.sqrt()
        p = p / top.sqrt()
    raw = torch.cov(p.reshape(-1, 18).t(), correction=0)
    assert (raw - torch.diag(raw.diag())).abs().max() > 0.3 * raw.diag().max()  # really correlated input
    mean, d = layer.statistics(x)
    white = torch.einsum("mgf,gfh->mgh", p - mean, d)
    if variant == "code":  # one shared whitening of the pooled blocks
        covs = torch.cov(white.reshape(-1, 18).t(), correction=0)[None]
    else:  # every block whitened on its own
        covs = torch.stack([torch.cov(white[:, g].t(), correction=0) for g in range(2)])
    torch.testing.assert_close(covs, torch.eye(18).expand_as(covs), rtol=0, atol=2e-3)


# -- implicit = explicit ---------------------------------------------------------------------------------


def explicit(layer: Deconv2d, x, mean, d):
    """Whiten the conv's own im2col patches explicitly, then multiply by the weights (§4.2, Fig. 3)."""
    n, k = x.shape[0], layer.kernel_size
    cols = F.unfold(x, k, padding=layer.padding, stride=layer.stride)  # (N, C·k², L)
    hout = (x.shape[2] + 2 * layer.padding - k) // layer.stride + 1
    p = cols.transpose(1, 2)[..., layer.columns]  # (N, L, G, F)
    white = torch.einsum("nlgf,gfh->nlgh", p - mean, d)
    w = layer.weight.reshape(layer.out_channels, -1)[:, layer.columns]  # (cout, G, F)
    y = torch.einsum("nlgf,ogf->nol", white, w) + layer.bias[None, :, None]
    return y.reshape(n, layer.out_channels, hout, -1)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k,stride", [(3, 1), (3, 2), (1, 1), (1, 2)])
def test_implicit_deconvolution_equals_explicit(variant, k, stride):
    torch.manual_seed(0)
    x = correlated_images(n=4, c=8, hw=10, scale=0.3)
    layer = Deconv2d(8, 5, k, stride, block=4, variant=variant)
    layer.train()
    y = layer(x)
    mean, cov, d = layer.batch_statistics(x)
    g, f = layer.groups_, layer.features
    ref = explicit(layer, x, mean.expand(g, f), d.expand(g, f, f))
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
    layer.eval()  # and with the running statistics
    ref_eval = explicit(layer, x, *layer.statistics())
    torch.testing.assert_close(layer(x), ref_eval, rtol=1e-4, atol=1e-4)


def test_deconv_linear_implicit_equals_explicit():
    torch.manual_seed(0)
    lin = DeconvLinear(12, 3, block=4)
    x = torch.randn(32, 12) @ torch.randn(12, 12) + 1.0
    y = lin(x)
    p = x.reshape(-1, 4)
    mean = p.mean(0)
    d = isqrt_newton_schulz(torch.cov(p.t(), correction=0) + 1e-5 * torch.eye(4), 5)
    white = ((x.reshape(32, 3, 4) - mean) @ d).reshape(32, 12)
    torch.testing.assert_close(y, white @ lin.weight.t() + lin.bias, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(lin.running_deconv, 0.9 * torch.eye(4) + 0.1 * d)


# -- running statistics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_running_statistics_used_in_eval(variant):
    torch.manual_seed(0)
    layer = Deconv2d(4, 6, 3, block=2, variant=variant)
    a, b = correlated_images(n=8, seed=1, scale=0.3), correlated_images(n=8, seed=2, scale=0.3) + 1.0
    layer.train()
    mean_a, cov_a, d_a = layer.batch_statistics(a)
    layer(a)
    torch.testing.assert_close(layer.running_mean, 0.1 * mean_a)
    if variant == "code":  # running average of the whitening matrix itself, from I
        torch.testing.assert_close(layer.running_deconv, 0.9 * torch.eye(18) + 0.1 * d_a)
    else:  # running average of each block's covariance, from I
        torch.testing.assert_close(layer.running_cov, 0.9 * torch.eye(18) + 0.1 * cov_a)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.eval()
    yb = layer(b)
    for k, v in layer.state_dict().items():
        assert torch.equal(v, state[k]), f"eval forward changed {k}"
    # eval output = plain conv with the running statistics folded in, sample by sample
    w, bias = layer.folded(*layer.statistics())
    torch.testing.assert_close(yb, F.conv2d(b, w, bias, 1, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer(b[:1]), yb[:1], rtol=1e-5, atol=1e-5)
    layer.train()  # training mode uses b's own statistics instead
    assert not torch.allclose(layer(b), yb, atol=1e-2)


def test_gradient_flows_through_the_whitening():
    """§A.8: D depends on x and the gradient includes ∂D/∂x — unlike a detached whitening."""
    torch.manual_seed(0)
    layer = Deconv2d(4, 6, 3, block=4)
    x = correlated_images(n=4, scale=0.3).requires_grad_(True)
    layer(x).pow(2).sum().backward()
    g_full = x.grad.clone()
    mean, _, d = layer.batch_statistics(x)
    w, b = layer.folded(mean.detach().expand(1, -1), d.detach().expand(1, -1, -1))
    x.grad = None
    F.conv2d(x, w, b, 1, 1).pow(2).sum().backward()
    assert not torch.allclose(g_full, x.grad, atol=1e-3)


# -- cost ----------------------------------------------------------------------------------------------------


def test_gram_gradient_matches_autograd():
    x = torch.randn(2, 7, 5, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(gram, (x,))
    g = torch.randn(2, 5, 5, dtype=torch.float64)
    (mine,) = torch.autograd.grad((gram(x) * g).sum(), x)
    (ref,) = torch.autograd.grad(((x.transpose(1, 2) @ x) * g).sum(), x)
    torch.testing.assert_close(mine, ref)


def test_training_macs_count_the_whitening_by_hand():
    """8 → 4 channels, 3×3, one block (F = 72), every position sampled (M = 2·36 = 72), 5 iterations."""
    layer = Deconv2d(8, 4, 3, block=8, sampling_stride=1)
    x = torch.randn(2, 8, 6, 6)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    f, m = 72, 72
    conv = 4 * 36 * f  # per image
    fold = 4 * f * f + 4 * f  # D·w and μ·(D·w)
    gram_macs, newton_schulz = m * f * f, 12 * f**3  # 1 + 3 + 3 + 3 + 2 products of F×F matrices
    # inference: the fold is done once per set of weights (cached in evaluation), so an image costs the conv
    assert count_macs(layer, x) == conv
    assert count_training_macs(layer, x) == conv + (fold + gram_macs + newton_schulz) / 2  # stats once per batch
    for k, v in layer.state_dict().items():  # counted on a copy: running statistics untouched
        assert torch.equal(v, state[k]), k
    assert layer.training


# -- registration and backbones ---------------------------------------------------------------------------


def test_family_registration():
    fam = LAYERS.get("deconv")
    assert fam.applies_to == "all" and isinstance(fam.norm(8), nn.Identity)
    assert isinstance(fam.linear(16, 3), DeconvLinear)
    assert fam.options()["variant"] == "code" and fam.options()["block"] == 64
    assert fam.options()["sampling_stride"] == 3 and fam.options()["iterations"] == 5
    layer = fam.build(4, 6, 3, 1, None, False)  # bias forced on: learned = weights + bias
    assert count_parameters(layer)["learned"] == 4 * 6 * 9 + 6 == fam.expected_learned(4, 6, 3, False)
    assert count_parameters(fam.build(4, 6, 3, 1, None, False, force_bias=False))["learned"] == 4 * 6 * 9


TABLE1 = ["vgg16", "resnet18", "preact-resnet18", "densenet121", "mobilenetv2", "pnasnet-a"]


@pytest.mark.parametrize("name", TABLE1)
def test_backbones_train_with_bn_and_deconv(name):
    x = torch.randn(4, 3, 32 if name == "vgg16" else 16, 32 if name == "vgg16" else 16)  # VGG pools 5×
    for fam in ("conv", "deconv"):
        torch.manual_seed(0)
        net = build_backbone(name, Ops.of(fam), 3, 10, {"width": 0.125})
        mods = list(net.modules())
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in mods)
        dense = [m for m in mods if isinstance(m, nn.Conv2d) and m.groups == 1]
        if fam == "conv":
            assert n_bn > 0 and not any(isinstance(m, Deconv2d) for m in mods)
        else:  # every batch norm removed, every dense convolution and the classifier whitened
            assert n_bn == 0 and not dense and any(isinstance(m, DeconvLinear) for m in mods)
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        y = net(x)
        assert y.shape == (4, 10) and torch.isfinite(y).all()
        F.cross_entropy(y, torch.arange(4)).backward()
        opt.step()
        net.eval()
        assert torch.isfinite(net(x)).all()
        assert count_macs(net, x[:1]) > 0  # the harness counts MACs of every model (fvcore)


# Table 1 "Size" column (CIFAR-10, 10 classes). It matches the networks without batch norm and with a bias
# in every layer — the deconvolution models (DenseNet-121 with BN would be 6.96M). MobileNetV2's depthwise
# convs are whitened and biased too, as in the code.
SIZES = {
    "vgg16": 14.71,
    "resnet18": 11.17,
    "preact-resnet18": 11.17,
    "densenet121": 6.88,
    "mobilenetv2": 2.28,
    "pnasnet-a": 0.13,
}


@pytest.mark.parametrize("name", TABLE1)
def test_backbone_sizes_match_table1(name):
    net = build_backbone(name, Ops.of("deconv"), 3, 10, {"width": 1.0})
    learned = count_parameters(net)["learned"] / 1e6
    assert abs(learned - SIZES[name]) <= 0.01, (name, learned)


# -- the authors' per-layer settings, grouped layers, freezing, evaluation cache -------------------------------


def grouped_reference(layer, x):
    """Per group g: patches of its channels (F.unfold), own mean and covariance, D_g by the normalised
    coupled iteration, y = (P − μ_g) D_g w_oᵀ + b_o for the outputs o of group g (no folding, no sampling)."""
    n, c, h, w = x.shape
    g, k = layer.conv_groups, layer.kernel_size
    cin_g, cout_g = c // g, layer.out_channels // g
    outs = []
    for gi in range(g):
        p = F.unfold(x[:, gi * cin_g : (gi + 1) * cin_g], k, padding=layer.padding, stride=layer.stride)
        l = p.shape[-1]
        p = p.transpose(1, 2).reshape(n * l, -1)  # (N·L, cin_g·k²)
        mean = p.mean(0)
        pc = p - mean
        cov = pc.t() @ pc / pc.shape[0] + layer.eps * torch.eye(p.shape[1])
        d = naive_coupled_ns(cov, layer.iterations, normalise=True)
        wg = layer.weight[gi * cout_g : (gi + 1) * cout_g].reshape(cout_g, -1)
        y = pc @ d @ wg.t() + layer.bias[gi * cout_g : (gi + 1) * cout_g]
        outs.append(y.reshape(n, l, cout_g).transpose(1, 2))
    ho = (h + 2 * layer.padding - k) // layer.stride + 1
    return torch.cat(outs, 1).reshape(n, layer.out_channels, ho, -1)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("groups,cout", [(4, 4), (4, 8), (2, 6)])
def test_grouped_deconv_equals_per_group_whitening(groups, cout, stride):
    torch.manual_seed(0)
    layer = Deconv2d(4, cout, 3, stride, groups=groups, sampling_stride=1, iterations=3)
    assert layer.weight.shape == (cout, 4 // groups, 3, 3) and layer.block == 4 // groups
    x = correlated_images(n=6, c=4, hw=10)
    y = layer(x)
    # sampling every S·stride-th patch: with sampling_stride 1 and conv stride s, statistics use the conv's patches
    torch.testing.assert_close(y, grouped_reference(layer, x), atol=2e-4, rtol=2e-4)
    assert layer.running_deconv.shape == (groups, 9 * 4 // groups, 9 * 4 // groups)
    y.square().sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_frozen_stem_follows_the_code_counter():
    """freeze_iter = 2: steps 1–3 update (counter 0, 1, 2 ≤ 2), steps 4–20 use the running statistics in
    training mode, the counter wraps at 10 · 2 = 20, so step 21 updates again."""
    torch.manual_seed(0)
    layer = Deconv2d(3, 4, 3, freeze_iter=2, sampling_stride=1)
    updated = []
    for step in range(1, 23):
        before = layer.running_deconv.clone()
        x = correlated_images(n=4, c=3, hw=8, seed=step)
        y = layer(x)
        changed = not torch.equal(before, layer.running_deconv)
        updated.append(changed)
        if not changed:  # frozen: the training output equals the evaluation output (running statistics)
            layer.eval()
            torch.testing.assert_close(y, layer(x))
            layer.train()
    assert updated == [True] * 3 + [False] * 17 + [True] * 2


def test_float64_input_trains_and_evaluates():
    layer = Deconv2d(4, 6, 3, block=2).double()
    lin = DeconvLinear(8, 3).double()
    x = correlated_images(n=4, c=4, hw=8).double()
    y = layer(x)
    assert y.dtype == torch.float64 and torch.isfinite(y).all()
    assert lin(torch.randn(5, 8, dtype=torch.float64)).dtype == torch.float64
    layer.eval(), lin.eval()
    assert torch.isfinite(layer(x)).all() and torch.isfinite(lin(torch.randn(5, 8, dtype=torch.float64))).all()


def test_evaluation_cache_follows_the_weights():
    layer = Deconv2d(4, 6, 3, block=2)
    x = correlated_images(n=4, c=4, hw=8)
    layer(x)
    layer.eval()
    y1 = layer(x)
    with torch.no_grad():
        layer.weight.mul_(2.0)  # an in-place change (as an optimiser step) invalidates the folded weights
    y2 = layer(x)
    ref = F.conv2d(x, *layer.folded(*layer._statistics(None)), padding=1)
    torch.testing.assert_close(y2, ref)
    assert not torch.allclose(y1, y2)


def hinted(net):
    return [m for m in net.modules() if isinstance(m, Deconv2d)]


def test_code_layer_settings_reach_the_table1_backbones():
    mb = hinted(build_backbone("mobilenetv2", Ops.of("deconv"), 3, 10, {"width": 0.25}))
    stem = mb[0]
    assert stem.in_channels == 3 and stem.iterations == 10 and stem.freeze_iter == 100
    depthwise = [m for m in mb if m.conv_groups > 1]
    assert len(depthwise) == 17 and all(m.iterations == 1 and m.conv_groups == m.in_channels for m in depthwise)
    net = build_backbone("mobilenetv2", Ops.of("deconv"), 3, 10, {"width": 0.25})
    first = net.layers[1]  # expansion 6: 1×1 expand, depthwise, 1×1 project with block = the block's c_in
    assert first.conv3.block == first.conv1.in_channels and first.conv3.iterations == 1
    assert first.conv1.iterations == 5 and first.conv1.freeze_iter == 0
    vgg = hinted(build_backbone("vgg16", Ops.of("deconv"), 3, 10, {"width": 0.125}))
    assert (vgg[0].iterations, vgg[0].freeze_iter) == (15, 100) and vgg[1].iterations == 5
    for name, its, freeze in (("resnet18", 5, 0), ("densenet121", 5, 0), ("preact-resnet18", 10, 100)):
        stem = hinted(build_backbone(name, Ops.of("deconv"), 3, 10, {"width": 0.125}))[0]
        assert (stem.in_channels, stem.iterations, stem.freeze_iter) == (3, its, freeze), name
    # the settings are the code variant's: off with code_layer_settings false or variant paper
    for opts in ({"code_layer_settings": False}, {"variant": "paper"}):
        stem = hinted(build_backbone("mobilenetv2", Ops.of("deconv", opts), 3, 10, {"width": 0.25}))[0]
        assert stem.iterations == 15 and stem.freeze_iter == 0
    # another family keeps MobileNetV2's depthwise convolutions as plain grouped convolutions
    conv = build_backbone("mobilenetv2", Ops.of("conv"), 3, 10, {"width": 0.25})
    assert conv.layers[1].conv2.groups == conv.layers[1].conv2.in_channels
    assert type(conv.layers[1].conv2) is nn.Conv2d


def test_inference_macs_at_batch_one_are_the_convolution():
    """The inference count at batch 1 (6.9 G per image for ResNet-18 before) charged the per-forward fold
    cout·G·F² of every layer to one image; folded once, a layer costs its convolution."""
    layer = Deconv2d(64, 64, 3)  # G = 1, F = 576
    x = torch.randn(1, 64, 8, 8)
    layer(torch.randn(4, 64, 8, 8))
    conv = 64 * 64 * 64 * 9
    assert count_macs(layer, x) == conv
