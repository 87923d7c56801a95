"""Series two runs left that a person wants to see side by side: loss curves and parameter drift.

Read from what the runs provide, most detailed first: ``trace.jsonl`` (a loss per optimizer step, exact),
then ``metrics.jsonl`` (per epoch), then CSV logs (Lightning's ``metrics.csv``: a ``step`` column and
columns named like losses). Only the files the comparison read are read, through
:class:`~twinrun.compare.report.page_files.PageFiles` (regular files inside the run, bounded in size).
No torch, no plotting here: :mod:`twinrun.compare.report.plots` draws these.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from twinrun.compare.report.page_files import PageFiles
from twinrun.record import runs

MAX_POINTS = 1500  # per curve, for display: a 10,000-step run stays a light page
MAX_HEAT_STEPS = 240  # heat map columns
MAX_HEAT_PARAMS = 60  # heat map rows
MAX_SERIES_BYTES = 128 << 20  # a larger trace, metrics or CSV file is not drawn (the comparison read it)
SERIES_SUFFIXES = (".csv", ".tsv")


@dataclass
class Curve:
    """One quantity over steps in both runs (``None``: the run has no value at that step)."""

    name: str
    source: str  # the file it came from, e.g. "trace.jsonl"
    steps: list[float]
    a: list[float | None]
    b: list[float | None]


@dataclass
class Drift:
    """Which parameter fingerprints differ, parameters by steps, from the first divergent step on."""

    steps: list[int]
    params: list[str]
    cells: list[list[int]] = field(default_factory=list)  # [param][step]: 1 differs, 0 same, -1 unknown


def shown(text: str) -> str:
    """``text`` as it can be drawn and written: a file name's undecodable bytes (``surrogateescape``)
    and JSON's lone surrogates become ``\\xff``-style escapes instead of failing the font or the page."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decoding makes (from JSON, say)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _float(value: object) -> float | None:
    """A float from ``float.hex`` text, a decimal string or a number; None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        for parse in (float.fromhex, float):
            try:
                return parse(value)
            except ValueError:
                continue
    return None


def _jsonl(files: PageFiles, side: str, name: str) -> Iterator[dict]:
    text = files.read_text(side, name, MAX_SERIES_BYTES)
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            return  # the comparer reports bad input; pictures just stop
        if isinstance(row, dict):
            yield row


def _merge(name: str, source: str, a: dict[float, float], b: dict[float, float]) -> Curve | None:
    steps = sorted(set(a) | set(b))
    if not steps:
        return None
    return Curve(shown(name), shown(source), steps, [a.get(s) for s in steps], [b.get(s) for s in steps])


def _by_step(rows: Sequence[dict], key: str, step_key: str = "step") -> dict[float, float]:
    out: dict[float, float] = {}
    for index, row in enumerate(rows, start=1):
        value, step = _float(row.get(key)), _float(row.get(step_key, index))
        if value is not None and step is not None:
            out[step] = value
    return out


def _csv_rows(files: PageFiles, side: str, rel: str) -> list[dict[str, str]]:
    text = files.read_text(side, rel, MAX_SERIES_BYTES)
    if text is None:
        return []
    dialect = "excel-tab" if rel.endswith(".tsv") else "excel"
    try:
        return list(csv.DictReader(io.StringIO(text), dialect=dialect))
    except csv.Error:
        return []


def loss_curves(files: PageFiles) -> list[Curve]:
    """Loss-like series both runs recorded, per step from the trace first, then per epoch, then CSV logs."""
    curves: list[Curve] = []
    trace_a, trace_b = list(_jsonl(files, "a", runs.TRACE)), list(_jsonl(files, "b", runs.TRACE))
    curve = _merge("loss per step", "trace.jsonl", _by_step(trace_a, "loss"), _by_step(trace_b, "loss"))
    if curve:
        curves.append(curve)
    metrics_a, metrics_b = list(_jsonl(files, "a", runs.METRICS)), list(_jsonl(files, "b", runs.METRICS))
    keys = sorted({k for row in metrics_a + metrics_b for k in row if "loss" in k})
    for key in keys:
        curve = _merge(
            f"{key} per epoch", "metrics.jsonl", _by_step(metrics_a, key), _by_step(metrics_b, key)
        )
        if curve:
            curves.append(curve)
    for rel in files.named(*SERIES_SUFFIXES):
        rows_a, rows_b = _csv_rows(files, "a", rel), _csv_rows(files, "b", rel)
        columns = sorted({k for row in rows_a + rows_b for k in row if k and "loss" in k.lower()})
        for key in columns:
            a = _by_step([r for r in rows_a if r.get(key)], key)
            b = _by_step([r for r in rows_b if r.get(key)], key)
            curve = _merge(f"{key}", rel, a, b)
            if curve:
                curves.append(curve)
    return curves


def downsample(curve: Curve, keep: Sequence[float] = (), limit: int = MAX_POINTS) -> Curve:
    """At most ``limit`` points, evenly spaced, always keeping the first, last and ``keep`` steps."""
    n = len(curve.steps)
    if n <= limit:
        return curve
    stride = math.ceil(n / limit)
    chosen = set(range(0, n, stride)) | {n - 1}
    wanted = set(keep)
    chosen |= {i for i, s in enumerate(curve.steps) if s in wanted}
    order = sorted(chosen)
    return Curve(
        curve.name,
        curve.source,
        [curve.steps[i] for i in order],
        [curve.a[i] for i in order],
        [curve.b[i] for i in order],
    )


def parameter_drift(files: PageFiles, first_step: int | None) -> Drift | None:
    """Parameter fingerprints compared step by step from ``first_step`` on (None: from the first step)."""
    rows_a = {r.get("step"): r.get("params") for r in _jsonl(files, "a", runs.TRACE)}
    rows_b = {r.get("step"): r.get("params") for r in _jsonl(files, "b", runs.TRACE)}
    steps = sorted(
        s
        for s in set(rows_a) & set(rows_b)
        if isinstance(s, int) and isinstance(rows_a[s], dict) and isinstance(rows_b[s], dict)
    )
    if first_step is not None:
        steps = [s for s in steps if s >= first_step]
    if not steps:
        return None
    if len(steps) > MAX_HEAT_STEPS:  # evenly spaced columns, the first divergent step kept
        stride = math.ceil(len(steps) / MAX_HEAT_STEPS)
        steps = sorted(set(steps[::stride]) | {steps[0], steps[-1]})
    params: list[str] = []
    for s in steps:
        for name in rows_a[s]:
            if name not in params:
                params.append(name)
    cells = [
        [
            -1 if name not in rows_a[s] or name not in rows_b[s] else int(rows_a[s][name] != rows_b[s][name])
            for s in steps
        ]
        for name in params
    ]
    if len(params) > MAX_HEAT_PARAMS:  # keep the parameters that part first (most differing steps)
        ranked = sorted(range(len(params)), key=lambda i: (-sum(c > 0 for c in cells[i]), i))
        keep = sorted(ranked[:MAX_HEAT_PARAMS])
        params, cells = [params[i] for i in keep], [cells[i] for i in keep]
    return Drift(steps, [shown(p) for p in params], cells)
