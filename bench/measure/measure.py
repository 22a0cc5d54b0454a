"""Measurements shared by every task: clocks, parameter and MAC counts, throughput, memory, environment.

Timing method: on CUDA, ``torch.cuda.Event`` pairs around the timed region, read after a synchronize; on CPU,
``time.perf_counter`` (monotonic). The same code path serves both. Warm-up (first batches, compilation) is
excluded from the timed repeats and reported separately by the callers.
"""

from __future__ import annotations

import copy
import os
import platform
import resource
import statistics
import subprocess
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from bench.zoo.layers import MAC_HANDLES, as_written, count_parameters  # noqa: F401  (count_parameters re-exported: one place)


class Clock:
    """Elapsed seconds of a region, with CUDA events on GPU and a monotonic clock on CPU."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.source = "cuda-events" if self.cuda else "time.perf_counter"

    def start(self):
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def stop(self, started) -> float:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return started.elapsed_time(end) / 1000.0
        return time.perf_counter() - started

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


#: the training-timing fields every task's record carries (:func:`epoch_timing`, through :func:`bench.execution.loop.fit`)
EPOCH_TIMING_FIELDS = (
    "train_s",
    "warmup_epoch_s",
    "train_s_after_warmup",
    "epoch_s_median",
    "epoch_s_spread",
    "steps_per_epoch",
    "clock",
)


def epoch_timing(history: list[dict], steps: int, clock: Clock) -> dict:
    """Training time from per-epoch ``epoch_s``: the first epoch (warm-up, compilation) reported separately,
    the median and relative spread of the later ones. Shared by every task that trains in epochs."""
    later = [h["epoch_s"] for h in history[1:]]
    first = history[0]["epoch_s"] if history else 0.0
    median = statistics.median(later) if later else first
    return {
        "train_s": sum(h["epoch_s"] for h in history),
        "warmup_epoch_s": first,
        "train_s_after_warmup": sum(later),
        "epoch_s_median": median,
        "epoch_s_spread": (max(later) - min(later)) / median if len(later) > 1 and median > 0 else 0.0,
        "steps_per_epoch": steps,
        "clock": clock.source,
    }


def _fvcore_macs(model: nn.Module, inputs: tuple) -> int:
    """fvcore's count of one forward, with every layer in its as-written form (a fold is a speed path)."""
    with torch.no_grad(), warnings.catch_warnings(), as_written(model):
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, inputs)
        if MAC_HANDLES:
            analysis.set_op_handle(**MAC_HANDLES)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        return int(analysis.total())


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates per image at inference, counted by fvcore (its "flops" count one per MAC).

    One untraced evaluation forward runs first, so work that a layer does once per set of weights, not per
    input, is done before counting (network deconvolution folds its fixed whitening into the weights once
    in evaluation; without this, batch 1 would be charged the whole fold)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example[:1])
        return _fvcore_macs(model, (example[:1],))
    finally:
        model.train(was_training)


def count_training_macs(model: nn.Module, batch: torch.Tensor) -> float:
    """Multiply-accumulates per image of one training-mode forward pass over ``batch`` (fvcore, on a copy of
    the model, so running statistics are left untouched). Unlike :func:`count_macs` it includes the work a
    layer does only while training, e.g. network deconvolution's covariance and Newton–Schulz iterations,
    which are computed once per batch: their share per image depends on the batch size."""
    clone = copy.deepcopy(model).train()
    return _fvcore_macs(clone, (batch,)) / len(batch)


def repeat_timing(fn, clock: Clock, warmup: int, repeats: int, iters: int) -> dict:
    """Median seconds per call of ``fn`` over ``repeats`` timed groups of ``iters`` calls, after ``warmup``."""
    for _ in range(warmup):
        fn()
    clock.sync()
    samples = []
    for _ in range(repeats):
        t0 = clock.start()
        for _ in range(iters):
            fn()
        samples.append(clock.stop(t0) / iters)
    med = statistics.median(samples)
    return {
        "median_s": med,
        "min_s": min(samples),
        "max_s": max(samples),
        "spread": (max(samples) - min(samples)) / med if med > 0 else 0.0,
        "repeats": repeats,
        "iters": iters,
    }


def inference_speed(
    model: nn.Module,
    example: torch.Tensor,
    batch_size: int,
    device: torch.device,
    repeats: int = 5,
    warmup: int = 2,
    amp: bool = False,
) -> dict:
    """Throughput (images/s) at ``batch_size`` and latency (ms) at batch 1, medians of ``repeats``."""
    model.eval()
    clock = Clock(device)
    x_big = example[:1].expand(batch_size, *example.shape[1:]).contiguous().to(device)
    x_one = example[:1].to(device)
    if device.type == "cuda":
        x_big = x_big.to(memory_format=torch.channels_last)
        x_one = x_one.to(memory_format=torch.channels_last)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if amp and device.type in ("cuda", "cpu") else _null()
    with torch.no_grad(), ctx:
        thr = repeat_timing(lambda: model(x_big), clock, warmup, repeats, 1)
        lat = repeat_timing(lambda: model(x_one), clock, warmup, repeats, 3)
    model.train()
    return {
        "throughput_img_s": batch_size / thr["median_s"],
        "throughput_spread": thr["spread"],
        "throughput_batch": batch_size,
        "latency_ms": lat["median_s"] * 1000,
        "latency_spread": lat["spread"],
        "repeats": repeats,
        "clock": clock.source,
    }


@contextmanager
def _null():
    yield


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"peak_bytes": int(torch.cuda.max_memory_allocated(device)), "kind": "cuda max_memory_allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return {"peak_bytes": int(rss), "kind": "process peak RSS (whole process, not just this run)"}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                proc = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {proc} ({torch.get_num_threads()} threads)"


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(module: str) -> str | None:
    """A package's version without importing it (importing torchvision costs seconds per process)."""
    import sys
    from importlib import metadata

    if module in sys.modules:
        return getattr(sys.modules[module], "__version__", None)
    try:  # the package's own version.py (torchvision's carries the local tag, e.g. +cu130, metadata may not)
        import importlib.util
        import re

        spec = importlib.util.find_spec(module)
        text = (Path(spec.origin).parent / "version.py").read_text()
        found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        if found:
            return found.group(1)
    except (ImportError, AttributeError, TypeError, OSError):
        pass
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict:
    import numpy

    import bench

    env = {
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "bench": bench.__version__,
        "git_commit": git_commit(Path(__file__).resolve().parents[1]),
        "cpu_threads": torch.get_num_threads(),
        "clock": Clock(device).source,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            {
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "gpu_memory_bytes": props.total_memory,
                "gpu_capability": f"{props.major}.{props.minor}",
            }
        )
        try:
            drv = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            env["driver"] = drv.stdout.strip().splitlines()[0] if drv.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, IndexError):
            env["driver"] = None
    return env
