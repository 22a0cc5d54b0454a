"""Verdicts speak only when the runs can support them: learned (above chance), enough seeds, a setting that
can speak to the number (document for references; document, shared or a declared tier for claims)."""
from __future__ import annotations

import math

import pytest

from bench.report.tables import (CHANCE_Z, classify_setting, learned_check, leaderboards, runs_frame)
from bench.suite import load_suite
from bench.tasks import TASKS

SUITE = """
name: ver
task: classification
dataset: {name: cifar10, root: /nonexistent}
setting: SETTING
protocol: {epochs: 20, batch_size: 128}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, sep-chans]
seeds: [0, 1]
tiers:
  - {name: cpu-3ep, overrides: {epochs: 3, train_subset: 2000, test_subset: 1000}}
references:
  - {row: conv, value: 60.0, epochs: 1, document: "003", where: "T1 BN 1", setting: "1 epoch"}
  - {row: sep-chans, value: 70.0, epochs: 1, document: "003", where: "T1 ND 1", setting: "1 epoch"}
  - {row: conv, value: 92.0, document: "003", where: "T1 BN 20", setting: "20 epochs"}
claims:
  - id: better-1
    text: sep-chans beats conv at 1 epoch
    document: "003"
    where: T1
    check: {a: sep-chans, b: conv, op: above, points: 0.0, epochs: 1}
"""


def make_suite(tmp_path, setting="document"):
    p = tmp_path / "ver.yaml"
    p.write_text(SUITE.replace("SETTING", setting))
    return load_suite(p)


def records_for(suite, acc: dict, overrides: dict, n_test=10_000, seeds=(0, 1)):
    recs = []
    for spec in suite.expand(overrides, seeds=list(seeds)):
        a = acc[spec.label][spec.seed]
        recs.append({"schema": 1, "id": spec.id, "status": "ok", "label": spec.label, "task": "classification",
                     "suite": {"name": suite.name, "file": "x", "sha256": "y"}, "spec": spec.to_dict(),
                     "metrics": {"top1": a, "top1_best": a}, "data": {"test": n_test, "train": 50_000},
                     "params": {"learned": 1, "fixed": 0, "total": 1}, "env": {"device": "CPU: test"}})
    return recs


def board(suite, recs):
    boards = leaderboards(runs_frame(recs), recs, {suite.name: suite}, TASKS)
    assert len(boards) == 1
    return boards[0]


def test_learned_margin_is_three_binomial_standard_errors():
    margin = 100 * CHANCE_Z * math.sqrt(0.1 * 0.9 / 10_000)  # 0.9 points for CIFAR-10's 10,000 test images
    row = lambda m, n=10_000: {"label": "x", "classes": 10, "test_images": n, "m:top1:mean": m}
    assert margin == pytest.approx(0.9)
    assert learned_check(row(10.0 + margin - 0.01), "top1") is not None
    assert learned_check(row(10.0 + margin + 0.01), "top1") is None
    assert learned_check(row(11.5, n=1000), "top1") is not None  # 1,000 images: margin 2.85 points
    assert learned_check(row(0.5), "ssim") is None  # no chance level: not gated


def test_setting_of_runs(tmp_path):
    s = make_suite(tmp_path)
    proto = lambda **kw: {**s.protocol, **kw}
    assert classify_setting(s, proto(epochs=1), 1).kind == "document"
    assert classify_setting(s, proto(), None).kind == "document"
    short = classify_setting(s, proto(epochs=1), None)  # a 20-epoch number, runs of 1 epoch
    assert short.kind == "shortened" and short.tier is None
    tier = classify_setting(s, proto(epochs=3, train_subset=2000, test_subset=1000), None)
    assert (tier.kind, tier.tier, tier.tag) == ("shortened", "cpu-3ep", "shortened: cpu-3ep")
    longer = classify_setting(s, proto(epochs=20), 1)  # a 1-epoch number, runs of 20 epochs: another setting
    assert longer.kind == "document" and longer.other_epochs
    assert classify_setting(s, proto(batch_size=64), None).kind == "shortened"
    assert classify_setting(make_suite(tmp_path, "shared"), proto(), None).kind == "shared"


ACC = {"conv": {0: 55.0, 1: 57.0}, "sep-chans": {0: 71.0, 1: 69.5}}


def test_document_setting_two_seeds_learned_gives_verdicts(tmp_path):
    s = make_suite(tmp_path)
    b = board(s, records_for(s, ACC, {"epochs": 1}))
    refs = {r["where"]: r for r in b.references}
    assert refs["T1 BN 1"]["verdict"] == "not reproduced"  # 56.0 vs 60.0, tol max(1, 2·1.41) = 2.83
    assert refs["T1 ND 1"]["verdict"] == "reproduced"      # 70.25 vs 70.0
    assert refs["T1 BN 1"]["setting"] == "document" and refs["T1 BN 1"]["n"] == 2
    assert refs["T1 BN 20"]["verdict"] == "inconclusive" and refs["T1 BN 20"]["setting"] == "shortened"
    claim = b.claims[0]
    assert claim["verdict"] == "reproduced" and claim["setting"] == "document"


def test_one_seed_is_too_few(tmp_path):
    s = make_suite(tmp_path)
    b = board(s, records_for(s, ACC, {"epochs": 1}, seeds=(0,)))
    refs = {r["where"]: r for r in b.references}
    assert refs["T1 ND 1"]["verdict"] == "inconclusive" and "too few seeds" in refs["T1 ND 1"]["verdict_detail"]
    assert b.claims[0]["verdict"] == "inconclusive" and "too few seeds" in b.claims[0]["verdict_detail"]


def test_a_row_at_chance_gives_no_verdict(tmp_path):
    s = make_suite(tmp_path)
    acc = {"conv": {0: 10.2, 1: 10.4}, "sep-chans": {0: 71.0, 1: 69.5}}  # conv at chance (≤ 10.9)
    b = board(s, records_for(s, acc, {"epochs": 1}))
    refs = {r["where"]: r for r in b.references}
    assert refs["T1 BN 1"]["verdict"] == "inconclusive" and "at chance" in refs["T1 BN 1"]["verdict_detail"]
    assert refs["T1 ND 1"]["verdict"] == "reproduced"  # its own row learned
    assert b.claims[0]["verdict"] == "inconclusive" and "at chance" in b.claims[0]["verdict_detail"]


def test_shared_protocol_gives_claims_but_not_references(tmp_path):
    s = make_suite(tmp_path, "shared")
    b = board(s, records_for(s, ACC, {"epochs": 1}))
    refs = {r["where"]: r for r in b.references}
    assert refs["T1 ND 1"]["verdict"] == "inconclusive" and "shared protocol" in refs["T1 ND 1"]["verdict_detail"]
    assert b.claims[0]["verdict"] == "reproduced" and b.claims[0]["setting_tag"] == "shared"


def test_declared_tier_tags_claims_and_an_undeclared_shortening_blocks_them(tmp_path):
    s = make_suite(tmp_path)
    tiered = board(s, records_for(s, ACC, {"epochs": 3, "train_subset": 2000, "test_subset": 1000}, n_test=1000))
    c = tiered.claims[0]  # a 1-epoch claim, runs of 3 epochs on subsets: the tier decides
    assert c["verdict"] == "reproduced" and c["setting_tag"] == "shortened: cpu-3ep"
    assert all(r["verdict"] in ("inconclusive", "not yet run") for r in tiered.references)
    other = board(s, records_for(s, ACC, {"epochs": 3, "train_subset": 500}, n_test=1000))
    assert other.claims[0]["verdict"] == "inconclusive" and other.claims[0]["tier"] is None


def test_a_superseded_record_of_the_same_seed_is_not_a_second_seed(tmp_path):
    s = make_suite(tmp_path)
    recs = records_for(s, ACC, {"epochs": 1})
    old = dict(recs[0], id="0" * 16, finished="2026-01-01T00:00:00+00:00")
    old["metrics"] = {"top1": 12.0, "top1_best": 12.0}
    for r in recs:
        r["finished"] = "2026-11-29T00:00:00+00:00"
    b = board(s, recs + [old])
    row = b.rows.set_index("label").loc[recs[0]["label"]]
    assert row["n"] == 2 and "0" * 16 not in row["run_ids"]


def test_index_lists_what_was_measured_at_the_documents_setting(tmp_path):
    """The index's first table: every reference and claim measured at a document's own setting, with the
    document's value, the measured mean ± std, n and the verdict; nothing measured at another setting."""
    import json
    import re

    from bench.records import write_json_atomic
    from bench.report.site import build_site

    s = make_suite(tmp_path)
    results, suites = tmp_path / "results", tmp_path / "suites"
    suites.mkdir()
    (suites / "ver.yaml").write_text((tmp_path / "ver.yaml").read_text())
    for rec in records_for(s, ACC, {"epochs": 1}):
        write_json_atomic(results / "ver" / f"{rec['label']}-{rec['spec']['seed']}-{rec['id']}.json", rec)
    build_site(results, suites, tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    table = html[html.index('id="document-setting-table"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr><th[^>]*>(.*?)</tr>", table[table.index("<tbody>"):], flags=re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)) for r in rows]
    assert len(text) == 3, text  # T1 BN 1, T1 ND 1, the 1-epoch claim; not T1 BN 20 (another epoch count)
    bn = next(t for t in text if "T1 BN 1" in t)
    assert "60" in bn and "56" in bn and "± 1.41" in bn and "not reproduced" in bn and "-4.00" in bn
    assert any("T1 ND 1" in t and " reproduced" in t and "not reproduced" not in t for t in text)
    assert any("claim better-1" in t for t in text)
    items = json.loads((tmp_path / "site" / "data" / "verdicts.json").read_text())["items"]
    measured = [i for i in items if i["setting"] == "document" and i["verdict"] in ("reproduced", "not reproduced")]
    assert len(measured) == 3
