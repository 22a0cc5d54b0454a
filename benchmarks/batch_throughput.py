"""Training throughput of the fast protocol's network at several batch sizes, in one process: the conv
pre-activation ResNet-20 (suites/fast-cifar.yaml), SGD with Nesterov momentum, cross-entropy with label smoothing,
one training step = forward + backward + update on a batch already on the device. Sizes alternate round by round
(64, 128, 256, 512, 64, …) so drift hits all of them; images/s is the median over rounds, and each size's ratio is
against the fastest. It checked that suites/fast-cifar.yaml's batch (64) costs no speed on CPU.

    python benchmarks/batch_throughput.py [--batches 64,128,256,512] [--rounds 5] [--seconds 4] [--threads 1]
        [--device cpu|cuda] [--out results/benchmarks/batch_throughput.json]
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

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="64,128,256,512")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0, help="time per size and round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sizes = [int(b) for b in args.batches.split(",")]
    # the network, optimizer and loss of the suite itself, so the benchmark follows the protocol when it changes
    suite = load_suite(ROOT / "suites" / "fast-cifar.yaml")
    sgd, smoothing = suite.protocol["optimizer"], suite.protocol.get("label_smoothing", 0.0)
    torch.manual_seed(0)
    model = (
        build_classifier(
            suite.backbones[0],
            {"name": "conv"},
            3,
            10,
            [0.49, 0.48, 0.45],
            [0.25, 0.24, 0.26],
            torch.zeros(1, 3, 32, 32),
        )
        .to(dev)
        .train()
    )
    opt = torch.optim.SGD(
        model.parameters(),
        lr=0.01,
        momentum=sgd["momentum"],
        nesterov=sgd["nesterov"],
        weight_decay=sgd["weight_decay"],
    )  # a small lr: throughput only, nothing diverges
    data = {b: (torch.rand(b, 3, 32, 32, device=dev), torch.randint(0, 10, (b,), device=dev)) for b in sizes}

    def step(b):
        x, y = data[b]
        loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for b in sizes:  # warm-up: allocator, kernels
        for _ in range(2):
            step(b)
    rates = {b: [] for b in sizes}
    for _ in range(args.rounds):
        for b in sizes:
            clock, n = Clock(dev), 0
            started, t0 = clock.start(), time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:  # GPU: a few launches ahead at most; timed by events
                step(b)
                n += b
            rates[b].append(n / clock.stop(started))
    med = {b: statistics.median(r) for b, r in rates.items()}
    best = max(med.values())
    result = {
        "title": "Training throughput of the fast protocol's ResNet-20 by batch size",
        "description": (
            f"Conv pre-activation ResNet-20, one training step per batch (forward, backward, SGD "
            f"update) on data already on the device, {args.threads} thread(s), batch sizes "
            f"alternating over {args.rounds} rounds of {args.seconds:g} s each; median images/s and "
            f"its ratio to the fastest size."
        ),
        "source": "benchmarks/batch_throughput.py",
        "device": device_name(dev),
        "columns": ["batch", "img_s", "min_img_s", "max_img_s", "ratio_to_fastest", "epoch_min"],
        "formats": {
            "img_s": ".0f",
            "min_img_s": ".0f",
            "max_img_s": ".0f",
            "ratio_to_fastest": ".3f",
            "epoch_min": ".2f",
        },
        "rows": [
            {
                "batch": b,
                "img_s": med[b],
                "min_img_s": min(rates[b]),
                "max_img_s": max(rates[b]),
                "ratio_to_fastest": med[b] / best,
                "epoch_min": 50000 / med[b] / 60,
            }
            for b in sizes
        ],
    }
    if args.out:
        write_json_atomic(args.out, result)
    for r in result["rows"]:
        print(
            f"batch {r['batch']:4d}: {r['img_s']:7.1f} img/s ({r['ratio_to_fastest']:.3f} of the fastest), "
            f"{r['epoch_min']:.2f} min per 50,000 images"
        )
    return result


if __name__ == "__main__":
    main()
