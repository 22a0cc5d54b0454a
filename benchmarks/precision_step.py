"""Training-step time of every registered layer family in the fast protocol v2's network (suites/fast-cifar-v2.yaml),
fp32 against bf16 autocast, side by side in one process: for each family the same model (same seed) is timed in
three ways that alternate round by round — fp32 contiguous (NCHW), fp32 channels_last, bf16 autocast with
channels_last — so drift hits all of them. One step = forward + backward + SGD update on a batch already on the
device. The median over rounds is reported with the ratios fp32 / bf16 (>1: bf16 is faster).

    python benchmarks/precision_step.py [--families conv,pnn,...] [--batch 256] [--rounds 3] [--steps 2]
        [--threads 1] [--device cpu|cuda] [--out results/benchmarks/precision_step.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.measure.measure import Clock, device_name
from bench.zoo.models import build_classifier
from bench.records.records import write_json_atomic
from bench.spec.suite import load_suite
from bench.execution.train import _autocast

ROOT = Path(__file__).resolve().parent.parent
MODES = (("fp32", False, False), ("fp32-cl", False, True), ("bf16-cl", True, True))


def time_family(layer: dict, suite, batch: int, rounds: int, steps: int, dev: torch.device) -> dict:
    """Median step seconds of one suite row (its family, options and stem) in each of :data:`MODES`."""
    torch.manual_seed(0)
    model = (
        build_classifier(
            suite.backbones[0], layer, 3, 10, [0.49, 0.48, 0.45], [0.25, 0.24, 0.26], torch.rand(1, 3, 32, 32)
        )
        .to(dev)
        .train()
    )
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.85)
    x0, y = torch.rand(batch, 3, 32, 32, device=dev), torch.randint(0, 10, (batch,), device=dev)

    def step(amp: bool, x: torch.Tensor) -> None:
        with _autocast(dev, amp):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = {name: [] for name, _, _ in MODES}
    for r in range(rounds + 1):  # round 0 warms up every mode
        for name, amp, cl in MODES:
            fmt = torch.channels_last if cl else torch.contiguous_format
            model.to(memory_format=fmt)
            x = x0.contiguous(memory_format=fmt)
            clock = Clock(dev)
            started = clock.start()
            for _ in range(steps):
                step(amp, x)
            if r:
                times[name].append(clock.stop(started) / steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "family": layer["label"],
        **{f"{k}_s": v for k, v in med.items()},
        "fp32_over_bf16": med["fp32"] / med["bf16-cl"],
        "fp32cl_over_bf16": med["fp32-cl"] / med["bf16-cl"],
        "bf16_img_s": batch / med["bf16-cl"],
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="", help="comma-separated (row labels; default: every row of the suite)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per mode and round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--suite", default=str(ROOT / "suites" / "fast-cifar-v2.yaml"))
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    suite = load_suite(args.suite)
    wanted = [f for f in args.families.split(",") if f]
    rows = []
    t0 = time.perf_counter()
    for layer in suite.layers:
        if wanted and layer["label"] not in wanted:
            continue
        row = time_family(layer, suite, args.batch, args.rounds, args.steps, dev)
        rows.append(row)
        print(
            f"{layer['label']:16s} fp32 {row['fp32_s']:.3f} s  fp32-cl {row['fp32-cl_s']:.3f} s  bf16-cl "
            f"{row['bf16-cl_s']:.3f} s  fp32/bf16 {row['fp32_over_bf16']:.2f}×",
            flush=True,
        )
    result = {
        "title": "fp32 against bf16 training-step time per family (fast protocol v2 network)",
        "description": (
            f"{suite.backbones[0]['name']} {suite.backbones[0].get('options', {})}, batch {args.batch}, "
            f"{args.threads} thread(s); per family one model timed as fp32 NCHW, fp32 channels_last and "
            f"bf16 autocast + channels_last, modes alternating over {args.rounds} rounds of "
            f"{args.steps} steps after a warm-up round; median seconds per step and the ratios "
            f"(> 1: bf16 faster). Total {time.perf_counter() - t0:.0f} s."
        ),
        "source": "benchmarks/precision_step.py",
        "device": device_name(dev),
        "columns": ["family", "fp32_s", "fp32-cl_s", "bf16-cl_s", "fp32_over_bf16", "fp32cl_over_bf16", "bf16_img_s"],
        "formats": {
            "fp32_s": ".3f",
            "fp32-cl_s": ".3f",
            "bf16-cl_s": ".3f",
            "fp32_over_bf16": ".2f",
            "fp32cl_over_bf16": ".2f",
            "bf16_img_s": ".0f",
        },
        "rows": rows,
    }
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
