"""Every operating-system error is one line naming the path and the cause, exit 2, nothing partial left
(issue 19, item 7). In-process, with the run itself faked (no training): the faults are in the results folder."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest
import torch

import bench.execution.runner
from bench.cli import main
from bench.execution.executors import failed_record
from bench.spec.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
QUICK = str(ROOT / "suites" / "quick.yaml")
FLAGS = ["--only", "conv", "--epochs", "1", "--no-progress", "--device", "cpu", "--threads", "1"]


@pytest.fixture
def spec():
    suite = load_suite(QUICK)
    suite.layers = [r for r in suite.layers if r["label"] == "conv"]
    (s,) = suite.expand({"epochs": 1})
    return s


@pytest.fixture
def fake_run(monkeypatch):
    calls = []

    def execute(spec_, ctx, suite_):
        calls.append(spec_.id)
        return failed_record(spec_, suite_, torch.device("cpu"), "fake run")

    monkeypatch.setattr(bench.execution.runner, "execute", execute)
    return calls


def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("bench: error: "), err
    for n in needles:
        assert n in err, err
    return err


def _no_tmp(folder: Path):
    assert not [p for p in folder.rglob("*.tmp")] if folder.is_dir() else True


def _full_disk(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


FAULTS = {
    # name: (set-up(results, spec, monkeypatch), what the line says, whether the (fake) run may have started)
    "results is a file": (lambda r, s, m: r.write_text("x"), "Not a directory", False),
    ".locks is a file": (
        lambda r, s, m: (r / s.suite).mkdir(parents=True) or (r / s.suite / ".locks").write_text(""),
        "File exists",
        False,
    ),
    "a .lock is a folder": (
        lambda r, s, m: (r / s.suite / ".locks" / f"{s.id}.lock").mkdir(parents=True),
        "Is a directory",
        False,
    ),
    "record path is a folder": (
        lambda r, s, m: (r / s.suite / s.filename).mkdir(parents=True),
        "is a folder, not a record file",
        False,
    ),
    "full disk": (lambda r, s, m: m.setattr(os, "fsync", _full_disk), "No space left on device", True),
    "read-only results": (
        lambda r, s, m: m.setattr(
            tempfile,
            "mkstemp",
            lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, os.strerror(errno.EROFS), k.get("dir"))),
        ),
        "Read-only file system",
        True,
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_results_folder_faults_are_one_line_exit_2(tmp_path, spec, fake_run, monkeypatch, capsys, fault):
    results = tmp_path / "results"
    setup, says, may_run = FAULTS[fault]
    setup(results, spec, monkeypatch)
    rc = main(["run", QUICK, *FLAGS, "--results", str(results)])
    assert rc == 2  # was: exit 1 and a traceback
    _one_line(capsys, says, str(results))
    assert bool(fake_run) == may_run  # a record that could never be written is found before the run trains
    _no_tmp(results)
    if results.is_dir() and fault not in ("record path is a folder",):
        assert not list((results / spec.suite).glob("*.json")) if (results / spec.suite).is_dir() else True


def test_full_disk_inside_a_run_stops_the_suite_instead_of_a_failed_record(tmp_path, monkeypatch, capsys):
    def task(spec_, ctx, **options):  # a task whose artifact write hits a full disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "results" / "artifact.png"))

    from types import SimpleNamespace

    from bench.execution import execute as ex

    monkeypatch.setattr(ex, "TASKS", SimpleNamespace(get=lambda name: SimpleNamespace(obj=task)))
    results = tmp_path / "results"
    assert main(["run", QUICK, *FLAGS, "--results", str(results)]) == 2
    _one_line(capsys, "artifact.png: No space left on device")
    assert not list(results.glob("quick/*.json"))  # was: a "failed" record blaming the layer family


def test_download_without_network_is_one_line_exit_2_and_no_record(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "dl.yaml"
    suite.write_text(
        "name: dl\ntask: classification\ndataset: cifar10\nprotocol: {epochs: 1}\n"
        "backbones: [{name: preact-resnet, options: {n: 1}}]\nlayers: [conv]\nseeds: [0]\n"
    )

    def no_network(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("BENCH_ALLOW_DOWNLOAD", "1")  # read when the parser is built
    results = tmp_path / "results"
    rc = main(
        [
            "run",
            str(suite),
            "--results",
            str(results),
            "--data-root",
            str(tmp_path / "data"),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert rc == 2  # was: a failed record and exit 0
    _one_line(capsys, "dl.yaml: dataset:", "'cifar10': download failed", "Name or service not known")
    assert not list(results.glob("dl/*.json"))


def test_report_onto_a_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "results").mkdir()
    site = tmp_path / "site"

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), k.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    rc = main(["report", "--results", str(tmp_path / "results"), "--suites", str(ROOT / "suites"), "--site", str(site)])
    assert rc == 2
    _one_line(capsys, str(site), "Read-only file system")


def test_concurrent_reports_onto_one_site_wait_for_each_other(tmp_path):
    from bench.report.owned import site_lock

    site = tmp_path / "site"
    entered = []

    def other_report():
        with site_lock(site):
            entered.append(1)

    with site_lock(site):
        t = threading.Thread(target=other_report)
        t.start()
        t.join(0.3)
        assert t.is_alive() and not entered  # blocked while this "report" builds (however slow the machine)
    t.join(30)
    assert entered == [1]
    assert not site.exists()  # the lock writes nothing (the site's parent folder is locked, not a file)


def test_an_ascii_terminal_gets_escapes_not_a_traceback(monkeypatch):
    import io
    import sys

    buf = io.BytesIO()
    out = io.TextIOWrapper(buf, encoding="ascii")  # PYTHONIOENCODING=ascii: "§" and "×" cannot be encoded
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["layers"]) == 0  # was: UnicodeEncodeError
    out.flush()
    text = buf.getvalue().decode("ascii")
    assert "conv" in text and "\\xa7" in text
