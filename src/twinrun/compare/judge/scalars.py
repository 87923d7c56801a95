"""TensorBoard event files: every event record compared; only each event's wall time may differ.

Event files are matched by folder (their names hold the time, host and pid of the writer) and the event
files of a folder are read in name order as one stream of records. Two records agree when their bytes
do, or when they differ only in the event's ``wall_time`` (a wall-clock field, excused and counted):
scalars, histograms, images, text and any other summary all count. Scalar points are decoded to name
the first difference. Needs the optional ``tensorboard`` package (``twinrun[tensorboard]``) to read
events; without it differing event files are different by their bytes.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Any

from twinrun.compare.judge.accounting import WALL_CLOCK
from twinrun.compare.read.run_reader import UnusableRunError, unreadable_reason
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, plural

MISSING = "install twinrun[tensorboard]"
MAX_RECORDS = 1_000_000  # per folder: a bound on what a hostile file can make us hold

Point = tuple[str, int, str, bytes]  # tag, step, dtype, value bytes
Record = tuple[bytes, bytes]  # (framing: length and both CRCs, the serialized Event)


def available() -> bool:
    try:
        import tensorboard.compat.proto.event_pb2
        import tensorboard.util.tensor_util  # noqa: F401
    except ImportError:
        return False
    return True


def read_records(paths: list[Path], shown: str) -> list[Record]:
    """The TFRecord frames of every event file of a folder, in name order; a frame whose length
    runs past the end of its file is a damaged file."""
    records: list[Record] = []
    for path in sorted(paths):
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                at = 0
                while at < size:
                    head = f.read(12)
                    if len(head) < 12:
                        raise ValueError(f"a truncated record header at byte {at}")
                    (length,) = struct.unpack("<Q", head[:8])
                    if at + 16 + length > size:
                        raise ValueError(f"a record at byte {at} claims {length} bytes past the end")
                    data, tail = f.read(length), f.read(4)
                    records.append((head[8:] + tail, data))
                    if len(records) > MAX_RECORDS:
                        raise ValueError(f"more than {MAX_RECORDS} records")
                    at += 16 + length
        except OSError as exc:
            raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None
        except ValueError as exc:
            raise UnusableRunError(f"cannot read TensorBoard events {shown} ({exc}); regenerate it") from None
    return records


def _event(data: bytes, shown: str) -> Any:
    from tensorboard.compat.proto.event_pb2 import Event

    try:
        return Event.FromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise UnusableRunError(
            f"cannot read TensorBoard events {shown} ({type(exc).__name__}: {exc}); regenerate it"
        ) from None


def scalar_points(events: list[Any]) -> tuple[list[Point], dict[tuple[str, int], Any]]:
    """(scalar points sorted by tag and step, their shown values) of decoded events."""
    from tensorboard.util import tensor_util

    points: list[Point] = []
    values: dict[tuple[str, int], Any] = {}
    for event in events:
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name != "scalars" and not value.HasField("simple_value"):
                continue
            if value.HasField("simple_value"):
                array_value: Any = value.simple_value
                points.append((value.tag, int(event.step), "simple", struct.pack("<f", array_value)))
            else:
                array = tensor_util.make_ndarray(value.tensor)
                array_value = array.item() if array.size == 1 else array.tolist()
                points.append((value.tag, int(event.step), str(array.dtype), array.tobytes()))
            values[value.tag, int(event.step)] = array_value
    return sorted(points), values


def _describe(event: Any) -> str:
    tags = ", ".join(
        f"{v.tag} ({v.metadata.plugin_data.plugin_name or 'summary'})" for v in event.summary.value
    )
    return f"step {event.step}" + (f": {tags}" if tags else "")


def compare_scalars(
    paths_a: list[Path], paths_b: list[Path], shown: str
) -> tuple[str, str, int, Counter[str]]:
    """(verdict, detail, scalar points, excused fields) for the event files of one folder in each run."""
    if not available():
        return DIFFERENT, f"the event files' bytes differ ({MISSING} to see which events)", 0, Counter()
    sa, sb = f"{shown} (RUN_A)", f"{shown} (RUN_B)"
    ra, rb = read_records(paths_a, sa), read_records(paths_b, sb)
    ea = [_event(data, sa) for _, data in ra]
    eb = [_event(data, sb) for _, data in rb]
    pa, values_a = scalar_points(ea)
    pb, values_b = scalar_points(eb)
    found: Counter[str] = Counter()
    first = ""
    for index, ((frame_a, data_a), (frame_b, data_b), x, y) in enumerate(zip(ra, rb, ea, eb, strict=False)):
        if data_a == data_b:
            if frame_a != frame_b:
                first = f"event {index + 1} ({_describe(x)}): its record's checksums differ"
                break
            continue
        x.wall_time = y.wall_time
        if len(data_a) == len(data_b) and x.SerializeToString() == data_b:
            found[WALL_CLOCK] += 1
            continue
        first = f"event {index + 1} differs ({_describe(x)} vs {_describe(y)})"
        break
    if not first and len(ra) != len(rb):
        first = f"RUN_A has {plural(len(ra), 'event')}, RUN_B {len(rb)}"
    if pa != pb:  # a scalar that differs says it best
        for x, y in zip(pa, pb, strict=False):
            if x != y:
                tag, step = min(x[:2], y[:2])
                a, b = values_a.get((tag, step), "(absent)"), values_b.get((tag, step), "(absent)")
                return DIFFERENT, f"{tag} at step {step}: {a!r} vs {b!r}", len(pa), Counter()
        return DIFFERENT, f"RUN_A has {plural(len(pa), 'scalar point')}, RUN_B {len(pb)}", len(pa), Counter()
    if first:
        return DIFFERENT, first, len(pa), Counter()
    detail = f"{plural(len(ea), 'event')} identical ({plural(len(pa), 'scalar point')})"
    return IDENTICAL, detail, len(pa), found
