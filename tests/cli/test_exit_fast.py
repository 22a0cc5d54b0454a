"""`bench report` ends without the interpreter's teardown (bench.cli.exit_fast), but as a normal exit would: its
output flushed, its exit handlers run, its site complete; every other command exits normally."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import atexit, sys
from pathlib import Path
from bench.cli import exit_fast, main
atexit.register(lambda: Path(sys.argv[1]).write_text("handler ran"))
sys.stdout.write("x" * 100000)  # buffered output that only a flush writes
exit_fast(main(sys.argv[2:]))
"""


def _run(tmp_path, *argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_CACHE=str(tmp_path / "cache"))
    mark = tmp_path / "mark.txt"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(mark), *argv], capture_output=True, text=True, cwd=ROOT, env=env
    )
    return proc, mark


def test_a_report_exits_fast_with_its_handlers_run_and_output_flushed(tmp_path):
    results = tmp_path / "results" / "quick"
    results.mkdir(parents=True)
    for f in sorted((ROOT / "results" / "quick").glob("*.json"))[:2]:
        shutil.copy(f, results / f.name)
    site = tmp_path / "site"
    proc, mark = _run(
        tmp_path, "report", "--results", str(tmp_path / "results"), "--suites", "suites", "--site", str(site)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("x" * 100000) and proc.stdout.rstrip().endswith("pages)")
    assert mark.read_text() == "handler ran"
    assert (site / "index.html").is_file() and (site / ".convbench-site.json").is_file()


def test_a_failing_command_exits_normally_with_its_code(tmp_path):
    proc, mark = _run(tmp_path, "report", "--results", str(tmp_path / "missing"), "--site", str(tmp_path / "s"))
    assert proc.returncode == 2 and "--results" in proc.stderr
    assert mark.read_text() == "handler ran"
