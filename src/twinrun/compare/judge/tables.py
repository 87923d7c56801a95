"""Tables: CSV/TSV (Lightning's CSVLogger ``metrics.csv``), JSON and JSONL files, parsed and compared.

Values are compared exactly as written (CSV cells as text, JSON values with their types; numbers a float
cannot hold by their text). The first differing row and column are named. Columns that are wall-clock by
nature (``time``, ``timestamp``, ``wall_time``, ``duration`` ...) are shown but never decide.
"""

from __future__ import annotations

import csv
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinrun.compare.judge.sections import ABSENT, same_value
from twinrun.compare.read.run_reader import UnusableRunError, parse_json, unreadable_reason
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, plural, show_value
from twinrun.config import flatten

# Column (or JSON key) names that measure time rather than learning.
WALL_CLOCK = (
    "time",
    "times",
    "timestamp",
    "*timestamp*",
    "wall_time",
    "walltime",
    "wall*",
    "*_time",
    "time_*",
    "duration",
    "*duration*",
    "*elapsed*",
    "*seconds*",
    "*_sec",
    "*_secs",
    "*per_sec*",
    "*throughput*",
    "*_s",
    "date",
    "datetime",
    "created*",
    "*_at",
)


def is_wall_clock(column: str) -> bool:
    """True when a column (or the last part of a dotted JSON key) is wall-clock by nature."""
    last = column.rsplit(".", 1)[-1].strip().lower()
    return any(fnmatch.fnmatchcase(last, p) for p in WALL_CLOCK)


@dataclass
class TableResult:
    verdict: str
    detail: str
    rows: int  # rows (or keys of a JSON object) compared
    wall_clock_note: str = ""  # wall-clock columns that differ: shown, not decisive


Mask = Callable[[Any], Any]


def _read(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UnusableRunError(f"{shown} is not UTF-8 text (byte {exc.start}); regenerate it") from None
    except OSError as exc:
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None


class _Missing:
    """A cell a row lacks: unlike the text ``(absent)``, which a cell may hold."""

    def __repr__(self) -> str:
        return ABSENT


MISSING = _Missing()


def _unique(header: list[str]) -> list[str]:
    """Column names, a repeated name told apart by its position (``loss (column 3)``)."""
    seen: set[str] = set()
    out = []
    for i, name in enumerate(header):
        out.append(name if name not in seen else f"{name} (column {i + 1})")
        seen.add(name)
    return out


def load_rows(path: Path, shown: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows as flat dicts) of a CSV/TSV/JSON/JSONL file; a JSON object is one row."""
    columns, rows, _ = load_table(path, shown)
    return columns, rows


def load_table(path: Path, shown: str) -> tuple[list[str], list[dict[str, Any]], list[Any]]:
    """(columns, rows as flat dicts, rows as read) of a CSV/TSV/JSON/JSONL file."""
    text = _read(path, shown)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        try:
            lines = list(csv.reader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
        except csv.Error as exc:
            raise UnusableRunError(f"{shown}: malformed CSV ({exc}); regenerate it") from None
        if not lines:
            return [], [], []
        header = _unique(lines[0])
        rows = [
            {h: (cells[i] if i < len(cells) else MISSING) for i, h in enumerate(header)}
            for cells in lines[1:]
        ]
        for cells, row in zip(lines[1:], rows, strict=True):
            if len(cells) > len(header):  # cells beyond the header still count
                row.update({f"column {i + 1}": c for i, c in enumerate(cells) if i >= len(header)})
        return header, rows, rows  # the flat rows are the whole of a CSV row
    if suffix == ".jsonl":
        values = [
            parse_json(shown, line, number)
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    else:
        document = parse_json(shown, text)
        values = document if isinstance(document, list) else [document]
    rows = [flatten(v) if isinstance(v, dict) and v else {"value": v} for v in values]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return columns, rows, values


def _show(value: Any) -> str:
    return ABSENT if value is MISSING else show_value(value)


def _decisive_part(value: Any, mask: Mask) -> Any:
    """A row as read, masked, without its wall-clock keys: what decides, structure and types kept."""
    if isinstance(value, dict):
        return {k: _decisive_part(v, mask) for k, v in value.items() if not is_wall_clock(str(k))}
    if isinstance(value, list):
        return [_decisive_part(v, mask) for v in value]
    return mask(value)


def _masked(row: dict[str, Any], mask: Mask) -> dict[str, Any]:
    return {k: mask(v) for k, v in row.items()}


def compare_tables(
    path_a: Path, path_b: Path, shown_a: str, shown_b: str, mask: Mask = lambda v: v
) -> TableResult:
    """Row by row, column by column; the first decisive difference is named by row and column."""
    cols_a, rows_a, read_a = load_table(path_a, shown_a)
    cols_b, rows_b, read_b = load_table(path_b, shown_b)
    first = ""
    differing_rows = 0
    wall: set[str] = set()
    if path_a.suffix.lower() in (".csv", ".tsv") and cols_a != cols_b:
        only_a = [c for c in cols_a if c not in cols_b]
        only_b = [c for c in cols_b if c not in cols_a]
        bits = [f"only in RUN_A: {', '.join(only_a)}"] if only_a else []
        bits += [f"only in RUN_B: {', '.join(only_b)}"] if only_b else []
        first = "columns differ: " + ("; ".join(bits) or "same columns in another order")
    for index, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=False), start=1):
        ra, rb = _masked(ra, mask), _masked(rb, mask)
        keys = [*ra, *(k for k in rb if k not in ra)]
        changed = [k for k in keys if (k in ra) != (k in rb) or not same_value(ra.get(k), rb.get(k))]
        decisive = [k for k in changed if not is_wall_clock(k)]
        wall.update(k for k in changed if is_wall_clock(k))
        # Flat keys can collide ({"a.b": 1} and {"a": {"b": 1}}; [5] and [{"value": 5}]): the rows as
        # read decide too.
        shape = not same_value(
            _decisive_part(read_a[index - 1], mask), _decisive_part(read_b[index - 1], mask)
        )
        if decisive or shape:
            differing_rows += 1
            if not first and decisive:
                key = decisive[0]
                first = (
                    f"row {index} column {key}: {_show(ra.get(key, MISSING))} vs "
                    f"{_show(rb.get(key, MISSING))}"
                )
            elif not first:
                first = (
                    f"row {index}: the structure differs: {show_value(read_a[index - 1])} vs "
                    f"{show_value(read_b[index - 1])}"
                )
    parts = [first] if first else []
    if differing_rows > 1:
        parts.append(f"{plural(differing_rows, 'row')} differ")
    if len(rows_a) != len(rows_b):
        parts.append(f"RUN_A has {plural(len(rows_a), 'row')}, RUN_B {len(rows_b)}")
    note = f"wall-clock columns differ ({', '.join(sorted(wall))}): not decisive" if wall else ""
    if parts:
        return TableResult(DIFFERENT, "; ".join(parts), len(rows_a), note)
    return TableResult(IDENTICAL, f"{plural(len(rows_a), 'row')} identical", len(rows_a), note)
