"""What each text kind's reader may excuse, line by line (see :mod:`twinrun.compare.judge.accounting`).

* every text file: the runs' own directories (and the working directory), as whole paths;
* logs: timestamps, durations, clocks and rates (what
  :func:`~twinrun.compare.read.run_reader.normalize_log_line` replaces);
  a line longer than :data:`MAX_NORMALIZED_LINE` is compared by its bytes;
* YAML, JSON, JSONL: the value of a key that is wall-clock by nature (``time``, ``*_time``, ...), and in
  Hydra's ``hydra.yaml`` the run's location (``dir``, ``output_dir``, ``hydra.run.dir=...``);
* CSV/TSV: the cells of a wall-clock column (the header must be identical).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from twinrun.compare.judge.accounting import (
    PATH,
    WALL_CLOCK,
    Excuse,
    Span,
    account_lines,
    mask_spans,
    read_texts,
)
from twinrun.compare.judge.tables import is_wall_clock
from twinrun.compare.read import artifacts as kinds
from twinrun.compare.read.run_reader import LOG_PATTERNS, MAX_NORMALIZED_LINE, PathMask

# Hydra's record of where the run went: the same job in two directories differs here only.
HYDRA_LOCATION_KEYS = ("dir", "output_dir")
HYDRA_LOCATION_OVERRIDES = ("hydra.run.dir", "hydra.sweep.dir", "hydra.runtime.output_dir")
# The contract's path keys (config.VOLATILE_PATTERNS) as overrides name them: where data and the
# checkpoint to resume from live, not what they hold (env.json records the dataset's digest).
PATH_OVERRIDES = ("data.root", "training.resume_from")

_YAML_KEY_LINE = re.compile(r"^(\s*(?:- )?)([^\s:#'\"\[\]{},]+):( .*)?$")
_OVERRIDE_ITEM = re.compile(r"^(\s*- )([\w.+~-]+)=(.*)$")
_JSON_PAIR = re.compile(
    r'"((?:[^"\\]|\\.)*)"(\s*:\s*)(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|"(?:[^"\\]|\\.)*"|null)'
)


def path_spans(mask: PathMask) -> list[Span]:
    """The runs' own directories (and the working directory) as a span of the ``path`` field."""
    pattern = getattr(mask, "_pattern", None)
    return [(pattern, PATH)] if pattern is not None else []


def log_excuse(mask: PathMask) -> Excuse:
    """Paths and what the log normalizer replaces (times, durations, clocks, rates), found in one scan
    of each line; lines over ``MAX_NORMALIZED_LINE`` are compared by their bytes."""
    path = getattr(mask, "_pattern", None)
    parts = [f"(?P<path>{path.pattern})"] if path is not None else []
    parts += [f"(?:{p.pattern})" for p in LOG_PATTERNS]
    fields = re.compile("|".join(parts))

    def excuse(x: str, y: str) -> Counter[str] | None:
        if max(len(x), len(y)) > MAX_NORMALIZED_LINE:
            return None
        ma, mb = list(fields.finditer(x)), list(fields.finditer(y))
        if len(ma) != len(mb):
            return None
        found: Counter[str] = Counter()
        at_x = at_y = 0
        for p, q in zip(ma, mb, strict=True):
            if x[at_x : p.start()] != y[at_y : q.start()] or (p.lastgroup == "path") != (
                q.lastgroup == "path"
            ):
                return None  # text between the fields differs, or one field stands for another
            if p.group() != q.group():
                found[PATH if p.lastgroup == "path" else WALL_CLOCK] += 1
            at_x, at_y = p.end(), q.end()
        return found if found and x[at_x:] == y[at_y:] else None

    return excuse


def _keyed(x: str, y: str, spans: Sequence[Span], named: re.Pattern[str], field_of) -> Counter[str] | None:
    """Paths masked, then one ``key: value`` pair per line whose key ``field_of`` names a field."""
    mx, my, found = mask_spans(x, y, spans)
    if mx == my:
        return found or None
    ma, mb = named.match(mx), named.match(my)
    if not (ma and mb) or ma.group(1, 2) != mb.group(1, 2):
        return None
    name = field_of(ma.group(2))
    if name is None:
        return None
    found[name] += 1
    return found


def yaml_excuse(mask: PathMask, hydra_record: bool) -> Excuse:
    """Paths; a wall-clock key's value; in ``hydra.yaml`` the run's location keys and overrides."""
    spans = path_spans(mask)

    def key_field(key: str) -> str | None:
        if hydra_record and key in HYDRA_LOCATION_KEYS:
            return PATH
        return WALL_CLOCK if is_wall_clock(key) else None

    def override_field(key: str) -> str | None:
        key = key.lstrip("+~")
        if (hydra_record and key in HYDRA_LOCATION_OVERRIDES) or key in PATH_OVERRIDES:
            return PATH
        return WALL_CLOCK if is_wall_clock(key) else None

    def excuse(x: str, y: str) -> Counter[str] | None:
        if _OVERRIDE_ITEM.match(x) and _OVERRIDE_ITEM.match(y):
            return _keyed(x, y, spans, _OVERRIDE_ITEM, override_field)
        return _keyed(x, y, spans, _YAML_KEY_LINE, key_field)

    return excuse


def json_excuse(mask: PathMask) -> Excuse:
    """Paths; the value of every ``"key": value`` pair whose key is wall-clock by nature."""
    spans = path_spans(mask)

    def excuse(x: str, y: str) -> Counter[str] | None:
        mx, my, found = mask_spans(x, y, spans)
        if mx == my:
            return found or None
        pairs_a, pairs_b = list(_JSON_PAIR.finditer(mx)), list(_JSON_PAIR.finditer(my))
        if [m.group(1, 2) for m in pairs_a] != [m.group(1, 2) for m in pairs_b]:
            return None
        for ma, mb in zip(pairs_a, pairs_b, strict=True):
            if ma.group(3) != mb.group(3):
                if not is_wall_clock(ma.group(1)):
                    return None
                found[WALL_CLOCK] += 1
        token = "\0" + WALL_CLOCK + "\0"

        def blank(m: re.Match[str]) -> str:
            return f'"{m.group(1)}"{m.group(2)}{token}' if is_wall_clock(m.group(1)) else m.group(0)

        same = _JSON_PAIR.sub(blank, mx) == _JSON_PAIR.sub(blank, my)
        return found if same and found else None

    return excuse


def _cells(line: str, delimiter: str) -> list[str] | None:
    """The cells of one CSV line, or None when the line is not written the one way csv writes it."""
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return None
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(cells)
    return cells if out.getvalue() == line else None


def csv_excuse(mask: PathMask, header: str, delimiter: str) -> Excuse:
    """Paths; the cells of wall-clock columns (named by RUN_A's header line)."""
    spans = path_spans(mask)
    columns = _cells(header, delimiter) or []

    def excuse(x: str, y: str) -> Counter[str] | None:
        if x == header:  # the header names the columns: nothing in it is volatile
            return None
        mx, my, found = mask_spans(x, y, spans)
        if mx == my:
            return found or None
        ca, cb = _cells(mx, delimiter), _cells(my, delimiter)
        if ca is None or cb is None or len(ca) != len(cb) or len(ca) > len(columns):
            return None
        for column, p, q in zip(columns, ca, cb, strict=False):
            if p != q:
                if not is_wall_clock(column):
                    return None
                found[WALL_CLOCK] += 1
        return found or None

    return excuse


def account_text(
    kind: str, hydra_record: bool, pa: Path, pb: Path, shown_a: str, shown_b: str, mask: PathMask
) -> Counter[str] | str:
    """The volatile fields that explain every differing line of two text files of one kind, or the first
    difference none explains."""
    texts = read_texts(pa, pb, shown_a, shown_b)
    if texts is None:
        return "not UTF-8 text"
    suffix = pa.suffix.lower()
    if kind == kinds.LOG:
        excuse = log_excuse(mask)
    elif kind == kinds.CONFIG:
        excuse = yaml_excuse(mask, hydra_record)
    elif suffix in (".csv", ".tsv"):
        header = texts[0].splitlines()[0] if texts[0] else ""
        excuse = csv_excuse(mask, header, "\t" if suffix == ".tsv" else ",")
    elif kind in (kinds.TABLE, kinds.MANIFEST, kinds.METRICS, kinds.TRACE):
        excuse = json_excuse(mask)
    else:
        return "compared by bytes"
    return account_lines(*texts, excuse)
