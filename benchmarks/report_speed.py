"""`bench report` on the committed results versus the bare imports it cannot avoid (jinja2 and pandas).
Target (issue 10): the report takes at most 2× ``python -c "import jinja2, pandas"``.

    python benchmarks/report_speed.py [--results results] [--repeats 5] [--out results/benchmarks/report_speed.json]

Both commands run as fresh processes, alternating (imports, report, imports, …) so drift hits both; wall
clock (time.perf_counter) around ``subprocess.run``; medians. One untimed report first builds the registry
metadata catalog (bench.catalog) if it is missing, as any first report after a code change does. Whether the
report process imported torch is checked and recorded.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ("import sys, json; from bench.cli import main; rc = main(sys.argv[1:]); "
          "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules}))")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--suites", default=str(ROOT / "suites"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report_cmd = [sys.executable, "-c", REPORT, "report", "--results", args.results, "--suites", args.suites,
                      "--site", str(Path(tmp) / "site")]
        imports_cmd = [sys.executable, "-c", "import jinja2, pandas"]
        first = subprocess.run(report_cmd, capture_output=True, text=True, cwd=ROOT, check=True)
        probe = json.loads(first.stdout.strip().splitlines()[-1])
        n_records = sum(1 for p in Path(args.results).rglob("*.json") if "benchmarks" not in p.parts
                        and not p.name.startswith(".") and ".locks" not in p.parts)
        rep, fresh, imp = [], [], []
        for k in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(imports_cmd, check=True, cwd=ROOT)
            imp.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run(report_cmd, check=True, capture_output=True, cwd=ROOT)  # over the previous site
            rep.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run(report_cmd[:-1] + [str(Path(tmp) / f"fresh{k}")], check=True, capture_output=True,
                           cwd=ROOT)  # into a new folder
            fresh.append(time.perf_counter() - t0)
    r, f, i = statistics.median(rep), statistics.median(fresh), statistics.median(imp)
    result = {
        "title": "bench report vs importing jinja2 and pandas",
        "description": (f"`bench report` on the committed results (~{n_records} record files) into a temporary "
                        "site (over the previous repeat's site, whose unchanged run pages it keeps, and into a new "
                        "folder), "
                        f"versus `python -c \"import jinja2, pandas\"`, {args.repeats} alternating repeats "
                        f"each as a fresh process, medians of wall time. Report imported torch: {probe['torch']}. "
                        "Target: ratio ≤ 2."),
        "source": "benchmarks/report_speed.py", "device": "CPU (process start-up and imports)",
        "columns": ["command", "median_s", "min_s", "max_s", "ratio"],
        "formats": {"median_s": ".3f", "min_s": ".3f", "max_s": ".3f", "ratio": ".2f"},
        "rows": [{"command": "bench report (over an existing site)", "median_s": r, "min_s": min(rep),
                  "max_s": max(rep), "ratio": r / i},
                 {"command": "bench report (into a new folder)", "median_s": f, "min_s": min(fresh),
                  "max_s": max(fresh), "ratio": f / i},
                 {"command": "python -c \"import jinja2, pandas\"", "median_s": i, "min_s": min(imp),
                  "max_s": max(imp), "ratio": 1.0}],
        "ratio": r / i, "ratio_new_folder": f / i, "report_imports_torch": probe["torch"],
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps({"report_s": r, "report_new_folder_s": f, "imports_s": i, "ratio": r / i,
                      "ratio_new_folder": f / i, "torch": probe["torch"]}))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
