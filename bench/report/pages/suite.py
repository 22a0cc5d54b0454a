"""suite-<name>.html: one page per suite, each of its leaderboards (table, plots, documents' numbers) with what
the suite waits for when it has no runs yet, its superseded records and its references not yet run."""

from __future__ import annotations

import hashlib
import json

from markupsafe import Markup

from bench.report import svg
from bench.report.aggregate import NOISY_SPREAD
from bench.report.common import isnum, options_text, slug
from bench.report.headline import HEADLINE_SUITE
from bench.report.owned import Site
from bench.report.pages.verdicts import unmatched_refs
from bench.report.runpage import best_test_acc, run_href


def board_view(board, records_by_id: dict) -> dict:
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
            a
            for i in r["run_ids"]
            if records_by_id[i].get("status") == "ok" and (a := best_test_acc(records_by_id[i])) is not None
        ]
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
    return slug(base)


def suite_summaries(suite_views: dict, suites: dict) -> list[dict]:
    """One line per suite (with records or a suite file): its page, runs, failures, leaderboards, tasks, and
    what it waits for when it has no leaderboard yet."""
    suites_summary = []
    for name in sorted(set(suite_views) | set(suites)):
        views = suite_views.get(name, [])
        s = suites.get(name)
        suites_summary.append(
            {
                "name": name,
                "page": f"suite-{slug(name)}.html",
                "description": s.description if s else "",
                "runs": sum(int(v["board"].rows["n"].sum()) for v in views),
                "failed": sum(int(v["board"].rows["failed"].sum()) for v in views),
                "boards": len(views),
                "tasks": sorted({v["board"].task for v in views}),
            }
        )
    for summ in suites_summary:
        summ["waiting"] = waiting_for(suites.get(summ["name"])) if not summ["boards"] else ""
    return suites_summary


def write(
    site: Site, env, suites_summary: list, suite_views: dict, suites: dict, stale: dict, by_id: dict, head, benchmarks
) -> int:
    """Every suite's page; returns how many were written."""
    for summ in suites_summary:
        views = suite_views.get(summ["name"], [])
        s = suites.get(summ["name"])
        extra = {}
        if summ["name"] == HEADLINE_SUITE:
            extra = {"headline": head, "search": search_plot(benchmarks)}
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
            references_unmatched=unmatched_refs(s, views),
        )
        site.write(summ["page"], html)
    return len(suites_summary)


def search_plot(benchmarks: list[dict]) -> dict | None:
    """The protocol search (benchmarks/protocol_search.py) as a scatter of top-1 against training minutes."""
    bench = next((b for b in benchmarks if b.get("source") == "benchmarks/protocol_search.py"), None)
    if not bench:
        return None
    points = []
    for r in bench.get("rows", []):
        if isinstance(r, dict) and isnum(r.get("train_min")) and isnum(r.get("top1")):
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
