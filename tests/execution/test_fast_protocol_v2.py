"""Fast protocol v2 (suites/fast-cifar-v2.yaml, issue 22): the whitened-vgg backbone and its data-whitened stem,
bf16 autocast on CPU, the triangle schedule, norm-parameter lr scaling, lookahead, alternating flips, flip +
translate TTA, evaluation at chosen epochs, and that suites written before these fields keep their run ids."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.backbones.whitened_vgg import PatchWhitening
from bench.errors import SpecError
from bench.zoo.layers import count_parameters
from bench.zoo.models import build_classifier, init_from_data
from bench.spec.suite import load_suite
from bench.execution.train import Lookahead, evaluate, fit_classifier, lr_factor, make_optimizer, uses_amp

ROOT = Path(__file__).resolve().parents[2]
MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def _net(family="conv", width=0.125, **options):
    torch.manual_seed(0)
    return build_classifier(
        {"name": "whitened-vgg", "options": {"width": width, **options}},
        {"name": family, "options": {}},
        3,
        10,
        MEAN,
        STD,
        torch.rand(1, 3, 32, 32),
    )


def test_patch_whitening_whitens_the_patches_it_was_fitted_on():
    g = torch.Generator().manual_seed(0)
    # correlated channels and neighbouring pixels: a smoothed random image with a shared component
    base = F.avg_pool2d(torch.randn(64, 1, 18, 18, generator=g), 3, 1)
    x = torch.cat([base + 0.1 * torch.randn(64, 1, 16, 16, generator=g) for _ in range(3)], 1)
    layer = PatchWhitening(3, 2, eps=1e-8)
    random_init = layer.weight.clone()
    assert not layer.fitted and torch.count_nonzero(random_init) > 0  # a frozen random stem until fitted
    layer.init_from_data(x)
    assert layer.fitted and not torch.equal(layer.weight, random_init)
    with torch.no_grad():
        out = F.conv2d(x.double(), layer.weight.double())[:, :12]  # the first 12 filters (the rest are negatives)
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = flat.T @ flat / len(flat)
    assert torch.allclose(cov, torch.eye(12, dtype=cov.dtype), atol=1e-3)
    assert torch.equal(layer.weight[12:], -layer.weight[:12])
    counts = count_parameters(layer)
    assert counts == {"learned": 24, "fixed": 24 * 3 * 2 * 2, "total": 24 + 288}  # only the bias is learned


def test_init_from_data_uses_a_seeded_random_sample_and_leaves_the_global_rng_alone():
    model = _net()
    x = torch.cat([torch.full((50, 3, 32, 32), v, dtype=torch.uint8) for v in (0, 250)])  # sorted "classes"
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    assert init_from_data(model, x, seed=0, device="cpu", images=40) == 1
    assert torch.equal(torch.rand(3), before)  # the run's random stream is untouched
    w0 = model.backbone.stem.weight.clone()
    assert model.backbone.stem.fitted
    init_from_data(model, x, seed=0, device="cpu", images=40)
    assert torch.equal(model.backbone.stem.weight, w0)  # same seed, same sample, same filters
    plain = build_classifier(
        {"name": "preact-resnet", "options": {"n": 1}}, {"name": "conv"}, 3, 10, MEAN, STD, torch.rand(1, 3, 32, 32)
    )
    assert init_from_data(plain, x, seed=0, device="cpu") == 0  # other backbones: nothing happens


def test_every_3x3_convolution_is_a_family_slot_and_the_stem_is_not():
    conv = _net("conv")
    convs = [m for m in conv.backbone.groups.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(m.kernel_size == (3, 3) for m in convs)
    pnn = _net("pnn")
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in pnn.backbone.groups.modules())
    assert isinstance(pnn.backbone.stem, PatchWhitening)
    # batch norms carry no learned scale (airbench94), only the bias
    bns = [m for m in conv.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.weight.requires_grad and m.bias.requires_grad for m in bns)
    assert _net("conv", whiten=False).backbone.stem.__class__ is not PatchWhitening


def test_triangle_schedule_runs_from_start_to_peak_to_end():
    f = lr_factor({"name": "triangle", "start": 0.2, "peak": 0.25, "end": 0.1}, epochs=1, steps_per_epoch=100)
    assert f(0) == pytest.approx(0.2)
    assert f(25) == pytest.approx(1.0)
    assert f(12) == pytest.approx(0.2 + 0.8 * 12 / 25)
    assert f(100) == pytest.approx(0.1)
    assert f(50) == pytest.approx(1 - 0.9 * 25 / 75)


def test_norm_lr_scale_multiplies_lr_and_divides_weight_decay_of_norm_parameters_only():
    model = _net()
    opt = make_optimizer(
        model,
        {"name": "sgd", "lr": 0.5, "momentum": 0.85, "nesterov": True, "weight_decay": 0.01, "norm_lr_scale": 64.0},
    )
    rest, norm = opt.param_groups
    bn_params = {id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert {id(p) for p in norm["params"]} == bn_params
    assert norm["lr"] == pytest.approx(32.0) and norm["weight_decay"] == pytest.approx(0.01 / 64)
    assert rest["lr"] == 0.5 and rest["weight_decay"] == 0.01
    assert not bn_params & {id(p) for p in rest["params"]}


def test_lookahead_pulls_the_live_weights_back_to_the_slow_copy():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    la = Lookahead(lin, total_steps=10, every=2, decay=0.5)
    for step in range(1, 11):
        with torch.no_grad():
            lin.weight.add_(1.0)
        before = lin.weight.detach().clone()
        la.update()
        if step % 2:
            assert torch.equal(lin.weight, before)  # only every 2nd step
    # at step 10 (t/T = 1) the slow copy keeps α = 0.5² of itself: the live weights are a blend, not the latest
    assert float(lin.weight.detach()[0, 0]) < 10.0
    slow = float(lin.weight.detach()[0, 0])
    with torch.no_grad():
        lin.weight.add_(5.0)
    la.finish()
    assert float(lin.weight.detach()[0, 0]) == pytest.approx(slow)  # finish: the live weights become the slow copy


def test_flip_translate_tta_is_the_weighted_six_view_average():
    model = _net().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    xf = x.float() / 255
    pad = F.pad(xf, (1, 1, 1, 1), mode="reflect")
    with torch.no_grad():

        def mirror(v):
            return 0.5 * (model(v) + model(v.flip(3)))

        logits = 0.5 * mirror(xf) + 0.25 * (mirror(pad[..., :32, :32]) + mirror(pad[..., 2:, 2:]))
    loss, _ = evaluate(model, x, y, 4, amp=False, tta="flip-translate")
    assert loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)


def _protocol(**extra):
    base = {
        "epochs": 3,
        "batch_size": 16,
        "eval_batch_size": 32,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        "schedule": {"name": "constant"},
        "augment": ["crop", "flip-alternate"],
        "crop_padding": 2,
        "label_smoothing": 0.0,
    }
    base.update(extra)
    return base


def test_eval_epochs_evaluates_only_the_listed_epochs_and_the_last():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (48,), generator=g)
    model = _net()
    init_from_data(model, x, 0, "cpu")
    fit = fit_classifier(model, x, y, x[:32], y[:32], _protocol(eval_epochs=[1]), torch.device("cpu"), 0)
    accs = [h["test_acc"] for h in fit["history"]]
    assert accs[0] is not None and accs[1] is None and accs[2] is not None
    assert len(fit["history"]) == 3 and fit["history"][1]["train_s_cum"] > 0


def test_bf16_precision_autocasts_on_cpu_and_unset_keeps_the_old_default():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert uses_amp({"precision": "bf16"}, cpu) and not uses_amp({"precision": "fp32"}, cuda)
    assert not uses_amp({}, cpu) and uses_amp({}, cuda)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    seen = []
    model = _net()
    init_from_data(model, x, 0, "cpu")
    model.backbone.groups[0].conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    fit_classifier(
        model,
        x,
        y,
        x,
        y,
        _protocol(epochs=1, precision="bf16", channels_last=True),
        torch.device("cpu"),
        0,
        channels_last=True,
    )
    assert torch.bfloat16 in seen


@pytest.mark.parametrize("family", ["deconv"])
def test_numerically_sensitive_parts_stay_fp32_under_cpu_autocast(family):
    """Network deconvolution's covariance and Newton–Schulz iteration run in fp32 under bf16 autocast: its
    output under autocast stays close to the fp32 output (a bf16 covariance would be far off)."""
    model = _net(family, width=0.25).eval()
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x).float()
    assert torch.isfinite(low).all()
    assert (low - ref).norm() / ref.norm() < 0.1


def test_optional_fields_keep_old_run_ids_and_v2_suite_loads():
    v1 = load_suite(ROOT / "suites" / "fast-cifar.yaml")
    for key in ("lookahead", "eval_epochs", "precision", "channels_last"):
        assert key not in v1.protocol
    assert "norm_lr_scale" not in v1.protocol["optimizer"] and "start" not in v1.protocol["schedule"]
    v2 = load_suite(ROOT / "suites" / "fast-cifar-v2.yaml")
    assert v2.protocol["precision"] == "bf16" and v2.protocol["tta"] == "flip-translate"
    assert v2.backbones[0]["name"] == "whitened-vgg"
    assert len({s.id for s in v2.expand()}) == len(v2.expand()) == 3 * len(v2.layers)


@pytest.mark.parametrize(
    "field, value", [("precision", "fp16"), ("tta", "five-crop"), ("eval_epochs", [0]), ("lookahead", {"decay": 1.5})]
)
def test_bad_v2_protocol_values_are_one_line_errors(tmp_path, field, value):
    import yaml

    data = yaml.safe_load((ROOT / "suites" / "fast-cifar-v2.yaml").read_text())
    data["protocol"][field] = copy.deepcopy(value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as exc:
        load_suite(path)
    assert field in str(exc.value) and "\n" not in str(exc.value)


def test_fp32_check_suite_is_v2_with_fp32_only():
    """suites/fast-cifar-v2-fp32.yaml differs from fast-cifar-v2 in precision only, so its PNN and deconvolution
    runs are the bf16 runs' twins: same data, network, recipe and layer options; different run ids (precision
    changes a result)."""
    v2, fp32 = (
        load_suite(ROOT / "suites" / "fast-cifar-v2.yaml"),
        load_suite(ROOT / "suites" / "fast-cifar-v2-fp32.yaml"),
    )
    assert {**v2.protocol, "precision": "fp32"} == fp32.protocol and v2.protocol["precision"] == "bf16"
    assert (v2.task, v2.dataset, v2.backbones, v2.seeds) == (fp32.task, fp32.dataset, fp32.backbones, fp32.seeds)
    assert [row["label"] for row in fp32.layers] == ["pnn", "deconv"]
    for row in fp32.layers:
        twin = next(r for r in v2.layers if r["label"] == row["label"])
        assert (row["name"], row["options"]) == (twin["name"], twin["options"])
        a = {s.seed: s.id for s in v2.expand() if s.label == row["label"]}
        b = {s.seed: s.id for s in fp32.expand() if s.label == row["label"]}
        assert a.keys() == b.keys() and all(a[k] != b[k] for k in a)


def test_fashion_suite_is_v2_recipe_at_four_epochs_on_fashion_mnist():
    """suites/fast-fashion-v2.yaml claims fast-cifar-v2's recipe with 4 epochs: every working field but epochs,
    the mid-run evaluation and the descriptive name/description is v2's, on the same network and families."""
    v2, fm = load_suite(ROOT / "suites" / "fast-cifar-v2.yaml"), load_suite(ROOT / "suites" / "fast-fashion-v2.yaml")
    skip = {"epochs", "eval_epochs", "name", "description"}
    assert {k: v for k, v in fm.protocol.items() if k not in skip} == {
        k: v for k, v in v2.protocol.items() if k not in skip
    }
    assert (fm.protocol["epochs"], fm.protocol["eval_epochs"]) == (4, [2])
    assert fm.dataset["name"] == "fashion-mnist" and fm.backbones == v2.backbones
    assert [row["label"] for row in fm.layers] == [row["label"] for row in v2.layers]
