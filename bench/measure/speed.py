"""Speed paths chosen by measurement (``bench run --tune``): memory layout and CPU thread count.

Before a run trains, :func:`choose_speed_paths` times a few training steps (forward, cross-entropy, backward;
no optimiser step, on a copy of the model, so the run itself is untouched) with the input and weights in the
default (NCHW-contiguous) layout and in ``channels_last``, and on CPU with the process's thread count and half
of it. The fastest combination is used for the run and the timings are written into the record
(``timing.speed_paths``). It is off by default: on CPU a different layout or thread count may pick different
kernels, so a tuned run's numbers are not bit-identical to an untuned one's, and tuning costs a few steps.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

_BASE_THREADS: list[int] = []


def _time_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Median seconds of one forward + backward over ``steps`` timed steps, after one warm-up step."""
    samples = []
    for i in range(steps + 1):
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        if i:
            samples.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    samples.sort()
    return samples[len(samples) // 2]


def choose_speed_paths(
    model: nn.Module, batch_u8: torch.Tensor, labels: torch.Tensor, device: torch.device, steps: int = 3
) -> dict:
    """Time ``steps`` training steps per candidate; set the chosen thread count; return the choice and times."""
    from bench.execution.train import prepare

    if not _BASE_THREADS:
        _BASE_THREADS.append(torch.get_num_threads())
    base = _BASE_THREADS[0]
    threads = [base] if device.type == "cuda" or base < 2 else [base, max(1, base // 2)]
    trial = copy.deepcopy(model).train()
    times = {}
    for cl in (False, True):
        m = trial.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        x = prepare(batch_u8, channels_last=cl)
        for n in threads:
            torch.set_num_threads(n)
            times[(cl, n)] = _time_steps(m, x, labels, steps)
    best = min(times, key=times.get)
    torch.set_num_threads(best[1])
    return {
        "channels_last": best[0],
        "threads": best[1],
        "tuned": True,
        "tune_steps": steps,
        "tune_ms": {
            f"{'channels_last' if cl else 'contiguous'}/{n}t": round(t * 1e3, 3) for (cl, n), t in times.items()
        },
    }
