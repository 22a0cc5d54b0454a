"""One training step of the same CIFAR ResNet-18 with batch norm (``conv`` family) vs network deconvolution
(``deconv`` family, `003_…`): median wall time of repeats and their ratio.

    OMP_NUM_THREADS=1 python benchmarks/deconv_vs_bn.py --out /tmp/deconv_vs_bn.json

A step is forward + cross-entropy + backward + SGD update on a batch of 128 random 3×32×32 images (the
document's CIFAR batch size), ``resnet18`` at ``--width`` (default 0.25). ``--deconv-options`` passes family
options as JSON, e.g. '{"block": 16, "sampling_stride": 4}' (the setting of the document's Fig. 12).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backbones import Ops, build_backbone  # noqa: E402


def step_times(family: str, options: dict, width: float, batch: int, repeats: int, warmup: int,
               device: torch.device) -> tuple[list[float], list[float]]:
    torch.manual_seed(0)
    net = build_backbone("resnet18", Ops.of(family, options), 3, 10, {"width": width}).to(device)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--deconv-options", default="{}", help="JSON options for the deconv family")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    options = json.loads(args.deconv_options)
    bn, bn_cpu = step_times("conv", {}, args.width, args.batch, args.repeats, args.warmup, device)
    nd, nd_cpu = step_times("deconv", options, args.width, args.batch, args.repeats, args.warmup, device)
    med_bn, med_nd = statistics.median(bn), statistics.median(nd)
    cpu_ratio = statistics.median(nd_cpu) / statistics.median(bn_cpu)
    result = {
        "backbone": "resnet18", "width": args.width, "batch": args.batch, "input": [3, 32, 32],
        "step": "forward + cross-entropy + backward + SGD", "device": str(device),
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "repeats": args.repeats, "warmup": args.warmup,
        "deconv_options": options,
        "bn_step_s": bn, "deconv_step_s": nd, "bn_median_s": med_bn, "deconv_median_s": med_nd,
        "ratio": med_nd / med_bn,
        # CPU time of this process: less sensitive to other processes on a shared machine
        "bn_cpu_s": bn_cpu, "deconv_cpu_s": nd_cpu, "cpu_ratio": cpu_ratio,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"resnet18 width {args.width}, batch {args.batch}, {device}, {torch.get_num_threads()} thread(s): "
          f"BN {med_bn * 1e3:.1f} ms, deconv {med_nd * 1e3:.1f} ms per step (median of {args.repeats}); "
          f"ratio {result['ratio']:.2f}× (CPU-time ratio {cpu_ratio:.2f}×)")
    return result


if __name__ == "__main__":
    main()
