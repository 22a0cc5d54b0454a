"""A wall-clock guard for tests of code that must terminate: a hang becomes a failure, not a stuck run.

Every cap is at least :data:`FLOOR_S`: a guard catches code that never finishes (a tick loop that does not end,
a FIFO read that blocks for good), never code that is merely slow on a busy machine, so no test turns red
because the cores are taken (speed is measured in benchmarks/, not asserted here)."""

from __future__ import annotations

import contextlib
import signal

FLOOR_S = 180.0


@contextlib.contextmanager
def within(seconds: float, what: str = "the call"):
    """Fail with TimeoutError if the body runs longer than ``seconds`` (SIGALRM, main thread, POSIX). The caps
    are generous guards against hangs on a busy machine, not speed assertions."""

    def _expired(signum, frame):
        raise TimeoutError(f"{what} did not finish within {seconds} s")

    seconds = max(float(seconds), FLOOR_S)
    old = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
