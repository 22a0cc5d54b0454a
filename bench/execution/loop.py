"""The one training loop (issue 21): every task trains through :func:`fit`, which owns what all of them share —
timing each epoch with :class:`bench.measure.measure.Clock` (CUDA events on GPU, a monotonic clock on CPU) with
evaluation outside the timed region, the finite-loss check, the progress bar and the per-epoch history row
(``epoch``, ``train_loss``, ``epoch_s``, ``train_s_cum``, ``images_seen`` and whatever the task adds), and the
record's training ``timing`` (:func:`bench.measure.measure.epoch_timing`: the same fields for every task). A task gives a
step function per epoch (train one epoch, return its mean training loss, the images it consumed and any
other fields) and, optionally, an evaluation per epoch. No task times its own training.
"""

from __future__ import annotations

import math
from typing import Callable

from bench.errors import RunFailed
from bench.measure.measure import Clock, epoch_timing


def fit(
    epochs: int,
    train_epoch: Callable[[int], dict],
    *,
    device,
    steps: int,
    evaluate: Callable[[int], dict | None] | None = None,
    progress: bool = False,
    desc: str = "train",
    on_epoch: Callable[[dict], None] | None = None,
    show: str | None = None,
    first_epoch: int = 1,
    what: str = "",
) -> dict:
    """Train ``epochs`` epochs; return ``{"history": [...], "timing": {...}}``.

    ``train_epoch(epoch)`` trains one epoch and returns ``{"train_loss": float, "images": int, ...}`` (extra
    keys go into the history row). Its wall time is the epoch's ``epoch_s``. ``evaluate(epoch)`` (not timed)
    returns fields for the row, or None. A non-finite training loss fails the run (RunFailed). ``show``: the
    row field shown beside the loss on the progress bar. ``what``: appended to the failure message."""
    clock = Clock(device)
    history: list[dict] = []
    cum, seen = 0.0, 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc=desc, unit="ep", leave=False)
    try:
        for epoch in range(first_epoch, first_epoch + epochs):
            t0 = clock.start()
            out = train_epoch(epoch)
            epoch_s = clock.stop(t0)
            out = dict(out)
            images = int(out.pop("images", 0))
            train_loss = float(out.pop("train_loss"))
            if not math.isfinite(train_loss):
                raise RunFailed(f"training loss became {train_loss} in epoch {epoch}{what}")
            cum += epoch_s
            seen += images
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                **out,
                "epoch_s": epoch_s,
                "train_s_cum": cum,
                "images_seen": seen,
            }
            if evaluate is not None:
                row.update(evaluate(epoch) or {})
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if bar is not None:
                extra = row.get(show) if show else None
                bar.set_postfix(
                    loss=f"{train_loss:.3f}", **({show: "-" if extra is None else f"{extra:.3g}"} if show else {})
                )
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"history": history, "timing": epoch_timing(history, steps, clock)}
