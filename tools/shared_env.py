"""One virtual environment for every tox environment, so torch is installed once.

tox gives each environment (``quick``, ``py``, ``bench``, ``bench-cifar``, ``benchmarks``) its own folder, and
each would install its own copy of torch and torchvision (about 5.8 GB and several minutes each with the
CUDA build). Here every tox environment is a thin one that installs nothing and runs its commands through
this launcher::

    python bench/shared_env.py PROGRAM [ARGS...]

which makes sure ``$BENCH_SHARED_ENV`` (tox sets ``{toxworkdir}/shared``) holds the project with its test and
ray extras, installed with the pinned versions of ``constraints.txt``, then replaces itself with PROGRAM from
that environment (``bench``, ``pytest``, ``python``). The environment is installed again only when
pyproject.toml, constraints.txt or the extras change (a stamp file records their hash), so the second tox
environment reuses the first one's torch. Runs as a plain script (the thin environments do not have the
project installed); it needs only the standard library.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "test,ray"
STAMP = ".convbench-install"


def install_key(root: Path = ROOT, extras: str = EXTRAS) -> str:
    """Hash of what the installation depends on: the project's metadata, the pinned versions, the extras."""
    h = hashlib.sha256(extras.encode())
    for name in ("pyproject.toml", "constraints.txt"):
        path = root / name
        h.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    return h.hexdigest()


def needs_install(env: Path, key: str) -> bool:
    stamp = env / STAMP
    return not (env / "bin" / "python").exists() or not stamp.exists() or stamp.read_text().strip() != key


def ensure(env: Path, root: Path = ROOT, extras: str = EXTRAS, log=print) -> None:
    key = install_key(root, extras)
    if not needs_install(env, key):
        return
    if not (env / "bin" / "python").exists():
        log(f"shared environment: creating {env}")
        venv.create(env, with_pip=True)
    log(f"shared environment: installing the project [{extras}] with constraints.txt into {env}")
    cmd = [
        str(env / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "-c",
        str(root / "constraints.txt"),
        "-e",
        f"{root}[{extras}]",
    ]
    subprocess.run(cmd, check=True, cwd=root)
    (env / STAMP).write_text(key + "\n")


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python bench/shared_env.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    env = Path(os.environ.get("BENCH_SHARED_ENV") or ROOT / ".tox" / "shared")
    try:
        ensure(env)
    except subprocess.CalledProcessError as exc:
        print(f"shared environment: installation failed (exit {exc.returncode}): {' '.join(exc.cmd)}", file=sys.stderr)
        return 2
    program = env / "bin" / argv[0]
    if not program.exists():
        print(f"shared environment: no program {argv[0]!r} in {env / 'bin'}", file=sys.stderr)
        return 2
    os.environ["PATH"] = f"{env / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["VIRTUAL_ENV"] = str(env)
    os.execv(str(program), [str(program), *argv[1:]])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
