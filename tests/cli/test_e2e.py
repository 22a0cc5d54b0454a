"""End to end: the quick suite on a few batches → records → site, through the command line."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.cli import main
from bench.report.runpage import data_href
from bench.zoo.layers import LAYERS

pytestmark = pytest.mark.slow  # whole suites through the command line: left out of `pytest -m "not slow"`

ROOT = Path(__file__).resolve().parents[2]
QUICK_FLAGS = [
    "--epochs",
    "1",
    "--max-batches",
    "2",
    "--train-subset",
    "128",
    "--test-subset",
    "64",
    "--no-progress",
    "--device",
    "cpu",
]


class _Rows(HTMLParser):
    """Collects the leaderboard rows (tr elements with data-family) of a page."""

    def __init__(self):
        super().__init__()
        self.families, self.scripts = [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-family" in a:
            self.families.append(a["data-family"])
        if tag == "script":
            self.scripts += 1


@pytest.fixture(scope="module")
def quick_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quick")
    suites = tmp / "suites"
    suites.mkdir()
    shutil.copy(ROOT / "suites" / "quick.yaml", suites / "quick.yaml")
    results, site = tmp / "results", tmp / "site"
    rc = main(["run", str(suites / "quick.yaml"), *QUICK_FLAGS, "--results", str(results)])
    assert rc == 0
    assert main(["report", "--results", str(results), "--suites", str(suites), "--site", str(site)]) == 0
    return tmp, results, site


def test_quick_suite_leaves_one_row_per_registered_family(quick_site):
    _, results, site = quick_site
    assert (site / "index.html").exists()
    parser = _Rows()
    parser.feed((site / "suite-quick.html").read_text())
    assert sorted(parser.families) == LAYERS.names()
    records = [json.loads(p.read_text()) for p in (results / "quick").glob("*.json")]
    assert len(records) == len(LAYERS.names())
    failed = [(r["label"], r.get("error")) for r in records if r["status"] != "ok"]
    assert not failed, failed
    by_family = {}
    for r in records:
        assert r["spec"]["overrides"] == {"epochs": 1, "max_batches": 2, "train_subset": 128, "test_subset": 64}
        assert r["invocation"] == {"device": "cpu"}  # recorded, but not part of the run id
        assert r["params"]["learned"] > 0 and r["macs"] > 0
        assert r["timing"]["throughput_img_s"] > 0 and r["timing"]["clock"] == "time.perf_counter"
        t = r["timing"]  # training MACs: 3 × training-mode forward MACs per image × images seen
        assert t["train_macs_estimate"] == pytest.approx(3 * t["train_forward_macs"] * r["history"][-1]["images_seen"])
        by_family[r["spec"]["layer"]["name"]] = (r["macs"], t["train_forward_macs"])
        assert r["id"] in json.loads((site / data_href(r["id"])).read_text())  # drawn by run.html#<id>
    conv_inference, conv_training = by_family["conv"]
    assert conv_training < 1.1 * conv_inference  # batch norm's statistics are cheap
    deconv_inference, deconv_training = by_family["deconv"]
    assert deconv_training > 1.2 * deconv_inference  # whitening statistics (covariance, Newton–Schulz) counted
    # downloads exist and agree with the records
    data = json.loads(next((site / "data").glob("quick-*.json")).read_text())
    assert {row["label"] for row in data["rows"]} == {r["label"] for r in records}
    csv = next((site / "data").glob("quick-*.csv")).read_text().splitlines()
    assert len(csv) == 1 + len(records)


def test_rerun_skips_everything(quick_site, capsys):
    tmp, results, _ = quick_site
    rc = main(["run", str(tmp / "suites" / "quick.yaml"), *QUICK_FLAGS, "--results", str(results)])
    assert rc == 0
    assert f"0 ran, {len(LAYERS.names())} already done" in capsys.readouterr().out


def test_site_escapes_text_from_suites_and_records(tmp_path):
    evil = "<script>alert(1)</script>"
    suite = tmp_path / "suites" / "evil.yaml"
    suite.parent.mkdir()
    suite.write_text(f"""
name: evil
description: "{evil} description"
task: classification
dataset: digits
protocol: {{epochs: 1, batch_size: 64, max_batches: 1, augment: [], train_subset: 128, test_subset: 64}}
backbones: [{{name: preact-resnet, options: {{n: 1}}}}]
layers: [{{name: conv, label: evil-row, display: "{evil}"}}]
references:
  - {{row: evil-row, value: 50, document: "004", where: "{evil}", setting: "{evil}"}}
""")
    results, site = tmp_path / "results", tmp_path / "site"
    assert main(["run", str(suite), "--results", str(results), "--no-progress", "--device", "cpu"]) == 0
    assert main(["report", "--results", str(results), "--suites", str(suite.parent), "--site", str(site)]) == 0
    for page in [site / "index.html", site / "suite-evil.html", site / "run.html"]:
        html = page.read_text()
        assert evil not in html, page
    # run data is JSON inside a script file (read by run.html, whose script sets it as text, never as markup)
    (shard,) = {p for p in (site / "runs").glob("*.js")}
    assert (
        evil
        in json.loads(shard.read_text()[len("convbenchRuns(") : -3])["runs"].popitem()[1]["record"]["spec"]["layer"][
            "display"
        ]
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (site / "suite-evil.html").read_text()


def test_report_skips_corrupt_files_by_name(quick_site, capsys, tmp_path):
    tmp, results, _ = quick_site
    bad = results / "quick" / "zz-broken.json"
    bad.write_text("{")
    try:
        site = tmp_path / "site2"
        assert main(["report", "--results", str(results), "--suites", str(tmp / "suites"), "--site", str(site)]) == 0
        assert "zz-broken.json" in capsys.readouterr().err
        assert "zz-broken.json" in (site / "index.html").read_text()
    finally:
        bad.unlink()


def test_user_layer_file_is_benchmarked(tmp_path):
    """A new layer in one file: registered by --layers, run, and shown on the site."""
    layer = tmp_path / "my_layer.py"
    layer.write_text("""
from torch import nn
from bench.zoo.layers import LAYERS

@LAYERS.register("my-dilated", document="user", section="example", fixed="nothing", learned="3x3 dilated",
                 learned_params=lambda cin, cout, k, bias, **o: cin * cout * k * k + (cout if bias else 0))
def my_dilated(in_channels, out_channels, kernel_size=3, stride=1, padding=None, bias=False, *, dilation=2):
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=dilation * (kernel_size // 2),
                     dilation=dilation, bias=bias)
""")
    suite = tmp_path / "suites" / "mine.yaml"
    suite.parent.mkdir()
    suite.write_text("""
name: mine
task: classification
dataset: digits
protocol: {epochs: 1, batch_size: 64, max_batches: 1, augment: [], train_subset: 128, test_subset: 64}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, my-dilated]
""")
    results = tmp_path / "results"
    try:
        assert (
            main(
                [
                    "run",
                    str(suite),
                    "--layers",
                    str(layer),
                    "--results",
                    str(results),
                    "--no-progress",
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
        labels = sorted(json.loads(p.read_text())["label"] for p in (results / "mine").glob("*.json"))
        assert labels == ["conv", "my-dilated"]
    finally:
        LAYERS.unregister("my-dilated")
