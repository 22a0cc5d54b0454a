"""Leaderboards: the aggregated rows of each (suite × task × data set × protocol × device)
(:mod:`bench.report.aggregate`) with the documents' numbers matched to their rows and a verdict per reference and
claim (:mod:`bench.report.rules`), sorted by the task's primary metric."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.report.aggregate import _missing, aggregate_rows, board_frames
from bench.report.rules import classify_setting, claim_verdict, reference_verdict
from bench.report.verdicts import deviation_chips


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
    records: list = field(default_factory=list)  # the same rows, in the same order, as plain dicts (None: missing)
    references: list = field(default_factory=list)
    claims: list = field(default_factory=list)
    devices: list = field(default_factory=list)
    smoke: bool = False
    setting: str = "shared"  # document | shared | shortened: what this leaderboard's runs are
    setting_tag: str = "shared"  # with the tier's name when shortened to a declared tier
    device: str = ""  # the one device (env.device) every run of this leaderboard was measured on
    device_split: bool = False  # the suite's runs under this protocol were split over several devices


def leaderboards(
    runs: pd.DataFrame, records: list[dict], suites: dict, tasks, stale: dict | set | None = None
) -> list[Leaderboard]:
    """Group runs into leaderboards (suite × task × data set × protocol) with per-row aggregates. Records in
    ``stale`` (default: :func:`bench.report.aggregate.stale_records`) are left out of every aggregate."""
    out = []
    by_id = {r["id"]: r for r in records}
    for suite, group, device, df, n_devices in board_frames(runs, records, suites, stale):
        first = by_id[df["id"].iloc[0]]["spec"]
        suite_info = suites.get(suite)
        task_name = first["task"]["name"]
        task = tasks.get(task_name) if task_name in tasks else None
        agg_rows, metric_cols, ok = aggregate_rows(df, by_id)
        rows = pd.DataFrame(agg_rows)
        primary = f"m:{task.primary}" if task else (metric_cols[0] if metric_cols else None)
        refs, claims = [], []
        opts = first["task"].get("options") or {}  # tells apart tiers with the same overrides (faces grid)
        if suite_info is not None:
            refs = [_reference(ref, agg_rows, suite_info, first["protocol"], opts) for ref in suite_info.references]
            claims = [_claim(claim, agg_rows, suite_info, first["protocol"], opts) for claim in suite_info.claims]
        if primary and primary + ":mean" in rows:
            rows = rows.sort_values(primary + ":mean", ascending=False, na_position="last")
        row_dicts = [agg_rows[i] for i in rows.index]  # pandas' to_dict costs a call per column and row
        smoke = bool(task and first["dataset"]["name"] in getattr(task, "smoke_datasets", ()))
        # the leaderboard's own setting: at epochs a reference or claim names (003 Table 1's 1-epoch column),
        # a run of fewer epochs than the suite protocol is that document setting, not a shortened one
        named = {r.get("epochs") for r in (suite_info.references if suite_info else [])} | {
            c["check"].get("epochs") for c in (suite_info.claims if suite_info else [])
        }
        epochs = first["protocol"].get("epochs")
        board_setting = classify_setting(suite_info, first["protocol"], epochs if epochs in named else None, opts)
        out.append(
            Leaderboard(
                suite=suite,
                task=task_name,
                dataset=first["dataset"]["name"],
                group=group,
                protocol=first["protocol"],
                overrides=first.get("overrides", {}),
                rows=rows,
                records=row_dicts,
                columns=list(task.columns) if task else [],
                references=refs,
                claims=claims,
                devices=sorted(ok["device"].dropna().unique().tolist()),
                smoke=smoke,
                device=device,
                device_split=n_devices > 1,
                setting=board_setting.kind,
                setting_tag=board_setting.tag,
            )
        )
    return out


def _deviations(suite_info, entry: dict) -> list[dict]:
    return deviation_chips(list(getattr(suite_info, "deviations", []) or []) + list(entry.get("deviations") or []))


def _reference(ref: dict, row_recs: list[dict], suite_info, protocol: dict, task_options: dict | None = None) -> dict:
    """A suite reference matched to its leaderboard row (its label, on its backbone if named), with its verdict."""
    match = [
        r for r in row_recs if r["label"] == ref["row"] and (not ref["backbone"] or r["backbone"] == ref["backbone"])
    ]
    metric = f"m:{ref['metric']}"
    mean = std = None
    n = 0
    if match and metric + ":mean" in match[0]:
        best = match[0]
        mean, std, n = best[metric + ":mean"], best.get(metric + ":std"), int(best["n"])
        if _missing(mean):
            mean = None
    setting = classify_setting(suite_info, protocol, ref.get("epochs"), task_options)
    v = reference_verdict(ref, mean, std, n, setting, match[0] if match else None)
    if setting.other_epochs:  # no run at the number's epochs: nothing measured for it here
        mean = std = None
        n = 0
    return {
        **ref,
        "setting_text": ref["setting"],
        "setting": setting.kind,
        "tier": setting.tier,
        "setting_tag": setting.tag,
        "measured": mean,
        "measured_std": std,
        "n": n,
        "diff": (mean - ref["value"]) if mean is not None else None,
        "verdict": v.status,
        "verdict_detail": v.detail,
        "tolerance_text": v.tolerance,
        "interval": v.interval,
        "interval_half": (v.interval or {}).get("half"),
        "deviations": _deviations(suite_info, ref),
    }


def _claim(claim: dict, row_recs: list[dict], suite_info, protocol: dict, task_options: dict | None = None) -> dict:
    """A suite claim checked on a leaderboard's rows."""
    setting = classify_setting(suite_info, protocol, claim["check"].get("epochs"), task_options)
    v = claim_verdict(claim, row_recs, setting)
    return {
        **claim,
        "verdict": v.status,
        "verdict_detail": v.detail,
        "rule": v.tolerance,
        "comparable": setting.kind == "document",
        "setting": setting.kind,
        "tier": setting.tier,
        "setting_tag": setting.tag,
        "interval": v.interval,
        "compared": v.compared,
        "deviations": _deviations(suite_info, claim),
    }
