"""Verdict maths: confidence intervals and the decisions on them, the verdict constants and the deviation
vocabulary. The rules that use them, in order, with their explanations (printed by the site and the docs) are
:mod:`bench.report.rules`.

A document's number is *reproduced* when it lies inside the measured mean's 95 % Student-t interval widened by
the reference's declared ``tolerance``; a claim "a above / within / below b by N" is decided by the 95 % Welch
interval of the difference of the two means, and reads *inconclusive* when that interval straddles the claim's
boundary. Either needs at least ``MIN_SEEDS`` seeds per compared row.

t quantiles come from :func:`_t_ppf_exact` (the regularised incomplete beta function by its continued fraction,
inverted by bisection: within 1e-12 of scipy's ``stdtrit``, no table to maintain, and no scipy import, which was
0.4–0.6 s of every report).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

CONFIDENCE = 0.95  # two-sided level of every interval
MIN_SEEDS = 3  # seeds per compared row before any verdict
DEFAULT_TOLERANCE = 1.0  # points a reference's interval is widened by unless the suite declares its own

#: the fixed vocabulary of deviations from a document (a reference, claim or suite lists any of them)
DEVIATIONS = {
    "data-reencoded": "data re-encoded (e.g. the JPEG quality-75 copy of CIFAR-10)",
    "data-subset": "a subset of the document's data",
    "substituted-network": "a network substituted for the document's (nearest runnable row)",
    "harness-protocol": "a protocol (optimiser, schedule, epochs, batch) chosen by the harness",
    "from-scratch": "trained from scratch where the document starts from pretrained weights",
    "resolution": "another input resolution",
    "other": "another deviation, said in the entry's text",
}

# -- t quantiles --------------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betai(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def _t_ppf_exact(p: float, df: float) -> float:
    """Quantile of Student's t with ``df`` (> 0, not necessarily integer) degrees of freedom, p in (0.5, 1)."""
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


@functools.lru_cache(maxsize=None)
def t_quantile(p: float, df: float) -> float:
    """Student-t quantile (:func:`_t_ppf_exact`), memoised: a report asks for few (about 50 at 10,000 records,
    5 ms each)."""
    return _t_ppf_exact(p, df)


def t_critical(df: float) -> float:
    return t_quantile(0.5 + CONFIDENCE / 2.0, df)


# -- intervals ----------------------------------------------------------------------------------------------


@dataclass
class Interval:
    """A 95 % interval ``centre ± half`` with its degrees of freedom (``df`` None: no spread exists)."""

    centre: float
    half: float | None
    df: float | None
    n: int | tuple = 0

    @property
    def lo(self) -> float:
        return self.centre - (self.half or 0.0)

    @property
    def hi(self) -> float:
        return self.centre + (self.half or 0.0)

    def text(self, fmt: str = ".2f", signed: bool = False) -> str:
        centre = format(self.centre, ("+" if signed else "") + fmt)
        return centre if self.half is None else f"{centre} ± {format(self.half, fmt)}"


def _welch_df(terms: list[tuple[float, float]]) -> float | None:
    """Welch–Satterthwaite degrees of freedom of a sum of variances ``(v_i, df_i)``; None when all are 0."""
    total = sum(v for v, _ in terms)
    denom = sum(v * v / d for v, d in terms if v > 0 and d and d > 0)
    if total <= 0 or denom <= 0:
        return None
    return total * total / denom


def mean_interval(
    mean: float, std: float | None, n: int, doc_std: float | None = None, doc_runs: int | None = None
) -> Interval:
    """The 95 % t-interval of a measured mean over ``n`` seeds. With the document's own spread, the document's
    standard error (``doc_std / sqrt(doc_runs)``, or ``doc_std`` itself when the runs are not stated) is added in
    quadrature, at the measured seeds' n − 1 degrees of freedom: the interval of (measured − document), centred
    on the measured mean, and never narrower than the measured one alone (Welch–Satterthwaite would raise the
    degrees of freedom with the document's runs and could narrow it)."""
    if n < 2 or std is None or (isinstance(std, float) and math.isnan(std)):
        return Interval(mean, None, None, n)
    var = std * std / n
    if doc_std:
        se_doc = doc_std / math.sqrt(doc_runs) if doc_runs else doc_std
        var += se_doc * se_doc
    if var <= 0:  # no spread anywhere (a deterministic count): a zero-width interval
        return Interval(mean, 0.0, n - 1, n)
    return Interval(mean, t_critical(n - 1) * math.sqrt(var), n - 1, n)


def difference_interval(
    mean_a: float, std_a: float | None, n_a: int, mean_b: float, std_b: float | None, n_b: int
) -> Interval:
    """The 95 % Welch interval of mean(a) − mean(b)."""
    diff = mean_a - mean_b
    if n_a < 2 or n_b < 2 or std_a is None or std_b is None:
        return Interval(diff, None, None, (n_a, n_b))
    terms = [(std_a * std_a / n_a, n_a - 1), (std_b * std_b / n_b, n_b - 1)]
    df = _welch_df(terms)
    if df is None:
        return Interval(diff, 0.0, n_a + n_b - 2, (n_a, n_b))
    return Interval(diff, t_critical(df) * math.sqrt(sum(v for v, _ in terms)), df, (n_a, n_b))


# -- decisions ----------------------------------------------------------------------------------------------


def decide_reference(value: float, interval: Interval, tolerance: float) -> str:
    """reproduced / not reproduced for a document's ``value`` against a measured ``interval`` (needs a spread)."""
    half = (interval.half or 0.0) + tolerance
    return "reproduced" if abs(value - interval.centre) <= half else "not reproduced"


def claim_bounds(op: str, points: float) -> tuple[float, float]:
    """The set of differences mean(a) − mean(b) for which the claim holds, as [low, high]."""
    if op == "above":
        return points, math.inf
    if op == "below":
        return -math.inf, -points
    return -points, points


def decide_claim(op: str, points: float, interval: Interval) -> str:
    lo_ok, hi_ok = claim_bounds(op, points)
    if interval.lo >= lo_ok and interval.hi <= hi_ok:
        return "reproduced"
    if interval.hi < lo_ok or interval.lo > hi_ok:
        return "not reproduced"
    return "inconclusive"


def claim_rule_text(a: str, b: str, op: str, points: float) -> str:
    if op == "within":
        return f"|{a} − {b}| ≤ {points:g}"
    if op == "above":
        return f"{a} − {b} ≥ {points:g}"
    return f"{b} − {a} ≥ {points:g}"


def deviation_chips(items) -> list[dict]:
    """Normalised deviations (``[{kind, text}]``) from a suite entry's list of strings or ``{kind, text}``."""
    out = []
    for item in items or []:
        if isinstance(item, str):
            out.append({"kind": item, "text": DEVIATIONS.get(item, "")})
        else:
            out.append(
                {"kind": item.get("kind", "other"), "text": item.get("text") or DEVIATIONS.get(item.get("kind"), "")}
            )
    return out


def check_deviation(v) -> str | None:
    """Validator for one deviation entry: a vocabulary word, or ``{kind, text}`` (``other`` needs its text)."""
    if isinstance(v, str):
        if v == "other":
            return "'other' needs its text: write {kind: other, text: ...}"
        return None if v in DEVIATIONS else f"must be one of {', '.join(DEVIATIONS)}, not {v!r}"
    if isinstance(v, dict):
        if set(v) - {"kind", "text"}:
            return f"unknown keys {sorted(set(v) - {'kind', 'text'})} (allowed: kind, text)"
        if v.get("kind") not in DEVIATIONS:
            return f"kind must be one of {', '.join(DEVIATIONS)}, not {v.get('kind')!r}"
        if v["kind"] == "other" and not str(v.get("text") or "").strip():
            return "'other' needs its text"
        return None
    return f"must be a vocabulary word or {{kind, text}}, not {type(v).__name__}"
