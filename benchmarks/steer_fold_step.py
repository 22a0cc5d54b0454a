"""steer-dynamic's folded steering path against steering every atom, side by side in one process.

    python benchmarks/steer_fold_step.py [--batch 64] [--rounds 3] [--steps 3] [--out results/benchmarks/steer_fold_step.json]

fast-cifar-v2's steer-dynamic row (whitened-vgg, width 0.625, one pose per location), bf16 autocast +
channels_last, one thread, SGD steps on random images. The two paths alternate round by round after a warm-up
round; per round the process CPU time (``time.process_time``: on one thread, less sensitive to other processes
than wall clock) of ``--steps`` steps; medians and their ratio (> 1: folded faster). Both paths compute the same
function (tests/zoo/test_steerable.py::test_folded_steering_equals_steering_every_atom).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.zoo.layers.steerable import SteerableBlock
from bench.measure.measure import device_name
from bench.records.records import write_json_atomic
from bench.spec.suite import load_suite

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rowstep import row_training_step  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="suites/fast-cifar-v2.yaml")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    suite = load_suite(args.suite)
    row = next(lay for lay in suite.layers if lay["label"] == "steer-dynamic")
    _, step = row_training_step(suite, row, args.batch)
    dev = torch.device("cpu")

    folded = SteerableBlock._forward_folded
    paths = {"folded": folded, "atoms": SteerableBlock._forward_steered_atoms}
    times: dict[str, list[float]] = {k: [] for k in paths}
    try:
        for r in range(args.rounds + 1):
            for name, fn in paths.items():
                SteerableBlock._forward_folded = fn
                t0 = time.process_time()
                for _ in range(args.steps):
                    step()
                if r:
                    times[name].append((time.process_time() - t0) / args.steps)
    finally:
        SteerableBlock._forward_folded = folded
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "title": "steer-dynamic: folded steering vs steering every atom (CPU s per step)",
        "description": f"{args.suite} steer-dynamic row, batch {args.batch}, bf16 autocast + channels_last, "
        f"1 thread; paths alternating over {args.rounds} rounds of {args.steps} steps after a "
        "warm-up round; median process CPU seconds per step.",
        "device": device_name(dev),
        "columns": ["path", "cpu_s_per_step", "rounds"],
        "rows": [
            {"path": k, "cpu_s_per_step": round(med[k], 4), "rounds": [round(v, 4) for v in times[k]]} for k in paths
        ],
        "atoms_over_folded": round(med["atoms"] / med["folded"], 3),
    }
    print(out["rows"], "atoms/folded =", out["atoms_over_folded"])
    if args.out:
        write_json_atomic(args.out, out)
    return out


if __name__ == "__main__":
    main()
