"""The static site: :func:`build_site` reads the records, the suites and the documents, builds the leaderboards
(:mod:`bench.report.tables`) and has each page write itself (:mod:`bench.report.pages`: index, verdicts,
families, costs, one per suite, run), with the downloads (:mod:`bench.report.exports`)."""

from __future__ import annotations

import gc
from pathlib import Path

from markupsafe import Markup

from bench.spec.documents import DOCUMENTS_FILE, load_documents
from bench.errors import BenchError
from bench.records.records import load_records
from bench.report.aggregate import runs_frame, stale_records
from bench.report.common import make_env, slug
from bench.report.exports import board_downloads
from bench.report.headline import headline, step_ratios_from
from bench.report.owned import Site
from bench.report.pages import costs, families, index, run, suite, verdicts
from bench.report.tables import leaderboards


def load_suites(suites_dir: str | Path) -> tuple[dict, list]:
    """Suite files by name (for references, claims and protocol text); unreadable ones are reported."""
    from bench.spec.documents import suite_files
    from bench.spec.suite import load_suite

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


def build_site(results: str | Path, suites_dir: str | Path, site_dir: str | Path) -> dict:
    """Build the site in ``site_dir`` from the records under ``results`` and the suites in ``suites_dir``; returns
    counts and problems. The records, once loaded, are moved out of the cyclic garbage collector's view
    (``gc.freeze``, undone at the end): they hold no cycles, and the collector's passes over them were a tenth of a
    10,000-record report."""
    try:
        return _build_site(results, suites_dir, site_dir)
    finally:
        gc.unfreeze()


def _build_site(results: str | Path, suites_dir: str | Path, site_dir: str | Path) -> dict:
    from bench.zoo.catalog import catalog  # registry metadata without torch

    registries = catalog()
    LAYERS, TASKS = registries.layers, registries.tasks

    results = Path(results)
    site = Site(site_dir)  # refuses a foreign folder before anything is read or written
    records, problems = load_records(results)
    gc.freeze()  # the records and everything before them (modules, the catalog): undone by build_site
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
    env = make_env(documents)

    suite_views: dict[str, list] = {}
    for board in boards:
        try:
            view = suite.board_view(board, by_id)
        except Exception as exc:  # a board that cannot be drawn is named and left out; the site is built
            problems.append(
                (f"leaderboard {board.suite}/{board.group}", f"cannot render ({type(exc).__name__}: {str(exc)[:100]})")
            )
            continue
        view["downloads"] = board_downloads(
            board, view, site, slug(f"{board.suite}-{board.task}-{board.dataset}-{board.group}")
        )
        suite_views.setdefault(board.suite, []).append(view)

    benchmarks = costs.benchmarks(results)
    family_list = families.family_rows(LAYERS)
    verdict_rows, document_setting = verdicts.build(site, suites, suite_views)
    suites_summary = suite.suite_summaries(suite_views, suites)
    head = headline(suite_views, suites, step_ratios_from(benchmarks))
    if head:
        head["plot"] = Markup(index.overview_plot(head))
        head["plot_macs"] = Markup(index.overview_plot(head, "macs"))
    summary = families.family_summary(suite_views)
    index.write(
        site,
        env,
        {
            "headline": head,
            "suites": suites_summary,
            "boards": index.boards_index(suite_views),
            "families": family_list,
            "problems": problems,
            "benchmarks": benchmarks,
            "n_records": len(records),
            "summary": summary,
            "document_setting": document_setting,
            "scoreboard": index.scoreboard(
                verdict_rows, documents, index.document_costs(verdict_rows, suites, records)
            ),
            "verdict_rows": verdict_rows,
        },
    )
    verdicts.write(site, env, verdict_rows)
    families.write(site, env, family_list, summary)
    costs.write(site, env, benchmarks)
    pages = 4
    pages += suite.write(site, env, suites_summary, suite_views, suites, stale, by_id, head, benchmarks)
    run.write(site, env, records, suites, results, TASKS, problems)
    pages += 1
    site.finish()  # files of the last build not written now (pages of records that are gone) go; nothing else
    return {
        "records": len(records),
        "pages": pages,
        "problems": problems,
        "boards": len(boards),
        "stale": sorted(stale.values()),
    }
