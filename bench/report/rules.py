"""The verdict rules as objects: an ordered list (:data:`RULES`) the verdict functions run, each rule with its
name, its explanation and a ``decide`` that gives either ``None`` (no decision, go on) or a :class:`Decision`.
The site's "when a verdict speaks" text and the block of docs/suites-and-verdicts.md are the rules' explanations
joined (:data:`VERDICT_RULES`), so both print what the code does, from one source:
``python -m bench.report.rules --readme docs/suites-and-verdicts.md`` rewrites the block.

Each rule looks at one of three cases: ``whole`` (a reference, or a claim before its rows are paired),
``compared`` (a reference's row, or a claim's two rows on one backbone, with their 95 % interval) and ``combine``
(a claim's per-backbone results). The interval maths is :mod:`bench.report.verdicts`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.report.aggregate import _missing
from bench.report.verdicts import (
    CONFIDENCE,
    DEFAULT_TOLERANCE,
    MIN_SEEDS,
    Interval,
    claim_rule_text,
    decide_claim,
    decide_reference,
    difference_interval,
    mean_interval,
)

CHANCE_Z = 3.0  # "learned": accuracy above chance by 3 binomial standard errors of the test-set size
CHANCE_METRICS = ("top1", "top1_best", "top1_auc")  # accuracies, whose chance level is 100 / classes
SUBSET_KEYS = ("train_subset", "test_subset", "max_batches")


# -- the setting of a leaderboard's runs --------------------------------------------------------------------


@dataclass
class Setting:
    """What a leaderboard's runs are, for one reference or claim: ``document`` (the document's protocol and
    data at the number's epochs), ``shared`` (the harness's protocol, full data) or ``shortened`` (subsets,
    fewer epochs or another batch size; ``tier`` names the suite's declared tier it matches, if any).
    ``other_epochs``: the runs are unshortened but trained for other epochs than the number's."""

    kind: str
    tier: str | None = None
    epochs: int | None = None
    other_epochs: bool = False

    @property
    def tag(self) -> str:
        return f"shortened: {self.tier}" if self.tier else self.kind


def classify_setting(
    suite_info, protocol: dict, target_epochs: int | None, task_options: dict | None = None
) -> Setting:
    """The setting of runs with effective ``protocol`` (and task options, which tell apart tiers with the same
    overrides, such as the cells of the faces grid) for a number or claim at ``target_epochs``."""
    base = getattr(suite_info, "protocol", None) or {}
    target = target_epochs or base.get("epochs")
    subsets = any(protocol.get(k) for k in SUBSET_KEYS)
    other_batch = base.get("batch_size") is not None and protocol.get("batch_size") != base.get("batch_size")
    other_epochs = target is not None and protocol.get("epochs") != target
    if subsets or other_batch or (other_epochs and protocol.get("epochs", 0) < (target or 0)):
        tiers = [
            t
            for t in getattr(suite_info, "tiers", None) or []
            if all(protocol.get(k) == v for k, v in t["overrides"].items())
        ]
        if len(tiers) > 1 and task_options is not None:  # same overrides: the task options tell them apart
            task_base = (getattr(suite_info, "task", None) or {}).get("options", {})
            tiers = [t for t in tiers if {**task_base, **t.get("task_options", {})} == task_options]
        tier = tiers[0]["name"] if tiers else None
        return Setting("shortened", tier, protocol.get("epochs"))
    kind = getattr(suite_info, "setting", "shared") or "shared"
    return Setting(kind, None, protocol.get("epochs"), other_epochs=other_epochs)


def learned_check(row, metric: str) -> str | None:
    """None when the row learned (or the metric has no chance level), else the reason it is at chance."""
    if metric not in CHANCE_METRICS:
        return None
    classes, n_test = row.get("classes"), row.get("test_images")
    mean = row.get(f"m:{metric}:mean")
    if not classes or not n_test or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return None
    p0 = 1.0 / float(classes)
    margin = 100.0 * CHANCE_Z * math.sqrt(p0 * (1 - p0) / float(n_test))
    if mean < 100.0 * p0 + margin:
        return (
            f"at chance: {row['label']} {mean:.2f} % ≤ chance {100 * p0:.1f} % + {margin:.2f} "
            f"({CHANCE_Z:g} s.e. of {int(n_test)} test images)"
        )
    return None


# -- cases, decisions, rules --------------------------------------------------------------------------------


@dataclass
class Case:
    """What one rule looks at. ``kind``: reference | claim; ``rows``: the compared leaderboard rows (a
    reference's one, a claim's a and b; empty when none was measured); ``interval``: the compared 95 % interval
    (a reference's measured mean, a claim's difference); ``setting`` None: no setting gate (a bare check);
    ``results``: a claim's per-backbone statuses (the ``combine`` case)."""

    kind: str
    metric: str
    setting: Setting | None = None
    target_epochs: int | None = None
    rows: list = field(default_factory=list)
    interval: Interval | None = None
    ref: dict = field(default_factory=dict)
    claim: dict = field(default_factory=dict)
    measured: bool = True  # a claim: some row measured its metric
    results: list = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    status: str  # reproduced | not reproduced | inconclusive | not yet run
    reason: str
    join: str = "; "  # how the reason follows a reference's "Δ …; 95 % interval …" head


class Rule:
    """One verdict rule: ``name``, ``explanation`` (its sentence of :data:`VERDICT_RULES`), ``level`` (the case
    it looks at: whole | compared | combine), ``kinds`` (reference, claim) and ``decide``."""

    name = ""
    level = "compared"
    kinds = ("reference", "claim")

    @property
    def explanation(self) -> str:
        raise NotImplementedError

    def decide(self, case: Case) -> Decision | None:
        raise NotImplementedError


class Epochs(Rule):
    name, level = "epochs", "whole"
    explanation = (
        "A document's number or claim is checked only against runs at the epochs it names (or the suite "
        "protocol's); a leaderboard at other epochs reads 'not yet run' for it."
    )

    def decide(self, case):
        if case.setting is None or not case.setting.other_epochs:
            return None
        what = "number" if case.kind == "reference" else "claim"
        return Decision(
            "not yet run",
            f"no run at the {what}'s {case.target_epochs or 'protocol'} epochs (this leaderboard: {case.setting.epochs})",
        )


class Measured(Rule):
    name, level = "measured", "whole"
    explanation = "Without a measured run of the compared rows it reads 'not yet run'."

    def decide(self, case):
        if case.kind == "reference":
            return None if case.interval is not None else Decision("not yet run", "no measured run for this row")
        if not case.measured:
            return Decision("not yet run", f"no run measured {case.metric}")
        if not case.rows:
            chk = case.claim["check"]
            return Decision("not yet run", f"needs measured rows {chk['a']!r} and {chk['b']!r} on one backbone")
        return None


class SettingGate(Rule):
    name = "setting"
    explanation = (
        "Any verdict needs runs at a setting that can speak to it: a document's number is compared only with runs "
        "at that document's own setting (setting 'document': its protocol, its epochs, its data), a claim also "
        "with the harness's shared protocol on full data ('shared') or a shortened tier the suite declares, whose "
        "tag then stands on the verdict; otherwise the verdict reads 'inconclusive' with its reason (shortened, "
        "shared protocol)."
    )

    @staticmethod
    def allowed(case: Case) -> tuple:
        if case.kind == "reference":
            return ("document",)
        if case.setting.tier or case.setting.kind != "shortened":
            return ("document", "shared", "shortened")
        return ("document", "shared")

    def decide(self, case):
        s = case.setting
        if s is None or s.kind in self.allowed(case):
            return None
        if s.kind == "shortened":
            return Decision(
                "inconclusive", "shortened: " + (f"tier {s.tier}" if s.tier else "not the document's setting")
            )
        return Decision("inconclusive", f"{s.kind} protocol, not the document's setting")


class Learned(Rule):
    name = "learned"
    explanation = (
        f"Every compared row must have learned: its mean accuracy above chance (100 / classes) by at least "
        f"{CHANCE_Z:g} binomial standard errors of its test-set size (else 'inconclusive: at chance')."
    )

    def decide(self, case):
        if case.setting is None:
            return None
        for row in case.rows:
            reason = learned_check(row, case.metric)
            if reason:
                return Decision("inconclusive", reason)
        return None


class MinSeeds(Rule):
    name = "seeds"
    explanation = (
        f"Every compared row needs at least {MIN_SEEDS} seeds (fewer: 'needs {MIN_SEEDS} seeds', counted as "
        f"inconclusive)."
    )

    def decide(self, case):
        if case.setting is None:
            return None
        low = [r for r in case.rows if int(r.get("n") or 0) < MIN_SEEDS]
        if low:
            return Decision(
                "inconclusive",
                f"needs {MIN_SEEDS} seeds: " + ", ".join(f"{r['label']} n={int(r.get('n') or 0)}" for r in low),
            )
        return None


class Spread(Rule):
    name = "spread"
    explanation = f"Rows without a spread over seeds give no interval, and so no verdict ('needs {MIN_SEEDS} seeds')."

    def decide(self, case):
        if case.interval.half is None:
            return Decision("inconclusive", f"needs {MIN_SEEDS} seeds")
        return None


class ReferenceInterval(Rule):
    name, kinds = "reference-interval", ("reference",)
    explanation = (
        f"A document's number is reproduced when it lies inside the measured mean's {CONFIDENCE:.0%} Student-t "
        f"interval over seeds (mean ± t(n−1) · s/√n) widened on both sides by the reference's declared tolerance "
        f"(default {DEFAULT_TOLERANCE:g} point, fixed in the suite before the runs), and not reproduced when it lies "
        f"outside. Where the document reports its own spread (a reference's std over its runs), the document's "
        f"standard error (std/√runs, or the std itself when the number of runs is not stated) is added in "
        f"quadrature to the measured one at the seeds' n − 1 degrees of freedom (the interval of the difference "
        f"between the two means, never narrower than the measured one alone)."
    )

    def decide(self, case):
        iv, value, tol = case.interval, case.ref["value"], reference_tolerance(case.ref)
        status = decide_reference(value, iv, tol)
        where = "inside" if status == "reproduced" else "outside"
        return Decision(
            status,
            f"{value:g} {where} [{iv.lo - tol:.2f}, {iv.hi + tol:.2f}] (interval ± tolerance {tol:g})",
            join=": ",
        )


class ClaimInterval(Rule):
    name, kinds = "claim-interval", ("claim",)
    explanation = (
        f"A claim 'a above / within / below b by N points' is decided by the {CONFIDENCE:.0%} Welch interval of "
        f"mean(a) − mean(b): reproduced when the whole interval satisfies the claim (≥ N; ≤ −N; inside [−N, N]), "
        f"not reproduced when the whole interval violates it, inconclusive when it straddles the claim's boundary."
    )

    def decide(self, case):
        chk = case.claim["check"]
        return Decision(decide_claim(chk["op"], chk["points"], case.interval), "")


class EveryBackbone(Rule):
    name, level, kinds = "every-backbone", "combine", ("claim",)
    explanation = (
        "A claim checked on several backbones is reproduced only when it is on every one; any backbone's reason "
        "for 'inconclusive' makes the claim inconclusive."
    )

    def decide(self, case):
        statuses = {st for _, st, _ in case.results}
        reasons = sorted({st.split(": ", 1)[1] for st in statuses if st.startswith("inconclusive: ")})
        if reasons:  # a verdict needs every compared backbone to support one
            return Decision("inconclusive", "; ".join(reasons))
        for status in ("not reproduced", "inconclusive"):
            if status in statuses:
                return Decision(status, "")
        return Decision("reproduced", "")


#: the rules in the order the verdict functions apply them (the first decision stands)
RULES: tuple[Rule, ...] = (
    Epochs(),
    Measured(),
    SettingGate(),
    Learned(),
    MinSeeds(),
    Spread(),
    ReferenceInterval(),
    ClaimInterval(),
    EveryBackbone(),
)

#: what the report does besides the rules (said after them)
NOTES = (
    "Records whose run ids the current suite files no longer produce are shown as superseded and left out of "
    "every aggregate. Deviations from the document are listed beside each verdict."
)

VERDICT_RULES = " ".join([r.explanation for r in RULES] + [NOTES])


def apply_rules(case: Case, level: str) -> Decision | None:
    """The first decision of the rules of ``level`` that apply to ``case.kind``, in :data:`RULES` order."""
    for rule in RULES:
        if rule.level == level and case.kind in rule.kinds:
            decision = rule.decide(case)
            if decision is not None:
                return decision
    return None


# -- the verdict functions ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    status: str  # reproduced | not reproduced | inconclusive | not yet run
    detail: str
    tolerance: str = ""
    interval: dict | None = None  # the compared 95 % interval: {centre, half, lo, hi, df, n, text}
    compared: list = field(default_factory=list)  # claims: one interval per backbone compared


def _interval_dict(iv) -> dict:
    return {
        "centre": iv.centre,
        "half": iv.half,
        "lo": iv.lo if iv.half is not None else None,
        "hi": iv.hi if iv.half is not None else None,
        "df": iv.df,
        "n": list(iv.n) if isinstance(iv.n, tuple) else iv.n,
        "text": iv.text(),
    }


def reference_tolerance(ref: dict) -> float:
    return float(ref.get("tolerance", DEFAULT_TOLERANCE) if ref.get("tolerance") is not None else DEFAULT_TOLERANCE)


def reference_verdict(
    ref: dict,
    mean: float | None,
    std: float | None,
    n: int,
    setting: Setting | None = None,
    row: dict | None = None,
    target_epochs: int | None = None,
) -> Verdict:
    """The document's ``ref['value']`` against the measured mean's 95 % t-interval (with the document's own
    standard error in quadrature when it reports a std) widened by ``ref['tolerance']``, by :data:`RULES`; with
    a ``setting``, the setting, learned and seeds rules gate it on the compared ``row``."""
    tol = reference_tolerance(ref)
    tol_text = f"±{tol:g} declared tolerance"
    if ref.get("std"):
        tol_text += f"; document std {ref['std']:g}" + (
            f" over {ref['runs']} runs" if ref.get("runs") else " (runs not stated: used as its standard error)"
        )
    measured = mean is not None and n != 0
    iv = mean_interval(mean, std, n, ref.get("std"), ref.get("runs")) if measured else None
    case = Case(
        "reference",
        ref.get("metric", ""),
        setting,
        target_epochs if target_epochs is not None else ref.get("epochs"),
        [row] if row is not None else [],
        iv,
        ref=ref,
    )
    whole = apply_rules(case, "whole")
    if whole is not None:
        other_epochs = setting is not None and setting.other_epochs  # said without the tolerance, as no row is
        return Verdict(whole.status, whole.reason, "" if other_epochs else tol_text)
    d = apply_rules(case, "compared")
    head = f"Δ {mean - ref['value']:+.2f}; 95 % interval {iv.text()} (n={n})"
    return Verdict(d.status, f"{head}{d.join}{d.reason}", tol_text, _interval_dict(iv))


def _select(rows: list[dict], ident: str) -> list[dict]:
    """Rows named ``ident``: a row label, or ``key=value[,key=value]`` matched against backbone options."""
    if "=" not in ident:
        return [r for r in rows if r["label"] == ident]
    conds = dict(kv.split("=", 1) for kv in ident.split(","))
    return [
        r
        for r in rows
        if all(
            str(json.loads(r["backbone_options"]).get(k.strip())).lower() == v.strip().lower() for k, v in conds.items()
        )
    ]


def _pairs(chk: dict, recs: list[dict]) -> list[tuple]:
    """``(backbone, a, b)`` for each backbone (and option set, or row when the variants are backbone options)
    that has one measured row a and one measured row b of the claim, sorted."""
    col = f"m:{chk['metric']}:mean"
    # rows are named by label, or by backbone options ("learn=chans,kernel=8") when the variants are backbones
    second = "label" if "=" in chk["a"] or "=" in chk["b"] else "backbone_options"
    groups: dict[tuple, list[dict]] = {}
    for r in recs:  # plain lists: a pandas call per claim, backbone and row was a tenth of a report
        groups.setdefault((r["backbone"], r[second]), []).append(r)
    out = []
    for (backbone, _), sel in sorted(groups.items(), key=lambda kv: kv[0]):
        if chk.get("backbone") and backbone != chk["backbone"]:
            continue
        a, b = _select(sel, chk["a"]), _select(sel, chk["b"])
        if len(a) == 1 and len(b) == 1 and not _missing(a[0].get(col)) and not _missing(b[0].get(col)):
            out.append((backbone, a[0], b[0]))
    return out


def claim_verdict(claim: dict, rows, setting: Setting | None = None) -> Verdict:
    """Check a qualitative claim (a vs b: within / above / below by ``points``) on leaderboard rows, within
    each backbone that has both rows (or only ``check.backbone``), by the 95 % Welch interval of the difference
    of means, by :data:`RULES`; it holds when it holds for every backbone. With a ``setting``, the setting,
    learned and seeds rules gate every compared row.
    ``rows``: the leaderboard's aggregated rows (a frame, or its ``to_dict("records")``)."""
    chk = claim["check"]
    col = f"m:{chk['metric']}"
    recs = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    whole = Case("claim", chk["metric"], setting, chk.get("epochs"), claim=claim)
    if whole.setting is None or not whole.setting.other_epochs:  # rows are paired only when the epochs match
        whole.measured = any(col + ":mean" in r for r in recs)
        pairs = _pairs(chk, recs) if whole.measured else []
        whole.rows = [r for _, a, b in pairs for r in (a, b)]
    decision = apply_rules(whole, "whole")
    if decision is not None:
        return Verdict(decision.status, decision.reason)
    results = []
    for backbone, a, b in pairs:
        std = lambda r: None if _missing(r.get(col + ":std")) else float(r[col + ":std"])
        na, nb = int(a.get("n") or 0), int(b.get("n") or 0)
        iv = difference_interval(float(a[col + ":mean"]), std(a), na, float(b[col + ":mean"]), std(b), nb)
        d = apply_rules(Case("claim", chk["metric"], setting, rows=[a, b], interval=iv, claim=claim), "compared")
        results.append((backbone, f"{d.status}: {d.reason}" if d.reason else d.status, iv))
    detail = "; ".join(
        f"{bb}: {chk['a']} − {chk['b']} = {iv.text(signed=True)} (95 % Welch, n={iv.n[0]}/{iv.n[1]})"
        for bb, _, iv in results
    )
    overall = apply_rules(Case("claim", chk["metric"], setting, claim=claim, results=results), "combine")
    if overall.reason:
        detail += "; " + overall.reason
    compared = [dict(_interval_dict(iv), backbone=bb, verdict=st.split(":")[0]) for bb, st, iv in results]
    return Verdict(
        overall.status,
        detail,
        claim_rule_text(chk["a"], chk["b"], chk["op"], chk["points"])
        + "; decided by the 95 % Welch interval of the difference (straddling the boundary = inconclusive)",
        compared[0] if len(compared) == 1 else None,
        compared,
    )


# -- README -------------------------------------------------------------------------------------------------

README_BEGIN = "<!-- verdict-rules: generated from bench/report/rules.py, do not edit -->"
README_END = "<!-- /verdict-rules -->"


def readme_block() -> str:
    return f"{README_BEGIN}\n{VERDICT_RULES}\n{README_END}"


def update_readme(path: str | Path) -> bool:
    """Rewrite the verdict-rule block of the README; True when it changed."""
    path = Path(path)
    text = path.read_text()
    pattern = re.compile(r"<!-- verdict-rules: generated from [^>]*-->.*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no verdict-rules block ({README_BEGIN} … {README_END})")
    new = pattern.sub(lambda _: readme_block(), text)
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m bench.report.rules --readme docs/suites-and-verdicts.md
    if len(sys.argv) == 3 and sys.argv[1] == "--readme":
        print("updated" if update_readme(sys.argv[2]) else "up to date")
    else:
        print(VERDICT_RULES)
