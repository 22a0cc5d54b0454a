"""Flags no suite decides are checked first (issue 19): --threads, --device, --max-failures, --jobs; a closed
output pipe (``bench layers | head``) ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from tests._guard import within
from tests.cli.test_bad_input import GOOD, files_under

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "flags,field,message",
    [
        (["--threads", "-1"], "--threads", "between 1 and"),
        (["--threads", "0"], "--threads", "between 1 and"),
        (["--device", "tpu"], "--device", "unknown device 'tpu'"),
        (["--device", "cuda:x"], "--device", "unknown device"),
        (["--device", "meta"], "--device", "unknown device"),
        (["--max-failures", "0"], "--max-failures", "at least 1"),
        (["--max-failures", "-3"], "--max-failures", "at least 1"),
        (["--jobs", "0"], "--jobs", "must be positive"),
    ],
)
@pytest.mark.parametrize("dry", [True, False])
def test_bad_flag_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, flags, field, message, dry):
    suite = tmp_path / "ok.yaml"
    suite.write_text(GOOD)
    before = files_under(tmp_path)
    rc = main(
        ["run", str(suite), "--results", str(tmp_path / "results"), "--no-progress", *flags]
        + (["--dry-run"] if dry else [])
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"command line: {field}: " in err[0] and message in err[0], err[0]
    assert files_under(tmp_path) == before


def test_a_closed_pipe_ends_quietly():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "layers"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    proc.stdout.close()  # `| head` that has had its lines: closed before bench writes (a pipe buffers 64 kB)
    with within(300, "bench layers"):  # a hang guard on a busy machine, not a speed check
        err = proc.stderr.read().decode()
        proc.wait()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode in (0, 141)
