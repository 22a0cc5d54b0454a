"""A wall-clock guard for tests of code that must terminate: a hang becomes a failure, not a stuck run."""
from __future__ import annotations

import contextlib
import signal


@contextlib.contextmanager
def within(seconds: float, what: str = "the call"):
    """Fail with TimeoutError if the body runs longer than ``seconds`` (SIGALRM, main thread, POSIX). The caps
    are generous guards against hangs on a busy machine, not speed assertions."""

    def _expired(signum, frame):
        raise TimeoutError(f"{what} did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
