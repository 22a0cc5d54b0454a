"""Reference / claim binding (bench/spec/bindings.py): every suite in suites/ loads with every document number and
claim bound to something the suite can produce; a suite naming a row, backbone, metric or option set it cannot
produce, or with an unquoted ' #' in a text field, is rejected by `bench run --dry-run` with exit 2 and one
line naming the file and the field; numbers under `context` need no row."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.spec.documents import suite_files
from bench.spec.suite import load_suite

SUITES = suite_files(Path(__file__).resolve().parents[2] / "suites")  # documents.yaml is not a suite

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


@pytest.mark.parametrize(
    "old,new,field,message",
    [
        (
            "{row: pnn-l, backbone: preact-resnet, metric: top1",
            "{row: pnn-l5, backbone: preact-resnet, metric: top1",
            "references[0].row",
            "no layer row labelled 'pnn-l5'",
        ),
        (
            "{row: pnn-l, backbone: preact-resnet, metric: top1",
            "{row: pnn-l, backbone: dynresnet-bsd, metric: top1",
            "references[0].backbone",
            "backbone 'dynresnet-bsd' is not run by this suite",
        ),
        ("metric: param_ratio", "metric: mAP", "references[1].metric", "emits no metric 'mAP'"),
        ("a: pnn-l, b: conv", "a: pnn-l, b: lbcnn", "claims[0].check.b", "no layer row labelled 'lbcnn'"),
        ('a: "width=1"', 'a: "width=2"', "claims[1].check.a", "no backbone of this suite has options 'width=2'"),
        (
            "points: 2.0, backbone: preact-resnet",
            "points: 2.0, backbone: resnet18",
            "claims[0].check.backbone",
            "backbone 'resnet18' is not run by this suite",
        ),
        ("metric: top1, a: pnn-l", "metric: ods, a: pnn-l", "claims[0].check.metric", "emits no metric 'ods'"),
        ("    where: Table 4\n", "    where: Table 4, #Mask = 64 column\n", "line 16.where", "unquoted ' #'"),
    ],
)
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
    text = (
        GOOD
        + """context:
  - {label: "Maxout [6]", value: 90.65, document: "000", where: "Table 4, CIFAR-10 row, Maxout column", note: "another method"}
  - {label: "PNN-VGG-16 (Faster R-CNN)", metric: map, value: 69.6, document: "000", where: "Table 7, #Mask unknown"}
"""
    )
    suite, rc, out = _dry_run(tmp_path, capsys, text)
    assert rc == 0, out.err
    ctx = load_suite(suite).context
    assert [c["label"] for c in ctx] == ["Maxout [6]", "PNN-VGG-16 (Faster R-CNN)"]
    assert (
        ctx[0]["metric"] == "top1"
        and ctx[0]["note"] == "another method"
        and ctx[1]["where"] == "Table 7, #Mask unknown"
    )


def test_context_numbers_are_rendered_on_the_suite_page(tmp_path):
    from bench.report.site import build_site

    suites, results = tmp_path / "suites", tmp_path / "results"
    suites.mkdir()
    results.mkdir()
    (suites / "bind.yaml").write_text(
        GOOD
        + """context:
  - {label: "Maxout [6]", value: 90.65, document: "000", where: "Table 4, CIFAR-10 row, Maxout column", note: "another method"}
  - {label: "PNN-ResNet-18, #Mask = 8", metric: param_ratio, value: 451.1, document: "000", where: "Table 5, Ratio row, #Mask = 8 column"}
"""
    )
    build_site(results, suites, tmp_path / "site")
    html = (tmp_path / "site" / "suite-bind.html").read_text()
    assert "Numbers quoted by the documents (not compared)" in html
    for text in (
        "Maxout [6]",
        "90.65",
        "Table 4, CIFAR-10 row, Maxout column",
        "another method",
        "Table 5, Ratio row, #Mask = 8 column",
        "451.1",
    ):
        assert text in html, text


# -- issue 18: honest bindings ------------------------------------------------------------------------------


def _loaded():
    return {p.stem: load_suite(p) for p in SUITES}


def test_no_document_value_is_bound_to_two_rows_of_one_suite():
    """Read from the raw YAML (not through the loader's own check): a table cell (document, where, metric,
    value, epochs) of one suite names one (row, backbone)."""
    import yaml

    for path in SUITES:
        raw = yaml.safe_load(path.read_text()) or {}
        seen: dict = {}
        for ref in raw.get("references") or []:
            cell = (ref["document"], ref["where"], ref.get("metric", "top1"), float(ref["value"]), ref.get("epochs"))
            target = (ref["row"], ref.get("backbone"))
            assert seen.setdefault(cell, target) == target, f"{path.name}: {cell} bound to {seen[cell]} and {target}"


def test_the_loader_rejects_one_document_value_on_two_rows(tmp_path, capsys):
    bad = GOOD.replace(
        '  - {row: pnn-l, metric: param_ratio, value: 7.9, document: "000", where: "Table 5, Ratio row", setting: s}',
        '  - {row: conv, backbone: preact-resnet, metric: top1, value: 90.0, document: "000", where: "Table 5, PNN row, #Mask = 64 column", setting: s}',
    )
    p = tmp_path / "dup.yaml"
    p.write_text(bad)
    assert main(["run", str(p), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "references[1].row" in err[0] and "one document value binds to one row" in err[0]


def test_every_reference_is_in_a_document_setting_suite():
    """A document's number is compared only at its document's setting, so a reference in a shared suite could
    never get a verdict: such numbers are context (000's CIFAR, ImageNet and detection numbers, 002's 86.31)."""
    for name, s in _loaded().items():
        assert not s.references or s.setting == "document", f"{name}: references in a {s.setting} suite"


def _refs(s, value):
    return [r for r in s.references if r["value"] == value]


def _ctx(s, value):
    return [c for c in s.context if c["value"] == value]


def test_binding_fixes_of_issue_18():
    s = _loaded()
    # PNN-ResNet-50's 94.05 is no reference anywhere (no ResNet-50 classification row); context in cifar and pnn
    assert not any(_refs(x, 94.05) for x in s.values())
    assert _ctx(s["cifar"], 94.05) and _ctx(s["pnn"], 94.05)
    # ResNet-110's 93.57 (000 quotes it from another paper) is context in both suites
    assert not _refs(s["cifar"], 93.57) and _ctx(s["cifar"], 93.57) and _ctx(s["pnn"], 93.57)
    # 89.99 binds to one row of cifar-protocol-000 (pnn-stem-conv), with Table 5's ratio beside it
    assert [(r["row"], r["metric"]) for r in _refs(s["cifar-protocol-000"], 89.99)] == [("pnn-stem-conv", "top1")]
    ratio = _refs(s["cifar-protocol-000"], 7.9)
    assert [(r["row"], r["metric"], r["tolerance"]) for r in ratio] == [("pnn-stem-conv", "param_ratio", 0.05)]
    # the alternating Image Frame is no single frame row; its claim says what it checks
    assert not _refs(s["frames"], 93.89) and _ctx(s["frames"], 93.89)
    claim = next(c for c in s["frames"].claims if c["id"] == "image-frame-beats-pixel")
    assert [d["kind"] for d in claim["deviations"]] == ["other"]
    assert all(r["runs"] == 5 and r["std"] for r in s["frames"].references)  # Table 6: 5 runs, mean ± std
    # He et al.'s post-activation ResNet-20 and the i-RevNet README's number are not judged under the HCNN protocol
    assert not _refs(s["thesis-ch5-6"], 91.25) and _ctx(s["thesis-ch5-6"], 91.25)
    assert not _refs(s["thesis-ch5-6"], 94.5) and _ctx(s["thesis-ch5-6"], 94.5)
    # numbers of shared suites: context
    assert _ctx(s["rfnn"], 86.31) and len(_ctx(s["detection"], 69.6)) == 1 and _ctx(s["pnn-imagenet"], 81.41)


def test_claim_margins_agree_across_suites():
    """The same claim (document, rows, op, metric, backbone) has one margin wherever it is checked; Sep-Space
    behind Sep-Chans by 5 points, PNN within 2 points of the CNN."""
    margins: dict = {}
    for name, s in _loaded().items():
        for c in s.claims:
            k = c["check"]
            key = (c["document"], k["a"], k["b"], k["op"], k["metric"], k["backbone"] or "")
            margins.setdefault(key[:5], set()).add((key[5], k["points"]))
    for key, got in margins.items():
        per_backbone = {}
        for bb, pts in got:
            per_backbone.setdefault(bb, set()).add(pts)
        assert all(len(v) == 1 for v in per_backbone.values()), (key, got)
    space = {
        pts
        for (doc, a, b, op, _), got in margins.items()
        if (a, b, op) == ("sep-space", "sep-chans", "below")
        for _, pts in got
    }
    pnn = {
        pts
        for (doc, a, b, op, m), got in margins.items()
        if doc == "000" and a in ("pnn", "pnn-stem-conv") and b == "conv" and op == "within" and m == "top1"
        for _, pts in got
    }
    assert space == {5.0} and pnn == {2.0}


def test_deviations_come_from_the_fixed_vocabulary(tmp_path, capsys):
    from bench.report.verdicts import DEVIATIONS

    for name, s in _loaded().items():
        for item in [
            *s.deviations,
            *(d for r in s.references for d in r["deviations"]),
            *(d for c in s.claims for d in c["deviations"]),
        ]:
            kind = item if isinstance(item, str) else item["kind"]
            assert kind in DEVIATIONS, (name, item)
    # every suite on the JPEG CIFAR-10 copy says so
    for name in ("cifar", "cifar-protocol-000", "deconv", "families", "frames", "pnn", "spatial-mixing"):
        assert "data-reencoded" in _loaded()[name].deviations, name
    p = tmp_path / "dev.yaml"
    p.write_text(GOOD.replace("seeds: [0]", "seeds: [0]\ndeviations: [jpeg]"))
    assert main(["run", str(p), "--dry-run"]) == 2
    assert "deviations[0]" in capsys.readouterr().err
    p.write_text(GOOD.replace("seeds: [0]", "seeds: [0]\ndeviations: [other]"))
    assert main(["run", str(p), "--dry-run"]) == 2
    assert "needs its text" in capsys.readouterr().err
