"""Reference / claim binding (bench/bindings.py): every suite in suites/ loads with every document number and
claim bound to something the suite can produce; a suite naming a row, backbone, metric or option set it cannot
produce, or with an unquoted ' #' in a text field, is rejected by `bench run --dry-run` with exit 2 and one
line naming the file and the field; numbers under `context` need no row."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.suite import load_suite

SUITES = sorted((Path(__file__).resolve().parent.parent / "suites").glob("*.yaml"))

GOOD = """
name: bind
task: classification
dataset: digits
protocol: {epochs: 1, batch_size: 32, augment: [], train_subset: 64, test_subset: 32, max_batches: 1}
backbones: [{name: preact-resnet, options: {n: 1, width: 1}}]
layers: [conv, {name: pnn, options: {noise_level: 0.1}, label: pnn-l}]
seeds: [0]
references:
  - {row: pnn-l, backbone: preact-resnet, metric: top1, value: 90.0, document: "000", where: "Table 5, PNN row, #Mask = 64 column", setting: s}
  - {row: pnn-l, metric: param_ratio, value: 7.9, document: "000", where: "Table 5, Ratio row", setting: s}
claims:
  - id: c
    text: pnn near conv
    document: "000"
    where: Table 4
    check: {metric: top1, a: pnn-l, b: conv, op: within, points: 2.0, backbone: preact-resnet}
  - id: by-options
    text: width 1 against itself
    document: "004"
    where: Fig. 3
    check: {metric: top1, a: "width=1", b: "n=1", op: within, points: 1.0}
"""


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_suite_loads_with_every_reference_bound(path):
    suite = load_suite(path)  # raises SpecError on an unbound reference or claim
    labels = {layer["label"] for layer in suite.layers}
    assert all(ref["row"] in labels for ref in suite.references)
    assert suite.setting in ("document", "shared")


def _dry_run(tmp_path, capsys, text):
    suite = tmp_path / "bind.yaml"
    suite.write_text(text)
    rc = main(["run", str(suite), "--results", str(tmp_path / "results"), "--dry-run", "--no-progress"])
    return suite, rc, capsys.readouterr()


def test_good_suite_dry_runs(tmp_path, capsys):
    _, rc, out = _dry_run(tmp_path, capsys, GOOD)
    assert rc == 0, out.err


@pytest.mark.parametrize("old,new,field,message", [
    ("{row: pnn-l, backbone: preact-resnet, metric: top1", "{row: pnn-l5, backbone: preact-resnet, metric: top1",
     "references[0].row", "no layer row labelled 'pnn-l5'"),
    ("{row: pnn-l, backbone: preact-resnet, metric: top1", "{row: pnn-l, backbone: dynresnet-bsd, metric: top1",
     "references[0].backbone", "backbone 'dynresnet-bsd' is not run by this suite"),
    ("metric: param_ratio", "metric: mAP", "references[1].metric", "emits no metric 'mAP'"),
    ("a: pnn-l, b: conv", "a: pnn-l, b: lbcnn", "claims[0].check.b", "no layer row labelled 'lbcnn'"),
    ('a: "width=1"', 'a: "width=2"', "claims[1].check.a", "no backbone of this suite has options 'width=2'"),
    ("points: 2.0, backbone: preact-resnet", "points: 2.0, backbone: resnet18", "claims[0].check.backbone",
     "backbone 'resnet18' is not run by this suite"),
    ("metric: top1, a: pnn-l", "metric: ods, a: pnn-l", "claims[0].check.metric", "emits no metric 'ods'"),
    ("    where: Table 4\n", "    where: Table 4, #Mask = 64 column\n", "line 16.where", "unquoted ' #'"),
])
def test_unbound_reference_or_claim_is_one_line_exit_2(tmp_path, capsys, old, new, field, message):
    assert GOOD.count(old) == 1, old
    suite, rc, out = _dry_run(tmp_path, capsys, GOOD.replace(old, new))
    lines = out.err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, out.err
    assert f"{suite}: {field}: " in lines[0] and message in lines[0], lines[0]
    assert not (tmp_path / "results").exists()


def test_quoted_hash_keeps_the_whole_text(tmp_path):
    path = tmp_path / "bind.yaml"
    path.write_text(GOOD)
    assert load_suite(path).references[0]["where"] == "Table 5, PNN row, #Mask = 64 column"


def test_context_number_needs_no_row(tmp_path, capsys):
    text = GOOD + """context:
  - {label: "Maxout [6]", value: 90.65, document: "000", where: "Table 4, CIFAR-10 row, Maxout column", note: "another method"}
  - {label: "PNN-VGG-16 (Faster R-CNN)", metric: map, value: 69.6, document: "000", where: "Table 7, #Mask unknown"}
"""
    suite, rc, out = _dry_run(tmp_path, capsys, text)
    assert rc == 0, out.err
    ctx = load_suite(suite).context
    assert [c["label"] for c in ctx] == ["Maxout [6]", "PNN-VGG-16 (Faster R-CNN)"]
    assert ctx[0]["metric"] == "top1" and ctx[0]["note"] == "another method" and ctx[1]["where"] == "Table 7, #Mask unknown"


def test_context_numbers_are_rendered_on_the_suite_page(tmp_path):
    from bench.report.site import build_site

    suites, results = tmp_path / "suites", tmp_path / "results"
    suites.mkdir()
    results.mkdir()
    (suites / "bind.yaml").write_text(GOOD + """context:
  - {label: "Maxout [6]", value: 90.65, document: "000", where: "Table 4, CIFAR-10 row, Maxout column", note: "another method"}
  - {label: "PNN-ResNet-18, #Mask = 8", metric: param_ratio, value: 451.1, document: "000", where: "Table 5, Ratio row, #Mask = 8 column"}
""")
    build_site(results, suites, tmp_path / "site")
    html = (tmp_path / "site" / "suite-bind.html").read_text()
    assert "Numbers quoted by the documents (not compared)" in html
    for text in ("Maxout [6]", "90.65", "Table 4, CIFAR-10 row, Maxout column", "another method",
                 "Table 5, Ratio row, #Mask = 8 column", "451.1"):
        assert text in html, text
