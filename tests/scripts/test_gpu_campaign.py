"""The prepared GPU campaign (benchmarks/gpu_campaign.sh) at smoke size on CPU, so it cannot rot: fake CIFAR-10
JPEGs in the real on-disk layout, a tiny budget, everything packed into one archive under $OUT."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_campaign.sh"
CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()

pytestmark = [
    pytest.mark.slow,  # the campaign script end to end: left out of `pytest -m "not slow"`
    pytest.mark.skipif(
        shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and coreutils timeout"
    ),
]


@pytest.fixture(scope="module")
def fake_cifar_tar(tmp_path_factory):
    """cifar10/{train,test}/<class>/NNNN.jpg, as in cifar10-jpeg.tar.gz, 3 + 2 random 32×32 JPEGs per class."""
    tmp = tmp_path_factory.mktemp("fake-cifar")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for c in CLASSES:
            d = tmp / "cifar10" / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i:04d}.jpg", quality=75)
    tar = tmp / "cifar10-jpeg.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(tmp / "cifar10", arcname="cifar10")
    return tar


def _run(tar, out, budget, reserve, **extra):
    env = {
        **os.environ,
        "OUT": str(out),
        "CAMPAIGN_PYTHON": sys.executable,
        "CAMPAIGN_DEVICE": "cpu",
        "CAMPAIGN_SMOKE": "1",
        "CAMPAIGN_DATA_TAR": str(tar),
        "CAMPAIGN_BUDGET_S": str(budget),
        "CAMPAIGN_RESERVE_S": str(reserve),
        "CAMPAIGN_JOBS": "2",
        "CAMPAIGN_SEEDS": "0,1",
        "CAMPAIGN_EPOCHS": "1",
        "CAMPAIGN_ONLY": "conv",
        "CAMPAIGN_COST_FILTER": "cpu and conv-",
        "OMP_NUM_THREADS": "1",
        **extra,
    }
    env.pop("BENCH_DATA_ROOT", None)
    # the budget is the script's own cap; the subprocess timeout is only a hang guard, far above it, so a busy
    # machine cannot turn these tests red (no assertion on wall-clock time)
    proc = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget + 600
    )
    return proc


def _suite_protocol() -> dict:
    from bench.spec.suite import load_suite

    return load_suite(Path(__file__).resolve().parents[2] / "suites" / "fast-cifar-v2.yaml").protocol


def _members(archive: Path) -> dict:
    with tarfile.open(archive) as t:
        return {m.name: (t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}


def test_campaign_smoke_fast_suite_packed(fake_cifar_tar, tmp_path):
    """The fast suite on the whole (fake) data set, 2 runs packed with --jobs 2, records in the one archive."""
    out = tmp_path / "out"
    proc = _run(fake_cifar_tar, out, budget=900, reserve=4, CAMPAIGN_STEPS="fast-cifar")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu-campaign-summary.txt", "gpu-campaign.tar.gz"]  # ≤ 8 files come back from $OUT
    m = _members(out / "gpu-campaign.tar.gz")
    env = json.loads(m["campaign/env/python.json"])
    assert env["torch"] and env["cuda_available"] in (True, False)
    records = [
        json.loads(v)
        for k, v in m.items()
        if k.startswith("campaign/results/fast-cifar-v2/") and k.endswith(".json") and "/." not in k
    ]
    assert sorted((r["label"], r["spec"]["seed"]) for r in records) == [("conv", 0), ("conv", 1)], proc.stdout[-3000:]
    for r in records:
        assert r["status"] == "ok", r.get("error")
        suite = _suite_protocol()  # protocol v2 as the suite declares it
        for key in ("lookahead", "tta", "precision", "channels_last", "optimizer", "schedule"):
            assert r["spec"]["protocol"][key] == suite[key], key
        assert r["spec"]["backbone"]["name"] == "whitened-vgg"
        assert r["data"]["train"] == 30 and r["data"]["test"] == 20  # the whole (fake) data set
        assert r["invocation"]["jobs"] == 2
    summary = (out / "gpu-campaign-summary.txt").read_text()
    assert "records: 2" in summary and "fast-cifar\t0" in summary


def test_campaign_smoke_benchmarks(fake_cifar_tar, tmp_path):
    """Harness overhead, layer cost (+ summary) and deconv-vs-BN, each writing its JSON into the archive."""
    out = tmp_path / "out"
    proc = _run(fake_cifar_tar, out, budget=900, reserve=4, CAMPAIGN_STEPS="benchmarks")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = _members(out / "gpu-campaign.tar.gz")
    for name in ("harness_overhead", "deconv_vs_bn", "layer_cost"):
        assert f"campaign/benchmarks/{name}.json" in m, proc.stdout[-3000:]
        assert json.loads(m[f"campaign/benchmarks/{name}.json"])["rows"], name
    assert not any("/results/fast-cifar" in k and k.endswith(".json") for k in m)


def test_campaign_budget_guard_stops_cleanly(fake_cifar_tar, tmp_path):
    """With a budget that cannot hold the suite, it is stopped (or skipped) and the archive is still written."""
    out = tmp_path / "out"
    # a budget no machine can hold the suite in (its reserve leaves 1 s): stopped or skipped, whatever the speed
    proc = _run(
        fake_cifar_tar,
        out,
        budget=5,
        reserve=4,
        CAMPAIGN_STEPS="fast-cifar",
        CAMPAIGN_ONLY="conv,sep-chans,pnn",
        CAMPAIGN_SEEDS="0,1,2",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = _members(out / "gpu-campaign.tar.gz")
    steps = dict(line.split("\t")[:2] for line in m["campaign/steps.tsv"].decode().splitlines())
    assert steps["fast-cifar"] in ("skipped", "124", "137"), steps
    assert "campaign/env/python.json" in m
