"""``bench run --jobs N``: runs packed into N worker processes give the records a serial run gives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cli import main
from bench.jobs import threads_per_job

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--only", "conv", "--only", "sep-chans", "--seeds", "0,1", "--epochs", "2", "--max-batches", "2",
         "--train-subset", "128", "--test-subset", "64", "--no-progress", "--device", "cpu"]


def test_threads_are_divided():
    assert threads_per_job(2, 2) == 1
    assert threads_per_job(16, 4) == 4
    assert threads_per_job(16, 3) == 5
    assert threads_per_job(1, 4) == 1  # never zero


def _records(folder: Path) -> dict:
    out = {}
    for p in folder.glob("quick/*.json"):
        r = json.loads(p.read_text())
        out[p.name] = r
    return out


def test_jobs_records_match_serial_records(tmp_path):
    serial, packed = tmp_path / "serial", tmp_path / "packed"
    # serial at 1 thread per run: what each of the 2 workers gets out of 2 threads
    assert main(["run", str(ROOT / "suites" / "quick.yaml"), *FLAGS, "--threads", "1", "--results", str(serial)]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", str(ROOT / "suites" / "quick.yaml"), *FLAGS,
                           "--threads", "2", "--jobs", "2", "--results", str(packed)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 runs in 2 processes, 1 CPU thread(s) each" in proc.stdout
    a, b = _records(serial), _records(packed)
    assert len(a) == 4 and sorted(a) == sorted(b)  # same run ids (file names end in the id)
    for name in a:
        ra, rb = a[name], b[name]
        assert rb["status"] == "ok" == ra["status"]
        assert rb["metrics"] == ra["metrics"], name
        assert [h["train_loss"] for h in rb["history"]] == [h["train_loss"] for h in ra["history"]]
        assert rb["env"]["cpu_threads"] == 1
        assert rb["invocation"]["jobs"] == 2 and "jobs" not in ra["invocation"]
    # a second packed run skips everything (the runner's skip path is used by the workers' parent)
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", str(ROOT / "suites" / "quick.yaml"), *FLAGS,
                           "--jobs", "2", "--results", str(packed)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and "0 ran, 4 already done" in proc.stdout


def test_jobs_must_be_positive(tmp_path, capsys):
    assert main(["run", str(ROOT / "suites" / "quick.yaml"), "--jobs", "0", "--results", str(tmp_path)]) == 2
    assert "--jobs" in capsys.readouterr().err
