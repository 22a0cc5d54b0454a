"""verdicts.html: every document number and claim of every suite, once per leaderboard it was checked on (or
once, 'not yet run'), with the measured-against-document plot; its rows are also the verdict downloads."""

from __future__ import annotations

from markupsafe import Markup

from bench.report import svg
from bench.report.common import isnum, slug
from bench.report.exports import verdict_row, write_verdicts
from bench.report.owned import Site
from bench.report.verdicts import deviation_chips


def unmatched_refs(suite, views) -> list:
    """References of a suite that no leaderboard has run yet (shown as 'not yet run')."""
    if suite is None:
        return []
    if views:
        return []
    return [
        dict(
            r,
            setting_text=r["setting"],
            setting=suite.setting,
            tier=None,
            setting_tag=suite.setting,
            verdict="not yet run",
            verdict_detail="no run of this suite yet",
            deviations=deviation_chips(list(suite.deviations) + list(r.get("deviations") or [])),
        )
        for r in suite.references
    ]


def unrun_claims(suite) -> list:
    """Claims of a suite that no leaderboard has run yet (shown as 'not yet run')."""
    return [
        dict(
            c,
            verdict="not yet run",
            verdict_detail="no run of this suite yet",
            rule="",
            comparable=True,
            setting=suite.setting,
            tier=None,
            setting_tag=suite.setting,
            deviations=deviation_chips(list(suite.deviations) + list(c.get("deviations") or [])),
        )
        for c in suite.claims
    ]


def verdict_items(suites: dict, suite_views: dict) -> list[dict]:
    """Every reference and claim of every suite, once per leaderboard it was checked on (or once, 'not yet
    run'), with its suite, leaderboard anchor and devices."""
    items = []
    for name in sorted(set(suites) | set(suite_views)):
        views, suite = suite_views.get(name, []), suites.get(name)
        for v in views:
            b = v["board"]
            for r in b.references:
                items.append(dict(r, kind="reference", suite=name, leaderboard=v["anchor"], devices=b.devices))
            for c in b.claims:
                items.append(
                    dict(
                        c,
                        kind="claim",
                        suite=name,
                        leaderboard=v["anchor"],
                        devices=b.devices,
                        metric=c["check"]["metric"],
                        epochs=c["check"].get("epochs"),
                    )
                )
        if not views and suite is not None:
            for r in unmatched_refs(suite, views):
                items.append(dict(r, kind="reference", suite=name, leaderboard="", devices=[]))
            for c in unrun_claims(suite):
                items.append(
                    dict(
                        c,
                        kind="claim",
                        suite=name,
                        leaderboard="",
                        devices=[],
                        metric=c["check"]["metric"],
                        epochs=c["check"].get("epochs"),
                    )
                )
    return items


def build(site: Site, suites: dict, suite_views: dict) -> tuple[list[dict], list[dict]]:
    """Writes ``data/verdicts.json`` and ``.csv`` (:func:`bench.report.exports.write_verdicts`) and returns the
    page's rows and the items measured at a document's own setting (for the index's first table)."""
    items = verdict_items(suites, suite_views)
    rows = [verdict_row(item) for item in items]
    write_verdicts(site, rows)
    shown = [
        dict(
            row,
            link=f"suite-{slug(row['suite'])}.html" + (f"#{row['leaderboard']}" if row["leaderboard"] else ""),
            chips=item.get("deviations") or [],
            diff=_diff(row),
        )
        for item, row in zip(items, rows)
    ]
    document_setting = [
        dict(
            row,
            link=f"suite-{slug(row['suite'])}.html#{row['leaderboard']}",
            deviation_chips=item.get("deviations") or [],
            diff=(row["measured"] - row["value"])
            if row.get("measured") is not None and row.get("value") is not None
            else None,
        )
        for item, row in zip(items, rows)
        if row["setting"] == "document"
        and row["leaderboard"]
        and (row.get("measured") is not None or row["verdict"] in ("reproduced", "not reproduced"))
    ]
    return shown, document_setting


def _diff(row: dict):
    """Δ = measured − document for a document number (a claim's measured value is already a difference)."""
    if row.get("kind") != "reference" or not isnum(row.get("measured")) or not isnum(row.get("value")):
        return None
    return row["measured"] - row["value"]


VERDICT_COLORS = {"reproduced": "#1a7f37", "not reproduced": "#c62828", "inconclusive": "#1f5fbf"}


def verdict_plot(verdict_rows: list[dict]) -> str:
    """Measured against the document's value for every document number with a measurement, coloured and
    shaped by verdict, with the diagonal y = x (on it: measured = document)."""
    pts = []
    for r in verdict_rows:
        if r.get("kind") != "reference" or not isnum(r.get("measured")) or not isnum(r.get("value")):
            continue
        v = r.get("verdict") or ""
        shape = {"reproduced": "circle", "not reproduced": "cross"}.get(v, "diamond")
        label = f"{r.get('row') or r['document']} ({r['suite']})"
        pts.append(
            {
                "x": r["value"],
                "y": r["measured"],
                "label": label,
                "key": label,
                "shape": shape,
                "color": VERDICT_COLORS.get(v, "#555"),
                "tip": f"{label}, {r.get('metric') or ''} ({r.get('where') or ''}): {v}; "
                f"document {r['value']:g}, Δ = measured − document {r['measured'] - r['value']:+.2f}",
            }
        )
    return svg.scatter(
        pts,
        "document's value",
        "measured (mean of seeds)",
        "measured against the document's value",
        logx=False,
        diagonal=True,
        w=560,
        h=420,
    )


def write(site: Site, env, verdict_rows: list[dict]) -> None:
    site.write(
        "verdicts.html",
        env.get_template("verdicts.html").render(
            title="convbench: document numbers and claims",
            depth="",
            page="verdicts",
            verdict_rows=verdict_rows,
            verdict_plot=Markup(verdict_plot(verdict_rows)),
        ),
    )
