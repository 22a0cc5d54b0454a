"""A family added in one file reaches the main path: `tox -e bench-cifar` (suites/cifar.yaml, `layers: all`)
runs it, `bench report --layers FILE` renders a suite that uses it, and `bench run --force` says whose records
it replaces. The README's example family is the one file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.zoo.layers import LAYERS
from bench.records.records import record_path
from bench.spec.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@pytest.fixture()
def family_file(tmp_path):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    path = tmp_path / "my_layer.py"
    path.write_text(code)
    yield path
    if "half-frozen" in LAYERS:
        LAYERS.unregister("half-frozen")


def test_cifar_suite_runs_every_family_and_keeps_its_rows():
    suite = load_suite(ROOT / "suites" / "cifar.yaml")
    assert [l["name"] for l in suite.layers] == LAYERS.names()
    rows = {l["label"]: l for l in suite.layers}
    assert rows["pnn"]["options"]["fanout"] == 1 and rows["pnn"]["options"]["noise_level"] == 0.1
    assert rows["lbcnn"]["options"]["sparsity"] == 0.5 and rows["lbcnn"]["options"]["order"] == "paper"
    # the committed records of the earlier explicit rows keep their run ids
    committed = {json.loads(p.read_text())["id"] for p in (ROOT / "results" / "cifar").glob("*.json")}
    tier = next(t for t in suite.tiers if t["name"] == "cpu-3ep")["overrides"]
    ids = {s.id for s in suite.expand(tier)}
    assert committed and committed <= ids


def test_a_family_in_one_file_appears_in_the_cifar_dry_run(family_file, tmp_path, capsys):
    assert (
        main(
            [
                "run",
                str(ROOT / "suites" / "cifar.yaml"),
                "--layers",
                str(family_file),
                "--dry-run",
                "--results",
                str(tmp_path / "results"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "resnet18/half-frozen/seed 0" in out and "preact-resnet/half-frozen/seed 2" in out
    assert "resnet18/conv/seed 0" in out


def test_layer_options_need_layers_all(tmp_path):
    text = (
        (ROOT / "suites" / "quick.yaml").read_text().replace("layers: all", "layers: [conv]\nlayer_options: {pnn: {}}")
    )
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(Exception, match=r"s\.yaml.*layer_options"):
        load_suite(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text(
        (ROOT / "suites" / "quick.yaml").read_text().replace("layers: all", "layers: all\nlayer_options: {nope: {}}")
    )
    with pytest.raises(Exception, match=r"layer_options\.nope.*unknown layer family"):
        load_suite(tmp_path / "s.yaml")


PLUGIN_SUITE = """\
name: plugin
task: classification
dataset: digits
protocol: {name: tiny, epochs: 1}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, half-frozen]
references:
  - {row: half-frozen, metric: top1, value: 90.0, document: mine, where: Table 1, setting: mine}
"""


@pytest.mark.slow
def test_report_with_layers_renders_a_suite_using_a_plugin_family(family_file, tmp_path):
    suites, results = tmp_path / "suites", tmp_path / "results"
    suites.mkdir()
    results.mkdir()
    (suites / "plugin.yaml").write_text(PLUGIN_SUITE)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "bench.cli", "report", "--results", str(results), "--suites", str(suites)]
    without = subprocess.run(cmd + ["--site", str(tmp_path / "a")], capture_output=True, text=True, env=env)
    assert without.returncode == 0 and "half-frozen" in without.stderr  # skipped, and said so
    assert not (tmp_path / "a" / "suite-plugin.html").exists()
    with_layers = subprocess.run(
        cmd + ["--site", str(tmp_path / "b"), "--layers", str(family_file)], capture_output=True, text=True, env=env
    )
    assert with_layers.returncode == 0, with_layers.stderr
    assert "skipped" not in with_layers.stderr
    page = (tmp_path / "b" / "suite-plugin.html").read_text()
    assert "half-frozen" in page and "90.00" in page


def _write_record(results, spec, suite, device, **extra):
    """A complete record of ``spec`` measured on ``device``: one missing its schema, suite, spec or label is not
    trusted and counts as missing."""
    path = record_path(results, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {
        "schema": 1,
        "id": spec.id,
        "status": "ok",
        "suite": {"name": suite.name},
        "spec": spec.to_dict(),
        "label": spec.label,
        "env": {"device": device},
        **extra,
    }
    path.write_text(json.dumps(rec))


def test_force_says_whose_records_it_replaces(tmp_path, capsys):
    suite = load_suite(ROOT / "suites" / "quick.yaml")
    spec = suite.expand()[0]
    _write_record(tmp_path, spec, suite, "CPU: AMD EPYC (2 threads)", finished="2025-03-04T05:06:07")
    assert main(["run", str(ROOT / "suites" / "quick.yaml"), "--results", str(tmp_path), "--force", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--force replaces 1 existing record(s)" in out
    assert "1 from CPU: AMD EPYC (2 threads), 2025-03-04" in out


@pytest.mark.parametrize("same_device", [False, True])
def test_run_says_which_skipped_records_another_device_measured(tmp_path, capsys, same_device):
    import torch

    from bench.measure.measure import device_name

    suite = load_suite(ROOT / "suites" / "quick.yaml")
    spec = suite.expand()[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the device name holds the thread count, and `--threads 1` sets it
    try:
        here = device_name(torch.device("cpu"))
        _write_record(tmp_path, spec, suite, here if same_device else "NVIDIA H200", metrics={"top1": 50.0})
        argv = ["run", str(ROOT / "suites" / "quick.yaml"), "--results", str(tmp_path), "--device", "cpu"]
        argv += ["--only", spec.label, "--backbone", spec.backbone["name"], "--seeds", str(spec.seed)]
        assert main(argv + ["--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr()
    assert "0 ran, 1 already done" in out.out  # skipped either way: the record is kept, nothing is lost
    if same_device:
        assert "another device" not in out.err
    else:
        assert "note: 1 run(s) are skipped" in out.err
        assert "(1 on NVIDIA H200), not on " + here in out.err
        assert "--results DIR" in out.err and "--force" in out.err
