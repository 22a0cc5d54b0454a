"""Paired check of the folded speed path: records of the same run id (same spec and seed, so the same data order
and initial weights) trained once as written and once folded, side by side.

    bench run suites/fast-fashion-v2.yaml --only sep-chans --seeds 0 --results /tmp/other   # folded (default)
    python benchmarks/fold_pairs.py /tmp/other [--against results] [--out results/benchmarks/fold_pairs.json]

For every ok record in the first folder whose run id also has an ok record in ``--against`` on the same device
and the other path (``timing.speed_paths.fold`` set in one, not in the other): top-1 on each path, their
difference (folded − as written) and the training-time ratio. The two paths compute the same function with
other float rounding, so a difference is as large as the divergence of two trainings that start alike, which
is of the order of seed noise; the question is whether it leans one way. No torch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.records.records import load_records, write_json_atomic  # noqa: E402


def _folded(r: dict) -> bool:
    return bool(((r.get("timing") or {}).get("speed_paths") or {}).get("fold"))


def pairs(folder: Path, against: Path) -> list[dict]:
    mine, _ = load_records(folder)
    theirs, _ = load_records(against)
    by_id = {(r["id"], (r.get("env") or {}).get("device")): r for r in theirs if r.get("status") == "ok"}
    out = []
    for r in sorted(mine, key=lambda r: (r["spec"]["suite"], r["label"], r["spec"]["seed"])):
        other = by_id.get((r["id"], (r.get("env") or {}).get("device")))
        if r.get("status") != "ok" or other is None or _folded(r) == _folded(other):
            continue
        folded, written = (r, other) if _folded(r) else (other, r)
        out.append(
            {
                "suite": r["spec"]["suite"],
                "row": r["label"],
                "seed": r["spec"]["seed"],
                "top1_as_written": written["metrics"]["top1"],
                "top1_folded": folded["metrics"]["top1"],
                "difference": round(folded["metrics"]["top1"] - written["metrics"]["top1"], 2),
                "train_s_as_written": round(written["timing"]["train_s"], 1),
                "train_s_folded": round(folded["timing"]["train_s"], 1),
                "time_ratio": round(written["timing"]["train_s"] / folded["timing"]["train_s"], 2),
            }
        )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="records of the runs to pair (a results folder)")
    ap.add_argument("--against", default=str(ROOT / "results"), help="the other path's records (default: results)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    for p in (args.folder, args.against):
        if not Path(p).is_dir():
            print(f"fold_pairs: {p}: no such folder of records", file=sys.stderr)
            return 2
    rows = pairs(Path(args.folder), Path(args.against))
    diffs = [r["difference"] for r in rows]
    res = {
        "title": "Folded vs as written, paired by run id (same seed, data order and initial weights)",
        "description": "top-1 of the same run trained as written and through the folded speed path; difference = "
        "folded − as written (points); time_ratio = as-written training s / folded training s.",
        "columns": [
            "suite",
            "row",
            "seed",
            "top1_as_written",
            "top1_folded",
            "difference",
            "train_s_as_written",
            "train_s_folded",
            "time_ratio",
        ],
        "rows": rows,
        "mean_difference": round(statistics.fmean(diffs), 3) if diffs else None,
        "lower": sum(d < 0 for d in diffs),
        "higher": sum(d > 0 for d in diffs),
    }
    for r in rows:
        print(r)
    print(f"mean difference {res['mean_difference']}, {res['lower']} lower, {res['higher']} higher")
    if args.out:
        write_json_atomic(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
