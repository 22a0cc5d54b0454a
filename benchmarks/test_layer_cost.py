"""Layer-cost microbenchmarks (pytest-benchmark): forward and forward+backward of every registered layer family
at the shapes of a CIFAR ResNet's three stages, relative to the 3×3 ``conv`` at the same shape.

    OMP_NUM_THREADS=1 pytest benchmarks/test_layer_cost.py --benchmark-enable \\
        --benchmark-json=results/benchmarks/.layer_cost_raw.json -q -p no:cacheprovider
    python benchmarks/layer_cost_summary.py results/benchmarks/.layer_cost_raw.json \\
        --out results/benchmarks/layer_cost.json

This module lives outside ``testpaths`` (``tests/``), so the normal test run never collects it; pyproject's
``--benchmark-disable`` still applies when it is run without ``--benchmark-enable`` (each body runs once).

What is timed (one layer, batch ``BENCH_COST_BATCH``, default 32, kernel 3, stride 1, cin = cout; medians of
``BENCH_COST_ROUNDS`` (25) rounds of one call after ``BENCH_COST_WARMUP`` (3) warm-up rounds):

* ``fwd``    — inference: ``eval()`` mode under ``torch.no_grad()`` (running statistics where a family has them).
* ``fwdbwd`` — one training step of the layer: ``train()`` mode forward, then ``torch.autograd.grad`` of the
  output against a fixed random output gradient, w.r.t. the input (as inside a network: every layer but the
  first must pass a gradient back) and every learned parameter. ``autograd.grad`` returns fresh gradients, so
  nothing accumulates between rounds.
* ``unit``   — for families that replace the backbone's normalisation (``norm=``, e.g. ``deconv`` removes batch
  norm) the layer followed by its norm is timed too, and ``conv`` followed by ``BatchNorm2d`` as its
  reference: a family that does the norm's work inside the layer is compared with conv + BN.

Families are read from ``bench.zoo.layers.LAYERS`` at collection time: a family added later is benchmarked without
editing this file. Each family runs at its default options; ``CLAIM_VARIANTS`` adds the non-default settings a
document's cost claim was measured with (``deconv`` with B = 16, S = 4, 003 Fig. 12). A family that fails to build, materialise or run at a shape is recorded as an error entry
(``extra_info["error"]``, timing a no-op) instead of failing the run. On CUDA (when available) the input is
``channels_last``, and each round synchronises before and after the timed call (setup / end of target), so
pytest-benchmark's wall clock measures the kernels and not their launch. On CPU with one thread (the intended
``OMP_NUM_THREADS=1``) the timer is the process's CPU time, so time the scheduler gives to other processes on a
shared machine is not counted; with more threads it is the wall clock (see ``CPU_TIMER``).
"""

from __future__ import annotations

import os
import time
import traceback

import pytest
import torch
from torch import nn

from bench.zoo.layers import LAYERS
from bench.measure.measure import device_name
from bench.zoo.models import materialise

STAGES = ((16, 32), (32, 16), (64, 8))  # (channels, spatial size): CIFAR ResNet stages 1-3
BATCH = int(os.environ.get("BENCH_COST_BATCH", "32"))
ROUNDS = int(os.environ.get("BENCH_COST_ROUNDS", "25"))
WARMUP = int(os.environ.get("BENCH_COST_WARMUP", "3"))
KERNEL = 3
# CPU: with one thread, the process's CPU time (time.process_time) is the layer's compute time and, unlike the
# wall clock, does not count the time the scheduler gives to other processes on a shared machine; with several
# threads CPU time sums over them, so the wall clock (time.perf_counter) is used. CUDA: wall clock + synchronize.
CPU_TIMER = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
DEVICES = [pytest.param("cpu", marks=pytest.mark.benchmark(timer=CPU_TIMER))] + (
    ["cuda"] if torch.cuda.is_available() else []
)
# Non-default settings a document's cost claim is about (family -> options), benchmarked as extra variants:
# 003 A.6 / Fig. 12 time network deconvolution with B = 16, S = 4 ("the slow down is tunable").
CLAIM_VARIANTS = {"deconv": [{"block": 16, "sampling_stride": 4}]}


def _variants(name: str) -> list[dict]:
    entry = LAYERS.get(name)
    return [{}] + [o for o in CLAIM_VARIANTS.get(name, []) if set(o) <= set(entry.defaults)]


def label(family: str, options: dict) -> str:
    return family + ("[" + ",".join(f"{k}={v}" for k, v in options.items()) + "]" if options else "")


# (family, options, unit): every family at its defaults; "unit" = layer followed by its norm (see docstring)
CASES = [(fam, opts, False) for fam in LAYERS.names() for opts in _variants(fam)]
UNIT_CASES = [(fam, opts, True) for fam, opts, _ in CASES if LAYERS.get(fam).norm is not None]
CASES += ([("conv", {}, True)] + UNIT_CASES) if UNIT_CASES else []


def _case_id(case):
    fam, opts, unit = case
    return label(fam, opts) + ("+norm" if unit else "")


def _build(family: str, options: dict, unit: bool, channels: int, size: int, device: torch.device):
    entry = LAYERS.get(family)
    torch.manual_seed(0)
    layer = entry.build(channels, channels, KERNEL, **options)
    if unit:
        norm = entry.norm(channels) if entry.norm is not None else nn.BatchNorm2d(channels)
        layer = nn.Sequential(layer, norm)
    materialise(layer, torch.zeros(1, channels, size, size))
    layer = layer.to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, channels, size, size, generator=g)
    if device.type == "cuda":
        layer = layer.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return layer, x.to(device)


def _target(layer: nn.Module, x: torch.Tensor, mode: str):
    if mode == "fwd":
        layer.eval()

        def fwd():
            with torch.no_grad():
                return layer(x)

        return fwd
    layer.train()
    x = x.detach().requires_grad_(True)
    params = [p for p in layer.parameters() if p.requires_grad]
    with torch.no_grad():
        out_shape = layer(x).shape
    grad_out = torch.randn(out_shape, generator=torch.Generator().manual_seed(2)).to(x.device)

    def fwdbwd():
        y = layer(x)
        return torch.autograd.grad(y, [x] + params, grad_out)

    return fwdbwd


@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("stage", STAGES, ids=lambda s: f"c{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("device", DEVICES)
def test_layer_cost(benchmark, device, case, stage, mode):
    family, options, unit = case
    channels, size = stage
    dev = torch.device(device)
    entry = LAYERS.get(family)
    benchmark.group = f"{device} {'unit' if unit else 'layer'} c{channels} {size}x{size} {mode}"
    benchmark.extra_info.update(
        {
            "family": family,
            "options": options,
            "label": label(family, options),
            "unit": unit,
            "norm": ("BatchNorm2d" if family == "conv" else "family norm") if unit else None,
            "document": entry.document,
            "channels": channels,
            "size": size,
            "batch": BATCH,
            "kernel": KERNEL,
            "mode": mode,
            "device": device,
            "device_name": device_name(dev),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "clock": "time.perf_counter, cuda synchronize around each round"
            if dev.type == "cuda"
            else f"time.{CPU_TIMER.__name__}",
        }
    )
    try:
        layer, x = _build(family, options, unit, channels, size, dev)
        fn = _target(layer, x, mode)
        fn()  # the call that fails, if any, fails here and not inside the timer
    except Exception as exc:  # recorded, not raised: one broken family must not stop the others
        benchmark.extra_info["error"] = f"{type(exc).__name__}: {exc}"
        benchmark.extra_info["traceback"] = traceback.format_exc(limit=3)
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)
        return

    if dev.type == "cuda":

        def target():
            fn()
            torch.cuda.synchronize(dev)

        setup = lambda: torch.cuda.synchronize(dev)  # noqa: E731
    else:
        target, setup = fn, None
    benchmark.pedantic(target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
