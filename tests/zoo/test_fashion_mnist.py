"""The fashion-mnist data set (IDX files), the one-layer linear models and the linear-fit task of 003 Fig. 5(a, b).

The fixture tests/data/fashion-mnist holds 20 training and 10 test images of the real data set (the first ones
of each split, 13 KB), in the distributed gzip'd IDX format: the same code path as the full files."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.cli import main
from bench.zoo.datasets import load_dataset
from bench.zoo.datasets.fashion_mnist import DEBIAN_ROOT, FILES
from bench.errors import BenchError, DataMissing
from bench.zoo.layers.deconv import Deconv2d
from bench.zoo.models import build_classifier
from bench.execution.runner import execute
from bench.spec.suite import load_suite
from bench.tasks import RunContext

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "fashion-mnist"
TRAIN_LABELS = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9, 1, 0, 6, 4]
TEST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


def _plain_copy(dst: Path) -> Path:
    """The fixture decompressed (plain IDX files) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        (dst / stem).write_bytes(gzip.decompress((FIXTURE / f"{stem}.gz").read_bytes()))
    return dst


def test_reads_the_gzip_fixture_in_the_harness_layout():
    d = load_dataset("fashion-mnist", FIXTURE)
    assert d.train_x.shape == (20, 1, 28, 28) and d.train_x.dtype == torch.uint8
    assert d.test_x.shape == (10, 1, 28, 28) and d.test_y.dtype == torch.int64
    assert d.train_y.tolist() == TRAIN_LABELS and d.test_y.tolist() == TEST_LABELS
    assert d.num_classes == 10 and d.classes[9] == "Ankle boot" and d.shape == (1, 28, 28)
    assert int(d.train_x.sum()) == 1123146 and int(d.test_x.sum()) == 445876  # the real pixels
    assert str(FIXTURE) in d.source


def test_plain_files_and_conventional_sub_folders(tmp_path):
    gz = load_dataset("fashion-mnist", FIXTURE)
    for i, sub in enumerate(("", "fashion-mnist", "FashionMNIST/raw", "fashion_mnist")):
        base = tmp_path / f"case{i}"
        _plain_copy(base / sub)
        d = load_dataset("fashion-mnist", base)
        assert torch.equal(d.train_x, gz.train_x) and torch.equal(d.test_y, gz.test_y)


def test_root_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_FASHION_MNIST_ROOT", str(FIXTURE))
    assert len(load_dataset("fashion-mnist").train_y) == 20


def _corrupt(tmp_path: Path, stem: str, data: bytes) -> Path:
    root = _plain_copy(tmp_path / "fm")
    (root / stem).write_bytes(data)
    return root / stem


@pytest.mark.parametrize(
    "stem,make,message",
    [
        (
            FILES["train_x"],
            lambda b: struct.pack(">I", 0x801) + b[4:],
            "not an IDX images file: magic number 0x00000801",
        ),
        (FILES["train_x"], lambda b: b[:-100], "header announces 15680 bytes"),
        (FILES["train_x"], lambda b: b[:8], "shorter than its header"),
        (FILES["test_x"], lambda b: b[:8] + struct.pack(">II", 32, 32) + b[16:], "images are 32×32, expected 28×28"),
        (FILES["test_y"], lambda b: b[:-1] + bytes([10]), "label 10 out of range 0–9"),
        (FILES["train_y"], lambda b: struct.pack(">II", 0x801, 19) + b[8:-1], "19 labels for 20 images"),
    ],
)
def test_a_bad_file_is_an_error_naming_it(tmp_path, stem, make, message):
    good = gzip.decompress((FIXTURE / f"{stem}.gz").read_bytes())
    path = _corrupt(tmp_path, stem, make(good))
    with pytest.raises(BenchError) as exc:
        load_dataset("fashion-mnist", path.parent)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_truncated_gzip_names_the_file(tmp_path):
    root = tmp_path / "fm"
    shutil.copytree(FIXTURE, root)
    bad = root / f"{FILES['test_x']}.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(BenchError, match=rf"^{bad}: cannot read"):
        load_dataset("fashion-mnist", root)


def test_missing_files_say_what_is_expected(tmp_path):
    with pytest.raises(DataMissing, match="train-images-idx3-ubyte"):
        load_dataset("fashion-mnist", tmp_path)


SUITE = """
name: fm-tiny
task: {name: linear-fit, options: {lr_by_row: {deconv-lr1: 1.0}, timing_repeats: 1}}
setting: document
dataset: {name: fashion-mnist, root: ROOT}
protocol: {epochs: 2, batch_size: 5, eval_batch_size: 7, augment: [], schedule: {name: constant},
           optimizer: {name: sgd, lr: 0.05, momentum: 0.0, nesterov: false, weight_decay: 0.0}}
backbones: [linear-regression, logistic-regression]
layers:
  - {name: deconv, label: sgd, stem: conv}
  - {name: conv, label: bn}
  - {name: deconv, label: deconv-lr1, options: {stem_iterations: 5}}
seeds: [0]
"""


def test_bad_data_through_the_command_line_is_one_line_exit_2(tmp_path, capsys):
    path = _corrupt(tmp_path, FILES["train_y"], b"\x00\x00\x08\x03rubbish")
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE.replace("ROOT", str(path.parent)))
    rc = main(["run", str(suite), "--results", str(tmp_path / "r"), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(path) in err[0] and "not an IDX labels file" in err[0]
    assert not [p for p in (tmp_path / "r").rglob("*.json") if ".locks" not in p.parts]  # no run record


def test_rows_are_plain_batch_norm_and_deconvolution(tmp_path):
    suite_path = tmp_path / "s.yaml"
    suite_path.write_text(SUITE.replace("ROOT", str(FIXTURE)))
    specs = {s.label: s for s in load_suite(suite_path).expand() if s.backbone["name"] == "linear-regression"}
    ex = torch.rand(1, 1, 28, 28)
    models = {k: build_classifier(s.backbone, s.layer, 1, 10, [0.0], [1.0], ex).backbone for k, s in specs.items()}
    assert isinstance(models["sgd"].norm, nn.Identity) and type(models["sgd"].layer) is nn.Conv2d
    assert isinstance(models["bn"].norm, nn.BatchNorm1d) and models["bn"].norm.num_features == 784
    nd = models["deconv-lr1"].layer
    assert isinstance(nd, Deconv2d) and nd.features == 784 and nd.iterations == 5
    assert isinstance(models["deconv-lr1"].norm, nn.Identity)
    for m in models.values():  # one linear map 784 → 10 with a bias
        assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10) and m.loss == "l2"


def test_deconvolution_whitens_the_whole_image():
    """With many images and enough iterations, the whitened 784-pixel inputs have ≈ identity covariance:
    the folded layer is the linear map of the whitened data (the fixture, augmented by noise, as data)."""
    torch.manual_seed(0)
    x = load_dataset("fashion-mnist", FIXTURE).train_x.float().div(255).repeat(120, 1, 1, 1)
    x = x + 0.05 * torch.randn_like(x)
    layer = Deconv2d(1, 784, 28, padding=0, stem_iterations=20, role="stem", eps=1e-5).double()
    with torch.no_grad():
        layer.weight.copy_(torch.eye(784, dtype=torch.float64).view(784, 1, 28, 28))
        layer.bias.zero_()
        z = layer(x.double()).flatten(1)  # = (x − μ) D
    cov = (z - z.mean(0)).T @ (z - z.mean(0)) / len(z)
    # Frobenius-normalised Newton–Schulz: the well-conditioned part of the spectrum reaches 1
    top = torch.linalg.eigvalsh(cov)[-50:]
    assert torch.allclose(top, torch.ones_like(top), atol=0.05)


def test_linear_fit_trains_each_row_and_records_loss_curves(tmp_path):
    suite_path = tmp_path / "s.yaml"
    suite_path.write_text(SUITE.replace("ROOT", str(FIXTURE)))
    suite = load_suite(suite_path)
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    recs = {(s.backbone["name"], s.label): execute(s, ctx, suite) for s in suite.expand()}
    for (backbone, label), rec in recs.items():
        assert rec["status"] == "ok", rec.get("error")
        hist = rec["history"]
        assert [h["epoch"] for h in hist] == [0, 1, 2] and hist[0]["train_loss"] is None
        m = rec["metrics"]
        assert m["loss"] == hist[-1]["loss"] and m["loss_e1"] == hist[1]["loss"]
        assert m["loss_auc"] == pytest.approx((hist[1]["loss"] + hist[2]["loss"]) / 2)
        assert 0 <= m["top1"] <= 100 and m["train_loss_e1"] == hist[1]["train_loss"]
        ((name, curve),) = rec["curves"].items()
        assert name.startswith(f"{backbone}: ") and curve["x"] == [0, 1, 2] and curve["xlabel"] == "epoch"
        assert rec["data"]["loss"] == ("l2" if backbone == "linear-regression" else "logistic")
        assert rec["timing"]["lr"] == (1.0 if label == "deconv-lr1" else 0.05)
        from bench.measure.measure import EPOCH_TIMING_FIELDS  # one training loop: the same timing fields as every task

        assert set(EPOCH_TIMING_FIELDS) <= set(rec["timing"])
        assert rec["params"]["learned"] == 7850 + (2 * 784 if label == "bn" else 0)
    # the same untrained model (same seed) gives the same epoch-0 loss on every row of a backbone
    l0 = {k: r["history"][0]["loss"] for k, r in recs.items()}
    assert l0[("linear-regression", "sgd")] == pytest.approx(l0[("linear-regression", "bn")], rel=1e-4)  # BN: ε


def test_the_committed_suite_binds_its_claims_to_emitted_metrics():
    suite = load_suite(ROOT / "suites" / "deconv-fig5.yaml")
    assert suite.setting == "document" and suite.seeds == [0, 1, 2] and suite.dataset["name"] == "fashion-mnist"
    specs = suite.expand()
    assert len(specs) == 2 * 4 * 3 and len({s.id for s in specs}) == len(specs)
    assert {c["check"]["metric"] for c in suite.claims} == {"loss", "loss_e1"} and len(suite.claims) == 8
    assert {c["check"]["backbone"] for c in suite.claims} == {"linear-regression", "logistic-regression"}


@pytest.mark.skipif(
    not (DEBIAN_ROOT / "train-images-idx3-ubyte.gz").is_file(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_the_debian_package_is_the_default_root(monkeypatch):
    monkeypatch.delenv("BENCH_FASHION_MNIST_ROOT", raising=False)
    d = load_dataset("fashion-mnist")
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert d.train_y[:20].tolist() == TRAIN_LABELS and torch.bincount(d.train_y).tolist() == [6000] * 10


def test_the_suite_page_plots_one_loss_curve_per_row_in_its_own_colour(tmp_path):
    from bench.report.svg import color_for

    suites = tmp_path / "suites"
    suites.mkdir()
    suite_path = suites / "fm-tiny.yaml"
    suite_path.write_text(
        SUITE.replace("ROOT", str(FIXTURE))
        .replace("epochs: 2", "epochs: 1")
        .replace("backbones: [linear-regression, logistic-regression]", "backbones: [linear-regression]")
    )
    site = tmp_path / "site"
    assert (
        main(
            [
                "run",
                str(suite_path),
                "--results",
                str(tmp_path / "r"),
                "--no-progress",
                "--device",
                "cpu",
                "--report",
                str(site),
            ]
        )
        == 0
    )
    page = (site / "suite-fm-tiny.html").read_text()
    assert "linear-regression: whole-training-set L2 loss per epoch" in page
    # two rows of the deconv family (sgd, deconv-lr1) and the conv row: three colours, not two
    for key in ("sgd", "deconv-lr1", "conv"):
        assert f'stroke="{color_for(key)}"' in page
    assert len({color_for(k) for k in ("sgd", "deconv-lr1", "conv")}) == 3
