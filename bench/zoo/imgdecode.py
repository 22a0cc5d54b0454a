"""Image decoding for the data-set cache, in worker processes that import no torch (PIL and numpy only).

Kept outside ``bench.zoo.datasets`` (whose package imports torch) so a spawned decode worker starts in a fraction
of a second.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def decode_files(files: list[str], size: tuple[int, int] | None, mode: str) -> np.ndarray:
    """Decode ``files`` into one (N, H, W) or (N, H, W, C) uint8 array (resized to ``size`` = (H, W) if given)."""
    arrays = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert(mode)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arrays.append(np.asarray(im))
    return np.stack(arrays)
