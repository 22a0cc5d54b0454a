"""Tables → static site: ``site/index.html``, one page per suite, one page that draws any run from its record
(:mod:`bench.report.runpage`), CSV/JSON downloads.
Works opened straight from disk (no CDN, no server); every text from a suite or record is escaped."""

from __future__ import annotations

import hashlib
import json
import os
import math
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from bench.documents import DOCUMENTS_FILE, load_documents
from bench.errors import BenchError
from bench.records import json_bytes, load_records
from bench.report import svg
from bench.report.headline import HEADLINE_SUITE, headline, overview_points, step_ratios_from
from bench.report.mdtext import md_inline
from bench.report.owned import Site
from bench.report.runpage import SHARD_DIGITS, run_href, write_run_data
from bench.report.aggregate import NOISY_SPREAD, fmt_pm, runs_frame, stale_records
from bench.report.rules import VERDICT_RULES
from bench.report.tables import leaderboards
from bench.report.verdicts import DEVIATIONS, MIN_SEEDS, deviation_chips

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not yet run")


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates cached in ``$BENCH_CACHE/jinja2`` (keyed by each template's source checksum, so an
    edited template recompiles): compiling them is a tenth of a report's wall time. None if not writable."""
    from bench.cache import cache_root

    folder = os.path.join(cache_root(), "jinja2")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(folder) if os.access(folder, os.W_OK) else None


def _env(documents: dict | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.report", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["num"] = _num
    env.filters["si"] = _si
    env.filters["pm"] = lambda pair, fmt=".2f": fmt_pm(pair[0], pair[1], fmt)
    env.filters["chips"] = deviation_chips
    env.filters["tojson_attr"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    env.filters["opts"] = options_text
    env.filters["md"] = md_inline
    env.globals["DOCUMENTS"] = documents or {}
    env.globals["VERDICTS"] = VERDICTS
    env.globals["VERDICT_RULES"] = VERDICT_RULES
    env.globals["DEVIATIONS"] = DEVIATIONS
    env.globals["MIN_SEEDS"] = MIN_SEEDS
    return env


def _isnum(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v, fmt=".2f"):
    if not _isnum(v):
        return "—"
    try:
        return format(v, fmt)
    except (ValueError, TypeError):  # a format string from a data file that is not one
        return format(v, ".3g")


def _si(v, unit: str = ""):
    """54879872 → "54.9 M" (3 significant digits, a thin space, an SI prefix); ``unit`` follows the prefix."""
    if not _isnum(v):
        return "—"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}\u00a0{suf}{unit}"
    return f"{v:.3g}" + (f"\u00a0{unit}" if unit else "")


def options_text(options) -> str:
    """Backbone options for people: ``{"n": 3, "width": 1}`` (a dict or its JSON) → ``n=3, width=1``."""
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            return options
    if not isinstance(options, dict):
        return str(options)

    def one(v):
        if isinstance(v, float):
            return f"{v:.4g}"  # 0.1111111111111111 → 0.1111
        return json.dumps(v) if isinstance(v, (dict, list)) else str(v)

    return ", ".join(f"{k}={one(v)}" for k, v in options.items())


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def load_suites(suites_dir: str | Path) -> tuple[dict, list]:
    """Suite files by name (for references, claims and protocol text); unreadable ones are reported."""
    from bench.documents import suite_files
    from bench.suite import load_suite

    out, problems = {}, []
    root = Path(suites_dir)
    if root.is_dir():
        for path in suite_files(root):  # documents.yaml beside them is not a suite
            try:
                s = load_suite(path)
                out[s.name] = s
            except BenchError as exc:
                problems.append((str(path), str(exc)))
    return out, problems


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _board_view(board, records_by_id: dict) -> dict:
    """Everything a template needs for one leaderboard, with plots rendered."""
    rows = [dict(r) for r in board.records]  # copies: the view adds display fields
    primary = next((c for c in board.columns), None)
    pkey = f"m:{primary[0]}" if primary else None
    refs_by_row: dict[tuple, list] = {}
    for ref in board.references:
        refs_by_row.setdefault(ref["row"], []).append(ref)
    options_of: dict[str, set] = {}
    for r in rows:
        options_of.setdefault(r["backbone"], set()).add(r["backbone_options"])
    multi = {b: len(o) for b, o in options_of.items()}  # backbones shown with several option sets
    show_family = any(r["family"] != r["label"] for r in rows)  # a Family column equal to Row says nothing
    for r in rows:
        opts = json.loads(r["backbone_options"])
        r["title"] = r.get("title") if isinstance(r.get("title"), str) and r.get("title") else r["label"]
        r["network"] = r["backbone"] + (
            " " + ",".join(f"{k}={v}" for k, v in opts.items()) if multi.get(r["backbone"], 1) > 1 else ""
        )
        r["display"] = f"{r['title']} ({r['network']})"
        r["refs"] = [
            ref
            for ref in refs_by_row.get(r["label"], [])
            if not ref.get("backbone") or ref["backbone"] == r["backbone"]
        ]
        r["options_text"] = options_text(opts)
        # the best test accuracy any seed reached (for "not reached (best …)" beside the time to threshold)
        accs = [
            h.get("test_acc")
            for i in r["run_ids"]
            if records_by_id[i].get("status") == "ok"
            for h in records_by_id[i].get("history") or []
            if isinstance(h, dict)
        ]
        accs = [a for a in accs if _isnum(a)]
        r["best_acc"] = max(accs) if accs else None
    # accuracy (primary metric) versus MACs
    points = [
        {
            "x": r.get("macs"),
            "y": r.get(pkey + ":mean") if pkey else None,
            "label": r["title"],
            "key": r["family"],
            "yerr": r.get(pkey + ":std") if pkey else None,
        }
        for r in rows
    ]
    scatter_macs = (
        svg.scatter(
            points, "MACs per image (fvcore, log scale)", primary[1] if primary else "", title="accuracy vs MACs"
        )
        if primary
        else ""
    )
    pareto_time = pareto_macs = ""
    # one Pareto front per network; where several networks share the plot, each label names its network
    several = len({(r["backbone"], r["backbone_options"]) for r in rows}) > 1
    if primary:
        pts = [
            {
                "x": r.get("train_s"),
                "y": r.get(pkey + ":mean"),
                "label": r["display"] if several else r["title"],
                "key": r["family"],
                "group": r["network"],
            }
            for r in rows
        ]
        pareto_time = svg.scatter(
            pts, "training time (s, log scale)", primary[1], title="accuracy vs time", frontier=True
        )
        pts = [
            {
                "x": r.get("train_macs"),
                "y": r.get(pkey + ":mean"),
                "label": r["display"] if several else r["title"],
                "key": r["family"],
                "group": r["network"],
            }
            for r in rows
        ]
        pareto_macs = svg.scatter(
            pts,
            "training MACs (≈ 3 × training-mode forward MACs × images seen, log scale)",
            primary[1],
            title="accuracy vs training MACs",
            frontier=True,
        )
    # per-epoch curves (first ok seed of each row) and any task curves
    curves: dict[str, list] = {}
    epoch_series = []
    # a curve's colour follows its family, or its row label where rows of one backbone share a family
    per_family: dict[tuple, int] = {}
    for r in rows:
        fk = (r["backbone"], r["backbone_options"], r["family"])
        per_family[fk] = per_family.get(fk, 0) + 1
    for r in rows:
        key = r["label"] if per_family[(r["backbone"], r["backbone_options"], r["family"])] > 1 else r["family"]
        recs = [records_by_id[i] for i in r["run_ids"] if records_by_id[i].get("status") == "ok"]
        if not recs:
            continue
        rec = min(recs, key=lambda x: x["spec"]["seed"])
        hist = rec.get("history") or []
        if hist and "test_acc" in hist[0]:
            epoch_series.append(
                {
                    "label": r["display"],
                    "key": key,
                    "x": [h["epoch"] for h in hist],
                    "y": [h.get("test_acc") for h in hist],
                }
            )
        for name, c in (rec.get("curves") or {}).items():
            curves.setdefault(name, []).append(
                {
                    "label": r["display"],
                    "key": key,
                    "x": c.get("x", []),
                    "y": c.get("y", []),
                    "xlabel": c.get("xlabel", ""),
                    "ylabel": c.get("ylabel", ""),
                    "logx": c.get("logx", False),
                }
            )
    plots = []
    if epoch_series:
        plots.append(("test accuracy per epoch", svg.lines(epoch_series, "epoch", "test accuracy (%)")))
    for name, series in sorted(curves.items()):
        plots.append(
            (
                name,
                svg.lines(series, series[0]["xlabel"], series[0]["ylabel"], title=name, logx=bool(series[0]["logx"])),
            )
        )
    metric_cols = [c for c in board.columns if f"m:{c[0]}:mean" in board.rows]
    all_noisy = len(rows) > 1 and all(r.get("noisy") for r in rows)
    return {
        "board": board,
        "rows": rows,
        "metric_cols": metric_cols,
        "scatter_macs": Markup(scatter_macs),
        "pareto_time": Markup(pareto_time),
        "pareto_macs": Markup(pareto_macs),
        "plots": [(t, Markup(p)) for t, p in plots if p],
        "anchor": board_anchor(board),
        "noisy_threshold": NOISY_SPREAD,
        "all_noisy": all_noisy,
        "show_family": show_family,
        "has_refs": bool(board.references),
        # one backbone with one option set on every row: the options are said once above the table
        "options_vary": len({(r["backbone"], r["backbone_options"]) for r in rows}) > 1,
    }


def board_anchor(board) -> str:
    """The leaderboard's id on its suite page; a suite split over devices gets one anchor per device."""
    base = f"{board.task}-{board.dataset}-{board.group}"
    if getattr(board, "device_split", False):
        base += "-" + hashlib.sha256(str(board.device).encode()).hexdigest()[:6]
    return _slug(base)


def _export(board, view: dict, site: Site, stem: str) -> dict:
    cols = ["backbone", "backbone_options", "label", "family", "n", "failed"]
    cols += [c for c in board.rows.columns if c.startswith("m:")]
    cols += [
        "params_learned",
        "params_fixed",
        "params_total",
        "macs",
        "train_s",
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
                format(x[key], fmt) if fmt and _isnum(x.get(key)) else str(x.get(key) or "") for x in refs.get(k, [])
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
                "delta_measured_minus_document": round(x["diff"], 3) if _isnum(x.get("diff")) else None,
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
        "rows": _clean(json_rows),
        "references": _clean([{k: v for k, v in r.items()} for r in board.references]),
        "claims": _clean(board.claims),
    }
    site.write(json_rel, json_bytes(payload))
    return {"csv": csv_rel, "json": json_rel}


def build_site(results: str | Path, suites_dir: str | Path, site_dir: str | Path) -> dict:
    from bench.catalog import catalog  # registry metadata without torch

    registries = catalog()
    LAYERS, TASKS = registries.layers, registries.tasks

    results = Path(results)
    site = Site(site_dir)  # refuses a foreign folder before anything is read or written
    records, problems = load_records(results)
    # benchmark outputs live in results/benchmarks/ and are not run records
    problems = [p for p in problems if "/benchmarks/" not in p[0].replace("\\", "/")]
    suites, suite_problems = load_suites(suites_dir)
    problems += suite_problems
    runs = runs_frame(records)
    stale = stale_records(records, suites)  # superseded by the current suite files: flagged, never aggregated
    for rec in records:
        rec["_stale"] = rec["id"] in stale
        cur = suites.get((rec.get("suite") or {}).get("name"))
        rec["_suite_sha_now"] = cur.sha256 if cur is not None else None
    boards = leaderboards(runs, records, suites, TASKS, stale=stale)
    by_id = {r["id"]: r for r in records}
    docs_path = Path(suites_dir) / DOCUMENTS_FILE
    documents = load_documents(docs_path) if docs_path.exists() else {}  # malformed: SpecError, exit 2
    env = _env(documents)

    suite_views: dict[str, list] = {}
    for board in boards:
        try:
            view = _board_view(board, by_id)
        except Exception as exc:  # a board that cannot be drawn is named and left out; the site is built
            problems.append(
                (f"leaderboard {board.suite}/{board.group}", f"cannot render ({type(exc).__name__}: {str(exc)[:100]})")
            )
            continue
        view["downloads"] = _export(
            board, view, site, _slug(f"{board.suite}-{board.task}-{board.dataset}-{board.group}")
        )
        suite_views.setdefault(board.suite, []).append(view)

    benchmarks = _benchmarks(results)
    pages = 0
    families = [
        {
            "name": f.name,
            "document": f.document,
            "section": f.section,
            "fixed": f.fixed,
            "learned": f.learned,
            "defaults": f.defaults,
            "summary": f.summary,
        }
        for f in LAYERS
    ]
    verdict_rows, document_setting = _export_verdicts(site, suites, suite_views)
    suites_summary = []
    for name in sorted(set(suite_views) | set(suites)):
        views = suite_views.get(name, [])
        s = suites.get(name)
        suites_summary.append(
            {
                "name": name,
                "page": f"suite-{_slug(name)}.html",
                "description": s.description if s else "",
                "runs": sum(int(v["board"].rows["n"].sum()) for v in views),
                "failed": sum(int(v["board"].rows["failed"].sum()) for v in views),
                "boards": len(views),
                "tasks": sorted({v["board"].task for v in views}),
            }
        )
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
            "link": f"suite-{_slug(v['board'].suite)}.html#{v['anchor']}",
        }
        for views in suite_views.values()
        for v in views
    ]
    for summ in suites_summary:
        summ["waiting"] = waiting_for(suites.get(summ["name"])) if not summ["boards"] else ""
    head = headline(suite_views, suites, step_ratios_from(benchmarks))
    if head:
        head["plot"] = Markup(overview_plot(head))
        head["plot_macs"] = Markup(overview_plot(head, "macs"))
    board = scoreboard(verdict_rows, documents, document_costs(verdict_rows, suites, records))
    ctx = {
        "headline": head,
        "suites": suites_summary,
        "boards": boards_index,
        "families": families,
        "problems": problems,
        "benchmarks": benchmarks,
        "n_records": len(records),
        "summary": family_summary(suite_views),
        "document_setting": document_setting,
        "scoreboard": board,
        "verdict_rows": verdict_rows,
        "verdict_plot": Markup(verdict_plot(verdict_rows)),
    }
    site.write(
        "index.html",
        env.get_template("index.html").render(title="convbench leaderboard", depth="", page="index", **ctx),
    )
    for name, title in (
        ("verdicts", "convbench: document numbers and claims"),
        ("families", "convbench: layer families"),
        ("costs", "convbench: measured costs"),
    ):
        site.write(f"{name}.html", env.get_template(f"{name}.html").render(title=title, depth="", page=name, **ctx))
        pages += 1
    pages += 1
    for summ in suites_summary:
        views = suite_views.get(summ["name"], [])
        s = suites.get(summ["name"])
        extra = {}
        if summ["name"] == HEADLINE_SUITE:
            extra = {"headline": head, "search": _search_plot(benchmarks)}
        html = env.get_template("suite.html").render(
            title=f"suite {summ['name']}",
            depth="",
            suite=s,
            summary=summ,
            views=views,
            **extra,
            stale=[
                dict(id=i, line=line, page=run_href(i))
                for i, line in sorted(stale.items())
                if by_id[i]["suite"]["name"] == summ["name"]
            ],
            references_unmatched=_unmatched_refs(s, views),
        )
        site.write(summ["page"], html)
        pages += 1
    metric_names = {}  # per task: metric key → its display name (the leaderboard's column labels)
    for task in {rec.get("task") for rec in records}:
        try:
            metric_names[task] = {c[0]: c[1] for c in TASKS.get(task).columns}
        except Exception:  # an unknown task: raw keys
            metric_names[task] = {}
    for rec in records:
        try:
            _copy_artifacts(rec, results, site)
        except BenchError:
            raise  # the site itself refuses (a link inside it): not one record's problem
        except Exception as exc:  # one record whose artifacts cannot be copied is named; its run still shows
            problems.append(
                (rec.get("_path", rec.get("id")), f"cannot copy artifacts ({type(exc).__name__}: {str(exc)[:100]})")
            )
    write_run_data(site, records, suites, metric_names, _slug)
    site.write(
        "run.html",
        env.get_template("run.html").render(title="convbench: run", depth="", page="run", shard_digits=SHARD_DIGITS),
    )
    pages += 1
    site.finish()  # files of the last build not written now (pages of records that are gone) go; nothing else
    return {
        "records": len(records),
        "pages": pages,
        "problems": problems,
        "boards": len(boards),
        "stale": sorted(stale.values()),
    }


def _unmatched_refs(suite, views) -> list:
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


def _unrun_claims(suite) -> list:
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


def _verdict_row(item: dict) -> dict:
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


def _export_verdicts(site: Site, suites: dict, suite_views: dict) -> list[dict]:
    """``data/verdicts.json`` and ``.csv``: every reference and claim of every suite, once per leaderboard
    it was checked on (or once, 'not yet run'), with its setting (document / shared / shortened) and tier.
    Returns the items measured at a document's own setting (for the index's first table)."""
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
            for r in _unmatched_refs(suite, views):
                items.append(dict(r, kind="reference", suite=name, leaderboard="", devices=[]))
            for c in _unrun_claims(suite):
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
    rows = [_verdict_row(item) for item in items]
    shown = [
        dict(
            row,
            link=f"suite-{_slug(row['suite'])}.html" + (f"#{row['leaderboard']}" if row["leaderboard"] else ""),
            chips=item.get("deviations") or [],
            diff=_diff(row),
        )
        for item, row in zip(items, rows)
    ]
    document_setting = [
        dict(
            row,
            link=f"suite-{_slug(row['suite'])}.html#{row['leaderboard']}",
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
    site.write("data/verdicts.json", json_bytes({"rules": VERDICT_RULES, "items": _clean(rows)}))
    site.write(
        "data/verdicts.csv",
        pd.DataFrame(
            [{k: ("; ".join(map(str, v)) if isinstance(v, list) else v) for k, v in row.items()} for row in rows],
            columns=list(VERDICT_FIELDS),
        ).to_csv(index=False),
    )
    return shown, document_setting


def _diff(row: dict):
    """Δ = measured − document for a document number (a claim's measured value is already a difference)."""
    if row.get("kind") != "reference" or not _isnum(row.get("measured")) or not _isnum(row.get("value")):
        return None
    return row["measured"] - row["value"]


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
    for doc, names in suites_of.items():
        hours: dict[str, float] = {}
        runs = left_runs = 0
        left_h, unestimated = 0.0, []
        for name in sorted(names):
            d = done.get(name, {"ids": set(), "by_backbone": {}, "hours": {}, "runs": 0})
            for kind, h in d["hours"].items():
                hours[kind] = hours.get(kind, 0.0) + h
            runs += d["runs"]
            suite = suites.get(name)
            try:
                todo = [sp for sp in suite.expand() if sp.id not in d["ids"]] if suite is not None else []
            except Exception:  # a suite that cannot be expanded here (it names a plug-in): not estimated
                todo, unestimated = [], unestimated + [name]
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
    with the filtered link to its list on verdicts.html."""
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
                        "link": f"verdicts.html#f.verdicts.document={d}&f.verdicts.verdict={v.replace(' ', '%20')}",
                    }
                    for v in VERDICTS
                ],
                "link": f"verdicts.html#f.verdicts.document={d}",
            }
        )
    return out


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


VERDICT_COLORS = {"reproduced": "#1a7f37", "not reproduced": "#c62828", "inconclusive": "#1f5fbf"}


def verdict_plot(verdict_rows: list[dict]) -> str:
    """Measured against the document's value for every document number with a measurement, coloured and
    shaped by verdict, with the diagonal y = x (on it: measured = document)."""
    pts = []
    for r in verdict_rows:
        if r.get("kind") != "reference" or not _isnum(r.get("measured")) or not _isnum(r.get("value")):
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


ARTIFACT_MAX_BYTES = 64 << 20


def _copy_artifacts(rec: dict, results: Path, site: Site) -> None:
    """Copy a record's artifacts (regular files inside the results folder, under a size cap) into the site."""
    from bench.safeio import read_regular

    base = Path(results).resolve()
    for art in rec.get("artifacts") or []:
        src = (base / art.get("path", "")).resolve()
        if base not in src.parents:  # load_records refuses such records; never copy from outside the results
            continue
        try:
            blob = read_regular(src, ARTIFACT_MAX_BYTES)
        except (OSError, ValueError):
            continue  # missing, special or too large: the page shows no image
        site.write(f"artifacts/{art['path']}", blob)
        art["site_path"] = f"artifacts/{art['path']}"


def _search_plot(benchmarks: list[dict]) -> dict | None:
    """The protocol search (benchmarks/protocol_search.py) as a scatter of top-1 against training minutes."""
    bench = next((b for b in benchmarks if b.get("source") == "benchmarks/protocol_search.py"), None)
    if not bench:
        return None
    points = []
    for r in bench.get("rows", []):
        if isinstance(r, dict) and _isnum(r.get("train_min")) and _isnum(r.get("top1")):
            short = r.get("short") or str(r.get("recipe", ""))[:40]
            points.append({"x": r["train_min"], "y": r["top1"], "label": short, "key": short})
    plot = svg.scatter(
        points, "training minutes (one CPU thread)", "top-1 (%)", "recipes tried", logx=True, frontier=True
    )
    return (
        {
            "plot": Markup(plot),
            "description": bench.get("description", ""),
            "source": bench.get("source"),
            "device": bench.get("device", ""),
        }
        if plot
        else None
    )


def _benchmarks(results: Path) -> list[dict]:
    """Benchmark outputs (results/benchmarks/*.json): harness overhead, layer costs, deconv vs BN…"""
    out = []
    from bench.safeio import RECORD_MAX_BYTES, parse_json, read_regular

    for path in sorted((results / "benchmarks").glob("*.json")):
        try:
            data = parse_json(read_regular(path, RECORD_MAX_BYTES))
        except (OSError, ValueError):
            continue
        if _benchmark_ok(data):
            out.append(data)
    return out


def _benchmark_ok(data) -> bool:
    """A benchmark output the index can show: a title, rows that are mappings, columns and formats of text."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("title"), str)
        and isinstance(data.get("rows"), list)
        and all(isinstance(r, dict) for r in data["rows"])
        and isinstance(data.get("columns", []), list)
        and all(isinstance(c, str) for c in data.get("columns", []))
        and isinstance(data.get("formats", {}), dict)
        and all(isinstance(f, str) for f in data.get("formats", {}).values())
    )


# -- the index at a glance ---------------------------------------------------------------------------------


def _mean_std(row: dict, key: str):
    m, s = row.get(f"m:{key}:mean"), row.get(f"m:{key}:std")
    return (m if _isnum(m) else None), (s if _isnum(s) else None)


def _ratio(a, b):
    return a / b if _isnum(a) and _isnum(b) and b > 0 else None


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
                link = f"suite-{_slug(suite)}.html#{v['anchor']}"
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


# what each data set needs before a suite on it can run: (what to put where, training images) — None: ships
# with a library or is generated, nothing to fetch
DATA_NEEDS = {
    "cifar10": ("CIFAR-10 (cifar-10-batches-py/ or train/, test/ folders; or BENCH_ALLOW_DOWNLOAD=1)", 50_000),
    "imagenet-subset": ("ImageNet (train/<wnid>/, val/<wnid>/ folders)", None),
    "voc2007": ("PASCAL VOC 2007 (VOCdevkit/VOC2007)", 5_011),
    "voc2012-seg": ("PASCAL VOC 2012 segmentation (VOCdevkit/VOC2012)", 1_464),
    "cityscapes": ("Cityscapes (leftImg8bit/, gtFine/)", 2_975),
    "faces": ("the AT&T faces (att_faces/s<n>/<k>.pgm)", 240),
    "image-folder": ("an image folder (train/<class>/, test/<class>/)", None),
}
GPU_IMAGES_SEEN = 1_000_000  # more training images seen per run than this: sized for a GPU
GPU_TASKS = ("detection", "segmentation")  # full-resolution images and torchvision detectors: GPU-sized


def waiting_for(suite) -> str:
    """One line: what a suite with no records waits for, derived from its data set and protocol."""
    if suite is None:
        return "no suite file"
    ds = suite.dataset.get("name", "")
    opts = suite.dataset.get("options") or {}
    root = suite.dataset.get("root") or "${BENCH_DATA_ROOT}"
    root = root.replace("${BENCH_DATA_ROOT}", "$BENCH_DATA_ROOT")
    parts = []
    need = DATA_NEEDS.get(ds)
    if need:
        parts.append(f"needs {need[0]} under {root}")
    else:
        parts.append("data ships with the harness (no download)")
    n_train = need[1] if need else None
    if ds == "imagenet-subset" and opts.get("classes"):
        n_train = int(opts["classes"]) * 1_300
    epochs = suite.protocol.get("epochs") or 0
    if suite.protocol.get("train_subset"):
        n_train = min(n_train or suite.protocol["train_subset"], suite.protocol["train_subset"])
    runs = len(suite.seeds) * len(suite.backbones) * len(suite.layers)
    task = suite.task.get("name", "")
    if task in GPU_TASKS:
        parts.append(f"GPU-sized ({task} at full resolution, {epochs} epochs)")
    elif n_train and epochs * n_train > GPU_IMAGES_SEEN:
        parts.append(
            f"GPU-sized ({epochs} epochs × {n_train:,} images ≈ {epochs * n_train / 1e6:.1f} M images seen per run)"
        )
    elif n_train:
        parts.append(f"CPU-sized ({epochs} epochs × {n_train:,} images)")
    else:
        parts.append(f"{epochs} epochs")
    parts.append(f"{runs} run{'s' if runs != 1 else ''}")
    return "; ".join(parts)
