"""tools/shared_env.py: every tox environment runs in one shared virtualenv, installed once (torch once)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("shared_env", ROOT / "tools" / "shared_env.py")
shared_env = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shared_env)


def project(tmp_path, constraints="torch==1\n"):
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    (root / "constraints.txt").write_text(constraints)
    return root


def test_install_key_follows_metadata_constraints_and_extras(tmp_path):
    root = project(tmp_path)
    key = shared_env.install_key(root, "test")
    assert key == shared_env.install_key(root, "test")
    assert key != shared_env.install_key(root, "test,ray")
    (root / "constraints.txt").write_text("torch==2\n")
    assert key != shared_env.install_key(root, "test")


def test_installs_once_then_reuses(tmp_path, monkeypatch):
    root, env = project(tmp_path), tmp_path / "shared"
    calls = []
    monkeypatch.setattr(
        shared_env.venv,
        "create",
        lambda path, with_pip: (
            (Path(path) / "bin").mkdir(parents=True) or (Path(path) / "bin" / "python").write_text("")
        ),
    )
    monkeypatch.setattr(shared_env.subprocess, "run", lambda cmd, check, cwd: calls.append(cmd))
    shared_env.ensure(env, root, "test", log=lambda m: None)
    assert len(calls) == 1 and calls[0][1:5] == ["-m", "pip", "install", "-q"] and calls[0][-1].endswith("[test]")
    shared_env.ensure(env, root, "test", log=lambda m: None)  # same metadata: nothing reinstalled
    assert len(calls) == 1
    (root / "constraints.txt").write_text("torch==3\n")  # new pins: installed again, into the same env
    shared_env.ensure(env, root, "test", log=lambda m: None)
    assert len(calls) == 2


def test_failed_install_leaves_no_stamp(tmp_path, monkeypatch):
    root, env = project(tmp_path), tmp_path / "shared"
    monkeypatch.setattr(
        shared_env.venv,
        "create",
        lambda path, with_pip: (
            (Path(path) / "bin").mkdir(parents=True) or (Path(path) / "bin" / "python").write_text("")
        ),
    )

    def fail(cmd, check, cwd):
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(shared_env.subprocess, "run", fail)
    try:
        shared_env.ensure(env, root, "test", log=lambda m: None)
    except subprocess.CalledProcessError:
        pass
    assert shared_env.needs_install(env, shared_env.install_key(root, "test"))


def test_every_tox_environment_but_the_gpu_one_goes_through_the_launcher():
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "tox.ini")
    assert cfg["testenv"]["package"].strip() == "skip"
    for name in ("testenv", "testenv:quick", "testenv:bench-cifar", "testenv:bench", "testenv:benchmarks"):
        lines = [ln.strip() for ln in cfg[name]["commands"].strip().splitlines() if ln.strip()]
        assert lines and all(ln.startswith("python {toxinidir}/tools/shared_env.py ") for ln in lines), name
