"""Images (``*.png``, ``*.jpg``): the bytes decide; the decoded picture says what differs.

Under the byte rule a picture whose bytes differ is different unless every differing byte is a PNG
``tIME`` chunk (the time it was written, a wall-clock field). Everything else counts, pixels or not: a
palette, a ``tRNS`` chunk, mode ``L`` against ``P``, the low byte of a 16-bit sample, a second APNG frame,
another zlib level. The decoded pixels (at most :data:`MAX_DECODED_PIXELS`, so memory stays bounded and
PIL's decompression-bomb warning never fires) only explain the difference. PIL is imported only here.
"""

from __future__ import annotations

import struct
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from twinrun.compare.judge.accounting import WALL_CLOCK, compare_file_bytes
from twinrun.compare.read.run_reader import UnusableRunError, unreadable_reason
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, plural

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_DECODED_PIXELS = 1 << 24  # 16 megapixels; larger pictures are described by their bytes
MAX_CHUNKS = 1 << 16
Chunk = tuple[bytes, bytes]  # (type, the whole chunk as written: length, type, data, crc)


def png_chunks(path: Path) -> list[Chunk] | None:
    """The chunks of a PNG file as written (trailing bytes as a pseudo-chunk ``b"tail"``); None when the
    file is not a well-framed PNG. Reads the file once, never decompresses."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_SIGNATURE):
        return None
    chunks: list[Chunk] = []
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data) and len(chunks) < MAX_CHUNKS:
        (length,) = struct.unpack(">I", data[at : at + 4])
        end = at + 12 + length
        if end > len(data):
            return None
        kind = data[at + 4 : at + 8]
        chunks.append((kind, data[at:end]))
        at = end
        if kind == b"IEND":
            break
    if at < len(data):
        chunks.append((b"tail", data[at:]))
    return chunks


def _png_size(chunks: list[Chunk] | None) -> tuple[int, int] | None:
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) < 16:
        return None
    return struct.unpack(">II", chunks[0][1][8:16])


def account_png(chunks_a: list[Chunk] | None, chunks_b: list[Chunk] | None) -> Counter[str] | str:
    """The ``tIME`` chunks that explain every differing byte, or the first chunk that differs."""
    if chunks_a is None or chunks_b is None:
        return "not a well-formed PNG"
    if [k for k, _ in chunks_a] != [k for k, _ in chunks_b]:
        return (
            "the PNG chunks differ: "
            + " ".join(k.decode("latin-1") for k, _ in chunks_a)
            + " vs "
            + (" ".join(k.decode("latin-1") for k, _ in chunks_b))
        )
    found: Counter[str] = Counter()
    for (kind, a), (_, b) in zip(chunks_a, chunks_b, strict=True):
        if a == b:
            continue
        if kind == b"tIME" and len(a) == len(b) == 19:
            found[WALL_CLOCK] += 1
            continue
        return f"the {kind.decode('latin-1')} chunk differs"
    return found


def decode(path: Path, shown: str) -> np.ndarray:
    """The pixels of ``path`` as an array (height, width[, channels]), in the file's own mode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_DECODED_PIXELS:
                    raise UnusableRunError(f"{shown} has too many pixels to decode")
                image.load()
                return np.array(image)  # the mode decides the dtype and the channel count
    except Image.DecompressionBombError:
        raise UnusableRunError(f"{shown} has too many pixels to decode") from None
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError | SyntaxError) or exc.errno is None:
            raise UnusableRunError(f"{shown} cannot be decoded as an image ({exc}); regenerate it") from None
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None
    except (SyntaxError, ValueError) as exc:  # PIL raises these for damaged chunks
        raise UnusableRunError(f"{shown} cannot be decoded as an image ({exc}); regenerate it") from None


def _header(path: Path, shown: str) -> tuple[str, tuple[int, int], int]:
    """(mode, size, frames) read from the header alone, without the bomb warning."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.mode, image.size, int(getattr(image, "n_frames", 1))
    except Image.DecompressionBombError:
        return "?", (0, 0), 1
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnusableRunError(f"{shown} cannot be decoded as an image ({exc}); regenerate it") from None


def _pixel_detail(pa: np.ndarray, pb: np.ndarray) -> str:
    differs = pa != pb
    channels = differs.reshape(differs.shape[0], differs.shape[1], -1).any(axis=(0, 1))
    if differs.ndim == 3:
        differs = differs.any(axis=2)
    y, x = (int(i) for i in np.argwhere(differs)[0])
    pixels = pa.shape[0] * pa.shape[1]
    where = f", in channel {', '.join(str(int(c)) for c in np.flatnonzero(channels))}" if pa.ndim == 3 else ""
    return f"{plural(int(differs.sum()), 'pixel')} of {pixels} differ, first at x={x} y={y}{where}"


def compare_images(
    path_a: Path, path_b: Path, shown_a: str, shown_b: str
) -> tuple[str, str, int, Counter[str]]:
    """(verdict, detail, pixels, excused fields) for two image files."""
    raw = compare_file_bytes(path_a, path_b, shown_a, shown_b)
    chunks_a, chunks_b = png_chunks(path_a), png_chunks(path_b)
    size = _png_size(chunks_a)
    pixels = size[0] * size[1] if size else 0
    if raw.identical:
        return IDENTICAL, f"{raw.detail}", pixels, Counter()
    found = account_png(chunks_a, chunks_b)
    if not isinstance(found, str) and found:
        return IDENTICAL, f"{size[0]}x{size[1]} picture identical" if size else "identical", pixels, found
    (mode_a, size_a, frames_a), (mode_b, size_b, frames_b) = (
        _header(path_a, shown_a),
        _header(path_b, shown_b),
    )
    if (mode_a, size_a) != (mode_b, size_b):
        return DIFFERENT, f"size or mode differs: {size_a} {mode_a} vs {size_b} {mode_b}", 0, Counter()
    if frames_a != frames_b:
        return DIFFERENT, f"RUN_A has {plural(frames_a, 'frame')}, RUN_B {frames_b}", 0, Counter()
    pixels = size_a[0] * size_a[1]
    png = chunks_a is not None or chunks_b is not None  # a JPEG pair: its bytes say where
    why = found if isinstance(found, str) and png else raw.detail
    if pixels > MAX_DECODED_PIXELS or mode_a == "?":
        return DIFFERENT, f"{why}; {size_a[0]}x{size_a[1]} pixels, too many to decode", pixels, Counter()
    pa, pb = decode(path_a, shown_a), decode(path_b, shown_b)
    if pa.shape != pb.shape or pa.dtype != pb.dtype:
        return (
            DIFFERENT,
            f"size or mode differs: {pa.shape} {pa.dtype} vs {pb.shape} {pb.dtype}",
            0,
            Counter(),
        )
    if not np.array_equal(pa, pb):
        return DIFFERENT, _pixel_detail(pa, pb), pixels, Counter()
    return DIFFERENT, f"the first frame's pixels are identical but {why}", pixels, Counter()
