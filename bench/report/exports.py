"""The site's downloads: each leaderboard as CSV and JSON (``data/<suite>-<task>-<dataset>-<group>.csv|json``)
and every reference and claim as ``data/verdicts.json`` / ``.csv``."""

from __future__ import annotations

import math

import pandas as pd

from bench.records.records import json_bytes
from bench.report.common import clean, isnum
from bench.report.owned import Site
from bench.report.rules import VERDICT_RULES


def board_downloads(board, view: dict, site: Site, stem: str) -> dict:
    cols = ["backbone", "backbone_options", "label", "family", "n", "failed"]
    cols += [c for c in board.rows.columns if c.startswith("m:")]
    cols += [
        "params_learned",
        "params_fixed",
        "params_total",
        "macs",
        "train_s",
        "timed_n",
        "timing_path",
        "to_threshold_s",
        "to_threshold_n",
        "throughput",
        "latency_ms",
        "noisy",
    ]
    cols = [c for c in cols if c in board.rows.columns]
    df = board.rows[cols].copy()
    # each row's document numbers, verdicts (mean ± 95 % half-width) and deviations, one cell each
    refs = {(r["backbone"], r["backbone_options"], r["label"]): r.get("refs") or [] for r in view["rows"]}
    keys = list(zip(board.rows["backbone"], board.rows["backbone_options"], board.rows["label"]))
    df["verdicts"] = [
        "; ".join(
            f"{x['document']} {x['where']} {x['value']:g}: {x['verdict']}"
            + (f" ({x['interval']['text']}, n={x['n']})" if x.get("interval") else "")
            for x in refs.get(k, [])
        )
        for k in keys
    ]
    df["deviations"] = [
        "; ".join(
            sorted(
                {
                    d["kind"] + (f": {d['text']}" if d["kind"] == "other" else "")
                    for x in refs.get(k, [])
                    for d in x.get("deviations") or []
                }
            )
        )
        for k in keys
    ]
    # a downloaded CSV stands alone: each row names its suite, setting, epochs and device, the document's value,
    # Δ = measured − document and the verdict with its reason (one entry per document number, "; "-joined)
    df.insert(0, "suite", board.suite)
    df["setting"] = board.setting
    df["tier"] = board.setting_tag.split(": ", 1)[1] if board.setting_tag.startswith("shortened: ") else ""
    df["epochs"] = board.protocol.get("epochs")
    df["device"] = board.device or "; ".join(board.devices)
    for col, key, fmt in (
        ("document_value", "value", "g"),
        ("delta_measured_minus_document", "diff", "+.3f"),
        ("verdict", "verdict", ""),
        ("verdict_reason", "verdict_detail", ""),
    ):
        df[col] = [
            "; ".join(
                format(x[key], fmt) if fmt and isnum(x.get(key)) else str(x.get(key) or "") for x in refs.get(k, [])
            )
            for k in keys
        ]
    # floats rounded to what a measurement supports (metrics: 3 decimals; seconds: 2; images/s: 1)
    for c in df.columns:
        if df[c].dtype.kind == "f":
            whole = df[c].dropna()
            if c in ("params_learned", "params_fixed", "params_total", "macs") and (whole == whole.round()).all():
                df[c] = df[c].astype("Int64")  # counts print as counts (54879872, not 54879872.0)
            else:
                df[c] = df[c].round(3 if c.startswith("m:") else 1 if c == "throughput" else 2)
    csv_rel, json_rel = f"data/{stem}.csv", f"data/{stem}.json"
    site.write(csv_rel, df.to_csv(index=False))
    # the JSON's rows are the CSV's (same columns, same rounding), each document number also as a list entry
    per_ref = [
        [
            {
                "document": x.get("document"),
                "where": x.get("where"),
                "metric": x.get("metric"),
                "document_value": x.get("value"),
                "delta_measured_minus_document": round(x["diff"], 3) if isnum(x.get("diff")) else None,
                "verdict": x.get("verdict"),
                "verdict_reason": x.get("verdict_detail"),
            }
            for x in refs.get(k, [])
        ]
        for k in keys
    ]
    json_rows = [
        dict(
            {
                c: (None if v is pd.NA or (isinstance(v, float) and not math.isfinite(v)) else v)
                for c, v in zip(df.columns, vals)
            },
            references=ref,
        )
        for vals, ref in zip(df.astype(object).to_numpy().tolist(), per_ref)
    ]
    payload = {
        "suite": board.suite,
        "task": board.task,
        "dataset": board.dataset,
        "protocol": board.protocol,
        "overrides": board.overrides,
        "devices": board.devices,
        "columns": {
            "delta_measured_minus_document": "Δ = measured − document (points)",
            "setting": "document / shared / shortened",
            "tier": "the declared tier, if shortened",
        },
        "rows": clean(json_rows),
        "references": clean([{k: v for k, v in r.items()} for r in board.references]),
        "claims": clean(board.claims),
    }
    site.write(json_rel, json_bytes(payload))
    return {"csv": csv_rel, "json": json_rel}


VERDICT_FIELDS = (
    "kind",
    "suite",
    "leaderboard",
    "document",
    "where",
    "row",
    "backbone",
    "metric",
    "epochs",
    "value",
    "std",
    "runs",
    "tolerance",
    "measured",
    "measured_std",
    "n",
    "interval_half",
    "interval_lo",
    "interval_hi",
    "interval_df",
    "setting",
    "tier",
    "verdict",
    "verdict_detail",
    "deviations",
    "id",
    "op",
    "text",
    "devices",
)


def verdict_row(item: dict) -> dict:
    """One reference or claim as a flat row of the verdict downloads (interval and deviations included)."""
    iv = item.get("interval") or {}
    row = {k: item.get(k) for k in VERDICT_FIELDS}
    row.update(
        interval_half=iv.get("half"), interval_lo=iv.get("lo"), interval_hi=iv.get("hi"), interval_df=iv.get("df")
    )
    if item.get("kind") == "claim":
        row["value"] = item.get("check", {}).get("points")
        row["op"] = item.get("check", {}).get("op")
        if iv:
            row["measured"] = iv.get("centre")
            n = iv.get("n")
            row["n"] = "/".join(map(str, n)) if isinstance(n, list) else n
    row["deviations"] = [
        d["kind"] + (f": {d['text']}" if d["kind"] == "other" else "") for d in item.get("deviations") or []
    ]
    return row


def write_verdicts(site: Site, rows: list[dict]) -> None:
    """``data/verdicts.json`` and ``.csv``: the flat rows of :func:`verdict_row`, with the verdict rules' text."""
    site.write("data/verdicts.json", json_bytes({"rules": VERDICT_RULES, "items": clean(rows)}))
    site.write(
        "data/verdicts.csv",
        pd.DataFrame(
            [{k: ("; ".join(map(str, v)) if isinstance(v, list) else v) for k, v in row.items()} for row in rows],
            columns=list(VERDICT_FIELDS),
        ).to_csv(index=False),
    )
