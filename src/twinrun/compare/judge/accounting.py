"""The byte rule: bytes are the ground truth, and a reader may excuse only named volatile fields.

A file whose bytes are identical in both runs is identical, whatever its kind. A file whose bytes differ
is different unless its kind's reader accounts for *every* differing byte as a named volatile field
(:data:`FIELDS`); what a reader skips or does not understand decides. The helpers here are the shared
part of that accounting: streaming byte comparison, the field names and how they are shown, and line by
line accounting for text files (logs, YAML, JSON, CSV), where each differing line pair must be explained
by span masks (the runs' own paths, wall-clock times) or by a kind-specific excuse.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from twinrun.compare.read.run_reader import UnusableRunError, unreadable_reason
from twinrun.compare.report.model import plural

CHUNK = 1 << 20

# Every volatile field a reader may excuse (docs/compare.md lists them): name -> plural.
WALL_CLOCK = "wall-clock field"
PATH = "path"
PID = "pid"
HOST = "host name"
ZIP_TIME = "zip timestamp"
ARCHIVE_NAME = "archive name"
METADATA_ORDER = "metadata order"
RESOLVER_CACHE = "resolver cache"
FIELDS = {
    WALL_CLOCK: "wall-clock fields",
    PATH: "paths",
    PID: "pids",
    HOST: "host names",
    ZIP_TIME: "zip timestamps",
    ARCHIVE_NAME: "archive names",
    METADATA_ORDER: "metadata orders",
    RESOLVER_CACHE: "resolver caches",
}

Masked = Counter  # field name (one of FIELDS) -> how many differing occurrences were excused
Excuse = Callable[[str, str], "Counter[str] | None"]  # two differing lines -> the fields, or None
Span = tuple["re.Pattern[str]", str]  # a pattern whose matches are one named field


def describe(masked: Counter[str] | dict[str, int]) -> str:
    """``3 wall-clock fields, 2 paths``: what was excused, in the order of :data:`FIELDS`."""
    names = [*FIELDS, *sorted(k for k in masked if k not in FIELDS)]
    return ", ".join(plural(masked[n], n, FIELDS.get(n, n + "s")) for n in names if masked.get(n))


@dataclass
class Bytes:
    """What a streamed byte comparison of two files found."""

    identical: bool
    detail: str  # "N bytes identical" or the first differing offset (and both sizes)
    size: int  # bytes read from RUN_A's file up to the verdict
    newlines: int = 0  # in RUN_A's file, when identical (a log's line count without reading it twice)


def compare_file_bytes(pa: Path, pb: Path, shown_a: str, shown_b: str) -> Bytes:
    """Chunk by chunk in bounded memory: equal files cost one read each; the first differing byte is
    named (a truncated prefix differs at the shorter file's end)."""
    try:
        with pa.open("rb") as fa, pb.open("rb") as fb:
            offset = newlines = 0
            while True:
                ca, cb = fa.read(CHUNK), fb.read(CHUNK)
                if ca != cb:
                    index = next((i for i, (x, y) in enumerate(zip(ca, cb, strict=False)) if x != y), None)
                    where = offset + (index if index is not None else min(len(ca), len(cb)))
                    sizes = pa.stat().st_size, pb.stat().st_size
                    detail = f"first differing byte at offset {where}" + (
                        f"; sizes {sizes[0]} vs {sizes[1]}" if sizes[0] != sizes[1] else ""
                    )
                    return Bytes(False, detail, offset + len(ca))
                if not ca:
                    return Bytes(True, f"{plural(offset, 'byte')} identical", offset, newlines)
                offset += len(ca)
                newlines += ca.count(b"\n")
    except OSError as exc:
        shown = shown_a if exc.filename == str(pa) else shown_b
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None


def mask_spans(x: str, y: str, spans: Iterable[Span]) -> tuple[str, str, Counter[str]]:
    """Both lines with every match of each span replaced by its field's token; the fields whose
    matched text differs between the lines are counted (one per differing occurrence)."""
    found: Counter[str] = Counter()
    for pattern, name in spans:
        ma, mb = list(pattern.finditer(x)), list(pattern.finditer(y))
        if not (ma or mb):
            continue
        differing = sum(1 for p, q in zip(ma, mb, strict=False) if p.group() != q.group())
        differing += abs(len(ma) - len(mb))
        if differing:
            found[name] += differing
        token = f"\0{name}\0"
        x, y = _replace(x, ma, token), _replace(y, mb, token)
    return x, y, found


def _replace(text: str, matches: list[re.Match[str]], token: str) -> str:
    """``text`` with each match replaced by ``token`` (one pass over the matches already found)."""
    if not matches:
        return text
    parts, at = [], 0
    for m in matches:
        parts += [text[at : m.start()], token]
        at = m.end()
    parts.append(text[at:])
    return "".join(parts)


def excuse_by_spans(spans: Sequence[Span]) -> Excuse:
    """An excuse that accepts two lines equal once the spans are masked."""

    def excuse(x: str, y: str) -> Counter[str] | None:
        mx, my, found = mask_spans(x, y, spans)
        return found if mx == my and found else None

    return excuse


def _split(line: str) -> tuple[str, str]:
    """(content, line ending) of one line from ``splitlines(keepends=True)``."""
    parts = line.splitlines()
    content = parts[0] if parts else ""
    return content, line[len(content) :]


def account_lines(text_a: str, text_b: str, excuse: Excuse) -> Counter[str] | str:
    """The fields that explain every differing line of two texts, or the first unexplained difference.

    Lines are matched by position, line endings included; a line count that differs is unexplained.
    """
    la, lb = text_a.splitlines(keepends=True), text_b.splitlines(keepends=True)
    if len(la) != len(lb):
        return f"RUN_A has {plural(len(la), 'line')}, RUN_B {len(lb)}"
    total: Counter[str] = Counter()
    for number, (x, y) in enumerate(zip(la, lb, strict=True), start=1):
        if x == y:
            continue
        (cx, ex), (cy, ey) = _split(x), _split(y)
        if ex != ey:
            return f"line {number}: the line endings differ"
        found = excuse(cx, cy)
        if not found:
            return f"line {number} differs outside any volatile field"
        total += found
    return total if total else "the bytes differ outside any volatile field"


def read_texts(pa: Path, pb: Path, shown_a: str, shown_b: str) -> tuple[str, str] | None:
    """Both files as text (None when either is not UTF-8: its bytes then decide)."""
    try:
        return pa.read_bytes().decode("utf-8"), pb.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
    except OSError as exc:
        shown = shown_a if exc.filename == str(pa) else shown_b
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None
