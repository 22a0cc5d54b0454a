"""Harness overhead: one training epoch of the conv ResNet-20 through the harness (``bench.execution.train.fit_classifier``)
against a plain hand-written PyTorch loop doing the same work (same data on the device, same augmentation,
optimiser, schedule and evaluation) in the same process. Runs alternate (harness, plain, harness, …) so drift
hits both; the ratio is median(harness) / median(plain).

    python benchmarks/harness_overhead.py [--data-root DIR] [--train 5000] [--repeats 5] [--device cpu|cuda]
        [--out results/benchmarks/harness_overhead.json]

CIFAR-10 is read from --data-root / $BENCH_DATA_ROOT (torchvision format or image folders); without it the
script says so and uses random uint8 images of the same shape (the timing does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from bench.zoo.backbones import Ops, build_backbone
from bench.measure.measure import Clock, device_name
from bench.zoo.models import ImageClassifier, materialise
from bench.records.records import write_json_atomic
from bench.execution.train import fit_classifier


def load(args):
    root = args.data_root or os.environ.get("BENCH_DATA_ROOT")
    if root:
        from bench.zoo.datasets import load_dataset

        d = load_dataset("cifar10", root).subset(args.train, args.test)
        return d.train_x, d.train_y, d.test_x, d.test_y, f"CIFAR-10 ({root})"
    print("no CIFAR-10 root given: timing on random uint8 images of CIFAR-10's shape", file=sys.stderr)
    g = torch.Generator().manual_seed(0)
    mk = lambda n: (
        torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
        torch.randint(0, 10, (n,), generator=g),
    )
    return (*mk(args.train), *mk(args.test), "random uint8 images, CIFAR-10 shape")


def model(device):
    torch.manual_seed(0)
    net = ImageClassifier(build_backbone("preact-resnet", Ops.of("conv"), 3, 10, {"n": 3}), [0.5] * 3, [0.25] * 3)
    materialise(net, torch.zeros(1, 3, 32, 32))
    net = net.to(device)
    return net.to(memory_format=torch.channels_last) if device.type == "cuda" else net


PROTOCOL = {
    "epochs": 1,
    "batch_size": 128,
    "eval_batch_size": 1000,
    "augment": ["crop", "flip"],
    "crop_padding": 4,
    "label_smoothing": 0.0,
    "max_batches": None,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
    "schedule": {"name": "cosine", "milestones": [], "gamma": 0.1, "warmup_epochs": 0.0},
}


def plain_epoch(net, trx, tr_y, tex, te_y, device):
    """What a researcher would write by hand: same work, no harness."""
    trx, tr_y, tex, te_y = trx.to(device), tr_y.to(device), tex.to(device), te_y.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = len(tr_y) // 128
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    amp = device.type == "cuda"
    perm = torch.randperm(len(tr_y), device=device)
    net.train()
    for i in range(steps):
        idx = perm[i * 128 : (i + 1) * 128]
        x = trx[idx].float() / 255
        b = x.shape[0]
        xp = F.pad(x, (4, 4, 4, 4))
        oy = torch.randint(0, 9, (b,), device=device)
        ox = torch.randint(0, 9, (b,), device=device)
        ar = torch.arange(32, device=device)
        x = xp[
            torch.arange(b, device=device)[:, None, None, None],
            torch.arange(3, device=device)[None, :, None, None],
            (oy[:, None] + ar)[:, None, :, None],
            (ox[:, None] + ar)[:, None, None, :],
        ]
        x = torch.where((torch.rand(b, device=device) < 0.5)[:, None, None, None], x.flip(3), x)
        if amp:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(net(x).float(), tr_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    correct = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for i in range(0, len(te_y), 1000):
            correct += int((net(tex[i : i + 1000].float() / 255).argmax(1) == te_y[i : i + 1000]).sum())
    return correct


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root")
    p.add_argument("--train", type=int, default=5000)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    trx, tr_y, tex, te_y, source = load(args)
    clock = Clock(device)
    # warm-up both paths once (allocator, kernels) before timing
    fit_classifier(model(device), trx, tr_y, tex, te_y, PROTOCOL, device, 0)
    plain_epoch(model(device), trx, tr_y, tex, te_y, device)
    harness, plain = [], []
    for _ in range(args.repeats):
        net = model(device)
        clock.sync()
        t0 = clock.start()
        fit_classifier(net, trx, tr_y, tex, te_y, PROTOCOL, device, 0)
        harness.append(clock.stop(t0))
        net = model(device)
        clock.sync()
        t0 = clock.start()
        plain_epoch(net, trx, tr_y, tex, te_y, device)
        plain.append(clock.stop(t0))
    h, q = statistics.median(harness), statistics.median(plain)
    ratio = h / q
    out = {
        "title": "Harness overhead: one epoch of the conv ResNet-20, harness vs hand-written loop",
        "description": (
            f"{len(tr_y)} training + {len(te_y)} test images ({source}), batch 128, "
            f"{args.repeats} alternating repeats, medians; target ratio ≤ 1.05."
        ),
        "device": device_name(device),
        "source": "benchmarks/harness_overhead.py",
        "clock": clock.source,
        "columns": ["path", "median_s", "min_s", "max_s", "ratio"],
        "formats": {"median_s": ".3f", "min_s": ".3f", "max_s": ".3f", "ratio": ".3f"},
        "rows": [
            {
                "path": "harness (bench.execution.train.fit_classifier)",
                "median_s": h,
                "min_s": min(harness),
                "max_s": max(harness),
                "ratio": ratio,
            },
            {"path": "plain PyTorch loop", "median_s": q, "min_s": min(plain), "max_s": max(plain), "ratio": 1.0},
        ],
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps({"harness_s": h, "plain_s": q, "ratio": ratio, "device": out["device"]}))
    if args.out:
        write_json_atomic(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
