"""families.html: the layer families (document, section, fixed and learned parameters, defaults), and the
family × leaderboard summary the index and the families page show."""

from __future__ import annotations

import math

from bench.report.common import isnum, slug
from bench.report.headline import HEADLINE_SUITE
from bench.report.owned import Site


def family_rows(layers) -> list[dict]:
    """The registered layer families (``catalog().layers``) as the page's rows."""
    return [
        {
            "name": f.name,
            "document": f.document,
            "section": f.section,
            "fixed": f.fixed,
            "learned": f.learned,
            "defaults": f.defaults,
            "summary": f.summary,
        }
        for f in layers
    ]


def _mean_std(row: dict, key: str):
    m, s = row.get(f"m:{key}:mean"), row.get(f"m:{key}:std")
    return (m if isnum(m) else None), (s if isnum(s) else None)


def _ratio(a, b):
    return a / b if isnum(a) and isnum(b) and b > 0 else None


def family_summary(suite_views: dict) -> dict:
    """Family × (suite, backbone, leaderboard): each family's primary metric relative to the conv row of the
    same leaderboard and backbone (Δ points with the combined seed std and n), with MAC and training-time
    ratios to that conv row. A family with several rows shows its best one (named). Leaderboards without a
    measured conv row are listed apart: nothing to be relative to."""
    columns, cells, families, no_conv = [], {}, set(), []
    for suite in sorted(suite_views, key=lambda name: (name != HEADLINE_SUITE, name)):  # the headline first
        for v in suite_views[suite]:
            b = v["board"]
            if not v["metric_cols"]:
                continue
            key, mlabel, hib, fmt = v["metric_cols"][0]
            groups: dict[tuple, list] = {}
            for r in v["rows"]:
                groups.setdefault((r["backbone"], r["backbone_options"]), []).append(r)
            multi = {bb for bb, _ in groups if sum(1 for g in groups if g[0] == bb) > 1}
            for (backbone, bopts), rows in groups.items():
                convs = [r for r in rows if r["family"] == "conv" and _mean_std(r, key)[0] is not None]
                convs.sort(key=lambda r: (r["label"] != "conv", r["label"]))
                head = backbone + (f" {bopts}" if backbone in multi else "")
                link = f"suite-{slug(suite)}.html#{v['anchor']}"
                if not convs:
                    if not any(n["link"] == link and n["backbone"] == backbone for n in no_conv):
                        no_conv.append({"suite": suite, "backbone": backbone, "link": link})
                    continue
                conv = convs[0]
                cm, cs = _mean_std(conv, key)
                col = {
                    "id": f"{suite}|{v['anchor']}|{backbone}|{bopts}",
                    "suite": suite,
                    "backbone": head,
                    "dataset": b.dataset,
                    "metric": mlabel,
                    "hib": bool(hib),
                    "link": link,
                    "device": b.device,
                    "short": b.setting == "shortened",
                    "setting_tag": b.setting_tag,
                    "smoke": b.smoke,
                    "protocol": b.protocol.get("name", ""),
                    "conv": conv["label"],
                    "conv_mean": cm,
                    "conv_std": cs,
                    "conv_n": int(conv["n"] or 0),
                }
                columns.append(col)
                by_family: dict[str, list] = {}
                for r in rows:
                    by_family.setdefault(r["family"], []).append(r)
                for fam, frows in by_family.items():
                    families.add(fam)
                    measured = [r for r in frows if _mean_std(r, key)[0] is not None and r is not conv]
                    if fam == "conv":  # the conv family's cell is the baseline itself (its other rows: count)
                        best = conv
                    elif not measured:
                        cells[(fam, col["id"])] = {
                            "state": "failed",
                            "n": 0,
                            "failed": sum(int(r["failed"] or 0) for r in frows),
                        }
                        continue
                    else:
                        best = max(measured, key=lambda r: _mean_std(r, key)[0] * (1 if hib else -1))
                    m, s = _mean_std(best, key)
                    delta = m - cm
                    spread = math.hypot(s, cs) if s is not None and cs is not None else None
                    signed = delta if hib else -delta
                    if best is conv:
                        tone = "base"
                    elif spread is not None and abs(signed) > 2 * spread:
                        tone = "better" if signed > 0 else "worse"
                    elif signed > 0:
                        tone = "better-weak"
                    elif signed < 0:
                        tone = "worse-weak"
                    else:
                        tone = "same"
                    cells[(fam, col["id"])] = {
                        "state": "ok",
                        "label": best["label"],
                        "title": best.get("title") or best["label"],
                        "mean": m,
                        "std": s,
                        "n": int(best["n"] or 0),
                        "delta": delta,
                        "spread": spread,
                        "tone": tone,
                        "rows": len(frows),
                        "fmt": fmt,
                        "macs": _ratio(best.get("macs"), conv.get("macs")),
                        "time": _ratio(best.get("train_s"), conv.get("train_s")),
                    }

    # a column where no family but conv has a measured cell compares nothing: collapsed to a count (an expander
    # lists them), and a family left without any cell goes with it
    def compares(c):
        return any(fam != "conv" and (cells.get((fam, c["id"])) or {}).get("state") == "ok" for fam in families)

    conv_only = [c for c in columns if not compares(c)]
    columns = [c for c in columns if compares(c)]
    fam_order = sorted(families, key=lambda f: (f != "conv", f))
    rows = [{"family": f, "cells": [cells.get((f, c["id"])) for c in columns]} for f in fam_order]
    rows = [r for r in rows if any(cell is not None for cell in r["cells"])]
    return {"columns": columns, "rows": rows, "no_conv": no_conv, "conv_only": conv_only}


def write(site: Site, env, families: list[dict], summary: dict) -> None:
    site.write(
        "families.html",
        env.get_template("families.html").render(
            title="convbench: layer families", depth="", page="families", families=families, summary=summary
        ),
    )
