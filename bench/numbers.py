"""What counts as a number in a record or a table cell: one definition for every module that reads values."""

from __future__ import annotations

import math


def isnum(v) -> bool:
    """A finite int or float; not a bool (JSON ``true`` is not a measurement), not NaN or ±inf, not None."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
