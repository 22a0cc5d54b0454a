"""run.html and its data: one page drawn in the browser from runs/<shard>.js (bench.report.runpage), with each
record's artifacts copied into the site."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError
from bench.report.common import slug
from bench.report.owned import Site
from bench.report.runpage import SHARD_DIGITS, write_run_data

ARTIFACT_MAX_BYTES = 64 << 20


def copy_artifacts(rec: dict, results: Path, site: Site) -> None:
    """Copy a record's artifacts (regular files inside the results folder, under a size cap) into the site."""
    arts = rec.get("artifacts")
    if not arts:
        return  # most records: no path to resolve
    from bench.records.safeio import read_regular

    base = Path(results).resolve()
    for art in arts:
        src = (base / art.get("path", "")).resolve()
        if base not in src.parents:  # load_records refuses such records; never copy from outside the results
            continue
        try:
            blob = read_regular(src, ARTIFACT_MAX_BYTES)
        except (OSError, ValueError):
            continue  # missing, special or too large: the page shows no image
        site.write(f"artifacts/{art['path']}", blob)
        art["site_path"] = f"artifacts/{art['path']}"
        rec.pop("_json", None)  # the record now differs from its file


def write(site: Site, env, records: list[dict], suites: dict, results: Path, tasks, problems: list) -> None:
    """Copies every record's artifacts (a record whose artifacts cannot be copied is added to ``problems``),
    writes the run data and run.html."""
    metric_names = {}  # per task: metric key → its display name (the leaderboard's column labels)
    for task in {rec.get("task") for rec in records}:
        try:
            metric_names[task] = {c[0]: c[1] for c in tasks.get(task).columns}
        except Exception:  # an unknown task: raw keys
            metric_names[task] = {}
    for rec in records:
        try:
            copy_artifacts(rec, results, site)
        except BenchError:
            raise  # the site itself refuses (a link inside it): not one record's problem
        except Exception as exc:  # one record whose artifacts cannot be copied is named; its run still shows
            problems.append(
                (rec.get("_path", rec.get("id")), f"cannot copy artifacts ({type(exc).__name__}: {str(exc)[:100]})")
            )
    write_run_data(site, records, suites, metric_names, slug)
    site.write(
        "run.html",
        env.get_template("run.html").render(title="convbench: run", depth="", page="run", shard_digits=SHARD_DIGITS),
    )
