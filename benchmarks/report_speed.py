"""`bench report` on the committed results versus the bare imports it cannot avoid (jinja2 and pandas), and at
scale on synthetic records. Targets: the report takes at most 2× ``python -c "import jinja2, pandas"`` (issue
10); 10,000 records report into a new folder in at most 5 s (issue 20 item 6).

    python benchmarks/report_speed.py [--results results] [--repeats 5] [--sizes 100,1000,10000]
                                      [--out results/benchmarks/report_speed.json]

Scale: for each size N, N records are made from the committed ones (each copy a new seed, so a new run id;
artifacts left out, so that no image is copied N times), every one checked by the harness's own record
validation (``read_record`` + ``check_record``) before it is used, in a temporary results folder; the report
then builds a site from them into a new folder and over the site it built before. Measured per report process:
wall time and CPU time (user + sys of the child, ``resource.getrusage(RUSAGE_CHILDREN)`` before and after), and
its peak resident memory; the load average of the machine is recorded beside them, since CPU time is what stays
comparable on a busy machine.

Both commands run as fresh processes, alternating (imports, report, imports, …) so drift hits both; wall
clock (time.perf_counter) around ``subprocess.run``; medians. One untimed report first builds the registry
metadata catalog (bench.zoo.catalog) if it is missing, as any first report after a code change does. Whether the
report process imported torch is checked and recorded.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# every timed process runs as Python runs by default, caching compiled modules (a shell that sets
# PYTHONDONTWRITEBYTECODE would otherwise make each report compile the harness's modules from source again)
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
REPORT = (
    "import sys, json, resource; from bench.cli import exit_fast, main; rc = main(sys.argv[1:]); "
    "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, "
    "'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})); exit_fast(rc)"
)


def synthetic_results(source: Path, out: Path, n: int) -> int:
    """``n`` records under ``out``, cloned from the valid records under ``source`` with new seeds (so new run
    ids), each validated as the harness validates records; returns how many were written."""
    sys.path.insert(0, str(ROOT))
    from bench.spec.identity import IDENTITY_VERSION, run_id
    from bench.records.records import check_record, json_bytes, read_record, record_files

    base = []
    for p in record_files(source):
        if "benchmarks" in p.relative_to(source).parts:
            continue
        try:
            rec, _ = read_record(p)
        except (OSError, ValueError):
            continue
        if check_record(rec, source) is None and rec.get("status") == "ok":
            base.append(rec)
    if not base:
        raise SystemExit(f"no valid records under {source}")
    for k in range(n):
        rec = copy.deepcopy(base[k % len(base)])
        rec["spec"]["seed"] = 10_000 + k
        rec.pop("artifacts", None)
        rec.pop("legacy_id", None)
        rec["id"], rec["identity_version"] = run_id(rec["spec"]), IDENTITY_VERSION
        path = out / rec["spec"]["suite"] / f"synthetic-{k}--{rec['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(json_bytes(rec))
        checked, _ = read_record(path)  # the harness's validation, on the file as written
        problem = check_record(checked, out)
        if problem:
            raise SystemExit(f"synthetic record {path} is not valid: {problem}")
    return n


def timed(cmd: list[str], cache: Path | None = None) -> dict:
    """Run ``cmd`` (a report process); its wall seconds, CPU seconds (user + sys) and peak memory. ``cache``:
    the harness cache folder it gets (``BENCH_CACHE``; a new empty one is a cold record memo)."""
    env = dict(CHILD_ENV, **({"BENCH_CACHE": str(cache)} if cache is not None else {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": cpu, "maxrss_mb": probe["maxrss_kb"] / 1024, "torch": probe["torch"]}


def scale(args, tmp: Path) -> list[dict]:
    """Reports of synthetic results at each size: new folder and over the previous site, ``repeats`` each."""
    rows = []
    for n in [int(x) for x in args.sizes.split(",") if x.strip()]:
        results = tmp / f"synthetic-{n}"
        synthetic_results(Path(args.results), results, n)
        base = [sys.executable, "-c", REPORT, "report", "--results", str(results), "--suites", args.suites, "--site"]
        cold, fresh, over = [], [], []
        load0 = os.getloadavg()
        warm = tmp / f"cache-{n}"  # one harness cache for the warm runs: the record memo of this folder
        timed(base + [str(tmp / f"site-{n}-warmup" / "site")], warm)
        for k in range(args.repeats):
            # the warm cache without its record memo: registry catalog and YAML memo as warm, records cold
            cold_cache = tmp / f"cache-{n}-{k}-cold"
            shutil.copytree(warm, cold_cache, ignore=lambda d, names: ["records"] if Path(d) == warm else [])
            cold.append(timed(base + [str(tmp / f"site-{n}-{k}-cold" / "site")], cold_cache))
            fresh.append(timed(base + [str(tmp / f"site-{n}-{k}" / "site")], warm))
            over.append(timed(base + [str(tmp / f"site-{n}-{k}" / "site")], warm))  # over the site just built
        load1 = os.getloadavg()
        for how, runs in (
            ("into a new folder, no record memo", cold),
            ("into a new folder", fresh),
            ("over an existing site", over),
        ):
            rows.append(
                {
                    "command": f"bench report, {n:,} synthetic records ({how})",
                    "records": n,
                    "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                    "median_s": statistics.median(r["wall_s"] for r in runs),
                    "min_s": min(r["wall_s"] for r in runs),
                    "max_s": max(r["wall_s"] for r in runs),
                    "maxrss_mb": max(r["maxrss_mb"] for r in runs),
                    "load_1min": round((load0[0] + load1[0]) / 2, 2),
                }
            )
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--suites", default=str(ROOT / "suites"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="100,1000,10000", help="synthetic record counts ('' for none)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scaled = scale(args, Path(tmp))
        report_cmd = [
            sys.executable,
            "-c",
            REPORT,
            "report",
            "--results",
            args.results,
            "--suites",
            args.suites,
            "--site",
            str(Path(tmp) / "site"),
        ]
        imports_cmd = [sys.executable, "-c", "import jinja2, pandas"]
        first = subprocess.run(report_cmd, capture_output=True, text=True, cwd=ROOT, check=True, env=CHILD_ENV)
        probe = json.loads(first.stdout.strip().splitlines()[-1])
        n_records = sum(
            1
            for p in Path(args.results).rglob("*.json")
            if "benchmarks" not in p.parts and not p.name.startswith(".") and ".locks" not in p.parts
        )
        rep, fresh, imp = [], [], []
        for k in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(imports_cmd, check=True, cwd=ROOT, env=CHILD_ENV)
            imp.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run(report_cmd, check=True, capture_output=True, cwd=ROOT, env=CHILD_ENV)  # over the old site
            rep.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run(
                report_cmd[:-1] + [str(Path(tmp) / f"fresh{k}")],
                check=True,
                capture_output=True,
                cwd=ROOT,
                env=CHILD_ENV,
            )  # into a new folder
            fresh.append(time.perf_counter() - t0)
    r, f, i = statistics.median(rep), statistics.median(fresh), statistics.median(imp)
    result = {
        "title": "bench report vs importing jinja2 and pandas",
        "description": (
            f"`bench report` on the committed results (~{n_records} record files) into a temporary "
            "site (over the previous repeat's site, whose unchanged run pages it keeps, and into a new "
            "folder), "
            f'versus `python -c "import jinja2, pandas"`, {args.repeats} alternating repeats '
            f"each as a fresh process, medians of wall time. Report imported torch: {probe['torch']}. "
            "Target: ratio ≤ 2. Scale rows (issue 20 item 6, target ≤ 5 s at 10,000 records into a new "
            f"folder): synthetic records cloned from the committed ones with new seeds, validated by "
            f"the harness, {args.repeats} repeats each, medians; 'no record memo': each report with a new "
            "empty harness cache (every record parsed and validated), the others with the record memo of "
            "an earlier report of the same records (bench.records.memo: files read and hashed, unchanged "
            f"ones not parsed again); cpu_s is the report process's user + "
            f"sys time, which a busy machine does not inflate as it does wall time; every process with Python's "
            f"default bytecode caching (PYTHONDONTWRITEBYTECODE removed from its environment) "
            f"({os.cpu_count()} cores; load_1min is the machine's 1-minute load average during "
            "those runs)."
        ),
        "source": "benchmarks/report_speed.py",
        "device": "CPU (process start-up and imports)",
        "columns": ["command", "cpu_s", "median_s", "min_s", "max_s", "maxrss_mb", "load_1min", "ratio"],
        "formats": {
            "cpu_s": ".2f",
            "median_s": ".3f",
            "min_s": ".3f",
            "max_s": ".3f",
            "maxrss_mb": ".0f",
            "load_1min": ".2f",
            "ratio": ".2f",
        },
        "rows": [
            {
                "command": "bench report (over an existing site)",
                "median_s": r,
                "min_s": min(rep),
                "max_s": max(rep),
                "ratio": r / i,
            },
            {
                "command": "bench report (into a new folder)",
                "median_s": f,
                "min_s": min(fresh),
                "max_s": max(fresh),
                "ratio": f / i,
            },
            {
                "command": 'python -c "import jinja2, pandas"',
                "median_s": i,
                "min_s": min(imp),
                "max_s": max(imp),
                "ratio": 1.0,
            },
        ]
        + scaled,
        "ratio": r / i,
        "ratio_new_folder": f / i,
        "report_imports_torch": probe["torch"],
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps({"scale": [{k: row[k] for k in ("command", "cpu_s", "median_s", "maxrss_mb")} for row in scaled]}))
    print(
        json.dumps(
            {
                "report_s": r,
                "report_new_folder_s": f,
                "imports_s": i,
                "ratio": r / i,
                "ratio_new_folder": f / i,
                "torch": probe["torch"],
            }
        )
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
