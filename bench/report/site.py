"""Tables → static site: ``site/index.html``, one page per suite, one page per run, CSV/JSON downloads.
Works opened straight from disk (no CDN, no server); every text from a suite or record is escaped."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import jinja2
from markupsafe import Markup

from bench.errors import BenchError
from bench.records import load_records, write_json_atomic
from bench.report import svg
from bench.report.tables import NOISY_SPREAD, fmt_pm, leaderboards, runs_frame

DOCUMENTS = {
    "000": "Perturbative Neural Networks (PNN) + supplement",
    "001": "Randomness in Deconvolutional Networks for Visual Representation",
    "002": "Thesis: structured receptive fields, frame bases, attribute CNNs, i-RevNet",
    "003": "Network Deconvolution",
    "004": "Do We Need to Learn Spatial Mixing?",
}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("bench.report", "templates"),
                             autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["si"] = _si
    env.filters["pm"] = lambda pair, fmt=".2f": fmt_pm(pair[0], pair[1], fmt)
    env.filters["tojson_attr"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    env.globals["DOCUMENTS"] = DOCUMENTS
    return env


def _isnum(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v, fmt=".2f"):
    return format(v, fmt) if _isnum(v) else "—"


def _si(v):
    if not _isnum(v):
        return "—"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def load_suites(suites_dir: str | Path) -> tuple[dict, list]:
    """Suite files by name (for references, claims and protocol text); unreadable ones are reported."""
    from bench.suite import load_suite

    out, problems = {}, []
    root = Path(suites_dir)
    if root.is_dir():
        for path in sorted(root.glob("*.y*ml")):
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
    rows = board.rows.to_dict("records")
    primary = next((c for c in board.columns), None)
    pkey = f"m:{primary[0]}" if primary else None
    refs_by_row: dict[tuple, list] = {}
    for ref in board.references:
        refs_by_row.setdefault(ref["row"], []).append(ref)
    multi = board.rows.groupby("backbone")["backbone_options"].nunique().to_dict()
    for r in rows:
        opts = json.loads(r["backbone_options"])
        r["display"] = f"{r['label']} ({r['backbone']}" + (
            " " + ",".join(f"{k}={v}" for k, v in opts.items()) if multi.get(r["backbone"], 1) > 1 else "") + ")"
        r["refs"] = [ref for ref in refs_by_row.get(r["label"], [])
                     if not ref.get("backbone") or ref["backbone"] == r["backbone"]]
    # accuracy (primary metric) versus MACs
    points = [{"x": r.get("macs"), "y": r.get(pkey + ":mean") if pkey else None, "label": r["label"],
               "key": r["family"], "yerr": r.get(pkey + ":std") if pkey else None} for r in rows]
    scatter_macs = svg.scatter(points, "MACs per image (fvcore, log scale)", primary[1] if primary else "",
                               title="accuracy vs MACs") if primary else ""
    pareto_time = pareto_macs = ""
    if primary:
        pts = [{"x": r.get("train_s"), "y": r.get(pkey + ":mean"), "label": r["label"], "key": r["family"]}
               for r in rows]
        pareto_time = svg.scatter(pts, "training time (s, log scale)", primary[1], title="accuracy vs time",
                                  frontier=True)
        pts = [{"x": r.get("train_macs"), "y": r.get(pkey + ":mean"), "label": r["label"], "key": r["family"]}
               for r in rows]
        pareto_macs = svg.scatter(pts, "training MACs (≈ 3 × training-mode forward MACs × images seen, log scale)",
                                  primary[1], title="accuracy vs training MACs", frontier=True)
    # per-epoch curves (first ok seed of each row) and any task curves
    curves: dict[str, list] = {}
    epoch_series = []
    for r in rows:
        recs = [records_by_id[i] for i in r["run_ids"] if records_by_id[i].get("status") == "ok"]
        if not recs:
            continue
        rec = min(recs, key=lambda x: x["spec"]["seed"])
        hist = rec.get("history") or []
        if hist and "test_acc" in hist[0]:
            epoch_series.append({"label": r["display"], "key": r["family"],
                                 "x": [h["epoch"] for h in hist], "y": [h.get("test_acc") for h in hist]})
        for name, c in (rec.get("curves") or {}).items():
            curves.setdefault(name, []).append({"label": r["display"], "key": r["family"],
                                                "x": c.get("x", []), "y": c.get("y", []),
                                                "xlabel": c.get("xlabel", ""), "ylabel": c.get("ylabel", ""),
                                                "logx": c.get("logx", False)})
    plots = []
    if epoch_series:
        plots.append(("test accuracy per epoch", svg.lines(epoch_series, "epoch", "test accuracy (%)")))
    for name, series in sorted(curves.items()):
        plots.append((name, svg.lines(series, series[0]["xlabel"], series[0]["ylabel"], title=name,
                                      logx=bool(series[0]["logx"]))))
    metric_cols = [c for c in board.columns if f"m:{c[0]}:mean" in board.rows]
    return {"board": board, "rows": rows, "metric_cols": metric_cols, "scatter_macs": Markup(scatter_macs),
            "pareto_time": Markup(pareto_time), "pareto_macs": Markup(pareto_macs), "plots": [(t, Markup(p)) for t, p in plots if p],
            "anchor": f"{board.task}-{board.dataset}-{board.group}", "noisy_threshold": NOISY_SPREAD}


def _export(board, view: dict, site: Path, stem: str) -> dict:
    cols = ["backbone", "backbone_options", "label", "family", "n", "failed"]
    cols += [c for c in board.rows.columns if c.startswith("m:")]
    cols += ["params_learned", "params_fixed", "params_total", "macs", "train_s", "throughput", "latency_ms",
             "noisy"]
    df = board.rows[[c for c in cols if c in board.rows.columns]].copy()
    data_dir = site / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = data_dir / f"{stem}.csv", data_dir / f"{stem}.json"
    df.to_csv(csv_path, index=False)
    payload = {"suite": board.suite, "task": board.task, "dataset": board.dataset, "protocol": board.protocol,
               "overrides": board.overrides, "devices": board.devices, "rows": _clean(df.to_dict("records")),
               "references": _clean([{k: v for k, v in r.items()} for r in board.references]),
               "claims": _clean(board.claims)}
    write_json_atomic(json_path, payload)
    return {"csv": f"data/{csv_path.name}", "json": f"data/{json_path.name}"}


def build_site(results: str | Path, suites_dir: str | Path, site_dir: str | Path) -> dict:
    from bench.layers import LAYERS
    from bench.tasks import TASKS

    results, site = Path(results), Path(site_dir)
    records, problems = load_records(results)
    # benchmark outputs live in results/benchmarks/ and are not run records
    problems = [p for p in problems if "/benchmarks/" not in p[0].replace("\\", "/")]
    suites, suite_problems = load_suites(suites_dir)
    problems += suite_problems
    runs = runs_frame(records)
    boards = leaderboards(runs, records, suites, TASKS)
    by_id = {r["id"]: r for r in records}
    env = _env()
    if site.exists():
        for sub in ("runs", "data", "artifacts"):
            shutil.rmtree(site / sub, ignore_errors=True)
        for old in site.glob("*.html"):
            old.unlink()
    site.mkdir(parents=True, exist_ok=True)
    (site / "runs").mkdir(exist_ok=True)

    suite_views: dict[str, list] = {}
    for board in boards:
        view = _board_view(board, by_id)
        view["downloads"] = _export(board, view, site, _slug(f"{board.suite}-{board.task}-{board.dataset}-{board.group}"))
        suite_views.setdefault(board.suite, []).append(view)

    benchmarks = _benchmarks(results)
    pages = 0
    families = [{"name": f.name, "document": f.document, "section": f.section, "fixed": f.fixed,
                 "learned": f.learned, "defaults": f.defaults, "summary": f.summary} for f in LAYERS]
    all_claims = [dict(c, suite=v["board"].suite, group=v["board"].group, anchor=v["anchor"])
                  for views in suite_views.values() for v in views for c in v["board"].claims]
    for name, s in sorted(suites.items()):  # suites never run: their claims are shown, not yet run
        if name not in suite_views:
            all_claims += [dict(c, suite=name, group="", anchor="", verdict="not yet run",
                                verdict_detail="no run of this suite yet", rule="", comparable=True)
                           for c in s.claims]
    suites_summary = []
    for name in sorted(set(suite_views) | set(suites)):
        views = suite_views.get(name, [])
        s = suites.get(name)
        suites_summary.append({"name": name, "page": f"suite-{_slug(name)}.html",
                               "description": s.description if s else "",
                               "runs": sum(int(v["board"].rows["n"].sum()) for v in views),
                               "failed": sum(int(v["board"].rows["failed"].sum()) for v in views),
                               "boards": len(views), "tasks": sorted({v["board"].task for v in views})})
    boards_index = [{"suite": v["board"].suite, "task": v["board"].task, "dataset": v["board"].dataset,
                     "protocol": v["board"].protocol.get("name", ""), "short": bool(v["board"].overrides),
                     "smoke": v["board"].smoke, "backbones": sorted(set(v["board"].rows["backbone"])),
                     "families": sorted(set(v["board"].rows["family"])), "rows": len(v["board"].rows),
                     "runs": int(v["board"].rows["n"].sum()), "devices": v["board"].devices,
                     "link": f"suite-{_slug(v['board'].suite)}.html#{v['anchor']}"}
                    for views in suite_views.values() for v in views]
    ctx = {"suites": suites_summary, "boards": boards_index, "families": families, "claims": all_claims, "problems": problems,
           "benchmarks": benchmarks, "n_records": len(records)}
    (site / "index.html").write_text(env.get_template("index.html").render(title="convbench leaderboard",
                                                                           depth="", **ctx))
    pages += 1
    for summ in suites_summary:
        views = suite_views.get(summ["name"], [])
        s = suites.get(summ["name"])
        html = env.get_template("suite.html").render(title=f"suite {summ['name']}", depth="", suite=s,
                                                     summary=summ, views=views,
                                                     references_unmatched=_unmatched_refs(s, views))
        (site / summ["page"]).write_text(html)
        pages += 1
    for rec in records:
        _copy_artifacts(rec, results, site)
        html = env.get_template("run.html").render(title=f"run {rec['id']}", depth="../", rec=rec,
                                                   spec_json=json.dumps(rec["spec"], indent=1, sort_keys=True,
                                                                        default=str),
                                                   env_json=json.dumps(rec.get("env", {}), indent=1,
                                                                       sort_keys=True, default=str),
                                                   plot=Markup(_run_plot(rec)),
                                                   suite_page=f"suite-{_slug(rec['suite']['name'])}.html")
        (site / "runs" / f"{rec['id']}.html").write_text(html)
        pages += 1
    return {"records": len(records), "pages": pages, "problems": problems, "boards": len(boards)}


def _unmatched_refs(suite, views) -> list:
    """References of a suite that no leaderboard has run yet (shown as 'not yet run')."""
    if suite is None:
        return []
    if views:
        return []
    return [dict(r, verdict="not yet run") for r in suite.references]


def _run_plot(rec: dict) -> str:
    hist = rec.get("history") or []
    if not hist or "test_acc" not in hist[0]:
        return ""
    series = [{"label": "test accuracy", "key": "test", "x": [h["epoch"] for h in hist],
               "y": [h.get("test_acc") for h in hist]}]
    if "train_acc" in hist[0]:
        series.append({"label": "train accuracy", "key": "train", "x": [h["epoch"] for h in hist],
                       "y": [h.get("train_acc") for h in hist]})
    return svg.lines(series, "epoch", "accuracy (%)")


def _copy_artifacts(rec: dict, results: Path, site: Path) -> None:
    for art in rec.get("artifacts") or []:
        src = results / art.get("path", "")
        if src.is_file():
            dst = site / "artifacts" / art["path"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            art["site_path"] = f"artifacts/{art['path']}"


def _benchmarks(results: Path) -> list[dict]:
    """Benchmark outputs (results/benchmarks/*.json): harness overhead, layer costs, deconv vs BN…"""
    out = []
    for path in sorted((results / "benchmarks").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(data, dict) and "title" in data and "rows" in data:
            out.append(data)
    return out
