"""Verdicts speak only when the runs can support them: learned (above chance), at least 3 seeds, a setting that
can speak to the number (document for references; document, shared or a declared tier for claims); and they are
decided by 95 % intervals (Student t for a reference, Welch for a claim's difference; bench.report.verdicts)."""

from __future__ import annotations

import math

import pytest

from bench.report.aggregate import runs_frame
from bench.report.rules import CHANCE_Z, classify_setting, learned_check
from bench.report.tables import leaderboards
from bench.spec.suite import load_suite
from bench.tasks import TASKS

SUITE = """
name: ver
task: classification
dataset: {name: cifar10, root: /nonexistent}
setting: SETTING
protocol: {epochs: 20, batch_size: 128}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, sep-chans]
seeds: [0, 1, 2]
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


def records_for(suite, acc: dict, overrides: dict, n_test=10_000, seeds=(0, 1, 2)):
    recs = []
    for spec in suite.expand(overrides, seeds=list(seeds)):
        a = acc[spec.label][spec.seed]
        recs.append(
            {
                "schema": 1,
                "id": spec.id,
                "status": "ok",
                "label": spec.label,
                "task": "classification",
                "suite": {"name": suite.name, "file": "x", "sha256": "y"},
                "spec": spec.to_dict(),
                "metrics": {"top1": a, "top1_best": a},
                "data": {"test": n_test, "train": 50_000},
                "params": {"learned": 1, "fixed": 0, "total": 1},
                "env": {"device": "CPU: test"},
            }
        )
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


ACC = {"conv": {0: 55.0, 1: 57.0, 2: 56.0}, "sep-chans": {0: 71.0, 1: 69.5, 2: 70.25}}


def test_document_setting_three_seeds_learned_gives_verdicts(tmp_path):
    s = make_suite(tmp_path)
    b = board(s, records_for(s, ACC, {"epochs": 1}))
    refs = {r["where"]: r for r in b.references}
    # conv: mean 56, std 1, n 3 → t(2) · 1/√3 = 2.48, widened by the default tolerance 1 → 60 lies outside
    assert refs["T1 BN 1"]["verdict"] == "not reproduced"
    assert refs["T1 BN 1"]["interval"]["half"] == pytest.approx(4.302653 / math.sqrt(3), abs=1e-4)
    assert refs["T1 BN 1"]["tolerance"] == 1.0
    assert refs["T1 ND 1"]["verdict"] == "reproduced"  # 70.25 ± 1.86 (+1) holds 70.0
    assert refs["T1 BN 1"]["setting"] == "document" and refs["T1 BN 1"]["n"] == 3
    assert refs["T1 BN 20"]["verdict"] == "inconclusive" and refs["T1 BN 20"]["setting"] == "shortened"
    claim = b.claims[0]
    assert claim["verdict"] == "reproduced" and claim["setting"] == "document"
    assert claim["interval"]["lo"] > 0 and "95 % Welch" in claim["verdict_detail"]


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_fewer_than_three_seeds_need_three(tmp_path, seeds):
    s = make_suite(tmp_path)
    b = board(s, records_for(s, ACC, {"epochs": 1}, seeds=seeds))
    refs = {r["where"]: r for r in b.references}
    assert refs["T1 ND 1"]["verdict"] == "inconclusive" and "needs 3 seeds" in refs["T1 ND 1"]["verdict_detail"]
    assert b.claims[0]["verdict"] == "inconclusive" and "needs 3 seeds" in b.claims[0]["verdict_detail"]


def test_declared_tolerance_widens_the_interval_and_is_not_part_of_the_run_id(tmp_path):
    s = make_suite(tmp_path)
    p = tmp_path / "tol" / "ver.yaml"
    p.parent.mkdir()
    p.write_text(
        (tmp_path / "ver.yaml")
        .read_text()
        .replace(
            'where: "T1 BN 1", setting: "1 epoch"}',
            'where: "T1 BN 1", setting: "1 epoch", tolerance: 2.0, '
            'deviations: [data-reencoded, {kind: other, text: "x"}]}',
        )
    )
    wide = load_suite(p)
    assert [x.id for x in wide.expand({"epochs": 1})] == [x.id for x in s.expand({"epochs": 1})]
    b = board(wide, records_for(wide, ACC, {"epochs": 1}))
    ref = {r["where"]: r for r in b.references}["T1 BN 1"]
    assert ref["verdict"] == "reproduced" and ref["tolerance"] == 2.0  # 56 ± 2.48, widened by 2: 60 inside
    assert [d["kind"] for d in ref["deviations"]] == ["data-reencoded", "other"]


def test_document_std_is_added_in_quadrature(tmp_path):
    from bench.report.verdicts import mean_interval, t_critical

    alone = mean_interval(56.0, 1.0, 3)
    with_doc = mean_interval(56.0, 1.0, 3, doc_std=0.5, doc_runs=5)
    se = math.sqrt(1 / 3 + 0.25 / 5)  # measured s.e.² + the document's (0.5 / √5)², at the seeds' 2 df
    assert with_doc.half == pytest.approx(t_critical(2) * se) and with_doc.half > alone.half
    # runs not stated: the document's std itself is taken as its standard error (wider, never narrower)
    assert mean_interval(56.0, 1.0, 3, doc_std=0.5).half > with_doc.half


def test_exact_t_quantiles_match_scipy():
    from bench.report.verdicts import _t_ppf_exact

    for df, q in ((1, 12.706205), (2, 4.302653), (9, 2.262157), (29, 2.045230), (1000, 1.962339)):
        assert _t_ppf_exact(0.975, df) == pytest.approx(q, abs=1e-5)
    scipy = pytest.importorskip("scipy.stats")
    for df in (1, 2, 2.5, 4, 7.3, 30, 120):
        assert _t_ppf_exact(0.975, df) == pytest.approx(float(scipy.t.ppf(0.975, df)), abs=1e-8)


def test_a_claim_whose_interval_straddles_its_boundary_is_inconclusive(tmp_path):
    from bench.report.verdicts import Interval, decide_claim

    assert decide_claim("above", 0.0, Interval(1.0, 0.5, 2)) == "reproduced"
    assert decide_claim("above", 0.0, Interval(1.0, 1.5, 2)) == "inconclusive"
    assert decide_claim("above", 0.0, Interval(-1.0, 0.5, 2)) == "not reproduced"
    assert decide_claim("below", 3.0, Interval(-4.0, 0.5, 2)) == "reproduced"
    assert decide_claim("below", 3.0, Interval(-3.2, 0.5, 2)) == "inconclusive"
    assert decide_claim("within", 2.0, Interval(0.5, 1.0, 2)) == "reproduced"
    assert decide_claim("within", 2.0, Interval(1.5, 1.0, 2)) == "inconclusive"
    assert decide_claim("within", 2.0, Interval(-4.0, 1.0, 2)) == "not reproduced"
    # on the leaderboard: means 14 points apart, seed spreads so wide the Welch interval reaches below 0
    s = make_suite(tmp_path)
    noisy = {"conv": {0: 40.0, 1: 72.0, 2: 56.0}, "sep-chans": {0: 71.0, 1: 69.5, 2: 70.25}}
    c = board(s, records_for(s, noisy, {"epochs": 1})).claims[0]
    assert c["verdict"] == "inconclusive" and c["interval"]["lo"] < 0 < c["interval"]["hi"]


def test_a_row_at_chance_gives_no_verdict(tmp_path):
    s = make_suite(tmp_path)
    acc = {"conv": {0: 10.2, 1: 10.4, 2: 10.3}, "sep-chans": {0: 71.0, 1: 69.5, 2: 70.25}}  # conv at chance (≤ 10.9)
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
    assert row["n"] == 3 and "0" * 16 not in row["run_ids"]


def test_index_lists_what_was_measured_at_the_documents_setting(tmp_path):
    """The index's first table: every reference and claim measured at a document's own setting, with the
    document's value, the measured mean ± the 95 % half-width, n and the verdict; nothing measured at another
    setting."""
    import json
    import re

    from bench.records.records import write_json_atomic
    from bench.report.site import build_site

    s = make_suite(tmp_path)
    results, suites = tmp_path / "results", tmp_path / "suites"
    suites.mkdir()
    (suites / "ver.yaml").write_text((tmp_path / "ver.yaml").read_text())
    for rec in records_for(s, ACC, {"epochs": 1}):
        write_json_atomic(results / "ver" / f"{rec['label']}-{rec['spec']['seed']}-{rec['id']}.json", rec)
    build_site(results, suites, tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    table = html[html.index('id="document-setting-table"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><th[^>]*>(.*?)</tr>", table[table.index("<tbody>") :], flags=re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)) for r in rows]
    assert len(text) == 3, text  # T1 BN 1, T1 ND 1, the 1-epoch claim; not T1 BN 20 (another epoch count)
    bn = next(t for t in text if "T1 BN 1" in t)
    assert "60" in bn and "56" in bn and "± 2.48" in bn and "not reproduced" in bn and "-4.00" in bn
    assert any("T1 ND 1" in t and " reproduced" in t and "not reproduced" not in t for t in text)
    assert any("claim better-1" in t for t in text)
    items = json.loads((tmp_path / "site" / "data" / "verdicts.json").read_text())["items"]
    measured = [i for i in items if i["setting"] == "document" and i["verdict"] in ("reproduced", "not reproduced")]
    assert len(measured) == 3


def test_readme_prints_the_one_rule_text():
    from pathlib import Path

    from bench.report.rules import VERDICT_RULES, readme_block

    readme = (Path(__file__).resolve().parents[2] / "docs" / "suites-and-verdicts.md").read_text()
    assert readme_block() in readme, (
        "docs/suites-and-verdicts.md's verdict rules are stale: "
        "python -m bench.report.rules --readme docs/suites-and-verdicts.md"
    )
    assert readme.count(VERDICT_RULES) == 1


def test_stale_records_are_flagged_listed_and_left_out_and_downloads_carry_intervals_and_deviations(tmp_path, capsys):
    """A record whose run id the current suite no longer produces: out of the aggregates, flagged on its run page,
    listed on the suite page and printed by `bench report` one line each. The verdict downloads carry the
    interval, the tolerance and the deviations, which the pages show as chips."""
    import csv
    import json

    from bench.cli import main
    from bench.records.records import write_json_atomic

    s = make_suite(tmp_path)
    results, suites = tmp_path / "results", tmp_path / "suites"
    suites.mkdir()
    text = (
        (tmp_path / "ver.yaml")
        .read_text()
        .replace("seeds: [0, 1, 2]", "seeds: [0, 1, 2]\ndeviations: [data-reencoded]")
    )
    text = text.replace(
        'where: "T1 ND 1", setting: "1 epoch"}',
        'where: "T1 ND 1", setting: "1 epoch", deviations: [{kind: other, text: "one-epoch cosine"}]}',
    )
    (suites / "ver.yaml").write_text(text)
    recs = records_for(s, ACC, {"epochs": 1})
    old = json.loads(json.dumps(recs[0]))
    from bench.spec.identity import run_id

    old["spec"]["layer"]["options"] = {"retired_option": 1}  # an option the suite no longer gives: another id
    old["id"] = stale_id = run_id(old["spec"])
    old["metrics"] = {"top1": 11.0, "top1_best": 11.0}
    for rec in recs + [old]:
        write_json_atomic(results / "ver" / f"{rec['label']}-{rec['spec']['seed']}-{rec['id']}.json", rec)
    site = tmp_path / "site"
    assert main(["report", "--results", str(results), "--suites", str(suites), "--site", str(site)]) == 0
    out = capsys.readouterr().out
    stale_lines = [line for line in out.splitlines() if line.startswith("stale ")]
    assert len(stale_lines) == 1 and stale_id in stale_lines[0] and "superseded by the current suite" in stale_lines[0]
    # its run page (drawn from its shard) flags it and names the run-affecting field that changed
    from bench.report.runpage import read_shard, shard_of

    run = read_shard((site / "runs" / f"{shard_of(stale_id)}.js").read_text())["runs"][stale_id]
    assert run["page"]["stale"] is True and run["record"]["metrics"]["top1"] == 11.0
    change = run["page"]["change"]
    assert change["stale"] and {"field": "layer.options.retired_option", "then": 1, "now": None} in change["diff"]
    assert [d["field"] for d in change["diff"]] == ["layer.options.retired_option"]
    fresh = next(r for r in recs if r["label"] == old["label"] and r["spec"]["seed"] == old["spec"]["seed"])
    assert (
        read_shard((site / "runs" / f"{shard_of(fresh['id'])}.js").read_text())["runs"][fresh["id"]]["page"]["stale"]
        is False
    )
    page = (site / "suite-ver.html").read_text()
    assert "Superseded records" in page and stale_id in page
    assert 'class="badge dev"' in page and "data-reencoded" in page and "one-epoch cosine" in page
    items = json.loads((site / "data" / "verdicts.json").read_text())["items"]
    bn = next(i for i in items if i.get("where") == "T1 BN 1")
    assert bn["n"] == 3 and bn["measured"] == pytest.approx(56.0)  # the stale 11.0 is not a fourth seed
    assert bn["interval_half"] == pytest.approx(2.484, abs=1e-3) and bn["tolerance"] == 1.0
    assert bn["deviations"] == ["data-reencoded"]
    rows = list(csv.DictReader(open(site / "data" / "verdicts.csv")))
    nd = next(r for r in rows if r["where"] == "T1 ND 1")
    assert nd["deviations"] == "data-reencoded; other: one-epoch cosine" and float(nd["interval_half"]) > 0
    claim = next(r for r in rows if r["kind"] == "claim")
    assert float(claim["interval_lo"]) > 0 and claim["n"] == "3/3"
    board_csv = next(p for p in (site / "data").glob("ver-*.csv"))
    lb = {r["label"]: r for r in csv.DictReader(open(board_csv))}
    assert "T1 BN 1 60: not reproduced (56.00 ± 2.48, n=3)" in lb["conv"]["verdicts"]
    assert lb["sep-chans"]["deviations"] == "data-reencoded; other: one-epoch cosine"
    board_json = next(p for p in (site / "data").glob("ver-*.json"))
    refs = json.loads(board_json.read_text())["references"]
    assert all("interval" in r and "deviations" in r for r in refs)
