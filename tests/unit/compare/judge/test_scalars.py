"""TensorBoard events: every record compared; only each event's wall time is excused (and counted)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twinrun.compare.judge.accounting import WALL_CLOCK
from twinrun.compare.judge.scalars import compare_scalars
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.report.model import DIFFERENT, IDENTICAL

pytest.importorskip("tensorboard")


def _write(folder: Path, suffix: str, body: Callable[[Any], None]) -> list[Path]:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder), filename_suffix=suffix)
    body(writer)
    writer.close()
    return sorted(folder.iterdir())


def _scalars(losses: tuple[float, ...]) -> Callable[[Any], None]:
    def body(writer: Any) -> None:
        for step, loss in enumerate(losses):
            writer.add_scalar("train/loss", loss, step)

    return body


def _compare(tmp_path: Path, body_a, body_b) -> tuple[str, str, int, Any]:
    pa = _write(tmp_path / "a", ".x", body_a)
    pb = _write(tmp_path / "b", ".y", body_b)
    return compare_scalars(pa, pb, "tb")


def test_twins_differ_only_in_wall_times(tmp_path: Path) -> None:
    verdict, detail, points, masked = _compare(tmp_path, _scalars((0.5, 0.25)), _scalars((0.5, 0.25)))
    assert (verdict, points) == (IDENTICAL, 2) and masked[WALL_CLOCK] >= 1
    assert detail == "3 events identical (2 scalar points)"


def test_one_extra_point_in_run_b_is_different(tmp_path: Path) -> None:
    verdict, detail, _, _ = _compare(tmp_path, _scalars((0.5, 0.25)), _scalars((0.5, 0.25, 0.125)))
    assert verdict == DIFFERENT and detail == "RUN_A has 2 scalar points, RUN_B 3"


def test_a_scalar_value_is_named(tmp_path: Path) -> None:
    verdict, detail, _, _ = _compare(tmp_path, _scalars((0.5, 0.25)), _scalars((0.5, 0.375)))
    assert (verdict, detail) == (DIFFERENT, "train/loss at step 1: 0.25 vs 0.375")


@pytest.mark.parametrize(
    "summary",
    [
        lambda w, v: w.add_histogram("w", np.arange(8) * v, 0),
        lambda w, v: w.add_image("pic", np.full((1, 2, 2), v, dtype=np.uint8), 0),
        lambda w, v: w.add_text("note", f"value {v}", 0),
    ],
    ids=["histogram", "image", "text"],
)
def test_non_scalar_summaries_are_compared(tmp_path: Path, summary) -> None:
    verdict, detail, _, _ = _compare(tmp_path, lambda w: summary(w, 1), lambda w: summary(w, 2))
    assert verdict == DIFFERENT and detail.startswith("event 2 differs")
    (tmp_path / "c").mkdir()
    same = _compare(tmp_path / "c", lambda w: summary(w, 1), lambda w: summary(w, 1))
    assert same[0] == IDENTICAL  # negative control


def test_a_record_whose_length_lies_is_unusable(tmp_path: Path) -> None:
    pa = _write(tmp_path / "a", ".x", _scalars((0.5,)))
    pb = _write(tmp_path / "b", ".y", _scalars((0.5,)))
    pb[0].write_bytes(pb[0].read_bytes() + struct.pack("<Q", 1 << 40) + b"\0" * 8)
    with pytest.raises(UnusableRunError, match="past the end"):
        compare_scalars(pa, pb, "tb")
