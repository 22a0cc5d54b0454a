"""Fixed costs per run: what robustness evaluation, MAC and parameter counting, latency and throughput add to a
run's training time, at the cifar suite's CPU-sized settings: the conv pre-activation ResNet-20 of
suites/cifar.yaml at its declared tier ``cpu-3ep`` (3 epochs, 2,000 training and 1,000 test images; FGSM on 200
of them, timing from 3 repeats at batch 64). Target (issue 10): all of them together ≤ 15 % of the training time.

    python benchmarks/fixed_costs.py [--data-root DIR] [--tier cpu-3ep] [--epochs N] [--train N] [--test N]
        [--device cpu] [--legacy-fgsm] [--out results/benchmarks/fixed_costs.json]

Each part is timed once, in the order a run does them, by the same functions the classification task calls,
with the tier's task options (``--epochs/--train/--test`` shrink it further, for the smoke test).
``--legacy-fgsm`` also times the attack as it was before issue 10 (torchattacks.FGSM once per ε, a host sync
per batch) on the same images, for comparison. CIFAR-10 is read from --data-root / $BENCH_DATA_ROOT; without it random uint8
images of the same shape are used (timings do not depend on pixel values).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def legacy_fgsm(model, images, labels, eps_255, batch_size, device):
    """The attack loop before issue 10: one torchattacks.FGSM per ε, ``int(...)`` (a host sync) per batch."""
    from bench.measure.robustness import make_attack

    model.eval()
    accs = []
    for e in eps_255:
        atk = make_attack(model, "fgsm", e / 255)
        correct = 0
        for i in range(0, len(labels), batch_size):
            x = images[i : i + batch_size].to(device).float().div(255)
            y = labels[i : i + batch_size].to(device)
            x_adv = atk(x, y) if e > 0 else x
            with torch.no_grad():
                correct += int((model(x_adv).argmax(1) == y).sum())
        accs.append(100.0 * correct / len(labels))
    model.train()
    return accs


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root")
    ap.add_argument("--tier", default="cpu-3ep", help="a tier suites/cifar.yaml declares")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--train", type=int)
    ap.add_argument("--test", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--legacy-fgsm", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    from bench.zoo.datasets import ImageData, load_dataset
    from bench.measure.measure import Clock, count_macs, count_training_macs, device_name, inference_speed
    from bench.zoo.models import build_classifier
    from bench.records.records import write_json_atomic
    from bench.measure.robustness import adversarial_accuracy
    from bench.spec.suite import load_suite
    from bench.tasks import TASKS
    from bench.tasks.classification import standard_conv_param_ratio
    from bench.measure.measure import count_parameters
    from bench.execution.train import fit_classifier, prepare

    device = torch.device(args.device)
    suite = load_suite(ROOT / "suites" / "cifar.yaml")
    tier = suite.tier(args.tier)
    spec = [
        s
        for s in suite.expand(seeds=[0], tier=args.tier)
        if s.backbone["name"] == "preact-resnet" and s.label == "conv"
    ][0]
    for key, value in (("epochs", args.epochs), ("train_subset", args.train), ("test_subset", args.test)):
        if value is not None:
            spec.protocol[key] = value
    args.epochs, args.train, args.test = (spec.protocol[k] for k in ("epochs", "train_subset", "test_subset"))
    opts = TASKS.get("classification").options(spec.task.get("options"))
    root = args.data_root or os.environ.get("BENCH_DATA_ROOT")
    if root:
        data = load_dataset("cifar10", root).subset(args.train, args.test)
        source = f"CIFAR-10 ({root})"
    else:
        print("no CIFAR-10 root: random uint8 images of CIFAR-10's shape", file=sys.stderr)
        g = torch.Generator().manual_seed(0)
        mk = lambda n: (
            torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (n,), generator=g),
        )
        data = ImageData("cifar10", *mk(args.train), *mk(args.test), [str(i) for i in range(10)])
        source = "random uint8 images, CIFAR-10 shape"
    clock = Clock(device)
    times = {}

    def timed(name, fn):
        clock.sync()
        t0 = time.perf_counter()
        out = fn()
        clock.sync()
        times[name] = time.perf_counter() - t0
        return out

    torch.manual_seed(0)
    mean, std = data.channel_stats()
    example = data.test_x[:1].float().div(255)
    model = build_classifier(spec.backbone, spec.layer, 3, 10, mean, std, example).to(device)
    timed(
        "macs",
        lambda: (
            standard_conv_param_ratio(spec.backbone, count_parameters(model)["learned"], 3, 10, mean, std, example),
            count_macs(model, example.to(device)),
            count_training_macs(model, prepare(data.train_x[: spec.protocol["batch_size"]].to(device))),
        ),
    )
    fit = timed(
        "train_total",
        lambda: fit_classifier(model, data.train_x, data.train_y, data.test_x, data.test_y, spec.protocol, device, 0),
    )
    train_s = fit["timing"]["train_s"]
    times["evaluation_per_epoch"] = times["train_total"] - train_s  # test-set evaluation after each epoch
    timed(
        "latency_throughput",
        lambda: inference_speed(
            model,
            example.to(device),
            min(opts["throughput_batch"], len(data.test_y)),
            device,
            repeats=opts["timing_repeats"],
        ),
    )
    adv = data.subset(None, opts["attack_subset"])
    timed(
        "fgsm",
        lambda: adversarial_accuracy(
            model,
            adv.test_x,
            adv.test_y.to(device),
            opts["attack_eps"],
            "fgsm",
            batch_size=spec.protocol["eval_batch_size"],
            seed=0,
        ),
    )
    if args.legacy_fgsm:
        timed(
            "fgsm_legacy",
            lambda: legacy_fgsm(
                model, adv.test_x, adv.test_y, opts["attack_eps"], spec.protocol["eval_batch_size"], device
            ),
        )
    fixed = times["macs"] + times["latency_throughput"] + times["fgsm"]
    rows = [{"part": "training (timed epochs, the record's train_s)", "seconds": train_s, "share_of_training": 1.0}]
    thr_batch = min(opts["throughput_batch"], len(data.test_y))
    for key, label in (
        ("macs", "parameter ratio + MAC counting (inference + training-mode, fvcore)"),
        ("latency_throughput", f"latency (batch 1) + throughput (batch {thr_batch}), {opts['timing_repeats']} repeats"),
        ("fgsm", f"FGSM, {len(opts['attack_eps'])} ε on {len(adv.test_y)} images"),
        ("fgsm_legacy", "FGSM before issue 10 (torchattacks per ε, sync per batch): not in total"),
    ):
        if key in times:
            rows.append({"part": label, "seconds": times[key], "share_of_training": times[key] / train_s})
    rows.append(
        {"part": "fixed costs together (MACs + timing + FGSM)", "seconds": fixed, "share_of_training": fixed / train_s}
    )
    result = {
        "title": f"Fixed costs per run vs training time (cifar suite, tier {args.tier})",
        "description": (
            f"Conv pre-activation ResNet-20 at the cifar suite's tier {args.tier} "
            f"({tier['description'].split(':')[0].strip()}): "
            f"{args.epochs} epochs on {len(data.train_y)} training images "
            f"({source}), {len(data.test_y)} test images, batch {spec.protocol['batch_size']}, "
            f"{torch.get_num_threads()} thread(s); each part timed once by the functions a run calls. "
            "Target: fixed costs together ≤ 15 % of training time. Per-epoch test evaluation "
            f"({times['evaluation_per_epoch']:.2f} s) is part of training the protocol asks for, "
            "not a fixed cost."
        ),
        "device": device_name(device),
        "source": "benchmarks/fixed_costs.py",
        "columns": ["part", "seconds", "share_of_training"],
        "formats": {"seconds": ".2f", "share_of_training": ".3f"},
        "rows": rows,
        "ratio": fixed / train_s,
        "target": 0.15,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for r in rows:
        print(f"{r['part']:<80} {r['seconds']:8.2f} s  {100 * r['share_of_training']:6.1f} %")
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
