"""Many runners, one results store: shards, concurrent processes and Ray workers on one results folder make
exactly the serial run's records (same ids, same metrics on CPU), each run trained once; a lock whose holder was
killed is taken over; stale temporary files are cleaned."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.execution.executors import parse_shard, shard
from bench.execution.locks import RunLock, clean_stale_tmp
from bench.spec.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "docs" / "many-runners.md"
ROWS = ["conv", "sep-full", "sep-chans", "sep-space", "pnn", "lbcnn"]
FLAGS = [
    "--epochs",
    "1",
    "--max-batches",
    "1",
    "--train-subset",
    "64",
    "--test-subset",
    "32",
    "--no-progress",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--seeds",
    "0,1",
] + [a for r in ROWS for a in ("--only", r)]
N_RUNS = 2 * len(ROWS)


def records(results: Path) -> dict[str, dict]:
    out = {}
    for p in (results / "quick").glob("*.json"):
        rec = json.loads(p.read_text())
        out[rec["id"]] = rec
    return out


def same_results(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b)
    for rid in a:
        assert a[rid]["status"] == b[rid]["status"] == "ok", (a[rid].get("error"), b[rid].get("error"))
        assert a[rid]["metrics"] == b[rid]["metrics"], a[rid]["label"]
        assert a[rid]["history"][-1]["train_loss"] == b[rid]["history"][-1]["train_loss"]


def readme_runs() -> list[str]:
    """The `bench run` lines of docs/many-runners.md."""
    section = README.read_text().split("\n# Many runners\n", 1)[1]
    return re.findall(r"^bench run .*$", section, re.M)


def readme_argv(line: str, suite: Path, results: Path, **replace: str) -> list[str]:
    """A README example as argv for ``main``: this suite and results folder, CPU-sized (FLAGS), ``replace``
    giving new values for flags (``gpus_per_run="0"``: no GPU here)."""
    argv = shlex.split(os.path.expandvars(line))[1:]
    assert argv[0] == "run" and argv[1].startswith("suites/")
    argv[1] = str(suite)
    repl = {"--results": str(results), **{"--" + k.replace("_", "-"): v for k, v in replace.items()}}
    for flag, value in repl.items():
        assert flag in argv, (flag, line)
        argv[argv.index(flag) + 1] = value
    return argv + FLAGS


def test_readme_examples_parse():
    from bench.cli import build_parser

    lines = readme_runs()
    assert any("--executor ray" in x for x in lines) and any("--shard $SLURM_ARRAY_TASK_ID" in x for x in lines)
    for line in lines:
        build_parser().parse_args(shlex.split(line)[1:])


def ran(stdout: str) -> int:
    m = re.search(r"suite quick: (\d+) ran, (\d+) already done", stdout)
    assert m, stdout[-2000:]
    return int(m[1])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("many")
    suites = tmp / "suites"
    suites.mkdir()
    shutil.copy(ROOT / "suites" / "quick.yaml", suites / "quick.yaml")
    return tmp, suites / "quick.yaml"


@pytest.fixture(scope="module")
def serial(workspace):
    tmp, suite = workspace
    results = tmp / "serial"
    assert main(["run", str(suite), "--results", str(results), *FLAGS]) == 0
    recs = records(results)
    assert len(recs) == N_RUNS
    return recs


def test_shards_split_deterministically_and_cover_every_run(workspace):
    _, suite_file = workspace
    specs = load_suite(suite_file).expand(seeds=[0, 1, 2])
    for n in (1, 2, 3, 7):
        shares = [shard(specs, i, n) for i in range(n)]
        ids = [s.id for share in shares for s in share]
        assert sorted(ids) == sorted(s.id for s in specs)  # disjoint, and together everything
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
        assert [s.id for s in shard(list(reversed(specs)), 0, n)] == [s.id for s in reversed(shares[0])]
    assert parse_shard("1/4") == (1, 4)


def test_two_shards_make_the_serial_records(workspace, serial, capsys):
    tmp, suite = workspace
    results = tmp / "shards"
    counts = []
    (slurm,) = [x for x in readme_runs() if "--shard" in x]  # the README's Slurm array line, as task i of 2
    for i in range(2):
        os.environ.update(SLURM_ARRAY_TASK_ID=str(i), SLURM_ARRAY_TASK_COUNT="2")
        try:
            argv = readme_argv(slurm, suite, results)
        finally:
            del os.environ["SLURM_ARRAY_TASK_ID"], os.environ["SLURM_ARRAY_TASK_COUNT"]
        assert f"{i}/2" in argv
        assert main(argv) == 0
        counts.append(ran(capsys.readouterr().out))
    assert sum(counts) == N_RUNS and min(counts) >= N_RUNS // 2 - 1
    got = records(results)
    same_results(got, serial)
    by_shard = {r["provenance"]["shard"] for r in got.values()}
    assert by_shard == {"0/2", "1/2"}


@pytest.mark.slow
def test_two_concurrent_processes_train_each_run_once(workspace, serial):
    tmp, suite = workspace
    results = tmp / "concurrent"
    cmd = [sys.executable, "-m", "bench.cli", "run", str(suite), "--results", str(results), *FLAGS]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    counts = [ran(out) for out, _ in outs]
    got = records(results)
    same_results(got, serial)
    # each run trained once: the two processes' "ran" add up to the suite, and every record names one of them
    assert sum(counts) == N_RUNS, counts
    pids = {p.pid for p in procs}
    trained_by = [r["provenance"]["pid"] for r in got.values()]
    assert set(trained_by) <= pids
    assert sorted(trained_by.count(pid) for pid in pids) == sorted(counts)
    assert min(counts) >= 1, "the two processes did not overlap: nothing was shared"


KILL_SUITE = """
name: takeover
task: classification
dataset: digits
protocol: {epochs: 30, batch_size: 64, augment: [], train_subset: 512, test_subset: 64}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv]
seeds: [0]
"""


@pytest.mark.slow
def test_sigkill_leaves_a_lock_that_the_next_process_takes_over(tmp_path, capsys):
    suite = tmp_path / "takeover.yaml"
    suite.write_text(KILL_SUITE)
    results = tmp_path / "results"
    (spec,) = load_suite(suite).expand()
    lock = RunLock(results, spec.suite, spec.id)
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
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (lock.holder() or {}).get("pid") == proc.pid:
                break
            time.sleep(0.05)
        assert proc.poll() is None and lock.holder()["pid"] == proc.pid, "never took the lock"
        assert not lock.acquire(blocking=False)  # held by the live process
        time.sleep(0.3)  # mid-run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # what a kill -9 during the record's atomic write leaves behind
    tmp = results / "takeover" / f".{spec.filename}.k1ll3d.tmp"
    tmp.write_text('{"partial": ')
    assert lock.path.exists() and lock.holder()["pid"] == proc.pid  # the lock file outlives its holder
    assert not list((results / "takeover").glob("*.json"))
    # the next process takes the dead holder's lock at once (the kernel released it) and trains the run
    rc = main(["run", str(suite), "--results", str(results), "--no-progress", "--device", "cpu", "--threads", "1"])
    assert rc == 0
    assert "1 ran, 0 already done, 0 failed" in capsys.readouterr().out
    assert not tmp.exists()  # stale temporary file removed
    rec = json.loads((results / "takeover" / spec.filename).read_text())
    assert rec["status"] == "ok" and rec["provenance"]["pid"] == os.getpid()
    assert lock.holder()["pid"] == os.getpid() and lock.acquire(blocking=False)  # and released it
    lock.release()


def test_runs_held_elsewhere_are_reported_or_waited_for(workspace, serial, capsys):
    tmp, suite = workspace
    results = tmp / "held"
    specs = load_suite(suite).expand(
        {"epochs": 1, "max_batches": 1, "train_subset": 64, "test_subset": 32}, seeds=[0, 1]
    )
    held = next(s for s in specs if s.label == "pnn" and s.seed == 1)
    lock = RunLock(results, held.suite, held.id)
    assert lock.acquire(blocking=False)  # "another runner" (this test) is training it
    try:
        assert main(["run", str(suite), "--results", str(results), *FLAGS, "--no-wait"]) == 0
        out = capsys.readouterr().out
        assert f"{N_RUNS - 1} ran" in out and "1 running elsewhere" in out
        assert f"pid {os.getpid()}" in out  # says who holds it
        assert held.id not in records(results)
    finally:
        lock.release()
    assert main(["run", str(suite), "--results", str(results), *FLAGS]) == 0
    assert "1 ran" in capsys.readouterr().out
    same_results(records(results), serial)


def test_stale_temporary_files_are_cleaned_unless_a_live_lock_covers_them(tmp_path):
    folder = tmp_path / "results" / "s"
    folder.mkdir(parents=True)
    a, b, c = "a" * 16, "b" * 16, "c" * 16
    free = folder / f".x--{a}.json.r1.tmp"  # nobody holds a's lock: a leftover of a killed writer
    live = folder / f".x--{b}.json.r2.tmp"  # b's lock is held: a writer is at work
    old = folder / f".x--{c}.json.r3.tmp"  # c's lock is held and the file is two hours old: a stalled
    other = folder / ".unrelated.tmp"  # writer, still alive (issue 19: age says nothing)
    for p in (free, live, old, other):
        p.write_text("{")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    locks = [RunLock(tmp_path / "results", "s", x) for x in (b, c)]
    assert all(lk.acquire() for lk in locks)
    try:
        removed = clean_stale_tmp(tmp_path / "results", "s")
    finally:
        for lk in locks:
            lk.release()
    assert removed == [free]
    assert live.exists() and old.exists() and other.exists()


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
@pytest.mark.slow
def test_ray_local_cluster_with_two_workers_makes_the_serial_records(workspace, serial, capsys):
    pytest.importorskip("ray")
    tmp, suite = workspace
    results = tmp / "ray"
    line = next(x for x in readme_runs() if "--executor ray" in x and "--address" not in x)
    # the README's one-machine Ray example on a local cluster of 2 CPU workers (no GPU here)
    rc = main(readme_argv(line, suite, results, gpus_per_run="0") + ["--ray-cpus", "2", "--cpus-per-run", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert ran(out) == N_RUNS
    got = records(results)
    same_results(got, serial)
    pids = {r["provenance"]["pid"] for r in got.values()}
    assert all(r["provenance"]["executor"] == "ray" for r in got.values())
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # trained in (at most) two Ray workers


DYING_LAYERS = '''
import os
import signal
from pathlib import Path

from bench.zoo.layers import LAYERS
from bench.zoo.layers.conv import conv

MARK = Path(os.environ["BENCH_TEST_MARKS"])


def _die_unless_marked(name):
    mark = MARK / name
    if not mark.exists():
        if name == "once":
            mark.touch()
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-run, as on a lost machine


@LAYERS.register("dies-once", document="test", section="-", fixed="-", learned="-", learned_params=None)
def dies_once(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False):
    """Kills its process the first time it is built."""
    _die_unless_marked("once")
    return conv(in_channels, out_channels, kernel_size, stride, padding, bias)


@LAYERS.register("dies-always", document="test", section="-", fixed="-", learned="-", learned_params=None)
def dies_always(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False):
    """Kills its process every time it is built."""
    _die_unless_marked("always")
    return conv(in_channels, out_channels, kernel_size, stride, padding, bias)
'''

DYING_SUITE = """
name: dying
task: classification
dataset: digits
protocol: {epochs: 1, batch_size: 32, augment: [], train_subset: 64, test_subset: 32, max_batches: 1}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [dies-once, dies-always]
seeds: [0]
"""


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
@pytest.mark.slow
def test_ray_worker_killed_mid_run_is_retried_then_recorded_failed(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    from bench.zoo.layers import LAYERS

    (tmp_path / "marks").mkdir()
    monkeypatch.setenv("BENCH_TEST_MARKS", str(tmp_path / "marks"))  # Ray workers inherit the environment
    layers = tmp_path / "dying_layers.py"
    layers.write_text(DYING_LAYERS)
    suite = tmp_path / "dying.yaml"
    suite.write_text(DYING_SUITE)
    results = tmp_path / "results"
    try:
        rc = main(
            [
                "run",
                str(suite),
                "--results",
                str(results),
                "--layers",
                str(layers),
                "--no-progress",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--executor",
                "ray",
                "--ray-cpus",
                "2",
                "--gpus-per-run",
                "0",
            ]
        )
    finally:
        for name in ("dies-once", "dies-always"):
            LAYERS.unregister(name)
    out = capsys.readouterr().out
    assert rc == 0, out
    recs = {r["label"]: r for r in records_of(results / "dying")}
    assert set(recs) == {"dies-once", "dies-always"}
    assert recs["dies-once"]["status"] == "ok"  # retried after its worker died
    assert recs["dies-once"]["provenance"]["executor"] == "ray"
    assert recs["dies-always"]["status"] == "failed" and "worker lost" in recs["dies-always"]["error"]
    assert "2 ran, 0 already done, 1 failed" in out


def records_of(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in folder.glob("*.json")]


def test_ray_executor_without_ray_is_one_line_exit_2(workspace, monkeypatch, capsys):
    tmp, suite = workspace
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    rc = main(["run", str(suite), "--results", str(tmp / "noray"), *FLAGS, "--executor", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "convbench[ray]" in err[0], err
    assert not list((tmp / "noray").rglob("*.json"))
