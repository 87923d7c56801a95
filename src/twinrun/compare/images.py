"""Images (``*.png``, ``*.jpg``) compared by their decoded pixels, not their bytes.

Two encoders (or two zlib levels, or a timestamp chunk) can write the same picture as other bytes;
what a person sees is the mode, the size and the pixels. PIL is imported only here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinrun.compare.report_model import DIFFERENT, IDENTICAL, plural
from twinrun.compare.run_reader import UnusableRunError, unreadable_reason


def decode(path: Path, shown: str) -> np.ndarray:
    """The pixels of ``path`` as an array (height, width[, channels]), in the file's own mode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return np.array(image)  # the mode decides the dtype and the channel count
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError | SyntaxError) or exc.errno is None:
            raise UnusableRunError(f"{shown} cannot be decoded as an image ({exc}); regenerate it") from None
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None
    except (SyntaxError, ValueError) as exc:  # PIL raises these for damaged chunks
        raise UnusableRunError(f"{shown} cannot be decoded as an image ({exc}); regenerate it") from None


def compare_images(path_a: Path, path_b: Path, shown_a: str, shown_b: str) -> tuple[str, str, int]:
    """(verdict, detail, pixels compared) for two image files."""
    pa, pb = decode(path_a, shown_a), decode(path_b, shown_b)
    if pa.shape != pb.shape or pa.dtype != pb.dtype:
        return DIFFERENT, f"size or mode differs: {pa.shape} {pa.dtype} vs {pb.shape} {pb.dtype}", 0
    pixels = pa.shape[0] * pa.shape[1] if pa.ndim >= 2 else pa.size
    if np.array_equal(pa, pb):
        return IDENTICAL, f"{pa.shape[1]}x{pa.shape[0]} pixels identical", pixels
    differs = pa != pb
    if differs.ndim == 3:
        differs = differs.any(axis=2)
    y, x = (int(i) for i in np.argwhere(differs)[0])
    count = int(differs.sum())
    return DIFFERENT, f"{plural(count, 'pixel')} of {pixels} differ, first at x={x} y={y}", pixels
