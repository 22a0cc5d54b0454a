"""random-conv distributions, the VGG-16 CNN-DCN, the skimage-photos loader and the reconstruction task (001)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.backbones.vgg_cnn_dcn import feature_shape
from bench.zoo.datasets import load_dataset
from bench.zoo.layers import LAYERS, count_parameters, fixed_tensors
from bench.zoo.layers.random_conv import distribution_std
from bench.spec.suite import RunSpec
from bench.tasks import TASKS, RunContext
from bench.tasks.reconstruction import pearson, ssim, ssim_sign_rule, train_decoder

RANDOM = {"name": "random-conv", "options": {"learned_mix": False}}


# -- random-conv ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dist,std",
    [
        ("gaussian", 0.015),
        ("uniform", 0.04 / math.sqrt(3)),
        ("logistic", 0.015 * math.pi / math.sqrt(3)),
        ("laplace", 0.015),
    ],
)
def test_distribution_sample_statistics(dist, std):
    assert distribution_std(dist) == pytest.approx(std)
    torch.manual_seed(0)
    w = fixed_tensors(LAYERS.get("random-conv").build(64, 128, 9, distribution=dist))["weight"]  # 663,552 draws
    assert abs(float(w.mean())) < 0.01 * std * 3
    assert float(w.std()) == pytest.approx(std, rel=0.01)
    if dist == "uniform":
        assert float(w.min()) >= -0.04 and float(w.max()) < 0.04 and float(w.max()) > 0.0399
    if dist == "laplace":  # heavier-tailed than the Gaussian: excess kurtosis 3 (Gaussian 0)
        z = (w - w.mean()) / w.std()
        assert float((z**4).mean()) == pytest.approx(6.0, rel=0.05)


def test_random_conv_is_a_frozen_conv_plus_learned_mix():
    torch.manual_seed(1)
    layer = LAYERS.get("random-conv").build(4, 6, 3, bias=True, bias_init="distribution")
    x = torch.randn(2, 4, 8, 8)
    w, b = layer.weight, layer.bias
    ref = torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, w, b, 1, 1), layer.mix.weight)
    torch.testing.assert_close(layer(x), ref)
    assert count_parameters(layer) == {"learned": 36, "fixed": 6 * 4 * 9 + 6, "total": 36 + 222}
    pure = LAYERS.get("random-conv").build(4, 6, 3, learned_mix=False)
    assert (
        count_parameters(pure)["learned"] == 0
        and LAYERS.get("random-conv").expected_learned(4, 6, 3, learned_mix=False) == 0
    )


# -- metrics ----------------------------------------------------------------------------------------


def _image(seed=0, n=32):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n] / n
    return np.clip(0.5 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy) + 0.05 * rng.standard_normal((n, n)), 0, 1)


def test_ssim_identity_and_sign_rule():
    x = _image()
    assert ssim(x, x) == pytest.approx(1.0)
    raw = ssim(x, 1.0 - x)
    assert raw < -0.5  # the negative image is strongly anti-correlated …
    score, inverted = ssim_sign_rule(x, 1.0 - x)
    assert inverted and score == pytest.approx(1.0)  # … and the rule inverts its luminosity back
    score, inverted = ssim_sign_rule(x, _image(1))
    assert not inverted and 0 < score < 1


def test_pearson_matches_numpy():
    a, b = _image(0), _image(3) ** 2
    assert pearson(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], abs=1e-12)
    assert pearson(a, 2 - 3 * a) == pytest.approx(-1.0)
    assert pearson(a, np.ones_like(a)) == 0.0


# -- the CNN-DCN --------------------------------------------------------------------------------------


def test_encoder_shapes_match_table_1():
    table1 = {"conv1": (64, 227), "conv2": (128, 114), "conv3": (256, 57), "conv4": (512, 29), "conv5": (512, 15)}
    for depth, (c, s) in table1.items():
        assert feature_shape(depth, 227) == (c, s, s)
    torch.manual_seed(0)
    net = build_backbone("vgg16-cnn-dcn", Ops.of(**RANDOM), 3, 3, {"depth": "conv3", "channels": 4})
    x = torch.rand(1, 3, 227, 227)
    assert net.encode(x).shape == (1, 4, 57, 57)
    assert net(x).shape == x.shape
    n_convs = sum(isinstance(m, torch.nn.Module) and hasattr(m, "weight") for m in net.modules())
    assert n_convs == 2 * 7  # conv1_1 … conv3_3 and their mirrors


def test_random_decoder_needs_no_training_and_trained_decoder_learns():
    torch.manual_seed(0)
    rr = build_backbone("vgg16-cnn-dcn", Ops.of(**RANDOM), 3, 3, {"depth": "conv1", "channels": 8})
    assert count_parameters(rr)["learned"] == 0 and count_parameters(rr)["fixed"] > 0
    rw = build_backbone(
        "vgg16-cnn-dcn", Ops.of(**RANDOM), 3, 3, {"depth": "conv1", "channels": 4, "decoder": "trained"}
    )
    enc_before = {k: v.clone() for k, v in fixed_tensors(rw.encoder).items()}
    assert count_parameters(rw.encoder)["learned"] == 0 and count_parameters(rw.decoder)["learned"] > 0
    x = torch.from_numpy(np.stack([_image(i, 16) for i in range(8)])).float()[:, None].repeat(1, 3, 1, 1)
    proto = {
        "optimizer": {"name": "adam", "lr": 3e-3, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "batch_size": 8,
        "epochs": 10,
    }
    hist, steps, _ = train_decoder(rw, x, x, proto, seed=0, pixel_scale=255.0)
    assert steps[-1] < 0.5 * steps[0]
    for k, v in fixed_tensors(rw.encoder).items():
        assert torch.equal(v, enc_before[k])


# -- data set + task end to end ------------------------------------------------------------------------


def _photos(root, n=16):
    rng = np.random.default_rng(0)
    for name in ("chelsea", "astronaut", "cam", "moon"):
        arr = (np.stack([_image(int(rng.integers(100)), n)] * 3, -1) * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"{name}.png")


def test_skimage_photos_loader_reads_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    _photos(tmp_path)
    d = load_dataset(
        "skimage-photos",
        tmp_path,
        False,
        {"size": 12, "test": ["chelsea", "astronaut"], "train": ["cam", "moon", "absent"], "train_crops": 2},
    )
    assert d.test_x.shape == (2, 3, 12, 12) and d.train_x.shape == (6, 3, 12, 12)
    assert d.test_x.dtype == torch.uint8 and d.meta["test_names"] == ["chelsea", "astronaut"]
    assert torch.equal(d.train_y, torch.tensor([0, 0, 0, 1, 1, 1]))


def test_task_runs_end_to_end_on_tiny_images(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    root.mkdir()
    _photos(root, 24)
    spec = RunSpec(
        "t",
        {"name": "reconstruction"},
        {
            "name": "skimage-photos",
            "options": {"size": 16, "test": ["chelsea", "astronaut"], "train": ["cam", "moon"], "train_crops": 1},
        },
        {"name": "vgg16-cnn-dcn", "options": {"depth": "conv1", "channels": 8, "pool_after": True}},
        {**RANDOM, "label": "gaussian", "stem": None},
        {
            "epochs": 1,
            "batch_size": 4,
            "optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0},
            "schedule": {"name": "constant"},
        },
        0,
        data_root=str(root),
    )
    ctx = RunContext(
        torch.device("cpu"), results_dir=tmp_path / "res", artifact_dir=tmp_path / "res" / "t" / "artifacts" / "x"
    )
    out = TASKS.get("reconstruction").obj(
        spec, ctx, networks=2, sweeps=[{"option": "channels", "values": [2, 8], "rows": ["gaussian"]}]
    )
    m = out["metrics"]
    assert m["networks"] == 2 and m["images"] == 2 and 0 <= m["ssim"] <= 1 and 0 <= m["pearson_abs"] <= 1
    assert set(out["curves"]) == {"ssim_vs_channels", "pearson_abs_vs_channels"}
    assert out["curves"]["ssim_vs_channels"]["x"] == [2, 8]
    assert out["params"]["learned"] == 0
    for a in out["artifacts"]:
        assert not a["path"].startswith("/") and (tmp_path / "res" / a["path"]).is_file()
    # the trained-decoder mode trains (a history) and scores the same way
    spec.backbone["options"].update(decoder="trained", channels=4)
    out = TASKS.get("reconstruction").obj(spec, ctx, trained_networks=1)
    assert len(out["history"]) == 1 and out["params"]["learned"] > 0 and "train_loss" in out["curves"]
    from bench.measure.measure import EPOCH_TIMING_FIELDS  # one training loop: the same timing fields as every task

    assert set(EPOCH_TIMING_FIELDS) <= set(out["timing"]) and out["timing"]["networks_trained"] == 1
    assert out["timing"]["train_s"] == out["history"][0]["epoch_s"]  # evaluation is outside the timed epoch
