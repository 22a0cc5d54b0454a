"""Bad input stays bad input: one line naming the file and field, exit code 2, nothing written anywhere; Ctrl-C
ends with one line and exit code 130, keeping finished records and no partial one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main

GOOD = """
name: bad
task: classification
dataset: digits
protocol: {epochs: 1, batch_size: 32, augment: [], train_subset: 64, test_subset: 32, max_batches: 1}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, {name: pnn, options: {noise_level: 0.1}, label: pnn-l}]
seeds: [0]
"""


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize(
    "old,new,field,message",
    [
        (
            "layers: [conv, {name: pnn, options: {noise_level: 0.1}, label: pnn-l}]",
            "layers: []",
            "layers",
            "at least one layer row",
        ),
        ("epochs: 1,", "epochs: 1000000000000,", "protocol.epochs", "at most 10000"),
        ("seeds: [0]", "seeds: [-1]", "seeds[0]", "non-negative"),
        ("noise_level: 0.1", "noise_level: lots", "layers[1].options.noise_level", "expected number"),
        ("noise_level: 0.1", "noise_level: -1.0", "layers[1].options.noise_level", "non-negative"),
        ("options: {n: 1}", "options: {n: 1, width: -4}", "backbones[0].options.width", "must be positive"),
        ("options: {n: 1}", "options: {n: two}", "backbones[0].options.n", "expected integer"),
        (
            "dataset: digits",
            "dataset: {name: digits, options: {test_fraction: 2.0}}",
            "dataset.options.test_fraction",
            "[0, 1]",
        ),
        (
            "dataset: digits",
            "dataset: {name: digits, options: {test_fraction: half}}",
            "dataset.options.test_fraction",
            "expected number",
        ),
        (
            "task: classification",
            "task: {name: classification, options: {timing_repeats: 0}}",
            "task.options.timing_repeats",
            "must be positive",
        ),
        ("name: bad", "name: ../escape", "name", "not a safe name"),
        ("name: bad", "name: /abs/path", "name", "not a safe name"),
        ("label: pnn-l", "label: ../../pnn", "layers[1].label", "not a safe name"),
    ],
)
def test_bad_suite_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, old, new, field, message):
    assert old in GOOD
    suite = tmp_path / "suites" / "bad.yaml"
    suite.parent.mkdir()
    suite.write_text(GOOD.replace(old, new))
    results = tmp_path / "results"
    before = files_under(tmp_path)
    rc = main(["run", str(suite), "--results", str(results), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{suite}: {field}: " in lines[0] and message in lines[0], lines[0]
    assert files_under(tmp_path) == before  # nothing written, not even an empty results folder


def test_unsafe_file_name_needs_a_name(tmp_path, capsys):
    suite = tmp_path / "my suite.yaml"
    suite.write_text(GOOD.replace("name: bad\n", ""))
    assert main(["run", str(suite), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    assert "name: 'my suite' is not a safe name" in capsys.readouterr().err


def test_display_keeps_a_free_text_title_while_the_label_names_files(tmp_path, capsys):
    from bench.spec.suite import load_suite

    suite = tmp_path / "ok.yaml"
    suite.write_text(GOOD.replace("label: pnn-l}", "label: pnn-l, display: 'PNN (noise 0.1) / §3'}"))
    s = load_suite(suite)
    assert s.layers[1]["display"] == "PNN (noise 0.1) / §3" and "display" not in s.layers[0]
    # a row without a display keeps the run id it had before the field existed
    plain = load_suite(_write(tmp_path / "plain.yaml", GOOD))
    assert [x.id for x in s.expand()][0] == [x.id for x in plain.expand()][0]


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "flags,field",
    [
        (["--seeds", "-1"], "--seeds"),
        (["--epochs", "1000000000000"], "--epochs"),
        (["--shard", "2/2"], "--shard"),
        (["--shard", "one of two"], "--shard"),
    ],
)
def test_bad_flags_exit_2(tmp_path, capsys, flags, field):
    suite = _write(tmp_path / "bad.yaml", GOOD)
    rc = main(["run", str(suite), "--results", str(tmp_path / "results"), "--no-progress", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and field in err[0], err
    assert not (tmp_path / "results").exists()


def test_report_on_a_missing_results_folder_is_an_error(tmp_path, capsys):
    rc = main(["report", "--results", str(tmp_path / "typo"), "--site", str(tmp_path / "site")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--results" in err[0] and "typo" in err[0]
    assert not (tmp_path / "site").exists()


INTERRUPT_SUITE = """
name: ctrlc
task: classification
dataset: digits
protocol: {epochs: 2, batch_size: 64, augment: [], train_subset: 512, test_subset: 128}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, sep-full, sep-chans, sep-space, pnn, lbcnn]
seeds: [0]
"""


@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_keeping_finished_records(tmp_path):
    suite = _write(tmp_path / "ctrlc.yaml", INTERRUPT_SUITE)
    results = tmp_path / "results"
    out = results / "ctrlc"
    cmd = [
        sys.executable,
        "-m",
        "bench.cli",
        "run",
        str(suite),
        "--results",
        str(results),
        "--no-progress",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # SIGINT back to its default in the child: a test runner started in the background by a non-interactive
    # shell inherits it ignored, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and len(list(out.glob("*.json"))) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "finished before it could be interrupted"
        time.sleep(0.3)  # inside the next run
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], err[-2000:]
    records = sorted(out.glob("*.json"))
    assert 1 <= len(records) < 6
    for f in records:
        assert json.loads(f.read_text())["status"] == "ok"
    assert not list(out.glob(".*.tmp"))  # no partial record
