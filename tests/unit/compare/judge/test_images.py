"""Pictures under the byte rule: only a tIME chunk may differ; the pixels explain, never excuse."""

from __future__ import annotations

import struct
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from twinrun.compare.judge.accounting import WALL_CLOCK
from twinrun.compare.judge.images import compare_images
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.report.model import DIFFERENT, IDENTICAL

GREY = (np.arange(48, dtype=np.uint8) * 5).reshape(6, 8)


def _pair(tmp_path: Path, save_a, save_b) -> tuple[str, str, int, Counter]:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    save_a(a)
    save_b(b)
    return compare_images(a, b, "a.png", "b.png")


def _stamped(second: int) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add(b"tIME", struct.pack(">HBBBBB", 2026, 1, 1, 0, 0, second))
    return info


def test_a_time_chunk_alone_is_excused_and_counted(tmp_path: Path) -> None:
    verdict, _detail, pixels, masked = _pair(
        tmp_path,
        lambda p: Image.fromarray(GREY).save(p, pnginfo=_stamped(1)),
        lambda p: Image.fromarray(GREY).save(p, pnginfo=_stamped(2)),
    )
    assert (verdict, pixels, masked) == (IDENTICAL, 48, Counter({WALL_CLOCK: 1}))


def test_another_zlib_level_is_different_though_the_pixels_agree(tmp_path: Path) -> None:
    verdict, detail, _, masked = _pair(
        tmp_path,
        lambda p: Image.fromarray(GREY).save(p, compress_level=1, pnginfo=_stamped(1)),
        lambda p: Image.fromarray(GREY).save(p, compress_level=9, pnginfo=_stamped(2)),
    )
    assert verdict == DIFFERENT and not masked and "pixels are identical but the IDAT chunk differs" in detail


def _palette_image(palette: list[int]) -> Image.Image:
    image = Image.fromarray(GREY % 4, mode="P")  # indices 0..3
    image.putpalette(palette)
    return image


def test_a_palette_change_is_different(tmp_path: Path) -> None:
    grey = [v for i in range(256) for v in (i, i, i)]
    other = list(grey)
    other[3:6] = [255, 0, 0]  # index 1 is red now; the indices (what np.array reads) are the same
    verdict, detail, _, _ = _pair(
        tmp_path, lambda p: _palette_image(grey).save(p), lambda p: _palette_image(other).save(p)
    )
    assert verdict == DIFFERENT and "PLTE" in detail
    same = _pair(tmp_path, lambda p: _palette_image(grey).save(p), lambda p: _palette_image(grey).save(p))
    assert same[0] == IDENTICAL  # negative control


def test_mode_l_and_mode_p_are_different(tmp_path: Path) -> None:
    grey = [v for i in range(256) for v in (i, i, i)]
    verdict, _detail, _, _ = _pair(
        tmp_path, lambda p: Image.fromarray(GREY, mode="L").save(p), lambda p: _palette_image(grey).save(p)
    )
    assert verdict == DIFFERENT


def test_the_low_byte_of_a_16_bit_picture_counts(tmp_path: Path) -> None:
    wide = GREY.astype(np.uint16) * 256
    other = wide.copy()
    other[2, 3] += 1  # the low byte only
    verdict, _detail, _, _ = _pair(
        tmp_path, lambda p: Image.fromarray(wide).save(p), lambda p: Image.fromarray(other).save(p)
    )
    assert verdict == DIFFERENT


def test_a_second_apng_frame_counts(tmp_path: Path) -> None:
    def apng(second: np.ndarray):
        return lambda p: Image.fromarray(GREY).save(p, save_all=True, append_images=[Image.fromarray(second)])

    verdict, detail, _, _ = _pair(tmp_path, apng(GREY // 2), apng(GREY // 3))
    assert verdict == DIFFERENT
    assert _pair(tmp_path, apng(GREY // 2), apng(GREY // 2))[0] == IDENTICAL  # negative control
    verdict, detail, _, _ = _pair(tmp_path, apng(GREY // 2), lambda p: Image.fromarray(GREY).save(p))
    assert verdict == DIFFERENT and "frame" in detail


def test_a_trns_chunk_counts(tmp_path: Path) -> None:
    verdict, detail, _, _ = _pair(
        tmp_path,
        lambda p: Image.fromarray(GREY).save(p),
        lambda p: Image.fromarray(GREY).save(p, transparency=0),
    )
    assert verdict == DIFFERENT and "tRNS" in detail


def test_one_colour_channel_differing_is_named(tmp_path: Path) -> None:
    rgb = np.stack([GREY, GREY // 2, GREY // 3], axis=2)
    other = rgb.copy()
    other[1, 5, 1] ^= 1  # green only
    verdict, detail, pixels, _ = _pair(
        tmp_path, lambda p: Image.fromarray(rgb).save(p), lambda p: Image.fromarray(other).save(p)
    )
    assert (verdict, pixels) == (DIFFERENT, 48)
    assert detail == "1 pixel of 48 differ, first at x=5 y=1, in channel 1"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_png(path: Path, side: int, extra: bytes = b"") -> None:
    """A PNG whose header claims side x side pixels; its IDAT is never decoded by the comparer."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + (_chunk(b"tEXt", extra) if extra else b"")
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [12_000, 20_000])  # 144 MP (PIL warns), 400 MP (PIL refuses)
def test_a_huge_picture_is_compared_by_its_bytes_without_a_warning(tmp_path: Path, side: int) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    _huge_png(a, side)
    _huge_png(b, side, b"Comment\0x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict, detail, _pixels, _ = compare_images(a, b, "a.png", "b.png")
    assert verdict == DIFFERENT and "tEXt" in detail and ("too many to decode" in detail)
    _huge_png(b, side)  # negative control: the same bytes
    assert compare_images(a, b, "a.png", "b.png")[0] == IDENTICAL


def test_a_file_that_is_no_picture_is_unusable(tmp_path: Path) -> None:
    Image.fromarray(GREY).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(UnusableRunError, match=r"b\.png cannot be decoded as an image"):
        compare_images(tmp_path / "a.png", tmp_path / "b.png", "a.png", "b.png")


def test_jpegs_that_differ_in_bytes_only_are_different(tmp_path: Path) -> None:
    verdict, detail, _, masked = _pair(
        tmp_path,
        lambda p: Image.fromarray(GREY).save(p, format="JPEG", quality=90, comment=b"a"),
        lambda p: Image.fromarray(GREY).save(p, format="JPEG", quality=90, comment=b"b"),
    )
    assert verdict == DIFFERENT and not masked and "first differing byte at offset" in detail
