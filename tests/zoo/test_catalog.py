"""The registries' metadata catalog (bench/zoo/catalog.py): `bench --help`, `bench layers`, `bench list` and
`load_suite` import no torch and put nothing into sys.modules; the catalog file a child process writes is what
the live registries describe; a user --layers file enters it once the fingerprint changes; option ranges are
declared at registration, become schema bounds, and a value outside one is a one-line file:field error."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_PACKAGES = ("bench.zoo.layers", "bench.zoo.backbones", "bench.tasks", "bench.zoo.datasets")

#: runs the CLI (or a statement) and reports what it left in sys.modules: torch, and any bench module that is
#: not a real module file of this checkout (a stand-in)
PROBE = """
import json, sys
from pathlib import Path
root = Path(sys.argv[1]).resolve()
rc = 0
if sys.argv[2] == "-c":
    exec(sys.argv[3])
else:
    from bench.cli import main
    try:
        rc = main(sys.argv[2:])
    except SystemExit as exc:
        rc = exc.code
foreign = sorted(n for n, m in list(sys.modules.items()) if (n == "bench" or n.startswith("bench."))
                 and not str(getattr(m, "__file__", None) or "").startswith(str(root / "bench")))
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules, "scipy": "scipy" in sys.modules,
                  "registries": sorted(set(sys.modules) & set(%r)), "foreign": foreign}))
""" % (REGISTRY_PACKAGES,)


def _probe(args, cache: Path, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_CACHE": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


LIGHT = {"torch": False, "scipy": False, "registries": [], "foreign": []}


def test_help_imports_no_torch(tmp_path):
    out, proc = _probe(["--help"], tmp_path)
    assert out == {"rc": 0, **LIGHT}
    assert "report" in proc.stdout
    out, _ = _probe(["run", "--help"], tmp_path)
    assert out["torch"] is False


def test_load_suite_and_bench_layers_and_list_read_the_catalog_without_torch(tmp_path):
    """Every committed suite loads from the catalog file alone (built by a child process on the first call):
    no torch, no registry package, no stand-in module."""
    from bench.spec.documents import suite_files

    cache = tmp_path / "cache"
    code = (
        "from bench.spec.documents import suite_files\nfrom bench.spec.suite import load_suite\n"
        f"names = [load_suite(p).name for p in suite_files({str(ROOT / 'suites')!r})]\n"
        "print(json.dumps(names))"
    )
    out, proc = _probe(["-c", code], cache)
    assert out == {"rc": 0, **LIGHT}
    assert len(json.loads(proc.stdout.splitlines()[0])) == len(suite_files(ROOT / "suites")) > 10
    assert len(list(cache.glob("catalog-*.json"))) == 1  # written by the child

    out, proc = _probe(["layers", "--json"], cache)
    assert out == {"rc": 0, **LIGHT}
    rows = json.loads(proc.stdout[: proc.stdout.rindex("\n{")])
    from bench.zoo.layers import LAYERS

    assert [r["name"] for r in rows] == LAYERS.names()
    assert {r["name"]: r["defaults"] for r in rows} == json.loads(
        json.dumps({e.name: e.defaults for e in LAYERS}, default=str)
    )

    out, proc = _probe(["list"], cache)
    assert out == {"rc": 0, **LIGHT}
    from bench.zoo.backbones import BACKBONES
    from bench.tasks import TASKS

    for name in TASKS.names() + BACKBONES.names():
        assert f"  {name:<18} " in proc.stdout


def test_bench_report_imports_no_torch(tmp_path):
    import shutil

    shutil.copytree(ROOT / "results" / "quick", tmp_path / "results" / "quick")
    out, _ = _probe(
        [
            "report",
            "--results",
            str(tmp_path / "results"),
            "--suites",
            str(ROOT / "suites"),
            "--site",
            str(tmp_path / "site"),
        ],
        tmp_path / "cache",
    )
    assert out["rc"] == 0 and out["foreign"] == []
    assert (tmp_path / "site" / "index.html").is_file()
    assert out == {"rc": 0, **LIGHT}


def test_the_catalog_file_is_what_the_live_registries_describe():
    """The file a child process writes and the description of the registries in this process are the same data
    (so reading either validates a suite the same way); no entry class is mirrored by hand."""
    from bench.zoo import catalog as cat_mod

    live = cat_mod.describe_registries()
    cat = cat_mod.load_catalog()
    assert cat.fingerprint == cat_mod.fingerprint()
    assert {**cat.data, "fingerprint": ""} == json.loads(json.dumps(live))
    from bench.zoo.backbones import BACKBONES
    from bench.zoo.layers import LAYERS
    from bench.tasks import TASKS

    for reg, kind in ((LAYERS, cat.layers), (BACKBONES, cat.backbones), (TASKS, cat.tasks)):
        assert kind.names() == reg.names()
        for e in reg:
            c = kind.get(e.name)
            assert (c.defaults, c.ranges, c.summary, c.origin) == (e.defaults, e.ranges, e.summary, e.origin)
    assert cat.tasks.get("detection").needs == TASKS.get("detection").needs
    assert cat.backbones.get("tv-vgg16").provides == BACKBONES.get("tv-vgg16").provides
    assert cat.layers.get("pnn").callables == ("learned_params",)
    with pytest.raises(AttributeError, match="callable"):
        cat.layers.get("pnn").learned_params


def test_values_keep_their_python_types_and_a_new_module_changes_the_fingerprint():
    from bench.zoo import catalog as cat_mod

    value = {"a": (1, 2), "b": [1.5, None], "c": float("inf"), "d": "x"}
    assert cat_mod._dec(json.loads(json.dumps(cat_mod._enc(value)))) == value
    assert isinstance(cat_mod._dec(cat_mod._enc((1, (2,))))[1], tuple)
    before = cat_mod.fingerprint()
    probe = Path(inspect.getfile(cat_mod)).parent / "layers" / "zz_fingerprint_probe.py"
    probe.write_text("# temporary file written by tests/zoo/test_catalog.py\n")
    try:
        assert cat_mod.fingerprint() != before
    finally:
        probe.unlink()
    assert cat_mod.fingerprint() == before


def test_an_installed_plugin_changes_the_fingerprint(tmp_path, monkeypatch):
    """A distribution's entry_points.txt appearing on sys.path (a plug-in installed) or changing gives a new
    fingerprint, so the catalog is rebuilt with its families; a distribution without one does not."""
    from bench.zoo.catalog import fingerprint

    monkeypatch.syspath_prepend(str(tmp_path))
    before = fingerprint()
    (tmp_path / "plain-1.0.dist-info").mkdir()
    (tmp_path / "plain-1.0.dist-info" / "METADATA").write_text("Name: plain\n")
    assert fingerprint() == before
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[bench.layers]\nmine = myplugin.layers\n")  # move_tree: keep
    added = fingerprint()
    assert added != before
    (dist / "entry_points.txt").write_text(
        "[bench.layers]\nmine = myplugin.layers\nother = myplugin.other\n"  # move_tree: keep
    )
    assert fingerprint() not in (before, added)


PLUGIN = '''
from torch import nn
from bench.zoo.layers import LAYERS


@LAYERS.register("{name}", document="user", ranges={{"width": (1, 64)}})
def factory(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, width=8):
    """A user family (tests/zoo/test_catalog.py)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=bias)
'''


@pytest.mark.slow
def test_a_user_layers_file_enters_the_catalog_when_the_fingerprint_changes(tmp_path):
    from bench.zoo.catalog import fingerprint

    plugin = tmp_path / "my_family.py"
    plugin.write_text(PLUGIN.format(name="zz-user-a"))
    base = fingerprint()
    first = fingerprint([str(plugin)])
    assert first != base
    out, proc = _probe(["layers", "--json", "--layers", str(plugin)], tmp_path / "cache")
    assert out == {"rc": 0, **LIGHT}
    rows = {r["name"]: r for r in json.loads(proc.stdout[: proc.stdout.rindex("\n{")])}
    assert rows["zz-user-a"]["defaults"] == {"width": 8} and rows["zz-user-a"]["document"] == "user"

    plugin.write_text(PLUGIN.format(name="zz-user-a") + PLUGIN.format(name="zz-user-b").replace("factory", "f2"))
    assert fingerprint([str(plugin)]) not in (base, first)
    out, proc = _probe(["layers", "--json", "--layers", str(plugin)], tmp_path / "cache")
    assert out == {"rc": 0, **LIGHT}
    rows = {r["name"] for r in json.loads(proc.stdout[: proc.stdout.rindex("\n{")])}
    assert {"zz-user-a", "zz-user-b"} <= rows
    assert len(list((tmp_path / "cache").glob("catalog-*.json"))) == 2

    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('no')\n")
    out, proc = _probe(["layers", "--layers", str(broken)], tmp_path / "cache")
    assert out["rc"] == 2 and out["torch"] is False
    assert proc.stderr.strip().splitlines() == [f"bench: error: {broken}: failed to import: ValueError: no"]


@pytest.fixture
def ranged_family():
    from torch import nn

    from bench.zoo.layers import LAYERS

    @LAYERS.register("zz-ranged", document="user", ranges={"width": (1, 64), "drop": (0, 1)})
    def zz_ranged(
        in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, width=8, drop=0.5, depth=2
    ):
        """A family with declared ranges (tests/zoo/test_catalog.py)."""
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=bias)

    yield "zz-ranged"
    LAYERS.unregister("zz-ranged")


SUITE = """name: ranged
task: classification
dataset: {name: digits}
protocol: {epochs: 1}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers:
  - name: zz-ranged
    options: {OPTIONS}
"""


def test_a_declared_range_is_a_schema_bound_and_a_bad_value_a_one_line_error(ranged_family, tmp_path, capsys):
    from bench.zoo.catalog import catalog
    from bench.cli import main

    entry = catalog().layers.get(ranged_family)
    assert entry.option("width").json_schema() == {"type": "integer", "default": 8, "minimum": 1, "maximum": 64}
    assert entry.option("drop").json_schema() == {"type": "number", "default": 0.5, "minimum": 0, "maximum": 1}
    assert entry.option("depth").json_schema() == {"type": "integer", "default": 2}  # nothing guessed from names
    # the committed entries declare theirs: sizes positive (capped), fractions in [0, 1]
    assert catalog().backbones.get("nin").option("width").json_schema()["exclusiveMinimum"] == 0
    assert catalog().backbones.get("nin").option("dropout").json_schema() == {
        "type": "number",
        "default": 0.5,
        "minimum": 0,
        "maximum": 1,
    }

    for options, field, message in (
        ("{width: 65}", "width", "must lie in [1, 64], got 65"),
        ("{width: 0}", "width", "must lie in [1, 64], got 0"),
        ("{drop: 1.5}", "drop", "must lie in [0, 1], got 1.5"),
        ("{width: 2.5}", "width", "expected integer (the default is 8), got float 2.5"),
    ):
        path = tmp_path / "ranged.yaml"
        path.write_text(SUITE.replace("{OPTIONS}", options))
        capsys.readouterr()
        assert main(["run", str(path), "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [f"bench: error: {path}: layers[0].options.{field}: {message}"], err
    path.write_text(SUITE.replace("{OPTIONS}", "{width: 64, drop: 0, depth: -3}"))  # depth: no range declared
    assert main(["run", str(path), "--dry-run", "--results", str(tmp_path / "results")]) == 0


def test_a_range_must_name_an_option_and_hold_its_default():
    from bench.errors import BenchError
    from bench.zoo.layers import LAYERS

    def factory(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, width=8):
        """Badly declared."""

    with pytest.raises(BenchError, match="ranges names 'height', which is not an option"):
        LAYERS.register("zz-bad-range", ranges={"height": (1, 2)})(factory)
    with pytest.raises(BenchError, match="the default of 'width' is outside its declared range"):
        LAYERS.register("zz-bad-range", ranges={"width": (10, 20)})(factory)
    assert "zz-bad-range" not in LAYERS
