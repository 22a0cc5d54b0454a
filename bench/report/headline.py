"""The headline comparison: every layer family against the plain convolution under the harness's shared fast
protocol (suites/fast-cifar-v2.yaml, issue 22). For each family: its top-1 and Δ top-1 against the conv row with
the 95 % Welch interval of the difference of means, MAC and training-time ratios to conv, FGSM accuracy at
ε = 8/255, how many seeds are done (a family whose run would take over 3 hours here is planned for seed 0
only), and what the rest would cost (measured time per run × seeds left; a family
with no run yet is estimated from the conv run's time × the family's step-time ratio in
results/benchmarks/precision_step.json when that benchmark exists). Pure functions on the report's leaderboard
views; no torch.
"""

from __future__ import annotations


from bench.numbers import isnum
from bench.report.verdicts import CONFIDENCE as LEVEL, MIN_SEEDS, difference_interval

#: the suite whose leaderboard is the site's headline comparison (the first column of "Which family wins where")
HEADLINE_SUITE = "fast-cifar-v2"
#: a family whose run would take longer than this (training seconds) is planned for seed 0 only (issue 22)
SEED_CAP_S = 3 * 3600


def welch_interval(m1, s1, n1, m2, s2, n2):
    """(Δ, low, high) of mean1 − mean2 at 95 %: the site's own Welch interval
    (:func:`bench.report.verdicts.difference_interval`); None without two seeds and a spread on each side."""
    if not all(isnum(v) for v in (m1, s1, m2, s2)):
        return None
    iv = difference_interval(m1, s1, n1, m2, s2, n2)
    return None if iv.half is None else (iv.centre, iv.lo, iv.hi)


def _mean(row: dict, key: str):
    m = row.get(f"m:{key}:mean")
    s = row.get(f"m:{key}:std")
    return (m if isnum(m) else None), (s if isnum(s) else None)


def _ratio(a, b):
    return a / b if isnum(a) and isnum(b) and b > 0 else None


def verdict(interval, n: int = MIN_SEEDS, n_conv: int = MIN_SEEDS) -> str:
    """'better' / 'worse' when the 95 % interval of Δ excludes 0, 'no difference shown' when it straddles it;
    like every verdict on the site it needs ``MIN_SEEDS`` seeds on each side (the interval is shown from two)."""
    if interval is None or min(n, n_conv) < MIN_SEEDS:
        return f"needs {MIN_SEEDS} seeds"
    _, lo, hi = interval
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no difference shown"


def headline(
    suite_views: dict, suites: dict, step_ratios: dict | None = None, suite_name: str = HEADLINE_SUITE
) -> dict | None:
    """The headline table for ``suite_name`` (None when the suite has no leaderboard yet)."""
    views = suite_views.get(suite_name) or []
    view = next((v for v in views if v["metric_cols"]), None)
    suite = suites.get(suite_name)
    if view is None or suite is None:
        return None
    rows = [r for r in view["rows"]]
    conv = next((r for r in rows if r["label"] == "conv" and _mean(r, "top1")[0] is not None), None)
    seeds = len(suite.seeds)
    by_label = {r["label"]: r for r in rows}
    cm, cs = _mean(conv, "top1") if conv else (None, None)
    cn = int(conv["n"] or 0) if conv else 0
    conv_time = conv.get("train_s") if conv else None
    out, done_s, left_s, estimated = [], 0.0, 0.0, False
    for layer in suite.layers:
        label = layer["label"]
        r = by_label.get(label)
        n = int(r["n"] or 0) if r else 0
        m, s = _mean(r, "top1") if r else (None, None)
        train_s = r.get("train_s") if r else None
        interval = None
        if r is not None and r is not conv and m is not None:
            interval = welch_interval(m, s, n, cm, cs, cn)
        per_run, est = (train_s, False) if isnum(train_s) else (None, False)
        if per_run is None and isnum(conv_time) and step_ratios and isnum(step_ratios.get(label)):
            per_run, est = conv_time * step_ratios[label], True
        planned = 1 if per_run is not None and per_run > SEED_CAP_S else seeds
        if isnum(train_s):
            done_s += r["train_s_sum"] if isnum(r.get("train_s_sum")) else train_s * n
        if per_run is not None:
            left_s += per_run * max(0, planned - n)
            estimated |= est and planned > n
        fg = _mean(r, "fgsm8")[0] if r else None
        out.append(
            {
                "label": label,
                "family": layer["name"],
                "n": n,
                "seeds": planned,
                "capped": planned < seeds,
                "mean": m,
                "std": s,
                "delta": interval[0]
                if interval
                else (m - cm if m is not None and cm is not None and r is not conv else None),
                "lo": interval[1] if interval else None,
                "hi": interval[2] if interval else None,
                "verdict": "baseline"
                if r is conv and r is not None
                else ("not yet run" if not n else verdict(interval, n, cn)),
                "macs": _ratio(r.get("macs"), conv.get("macs")) if r and conv else None,
                "time": _ratio(train_s, conv_time) if r and conv else None,
                "timed_n": int(r.get("timed_n") or n) if r else 0,
                "fgsm8": fg,
                "train_s": train_s,
                "per_run_s": per_run,
                "estimated": est,
                "run_ids": list(r.get("run_ids") or []) if r else [],
            }
        )
    out.sort(key=lambda x: (x["label"] != "conv", x["mean"] is None, -(x["mean"] or 0), x["label"]))
    return {
        "suite": suite_name,
        "link": f"suite-{suite_name}.html#{view['anchor']}",
        "rows": out,
        "device": view["board"].device,
        "conv_mean": cm,
        "conv_std": cs,
        "conv_n": cn,
        "protocol": view["board"].protocol.get("name", ""),
        "level": LEVEL,
        "cpu_hours_done": done_s / 3600,
        "cpu_hours_left": left_s / 3600,
        "left_estimated": estimated,
        "families_done": sum(1 for x in out if x["n"] >= 2),
        "families": len(out),
    }


def step_ratios_from(benchmarks: list[dict]) -> dict:
    """Per row label: the family's bf16 step time over conv's, from the precision_step benchmark (if any)."""
    bench = next((b for b in benchmarks if b.get("source") == "benchmarks/precision_step.py"), None)
    if not bench:
        return {}
    times = {r.get("family"): r.get("bf16-cl_s") for r in bench.get("rows", []) if isinstance(r, dict)}
    base = times.get("conv")
    return {k: v / base for k, v in times.items() if isnum(v) and isnum(base) and base > 0}


def overview_points(head: dict, x: str = "time") -> list[dict]:
    """Points for the overview plot: Δ top-1 against the training-time ratio (``x="time"``) or the MAC ratio
    (``x="macs"``) to conv, one per measured family."""
    points = [
        {
            "x": r[x],
            "y": r["delta"],
            "label": r["label"],
            "key": r["label"],
            "yerr": (r["hi"] - r["lo"]) / 2 if r["lo"] is not None else None,
        }
        for r in head["rows"]
        if r["delta"] is not None and isnum(r[x])
    ]
    if points:  # the baseline itself, at Δ 0 and time × 1, as the reference every other point is read against
        points.insert(0, {"x": 1.0, "y": 0.0, "label": "conv (baseline)", "key": "conv", "yerr": None})
    return points
