"""Folded speed paths against the layers as written (a filter bank, then a 1×1), side by side in one process.

    python benchmarks/fold_step.py [--batch 64] [--rounds 3] [--steps 2] [--sweep] [--out results/benchmarks/fold_step.json]

fast-cifar-v2's network (whitened-vgg, width 0.625) with each row of the suite whose layers have a ``fold``
switch (sep-full, sep-chans, sep-space, sep-chans-dct with d = k² = 9; rfnn; steer-static) and its conv row for
scale, bf16 autocast + channels_last, one thread, SGD steps on random images. Per row, the two paths (``fold``
on / off) alternate round by round after a warm-up round; per round the process CPU time (``time.process_time``:
on one thread, less sensitive to other processes than the wall clock) of ``--steps`` steps; medians, their ratio
(> 1: folded faster) and each path's time as a multiple of the conv row's. Both paths compute the same function
(tests/zoo/test_fold_paths.py).

``--sweep`` adds single layers of other shapes (``SWEEP``: separable multipliers 1–81, kernels 3–9; RFNN
supports 5–33), forward and backward under bf16 autocast at batch 4, both paths forced: the evidence for
:func:`bench.zoo.layers.fold_pays`, the rule that sets each layer's default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.measure.measure import device_name
from bench.records.records import write_json_atomic
from bench.spec.suite import load_suite

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rowstep import row_training_step  # noqa: E402

ROWS = ("conv", "sep-full", "sep-chans", "sep-space", "sep-chans-dct", "rfnn", "steer-static")
# (family, c_in, c_out, H = W, kernel_size, options) of single layers
SWEEP = (
    ("sep-full", 64, 64, 16, 3, {"multiplier": 1}),
    ("sep-full", 64, 64, 16, 3, {"multiplier": 3}),
    ("sep-full", 64, 64, 16, 3, {}),
    ("sep-full", 64, 64, 16, 5, {"multiplier": 3}),
    ("sep-full", 64, 64, 16, 9, {"multiplier": 3}),
    ("sep-full", 32, 32, 16, 9, {}),
    ("rfnn", 64, 64, 16, 3, {"scales": [1]}),
    ("rfnn", 64, 64, 16, 3, {"scales": [1, 2]}),
    ("rfnn", 64, 64, 16, 3, {"scales": [1, 2, 4]}),
    ("rfnn", 64, 128, 16, 3, {"scales": [1, 2, 4, 8]}),
    ("steer-static", 64, 64, 16, 3, {}),
)


def sweep(cases=SWEEP, rounds: int = 2, steps: int = 2) -> list[dict]:
    """Per single layer: CPU s per forward + backward (bf16 autocast, batch 4) folded and as written, the
    speed-up, the rule's default (``fold_pays``) and the MAC ratio of the dense k×k convolution to the layer."""
    from bench.zoo.layers import LAYERS, fold_pays

    out = []
    for family, cin, cout, hw, k, opts in cases:
        torch.manual_seed(0)
        layer = LAYERS.get(family).build(cin, cout, k, 1, None, False, **opts)
        (switch,) = [m for m in layer.modules() if isinstance(getattr(m, "fold", None), bool)]
        default = switch.fold
        x = torch.randn(4, cin, hw, hw)
        times: dict[bool, list[float]] = {True: [], False: []}
        for r in range(rounds + 1):
            for fold in (True, False):
                switch.fold = fold
                t0 = time.process_time()
                for _ in range(steps):
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        y = layer(x)
                    y.float().sum().backward()
                if r:
                    times[fold].append((time.process_time() - t0) / steps)
        kk = getattr(switch, "k", None) or getattr(switch, "kernel_size", None) or switch.basis.shape[-1]
        bank = getattr(switch, "multiplier", None) or getattr(switch, "num_basis", None) or getattr(switch, "M")
        folded, written = statistics.median(times[True]), statistics.median(times[False])
        out.append(
            {
                "family": family,
                "shape": f"{cin}→{cout}, {hw}×{hw}, k={kk}, {bank} per channel",
                "folded_s": round(folded, 5),
                "as_written_s": round(written, 5),
                "speedup": round(written / folded, 2),
                "default_fold": default,
                "rule": fold_pays(kk, bank),
                "dense_over_written_macs": round(cout * kk * kk / (bank * kk * kk + bank * cout), 2),
            }
        )
        print(out[-1])
    return out


def _switches(model) -> list:
    return [m for m in model.modules() if isinstance(getattr(m, "fold", None), bool)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="suites/fast-cifar-v2.yaml")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated row labels of the suite")
    ap.add_argument("--sweep", action="store_true", help="also time single layers of other shapes (SWEEP)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    suite = load_suite(args.suite)
    dev = torch.device("cpu")
    rows, conv_s = [], None
    for label in args.rows.split(","):
        row = next(lay for lay in suite.layers if lay["label"] == label)
        model, step = row_training_step(suite, row, args.batch)

        switches = _switches(model)
        paths = ("folded", "as written") if switches else ("folded",)
        times: dict[str, list[float]] = {p: [] for p in paths}
        try:
            for r in range(args.rounds + 1):
                for path in paths:
                    for m in switches:
                        m.fold = path == "folded"
                    t0 = time.process_time()
                    for _ in range(args.steps):
                        step()
                    if r:
                        times[path].append((time.process_time() - t0) / args.steps)
        finally:
            for m in switches:
                m.fold = True
        med = {p: statistics.median(v) for p, v in times.items()}
        if label == "conv":
            conv_s = med["folded"]
        out = {"row": label, "layers_folded": len(switches)}
        for p in paths:
            out[f"{p.replace(' ', '_')}_cpu_s_per_step"] = round(med[p], 4)
            out[f"{p.replace(' ', '_')}_rounds"] = [round(v, 4) for v in times[p]]
            if conv_s:
                out[f"{p.replace(' ', '_')}_over_conv"] = round(med[p] / conv_s, 3)
        if switches:
            out["as_written_over_folded"] = round(med["as written"] / med["folded"], 3)
        rows.append(out)
        print(out)
    res = {
        "title": "Folded speed paths: one dense k×k convolution vs filter bank then 1×1, as written (CPU s per step)",
        "description": f"{args.suite} rows {args.rows}, batch {args.batch}, bf16 autocast + channels_last, 1 thread; "
        f"fold on/off alternating over {args.rounds} rounds of {args.steps} steps after a warm-up round; "
        "median process CPU seconds per step; *_over_conv: that path's time as a multiple of the conv row's.",
        "device": device_name(dev),
        "columns": [
            "row",
            "folded_cpu_s_per_step",
            "as_written_cpu_s_per_step",
            "as_written_over_folded",
            "folded_over_conv",
            "as_written_over_conv",
        ],
        "rows": rows,
    }
    if args.sweep:
        res["sweep"] = sweep()
    if args.out:
        write_json_atomic(args.out, res)
    return res


if __name__ == "__main__":
    main()
