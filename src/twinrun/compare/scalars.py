"""TensorBoard event files: scalar series compared by (tag, step, value), wall times excluded.

Event files are matched by folder (their names hold the time, host and pid of the writer) and every
event file of a folder is read as one series. Needs the optional ``tensorboard`` package
(``twinrun[tensorboard]``); without it the files are listed as not compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinrun.compare.report_model import DIFFERENT, IDENTICAL, NOT_COMPARED, plural
from twinrun.compare.run_reader import UnusableRunError

MISSING = "install twinrun[tensorboard]"

Point = tuple[str, int, str, bytes]  # tag, step, dtype, value bytes


def available() -> bool:
    try:
        import tensorboard.backend.event_processing.event_file_loader  # noqa: F401
    except ImportError:
        return False
    return True


def read_scalars(paths: list[Path], shown: str) -> tuple[list[Point], dict[tuple[str, int], Any], int]:
    """(points sorted by tag and step, shown values, non-scalar summaries skipped) of one folder."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    points: list[Point] = []
    values: dict[tuple[str, int], Any] = {}
    skipped = 0
    for path in sorted(paths):
        try:
            events = list(EventFileLoader(str(path)).Load())
        except Exception as exc:  # protobuf and record errors of a damaged file
            raise UnusableRunError(
                f"cannot read TensorBoard events {shown} ({type(exc).__name__}: {exc}); regenerate it"
            ) from None
        for event in events:
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != "scalars":
                    skipped += 1
                    continue
                array = tensor_util.make_ndarray(value.tensor)
                points.append((value.tag, int(event.step), str(array.dtype), array.tobytes()))
                values[value.tag, int(event.step)] = array.item() if array.size == 1 else array.tolist()
    return sorted(points), values, skipped


def compare_scalars(paths_a: list[Path], paths_b: list[Path], shown: str) -> tuple[str, str, int]:
    """(verdict, detail, points compared) for the event files of one folder in each run."""
    if not available():
        return NOT_COMPARED, MISSING, 0
    pa, values_a, skipped = read_scalars(paths_a, f"{shown} (RUN_A)")
    pb, values_b, _ = read_scalars(paths_b, f"{shown} (RUN_B)")
    note = (
        f"; {plural(skipped, 'non-scalar summary', 'non-scalar summaries')} not compared" if skipped else ""
    )
    if pa == pb:
        return IDENTICAL, f"{plural(len(pa), 'scalar point')} identical{note}", len(pa)
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            tag, step = min(x[:2], y[:2])
            a, b = values_a.get((tag, step), "(absent)"), values_b.get((tag, step), "(absent)")
            return DIFFERENT, f"{tag} at step {step}: {a!r} vs {b!r}{note}", len(pa)
    return DIFFERENT, f"RUN_A has {plural(len(pa), 'scalar point')}, RUN_B {len(pb)}{note}", len(pa)
