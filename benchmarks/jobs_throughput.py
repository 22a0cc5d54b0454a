"""Runs packed on one device: aggregate runs per hour of `bench run --jobs N` for N = 1 and 2 (or --jobs-list),
side by side in one invocation, on the quick suite (scikit-learn digits, every family) at tiny settings.

    python benchmarks/jobs_throughput.py [--jobs-list 1,2] [--threads 2] [--epochs 1] [--train-subset 256]
        [--test-subset 128] [--only conv --only pnn ...] [--device cpu] [--out results/benchmarks/jobs_throughput.json]

Each N runs the same specs (fresh results folder, so nothing is skipped) as one `bench run` process with
``--threads T --jobs N`` (each job gets max(1, T // N) threads), timed from start to exit (process start-up,
imports and the workers' start included: what a user waits for). Runs per hour = runs / wall seconds × 3600.
The N values run one after the other, in the order given, then in reverse if ``--both-orders`` (drift check).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(jobs: int, args, results: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "bench.cli",
        "run",
        str(ROOT / "suites" / "quick.yaml"),
        "--results",
        str(results),
        "--jobs",
        str(jobs),
        "--threads",
        str(args.threads),
        "--epochs",
        str(args.epochs),
        "--train-subset",
        str(args.train_subset),
        "--test-subset",
        str(args.test_subset),
        "--device",
        args.device,
        "--seeds",
        args.seeds,
        "--no-progress",
        "--force",
    ]
    for o in args.only:
        cmd += ["--only", o]
    if args.max_batches:
        cmd += ["--max-batches", str(args.max_batches)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench run --jobs {jobs} failed:\n{proc.stderr[-2000:]}")
    records = [json.loads(p.read_text()) for p in (results / "quick").glob("*.json")]
    ok = sum(r.get("status") == "ok" for r in records)
    return {
        "jobs": jobs,
        "threads_per_job": max(1, args.threads // jobs),
        "runs": len(records),
        "ok": ok,
        "wall_s": wall,
        "runs_per_hour": 3600.0 * len(records) / wall,
        "metrics": {r["id"]: r.get("metrics", {}).get("top1") for r in records},
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs-list", default="1,2")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-subset", type=int, default=256)
    ap.add_argument("--test-subset", type=int, default=128)
    ap.add_argument("--max-batches", type=int, default=None)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--both-orders", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    order = [int(j) for j in args.jobs_list.split(",")]
    if args.both_orders:
        order += order[::-1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, jobs in enumerate(order):
            rows.append(run_once(jobs, args, Path(tmp) / f"r{k}"))
            print(
                f"--jobs {jobs}: {rows[-1]['runs']} runs in {rows[-1]['wall_s']:.1f} s → "
                f"{rows[-1]['runs_per_hour']:.0f} runs/hour",
                flush=True,
            )
    base = rows[0]["runs_per_hour"]
    for r in rows:
        r["speed_up"] = r["runs_per_hour"] / base
    result = {
        "title": "Runs packed on one device: aggregate runs per hour, bench run --jobs N",
        "description": (
            f"suites/quick.yaml (digits), {rows[0]['runs']} runs per N ({', '.join(args.only) or 'every family'}"
            f", seeds {args.seeds}), {args.epochs} epoch(s), {args.train_subset}/{args.test_subset} "
            f"images, {args.threads} CPU threads divided among the N jobs; wall time of the whole "
            "`bench run` process (start-up included). CPU figures on a shared machine are indicative."
        ),
        "source": "benchmarks/jobs_throughput.py",
        "device": args.device,
        "columns": ["jobs", "threads_per_job", "runs", "wall_s", "runs_per_hour", "speed_up"],
        "formats": {"wall_s": ".1f", "runs_per_hour": ".0f", "speed_up": ".2f"},
        "rows": [{k: v for k, v in r.items() if k != "metrics"} for r in rows],
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
