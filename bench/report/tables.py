"""Records → tables (pandas): one row per run, then one leaderboard row per (group, backbone, layer row)
with mean ± std over seeds, the documents' numbers beside them, and a verdict per reference and claim."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import pandas as pd

# Tolerance used for verdicts: a document's number is "reproduced" when the measured mean is within
# max(ABS_TOL points, SEED_STD_FACTOR × the std over seeds) of it.
ABS_TOL = 1.0
SEED_STD_FACTOR = 2.0
NOISY_SPREAD = 0.05  # a timing whose repeats spread more than 5 % is flagged as noisy


def protocol_key(spec: dict) -> str:
    blob = json.dumps({"task": spec["task"], "dataset": spec["dataset"], "protocol": spec["protocol"],
                       "overrides": spec.get("overrides", {})}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run record, with the fields the leaderboard needs flattened."""
    rows = []
    for r in records:
        spec = r["spec"]
        timing = r.get("timing", {}) or {}
        params = r.get("params", {}) or {}
        row = {
            "id": r["id"], "suite": r["suite"]["name"], "task": spec["task"]["name"],
            "dataset": spec["dataset"]["name"], "backbone": spec["backbone"]["name"],
            "backbone_options": json.dumps(spec["backbone"].get("options", {}), sort_keys=True),
            "label": r["label"], "family": spec["layer"]["name"], "seed": spec["seed"],
            "status": r["status"], "error": r.get("error"), "group": protocol_key(spec),
            "protocol_name": spec["protocol"].get("name", ""), "overrides": json.dumps(spec.get("overrides", {}),
                                                                                     sort_keys=True),
            "params_learned": params.get("learned"), "params_fixed": params.get("fixed"),
            "params_total": params.get("total"), "macs": r.get("macs"),
            "train_s": timing.get("train_s"), "warmup_epoch_s": timing.get("warmup_epoch_s"),
            "epoch_s": timing.get("epoch_s_median"),
            "throughput": timing.get("throughput_img_s"), "throughput_spread": timing.get("throughput_spread"),
            "latency_ms": timing.get("latency_ms"), "latency_spread": timing.get("latency_spread"),
            "to_threshold_s": (timing.get("to_threshold") or {}).get("seconds"),
            "to_threshold_macs": (timing.get("to_threshold") or {}).get("train_macs"),
            "train_macs": timing.get("train_macs_estimate"),
            "device": (r.get("env") or {}).get("device"), "path": r.get("_path"),
        }
        for k, v in (r.get("metrics") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[f"m:{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt_pm(mean: float | None, std: float | None, fmt: str = ".2f") -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return format(mean, fmt)
    return f"{format(mean, fmt)} ± {format(std, fmt)}"


@dataclass
class Verdict:
    status: str   # reproduced | not reproduced | not yet run | indicative only
    detail: str
    tolerance: str = ""


def reference_verdict(ref: dict, mean: float | None, std: float | None, n: int, comparable: bool) -> Verdict:
    tol = max(ABS_TOL, SEED_STD_FACTOR * (std or 0.0))
    tol_text = f"±{tol:.2f} (max of {ABS_TOL} points and {SEED_STD_FACTOR}× seed std)"
    if mean is None or n == 0:
        return Verdict("not yet run", "no measured run for this row", tol_text)
    diff = mean - ref["value"]
    if not comparable:
        return Verdict("indicative only", f"Δ {diff:+.2f}: shortened or different protocol, not the document's "
                                          f"setting", tol_text)
    if abs(diff) <= tol:
        return Verdict("reproduced", f"Δ {diff:+.2f} within {tol:.2f}", tol_text)
    return Verdict("not reproduced", f"Δ {diff:+.2f} outside {tol:.2f}", tol_text)


def _select(rows: pd.DataFrame, ident: str) -> pd.DataFrame:
    """Rows named ``ident``: a row label, or ``key=value[,key=value]`` matched against backbone options."""
    if "=" not in ident:
        return rows[rows["label"] == ident]
    conds = dict(kv.split("=", 1) for kv in ident.split(","))
    match = rows["backbone_options"].map(
        lambda o: all(str(json.loads(o).get(k.strip())).lower() == v.strip().lower() for k, v in conds.items()))
    return rows[match]


def claim_verdict(claim: dict, rows: pd.DataFrame) -> Verdict:
    """Check a qualitative claim (a vs b: within / above / below by ``points``) on leaderboard rows, within
    each backbone that has both rows (or only ``check.backbone``); it holds when it holds for every one."""
    chk = claim["check"]
    col = f"m:{chk['metric']}"
    if col + ":mean" not in rows.columns:
        return Verdict("not yet run", f"no run measured {chk['metric']}")
    pts = chk["points"]
    results, rule = [], ""
    # rows are named by label, or by backbone options ("learn=chans,kernel=8") when the variants are backbones
    by_options = "=" in chk["a"] or "=" in chk["b"]
    keys = ["backbone", "label"] if by_options else ["backbone", "backbone_options"]
    for (backbone, _), sel in rows.groupby(keys, sort=True):
        if chk.get("backbone") and backbone != chk["backbone"]:
            continue
        a, b = _select(sel, chk["a"]), _select(sel, chk["b"])
        if len(a) != 1 or len(b) != 1 or pd.isna(a[col + ":mean"].iloc[0]) or pd.isna(b[col + ":mean"].iloc[0]):
            continue
        std = lambda r: float(r[col + ":std"].iloc[0]) if col + ":std" in r and pd.notna(r[col + ":std"].iloc[0]) else 0.0
        slack = SEED_STD_FACTOR * max(std(a), std(b))
        diff = float(a[col + ":mean"].iloc[0]) - float(b[col + ":mean"].iloc[0])
        # margin > 0: the rule holds on the means; the verdict is only "not reproduced" when it fails by more
        # than the seed slack, and "inconclusive" in between
        if chk["op"] == "within":
            margin = pts - abs(diff)
            rule = f"|{chk['a']} − {chk['b']}| ≤ {pts}"
        elif chk["op"] == "above":
            margin = diff - pts
            rule = f"{chk['a']} − {chk['b']} ≥ {pts}"
        else:
            margin = -diff - pts
            rule = f"{chk['b']} − {chk['a']} ≥ {pts}"
        status = "reproduced" if margin >= 0 else ("not reproduced" if margin < -slack else "inconclusive")
        results.append((backbone, status, diff, slack))
    if not results:
        return Verdict("not yet run", f"needs measured rows {chk['a']!r} and {chk['b']!r} on one backbone")
    detail = "; ".join(f"{bb}: {chk['a']} − {chk['b']} = {d:+.2f} (seed slack {s:.2f})" for bb, _, d, s in results)
    statuses = {st for _, st, _, _ in results}
    overall = ("not reproduced" if "not reproduced" in statuses else
               "inconclusive" if "inconclusive" in statuses else "reproduced")
    return Verdict(overall, detail, rule + f"; failing by more than {SEED_STD_FACTOR:g}× the seed std = not reproduced, "
                                        "by less = inconclusive")


@dataclass
class Leaderboard:
    suite: str
    task: str
    dataset: str
    group: str
    protocol: dict
    overrides: dict
    rows: pd.DataFrame
    columns: list = field(default_factory=list)
    references: list = field(default_factory=list)
    claims: list = field(default_factory=list)
    devices: list = field(default_factory=list)
    smoke: bool = False


AGG_FIELDS = ["params_learned", "params_fixed", "params_total", "macs", "train_s", "warmup_epoch_s", "epoch_s",
              "throughput", "throughput_spread", "latency_ms", "latency_spread", "to_threshold_s",
              "to_threshold_macs", "train_macs"]


def leaderboards(runs: pd.DataFrame, records: list[dict], suites: dict, tasks) -> list[Leaderboard]:
    """Group runs into leaderboards (suite × task × data set × protocol) with per-row aggregates."""
    out = []
    if runs.empty:
        return out
    by_id = {r["id"]: r for r in records}
    for (suite, group), df in runs.groupby(["suite", "group"], sort=True):
        first = by_id[df["id"].iloc[0]]["spec"]
        suite_info = suites.get(suite)
        task_name = first["task"]["name"]
        task = tasks.get(task_name) if task_name in tasks else None
        ok = df[df["status"] == "ok"]
        metric_cols = sorted(c for c in df.columns if c.startswith("m:") and df[c].notna().any())
        agg_rows = []
        for (backbone, bopts, label), g in df.groupby(["backbone", "backbone_options", "label"], sort=False):
            good = g[g["status"] == "ok"]
            row = {"backbone": backbone, "backbone_options": bopts, "label": label, "family": g["family"].iloc[0],
                   "n": len(good), "failed": int((g["status"] != "ok").sum()),
                   "errors": [e for e in g["error"].dropna().tolist()][:3],
                   "run_ids": g["id"].tolist(), "seeds": sorted(g["seed"].tolist())}
            for c in metric_cols:
                vals = good[c].dropna()
                row[c + ":mean"] = float(vals.mean()) if len(vals) else None
                row[c + ":std"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
            for c in AGG_FIELDS:
                vals = good[c].dropna() if c in good else pd.Series(dtype=float)
                row[c] = float(vals.mean()) if len(vals) else None
            row["noisy"] = bool(any((good[c].dropna() > NOISY_SPREAD).any()
                                    for c in ("throughput_spread", "latency_spread") if c in good))
            agg_rows.append(row)
        rows = pd.DataFrame(agg_rows)
        primary = f"m:{task.primary}" if task else (metric_cols[0] if metric_cols else None)
        comparable = not first.get("overrides")
        refs, claims = [], []
        if suite_info is not None:
            for ref in suite_info.references:
                match = rows[(rows["label"] == ref["row"]) &
                             ((rows["backbone"] == ref["backbone"]) if ref["backbone"] else True)]
                metric = f"m:{ref['metric']}"
                mean = std = None
                n = 0
                if not match.empty and metric + ":mean" in match:
                    best = match.iloc[0]
                    mean, std, n = best[metric + ":mean"], best.get(metric + ":std"), int(best["n"])
                    if mean is not None and isinstance(mean, float) and math.isnan(mean):
                        mean = None
                v = reference_verdict(ref, mean, std, n, comparable)
                refs.append({**ref, "measured": mean, "measured_std": std, "n": n,
                             "diff": (mean - ref["value"]) if mean is not None else None,
                             "verdict": v.status, "verdict_detail": v.detail, "tolerance": v.tolerance})
            for claim in suite_info.claims:
                v = claim_verdict(claim, rows)
                claims.append({**claim, "verdict": v.status, "verdict_detail": v.detail, "rule": v.tolerance,
                               "comparable": comparable})
        if primary and primary + ":mean" in rows:
            rows = rows.sort_values(primary + ":mean", ascending=False, na_position="last")
        smoke = bool(task and first["dataset"]["name"] in getattr(task, "smoke_datasets", ()))
        out.append(Leaderboard(suite=suite, task=task_name, dataset=first["dataset"]["name"], group=group,
                               protocol=first["protocol"], overrides=first.get("overrides", {}), rows=rows,
                               columns=list(task.columns) if task else [], references=refs, claims=claims,
                               devices=sorted(ok["device"].dropna().unique().tolist()), smoke=smoke))
    return out


def fmt_pm(mean, std, fmt=".2f"):
    return _fmt_pm(mean, std, fmt)
