"""A fresh run checked against the committed records (bench/measure/agreement.py, bench run --compare-with)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.measure.agreement import MIN_BAND, compare, format_table
from bench.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _rec(rid, top1, device="CPU: X (1 threads)", threads=1, seed=0, label="conv", status="ok"):
    return {
        "id": rid,
        "label": label,
        "status": status,
        "metrics": {"top1": top1} if top1 is not None else {},
        "spec": {"seed": seed, "backbone": {"name": "b"}, "overrides": {}},
        "env": {"device": device, "cpu_threads": threads, "torch": "2.x"},
    }


def test_same_device_class_must_be_bitwise_equal():
    rows = compare([_rec("a", 91.25), _rec("b", 90.0)], [_rec("a", 91.25), _rec("b", 90.01)])
    assert [r["agree"] for r in rows] == [True, False]
    assert rows[0]["expect"] == "bitwise" and "same device class" in rows[1]["why"]


def test_another_device_is_judged_by_the_seed_noise_band():
    committed = [_rec("a", 90.0, seed=0), _rec("c", 94.0, seed=1)]  # seeds of one row: std 2.83 → band 5.66
    rows = compare([_rec("a", 95.0, device="cuda: H200"), _rec("a", 84.0, device="cuda: H200")], committed)
    assert rows[0]["agree"] is True and rows[1]["agree"] is False
    lone = compare([_rec("x", 90.0 + MIN_BAND + 0.1, threads=2)], [_rec("x", 90.0)])
    assert lone[0]["agree"] is False and lone[0]["expect"] == f"±{MIN_BAND:.2f}"


def test_missing_or_failed_runs_are_said_not_agreed():
    rows = compare([_rec("new", 90.0), _rec("bad", None, status="failed")], [_rec("bad", 90.0)])
    assert rows[0]["agree"] is None and "no committed record" in rows[0]["why"]
    assert rows[1]["agree"] is False
    assert "0 of 1 compared runs agree" in format_table(rows)


def test_run_with_compare_with_trains_afresh_and_prints_the_agreement(tmp_path, capsys):
    committed = tmp_path / "committed"
    code = main(
        [
            "run",
            str(ROOT / "suites" / "quick.yaml"),
            "--only",
            "conv",
            "--results",
            str(committed),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--epochs",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    capsys.readouterr()
    fresh = tmp_path / "fresh"
    code = main(
        [
            "run",
            str(ROOT / "suites" / "quick.yaml"),
            "--only",
            "conv",
            "--results",
            str(fresh),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--epochs",
            "1",
            "--no-progress",
            "--compare-with",
            str(committed),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "1 ran" in out  # the fresh folder trains, whatever is committed
    assert "bitwise  yes" in out and "1 of 1 compared runs agree" in out
    shutil.rmtree(fresh)
