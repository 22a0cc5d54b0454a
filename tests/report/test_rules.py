"""The verdict rules as objects (bench.report.rules): their order, each rule's decision on a case made to trip it
(and to pass it), and the one text the site and the docs print, joined from the rules' explanations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.report.rules import (
    NOTES,
    RULES,
    VERDICT_RULES,
    Case,
    ClaimInterval,
    Epochs,
    EveryBackbone,
    Learned,
    Measured,
    MinSeeds,
    ReferenceInterval,
    Setting,
    SettingGate,
    Spread,
    apply_rules,
    readme_block,
    reference_verdict,
    update_readme,
)
from bench.report.verdicts import Interval

ROOT = Path(__file__).resolve().parents[2]
DOC, SHARED = Setting("document", epochs=20), Setting("shared", epochs=20)


def row(label="conv", n=3, mean=90.0, classes=10, test_images=10_000):
    return {"label": label, "n": n, "m:top1:mean": mean, "classes": classes, "test_images": test_images}


def claim(op="above", points=1.0):
    return {"check": {"a": "a", "b": "b", "op": op, "points": points, "metric": "top1"}}


def test_the_rules_run_in_the_order_the_verdicts_apply_them():
    assert [r.name for r in RULES] == [
        "epochs",
        "measured",
        "setting",
        "learned",
        "seeds",
        "spread",
        "reference-interval",
        "claim-interval",
        "every-backbone",
    ]
    assert [r.level for r in RULES] == ["whole"] * 2 + ["compared"] * 6 + ["combine"]
    assert len({r.name for r in RULES}) == len(RULES)


def test_the_printed_text_is_the_rules_explanations_joined_and_the_docs_carry_it():
    assert VERDICT_RULES == " ".join([r.explanation for r in RULES] + [NOTES])
    docs = (ROOT / "docs" / "suites-and-verdicts.md").read_text()
    assert readme_block() in docs, "stale: python -m bench.report.rules --readme docs/suites-and-verdicts.md"
    where = [docs.index(r.explanation) for r in RULES]
    assert where == sorted(where)  # in the rules' order


def test_the_readme_command_rewrites_a_stale_block(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "before\n<!-- verdict-rules: generated from bench/report/verdicts.py, do not edit -->\nold\n<!-- /verdict-rules -->\nafter\n"
    )
    assert update_readme(doc) is True and update_readme(doc) is False
    assert doc.read_text() == f"before\n{readme_block()}\nafter\n"
    doc.write_text(doc.read_text().replace(RULES[0].explanation, "edited by hand"))
    out = subprocess.run(
        [sys.executable, "-m", "bench.report.rules", "--readme", str(doc)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0 and out.stdout.strip() == "updated"
    assert readme_block() in doc.read_text()


def test_epochs_rule_names_the_number_or_claim_and_the_leaderboards_epochs():
    other = Setting("document", epochs=20, other_epochs=True)
    d = Epochs().decide(Case("reference", "top1", other, 1))
    assert d.status == "not yet run" and d.reason == "no run at the number's 1 epochs (this leaderboard: 20)"
    assert "the claim's protocol epochs" in Epochs().decide(Case("claim", "top1", other, None)).reason
    assert Epochs().decide(Case("reference", "top1", DOC, 20)) is None
    assert Epochs().decide(Case("reference", "top1", None, 1)) is None  # no setting: a bare check


def test_measured_rule():
    iv = Interval(90.0, 1.0, 2, 3)
    assert Measured().decide(Case("reference", "top1", interval=None)).status == "not yet run"
    assert Measured().decide(Case("reference", "top1", interval=iv)) is None
    nothing = Measured().decide(Case("claim", "top1", claim=claim(), measured=False))
    assert nothing.reason == "no run measured top1"
    unpaired = Measured().decide(Case("claim", "top1", claim=claim(), rows=[]))
    assert unpaired.reason == "needs measured rows 'a' and 'b' on one backbone"
    assert Measured().decide(Case("claim", "top1", claim=claim(), rows=[row("a"), row("b")])) is None


def test_setting_rule_allows_only_the_document_for_references_and_declared_tiers_for_claims():
    gate = SettingGate()
    d = gate.decide(Case("reference", "top1", SHARED))
    assert d.status == "inconclusive" and d.reason == "shared protocol, not the document's setting"
    assert gate.decide(Case("reference", "top1", DOC)) is None
    assert gate.decide(Case("reference", "top1", Setting("shortened", "cpu-3ep"))).reason == "shortened: tier cpu-3ep"
    assert gate.decide(Case("claim", "top1", SHARED)) is None
    assert gate.decide(Case("claim", "top1", Setting("shortened", "cpu-3ep"))) is None  # a declared tier
    bare = gate.decide(Case("claim", "top1", Setting("shortened")))
    assert bare.reason == "shortened: not the document's setting"
    assert gate.decide(Case("reference", "top1", None)) is None


def test_learned_and_seeds_rules_name_the_row_that_fails():
    at_chance = Learned().decide(Case("reference", "top1", DOC, rows=[row(mean=10.5)]))
    assert at_chance.status == "inconclusive" and at_chance.reason.startswith("at chance: conv 10.50 %")
    assert Learned().decide(Case("reference", "top1", DOC, rows=[row(mean=60.0)])) is None
    assert Learned().decide(Case("reference", "top1", None, rows=[row(mean=10.5)])) is None
    few = MinSeeds().decide(Case("claim", "top1", SHARED, rows=[row("a", n=3), row("b", n=2)]))
    assert few.reason == "needs 3 seeds: b n=2"
    assert MinSeeds().decide(Case("claim", "top1", SHARED, rows=[row("a"), row("b")])) is None


def test_spread_and_interval_rules():
    assert Spread().decide(Case("reference", "top1", interval=Interval(90.0, None, None, 1))).reason == "needs 3 seeds"
    assert Spread().decide(Case("reference", "top1", interval=Interval(90.0, 0.5, 2, 3))) is None
    ref = {"value": 91.4, "tolerance": 1.0}
    inside = ReferenceInterval().decide(Case("reference", "top1", interval=Interval(90.0, 0.5, 2, 3), ref=ref))
    assert inside.status == "reproduced" and inside.reason.startswith("91.4 inside [88.50, 91.50]")
    outside = ReferenceInterval().decide(Case("reference", "top1", interval=Interval(90.0, 0.3, 2, 3), ref=ref))
    assert outside.status == "not reproduced" and inside.join == ": "
    above = ClaimInterval()
    assert above.decide(Case("claim", "top1", claim=claim(), interval=Interval(3.0, 1.0, 4, (3, 3)))).status == (
        "reproduced"
    )
    straddle = above.decide(Case("claim", "top1", claim=claim(), interval=Interval(1.5, 1.0, 4, (3, 3))))
    assert straddle == type(straddle)("inconclusive", "")
    assert above.decide(Case("claim", "top1", claim=claim(), interval=Interval(-1.0, 1.0, 4, (3, 3)))).status == (
        "not reproduced"
    )


def test_every_backbone_rule_needs_every_backbone():
    combine = EveryBackbone()

    def over(*statuses):
        return combine.decide(Case("claim", "top1", results=[(f"bb{i}", s, None) for i, s in enumerate(statuses)]))

    assert over("reproduced", "reproduced").status == "reproduced"
    assert over("reproduced", "not reproduced").status == "not reproduced"
    assert over("reproduced", "inconclusive").status == "inconclusive"
    d = over("not reproduced", "inconclusive: needs 3 seeds: b n=1")
    assert d.status == "inconclusive" and d.reason == "needs 3 seeds: b n=1"


def test_the_first_rule_that_decides_stands():
    # shortened runs of too few seeds at chance: the setting is what is said, not the seeds or the chance level
    case = Case("claim", "top1", Setting("shortened"), rows=[row("a", n=1, mean=10.0), row("b", n=1)], claim=claim())
    case.interval = Interval(1.0, None, None, (1, 1))
    assert apply_rules(case, "compared").reason == "shortened: not the document's setting"
    case.setting = SHARED
    assert apply_rules(case, "compared").reason.startswith("at chance: a")
    # through the verdict function: a reference on a shared leaderboard with one seed names the setting
    v = reference_verdict({"value": 90.0, "metric": "top1"}, 90.2, None, 1, SHARED, row(n=1))
    assert v.status == "inconclusive" and v.detail.endswith("; shared protocol, not the document's setting")
    v = reference_verdict({"value": 90.0, "metric": "top1"}, 90.2, None, 1, DOC, row(n=1))
    assert v.detail.endswith("; needs 3 seeds: conv n=1")
