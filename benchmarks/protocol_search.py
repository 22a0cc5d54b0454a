"""Accuracy against training minutes for every recipe tried while choosing the fast shared protocol v2 (issue 22),
with the Pareto front (no other recipe is both faster and more accurate) and whether each fits the 15-minute
training budget. Reads run records (the harness's own JSON records of the conv row, seed 0 unless stated) from
a JSON-lines file or from record folders, so every point is a real run of the harness.

    python benchmarks/protocol_search.py results/benchmarks/protocol-search/records.jsonl results/fast-cifar \
        --out results/benchmarks/protocol_search.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.records.records import write_json_atomic

BUDGET_S = 900.0


def _records(paths: list[str]) -> list[dict]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [json.loads(f.read_text()) for f in sorted(p.glob("*.json"))]
        else:
            out += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return [r for r in out if r.get("status") == "ok" and r.get("label") == "conv"]


def recipe(r: dict) -> str:
    spec, proto = r["spec"], r["spec"]["protocol"]
    opts = ", ".join(f"{k}={v}" for k, v in sorted(spec["backbone"].get("options", {}).items()))
    suite = r["suite"]["name"] if isinstance(r.get("suite"), dict) else r.get("suite")
    return (
        f"{suite}: {spec['backbone']['name']}({opts}), {proto['epochs']} ep, batch {proto['batch_size']}, "
        f"lr {proto['optimizer']['lr']:g}"
    )


def short(r: dict) -> str:
    """A plot label: network, width, epochs, batch."""
    spec, proto = r["spec"], r["spec"]["protocol"]
    width = spec["backbone"].get("options", {}).get("width")
    return f"{spec['backbone']['name']} w{width} {proto['epochs']}ep b{proto['batch_size']}"


def pareto(points: list[dict]) -> None:
    """Mark each point that no other point beats on both training time (lower) and top-1 (higher)."""
    for p in points:
        p["pareto"] = not any(
            q is not p
            and q["train_min"] <= p["train_min"]
            and q["top1"] >= p["top1"]
            and (q["train_min"] < p["train_min"] or q["top1"] > p["top1"])
            for q in points
        )


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", help="records.jsonl files or record folders")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    rows = []
    for r in _records(args.sources):
        t = r["timing"]
        rows.append(
            {
                "recipe": recipe(r),
                "short": short(r),
                "seed": r["spec"]["seed"],
                "top1": r["metrics"]["top1"],
                "train_min": t["train_s"] / 60,
                "fits_15_min": t["train_s"] <= BUDGET_S,
                "paths": t.get("speed_paths", {}).get("autocast", "fp32"),
                "run_id": r["id"],
            }
        )
    pareto(rows)
    rows.sort(key=lambda x: x["train_min"])
    result = {
        "title": "Fast protocol v2: accuracy against training minutes of every recipe tried",
        "description": (
            "Conv row on full CIFAR-10 (JPEG copy), one CPU thread per run, two runs at a time; top-1 "
            "with the recipe's test-time augmentation; Pareto: no other recipe both faster and more "
            "accurate; fits: at most 15 minutes (900 s) of training."
        ),
        "source": "benchmarks/protocol_search.py",
        "device": _device(args.sources),
        "columns": ["short", "seed", "top1", "train_min", "fits_15_min", "pareto", "paths", "recipe"],
        "formats": {"top1": ".2f", "train_min": ".1f"},
        "rows": rows,
    }
    if args.out:
        write_json_atomic(args.out, result)
    for x in rows:
        print(
            f"{x['train_min']:6.1f} min  {x['top1']:6.2f} %  {'P' if x['pareto'] else ' '} "
            f"{'fits' if x['fits_15_min'] else 'over'}  {x['recipe']} (seed {x['seed']})"
        )
    return result


def _device(sources: list[str]) -> str:
    devices = sorted({r.get("env", {}).get("device", "") for r in _records(sources)})
    return ", ".join(d for d in devices if d)


if __name__ == "__main__":
    main()
