"""`bench --help`, `bench report` and `bench layers` import no torch (registry metadata from a snapshot), and
the site they build is the one the torch-importing path builds."""
from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from bench.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules, "scipy": "scipy" in sys.modules}))
"""


def _probe(args, env_extra, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("light")
    shutil.copytree(ROOT / "results" / "quick", tmp / "results" / "quick")
    return tmp


def test_help_imports_no_torch(tmp_path):
    out, proc = _probe(["--help"], {"BENCH_CACHE": str(tmp_path)})
    assert out == {"rc": 0, "torch": False, "scipy": False}
    assert "report" in proc.stdout
    out, _ = _probe(["run", "--help"], {"BENCH_CACHE": str(tmp_path)})
    assert out["torch"] is False


def test_report_and_layers_import_no_torch_and_match_the_full_path(small_results, tmp_path):
    cache = {"BENCH_CACHE": str(tmp_path / "cache")}
    results = str(small_results / "results")
    out, _ = _probe(["report", "--results", results, "--suites", str(ROOT / "suites"),
                     "--site", str(tmp_path / "light")], cache)
    assert out == {"rc": 0, "torch": False, "scipy": False}
    assert list((tmp_path / "cache").glob("registry-meta-*.json"))  # the snapshot was built (by a child)
    full, _ = _probe(["report", "--results", results, "--suites", str(ROOT / "suites"),
                      "--site", str(tmp_path / "full")], {**cache, "BENCH_NO_REGISTRY_SNAPSHOT": "1"})
    assert full["torch"] is True  # the reference path really is the torch one
    light_files = sorted(p.relative_to(tmp_path / "light") for p in (tmp_path / "light").rglob("*") if p.is_file())
    full_files = sorted(p.relative_to(tmp_path / "full") for p in (tmp_path / "full").rglob("*") if p.is_file())
    assert light_files == full_files and len(light_files) > 5
    for rel in light_files:
        assert (tmp_path / "light" / rel).read_bytes() == (tmp_path / "full" / rel).read_bytes(), rel

    out, proc = _probe(["layers", "--json"], cache)
    assert out["torch"] is False
    rows = json.loads(proc.stdout[:proc.stdout.rindex("\n{")])
    from bench.layers import LAYERS
    assert [r["name"] for r in rows] == LAYERS.names()
    assert {r["name"]: r["defaults"] for r in rows} == json.loads(json.dumps(
        {e.name: e.defaults for e in LAYERS}, default=str))


def test_snapshot_mirrors_every_entry_method():
    """A method added to an entry class must be mirrored on the stand-in (else the light path falls back)."""
    from bench.backbones import Backbone
    from bench.datasets import DatasetEntry
    from bench.layers import LayerFamily
    from bench.regmeta import MetaEntry
    from bench.tasks import TaskEntry

    for cls in (LayerFamily, Backbone, TaskEntry, DatasetEntry):
        methods = {n for n, v in vars(cls).items() if inspect.isfunction(v) and not n.startswith("_")}
        # build/expected_learned need the factory or learned_params callable: the real registry is used for them
        missing = methods - set(vars(MetaEntry)) - {"build", "expected_learned"}
        assert not missing, f"{cls.__name__}: mirror {sorted(missing)} in bench.regmeta.MetaEntry"


def test_snapshot_keeps_python_types_and_a_new_family_changes_the_fingerprint(tmp_path, monkeypatch):
    from bench import regmeta

    value = {"a": (1, 2), "b": [1.5, None], "c": float("inf"), "d": "x"}
    assert regmeta._dec(json.loads(json.dumps(regmeta._enc(value)))) == value
    assert isinstance(regmeta._dec(regmeta._enc((1, (2,))))[1], tuple)
    before = regmeta.fingerprint()
    layers_dir = Path(inspect.getfile(regmeta)).parent / "layers"
    probe = layers_dir / "zz_fingerprint_probe.py"
    probe.write_text("# temporary file written by tests/test_regmeta.py\n")
    try:
        assert regmeta.fingerprint() != before
    finally:
        probe.unlink()
    assert regmeta.fingerprint() == before


def test_an_installed_plugin_changes_the_fingerprint(tmp_path, monkeypatch):
    """A distribution's entry_points.txt appearing on sys.path (a plug-in installed) or changing gives a new
    fingerprint, so the snapshot is rebuilt with its families; a distribution without one does not."""
    from bench import regmeta

    monkeypatch.syspath_prepend(str(tmp_path))
    before = regmeta.fingerprint()
    (tmp_path / "plain-1.0.dist-info").mkdir()
    (tmp_path / "plain-1.0.dist-info" / "METADATA").write_text("Name: plain\n")
    assert regmeta.fingerprint() == before
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[bench.layers]\nmine = myplugin.layers\n")
    added = regmeta.fingerprint()
    assert added != before
    (dist / "entry_points.txt").write_text("[bench.layers]\nmine = myplugin.layers\nother = myplugin.other\n")
    assert regmeta.fingerprint() not in (before, added)
