"""benchmarks/layer_cost_summary.py on a hand-made pytest-benchmark JSON: ratios, geometric means, errors, format."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("layer_cost_summary", ROOT / "benchmarks" / "layer_cost_summary.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


summary = _load()


def _bench(family, mode, median, iqr=0.0, channels=16, size=32, unit=False, error=None, label=None):
    info = {
        "family": family,
        "label": label or family,
        "unit": unit,
        "document": {"conv": "004"}.get(family, "000"),
        "channels": channels,
        "size": size,
        "batch": 32,
        "kernel": 3,
        "mode": mode,
        "device": "cpu",
        "device_name": "CPU: test (1 threads)",
        "threads": 1,
        "torch": "x",
    }
    if error:
        info["error"] = error
    return {
        "name": f"test_layer_cost[{family}-{mode}]",
        "extra_info": info,
        "stats": {"median": median, "iqr": iqr, "rounds": 5, "mean": median},
    }


def _raw(benchmarks):
    return {
        "machine_info": {},
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": "2026-01-02T03:04:05+00:00",
        "version": "5.1.0",
    }


def test_two_families_one_stage(tmp_path):
    raw = _raw(
        [
            _bench("conv", "fwd", 0.004),
            _bench("conv", "fwdbwd", 0.010, iqr=0.001),
            _bench("pnn", "fwd", 0.001),
            _bench("pnn", "fwdbwd", 0.008, iqr=0.002),
        ]
    )
    src = tmp_path / ".raw.json"
    src.write_text(json.dumps(raw))
    out = tmp_path / "bench" / "layer_cost.json"
    assert summary.main([str(src), "--out", str(out), "--note", "shared machine"]) == 0

    data = json.loads(out.read_text())
    for key, typ in (
        ("title", str),
        ("description", str),
        ("device", str),
        ("source", str),
        ("columns", list),
        ("formats", dict),
        ("rows", list),
        ("measured", str),
    ):
        assert isinstance(data[key], typ), key
    assert data["source"] == "benchmarks/test_layer_cost.py"
    assert data["device"] == "CPU: test (1 threads)"
    assert data["measured"] == "2026-01-02T03:04:05+00:00"
    assert "shared machine" in data["description"] and "1 thread" in data["description"]
    for fmt_col, spec in data["formats"].items():
        format(1.5 if spec != "d" else 2, spec)  # every format is a valid Python format spec
    rows = {r["family"]: r for r in data["rows"]}
    assert set(rows) == {"conv", "pnn"} and len(data["rows"]) == 2
    assert all(set(r) <= set(data["columns"]) for r in data["rows"])
    pnn, conv = rows["pnn"], rows["conv"]
    assert pnn["stage"] == "16ch 32×32"
    assert pnn["fwd ms"] == pytest.approx(1.0) and pnn["fwd+bwd ms"] == pytest.approx(8.0)
    assert pnn["fwd / conv"] == pytest.approx(0.25)
    assert pnn["fwd+bwd / conv"] == pytest.approx(0.8)
    assert pnn["fwd+bwd spread"] == pytest.approx(0.25)
    assert conv["fwd / conv"] == pytest.approx(1.0) and conv["fwd+bwd / conv"] == pytest.approx(1.0)
    assert "10%" in pnn["document claim"] and conv["document claim"] is None
    assert pnn["error"] is None

    # the summary file sits next to --out by default
    s = json.loads((out.parent / "layer_cost_summary.json").read_text())
    assert set(s) >= {"title", "description", "device", "source", "columns", "formats", "rows", "measured"}
    srows = {r["family"]: r for r in s["rows"]}
    assert srows["pnn"]["fwd+bwd / conv"] == pytest.approx(0.8) and srows["pnn"]["stages"] == 1
    assert srows["pnn"]["measured here"].startswith("fwd+bwd 0.80× conv: faster")


def test_geometric_mean_over_stages_and_errors():
    benches = []
    for (ch, size), conv_s, fam_s in (((16, 32), 0.010, 0.020), ((32, 16), 0.010, 0.005)):
        for mode in ("fwd", "fwdbwd"):
            benches += [
                _bench("conv", mode, conv_s, channels=ch, size=size),
                _bench("sep-full", mode, fam_s, channels=ch, size=size),
                _bench("sep-chans", mode, fam_s / 2, channels=ch, size=size),
            ]
    benches.append(_bench("lbcnn", "fwd", 0.0, error="ValueError: boom"))
    benches.append(_bench("lbcnn", "fwdbwd", 0.0, error="ValueError: boom"))
    layer, summ = summary.build(_raw(benches))
    srows = {r["family"]: r for r in summ["rows"]}
    # ratios 2.0 and 0.5 -> geometric mean 1.0 (the arithmetic mean would say 1.25)
    assert srows["sep-full"]["fwd+bwd / conv"] == pytest.approx(1.0)
    assert srows["sep-chans"]["fwd+bwd / conv"] == pytest.approx(0.5)
    assert srows["sep-chans"]["stages"] == 2
    assert srows["sep-chans"]["measured here"].startswith("fwd+bwd 0.50× sep-full: cheaper")
    # a family that failed is a row with its error and no numbers, not a crash or a zero-time ratio
    lb = [r for r in layer["rows"] if r["family"] == "lbcnn"]
    assert len(lb) == 1 and lb[0]["error"] == "ValueError: boom"
    assert lb[0]["fwd ms"] is None and lb[0]["fwd+bwd / conv"] is None
    assert srows["lbcnn"]["fwd+bwd / conv"] is None and srows["lbcnn"]["stages"] == 0
    # conv first, then families alphabetically, stages in order
    assert [r["family"] for r in layer["rows"]][:2] == ["conv", "conv"]
    assert [r["stage"] for r in layer["rows"] if r["family"] == "sep-full"] == ["16ch 32×32", "32ch 16×16"]


def test_with_norm_ratio_against_conv_plus_bn():
    benches = [
        _bench("conv", "fwd", 0.004),
        _bench("conv", "fwdbwd", 0.010),
        _bench("conv", "fwd", 0.005, unit=True),
        _bench("conv", "fwdbwd", 0.012, unit=True),
        _bench("deconv", "fwd", 0.004),
        _bench("deconv", "fwdbwd", 0.014),
        _bench("deconv", "fwd", 0.004, unit=True),
        _bench("deconv", "fwdbwd", 0.0144, unit=True),
    ]
    layer, summ = summary.build(_raw(benches))
    d = [r for r in layer["rows"] if r["family"] == "deconv"][0]
    assert d["fwd+bwd / conv"] == pytest.approx(1.4)
    assert d["with norm: fwd+bwd / conv+BN"] == pytest.approx(1.2)
    assert d["with norm: fwd / conv+BN"] == pytest.approx(0.8)
    assert "with norm: fwd+bwd / conv+BN" not in [r for r in layer["rows"] if r["family"] == "conv"][0]
    s = [r for r in summ["rows"] if r["family"] == "deconv"][0]
    assert "1.20×: within" in s["measured here"]


def test_geomean_ignores_missing():
    assert summary.geomean([None, 4.0, 1.0]) == pytest.approx(2.0)
    assert summary.geomean([None]) is None
    assert math.isclose(summary.geomean([3.0]), 3.0)
