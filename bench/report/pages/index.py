"""index.html: the overview: the headline, the documents' scoreboard with what reproducing each has cost, the
numbers measured at a document's own setting, the suites and every leaderboard."""

from __future__ import annotations

import math

from bench.report import svg
from bench.report.common import VERDICTS, slug
from bench.report.headline import overview_points
from bench.report.owned import Site


def document_costs(verdict_rows: list[dict], suites: dict, records: list[dict]) -> dict[str, dict]:
    """What reproducing each document has cost and would still cost (issue 18): per document, the wall hours of
    the recorded runs (``duration_s``, by device kind) of every suite that checks one of its numbers or claims,
    and an estimate for the suite's runs without an ``ok`` record (default seeds, no tier): the suite's mean
    measured wall time per epoch on the same backbone and the same training data (``train_subset``) × the run's
    epochs. Runs with nothing comparable measured (no run of that backbone on that much data) are not estimated
    and their suites named. A shared suite counts toward every document it checks."""
    suites_of: dict[str, set] = {}
    for r in verdict_rows:
        if r.get("suite"):
            suites_of.setdefault(str(r.get("document") or ""), set()).add(r["suite"])
    done: dict[str, dict] = {}  # suite -> {"ids": set, "by_backbone": {name: [s]}, "hours": {kind: h}}
    for rec in records:
        spec = rec.get("spec") or {}
        name, dur = spec.get("suite"), rec.get("duration_s")
        if rec.get("_stale") or not isinstance(dur, (int, float)) or not math.isfinite(dur) or dur < 0:
            continue
        d = done.setdefault(name, {"ids": set(), "by_backbone": {}, "hours": {}, "runs": 0})
        kind = (
            "GPU"
            if str((rec.get("env") or {}).get("device") or "").upper().startswith(("CUDA", "GPU", "NVIDIA"))
            else "CPU"
        )
        d["hours"][kind] = d["hours"].get(kind, 0.0) + dur / 3600
        d["runs"] += 1
        if rec.get("status") == "ok":
            d["ids"].add(rec["id"])
            proto = spec.get("protocol") or {}
            epochs = proto.get("epochs")
            if isinstance(epochs, int) and epochs > 0:
                key = ((spec.get("backbone") or {}).get("name"), proto.get("train_subset"))
                d["by_backbone"].setdefault(key, []).append(dur / epochs)
    out = {}
    expanded: dict[str, list | None] = {}
    for doc, names in suites_of.items():
        hours: dict[str, float] = {}
        runs = left_runs = 0
        left_h, unestimated = 0.0, []
        for name in sorted(names):
            d = done.get(name, {"ids": set(), "by_backbone": {}, "hours": {}, "runs": 0})
            for kind, h in d["hours"].items():
                hours[kind] = hours.get(kind, 0.0) + h
            runs += d["runs"]
            if name not in expanded:  # a shared suite checks several documents: expanded once
                suite = suites.get(name)
                try:  # the expansion stale_records made (Suite.seed_parts), each seed's id put in
                    expanded[name] = suite.default_run_ids() if suite is not None else []
                except Exception:  # a suite that cannot be expanded here (it names a plug-in): not estimated
                    expanded[name] = None
            if expanded[name] is None:
                todo, unestimated = [], unestimated + [name]
            else:
                todo = [sp for sp, rid in expanded[name] if rid not in d["ids"]]
            for sp in todo:
                same = d["by_backbone"].get((sp.backbone["name"], sp.protocol.get("train_subset")))
                if not same:
                    if name not in unestimated:
                        unestimated.append(name)
                    continue
                left_h += sum(same) / len(same) * sp.protocol["epochs"] / 3600
                left_runs += 1
        out[doc] = {
            "hours": {k: round(v, 2) for k, v in sorted(hours.items())},
            "runs": runs,
            "left_h": round(left_h, 1),
            "left_runs": left_runs,
            "unestimated": unestimated,
        }
    return out


def scoreboard(verdict_rows: list[dict], documents: dict, costs: dict | None = None) -> list[dict]:
    """Per document (in the documents file's order; ids only in the suites after them): its metadata and how
    many of its numbers and claims are reproduced / not reproduced / inconclusive / not yet run, each count
    with the filtered link to its list on verdicts.html (the not-yet-run ones: the collapsed list below the
    verdict table, which the link opens)."""
    counts: dict[str, dict] = {}
    for r in verdict_rows:
        d = str(r.get("document") or "")
        c = counts.setdefault(d, {v: 0 for v in VERDICTS})
        v = r.get("verdict") if r.get("verdict") in VERDICTS else "not yet run"
        c[v] += 1
    out = []
    for d in list(documents) + sorted(set(counts) - set(documents)):
        c = counts.get(d, {v: 0 for v in VERDICTS})
        out.append(
            {
                "id": d,
                "doc": documents.get(d),
                "total": sum(c.values()),
                "cost": (costs or {}).get(d),
                "counts": [
                    {
                        "verdict": v,
                        "n": c[v],
                        "link": verdicts_link(d, v),
                    }
                    for v in VERDICTS
                ],
                "link": verdicts_link(d),
            }
        )
    return out


def verdicts_link(document: str, verdict: str | None = None) -> str:
    """verdicts.html filtered to a document's numbers and claims (of one verdict). Those not yet run are in
    their own list (table ``verdicts-unrun``, collapsed); a link whose filter names it opens it."""
    if verdict == "not yet run":
        return f"verdicts.html#f.verdicts-unrun.document={document}"
    if verdict:
        return f"verdicts.html#f.verdicts.document={document}&f.verdicts.verdict={verdict.replace(' ', '%20')}"
    return f"verdicts.html#f.verdicts.document={document}&f.verdicts-unrun.document={document}"


# the headline's verdicts as marker shapes (significance is never colour alone)
VERDICT_SHAPES = {
    "better": ("triangle", False),
    "worse": ("triangle-down", False),
    "no difference shown": ("circle", False),
    "baseline": ("square", False),
}


OVERVIEW_X = {
    "time": ("training time as a multiple of conv's (log scale)", "training-time ratio"),
    "macs": ("MACs per image as a multiple of conv's (log scale)", "MAC ratio"),
}


def overview_plot(head: dict, x: str = "time") -> str:
    """Δ top-1 against conv (± half the 95 % interval) by training-time ratio (or MAC ratio: ``x="macs"``), one
    labelled point per family; the marker's shape says the verdict (▲ better, ▼ worse, ● no difference shown,
    ○ too few seeds)."""
    verdict_of = {r["label"]: r["verdict"] for r in head["rows"]}
    xlabel, what = OVERVIEW_X[x]
    pts = []
    for p in overview_points(head, x):
        v = (
            "baseline"
            if p["key"] == "conv" and p["label"].startswith("conv") and p["x"] == 1.0 and p["y"] == 0.0
            else verdict_of.get(p["label"], "")
        )
        shape, hollow = VERDICT_SHAPES.get(v, ("circle", True))
        pts.append(dict(p, shape=shape, hollow=hollow, tip=f"{p['label']} ({v or 'no verdict'})"))
    return svg.scatter(
        pts,
        xlabel,
        "Δ top-1 = family − conv (points)",
        f"Δ top-1 against conv by {what}",
        logx=True,
        zero_line=True,
        h=340,
    )


def boards_index(suite_views: dict) -> list[dict]:
    """One line per leaderboard (the index's table of all of them), with its link on its suite page."""
    boards_index = [
        {
            "suite": v["board"].suite,
            "task": v["board"].task,
            "dataset": v["board"].dataset,
            "protocol": v["board"].protocol.get("name", ""),
            "short": v["board"].setting == "shortened",
            "setting_tag": v["board"].setting_tag,
            "smoke": v["board"].smoke,
            "backbones": sorted(set(v["board"].rows["backbone"])),
            "families": sorted(set(v["board"].rows["family"])),
            "rows": len(v["board"].rows),
            "runs": int(v["board"].rows["n"].sum()),
            "devices": v["board"].devices,
            "device": v["board"].device,
            "link": f"suite-{slug(v['board'].suite)}.html#{v['anchor']}",
        }
        for views in suite_views.values()
        for v in views
    ]
    return boards_index


def write(site: Site, env, ctx: dict) -> None:
    """``ctx``: what index.html shows (headline, suites, boards, families, problems, benchmarks, n_records,
    summary, document_setting, scoreboard, verdict_rows)."""
    site.write(
        "index.html",
        env.get_template("index.html").render(title="convbench leaderboard", depth="", page="index", **ctx),
    )
