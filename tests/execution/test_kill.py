"""Killing the harness at any moment (SIGKILL) loses at most the run in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # SIGKILLs a `bench run` subprocess: left out of `pytest -m "not slow"`

SUITE = """
name: killme
task: classification
dataset: digits
protocol: {epochs: 3, batch_size: 64, augment: [], train_subset: 512, test_subset: 128}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, sep-full, sep-chans, sep-space, pnn]
seeds: [0]
"""


def test_sigkill_mid_suite_keeps_completed_records_and_rerun_redoes_only_missing(tmp_path):
    suite = tmp_path / "killme.yaml"
    suite.write_text(SUITE)
    results = tmp_path / "results"
    out_dir = results / "killme"
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
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if out_dir.exists() and len(list(out_dir.glob("*.json"))) >= 2:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the suite finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = sorted(out_dir.glob("*.json"))
    assert 2 <= len(done) < 5
    for f in done:  # every visible record is complete, valid JSON
        rec = json.loads(f.read_text())
        assert rec["status"] == "ok" and rec["id"] in f.name
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{5 - len(done)} ran, {len(done)} already done, 0 failed" in rerun.stdout
    assert len(list(out_dir.glob("*.json"))) == 5
    # the records that survived the kill were not rewritten
    assert all(f.exists() for f in done)
