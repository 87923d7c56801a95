"""One comparer per kind of file (see :mod:`twinrun.compare.read.artifacts`), each giving an :class:`Outcome`.

twinrun's own contract files (weights, metrics, trace, env, manifest) are compared by
:mod:`twinrun.compare.runs` through their sections; everything else a run leaves comes here: tensor
files, YAML configs, logs, tables, TensorBoard scalars, images, and any other file byte for byte.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun.compare.judge.accounting import Bytes, compare_file_bytes, describe
from twinrun.compare.judge.context import Context
from twinrun.compare.judge.sections import ABSENT, diff_lines, differing_keys, line_count, raw_log_diff
from twinrun.compare.read import artifacts as kinds
from twinrun.compare.read.artifacts import Artifact
from twinrun.compare.read.run_reader import (
    HYDRA_DIR,
    HYDRA_OVERRIDES,
    PathMask,
    RunDir,
    UnusableRunError,
    comparable_overrides,
    read_log,
    read_yaml,
)
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    LineDiff,
    LogDiff,
    WeightsSection,
    lines_differ,
    plural,
    shorten,
    show_value,
)
from twinrun.config import canonicalize, flatten

HYDRA_RECORD = f"{HYDRA_DIR}/hydra.yaml"
SHOWN_LINE = 4096  # characters of a differing log line a report keeps


@dataclass
class Outcome:
    """What comparing one artifact found; ``units`` counts tensors, rows, lines, pixels or bytes."""

    verdict: str
    detail: str = ""
    units: int = 0
    decisive: bool = True
    weights: WeightsSection | None = None  # tensor files: the full comparison
    log: LogDiff | None = None
    only_lines: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))
    # The named volatile fields the reader excused (see accounting.FIELDS): field -> occurrences.
    masked: Counter[str] = field(default_factory=Counter)
    unaccounted: str = ""  # a self-accounting reader's reason that no volatile field explains the bytes
    by_bytes: bool = False  # identical bytes: decided without a reader


def masked(value: Any, mask: Callable[[str], str]) -> Any:
    """``value`` with every string in it (keys too) passed through ``mask``."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {masked(k, mask) if isinstance(k, str) else k: masked(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, mask) for v in value]
    return value


def compare_artifact(art: Artifact, ctx: Context) -> Outcome:
    """Compare one artifact both runs have (one file each; event folders may hold several).

    The byte rule (:mod:`twinrun.compare.judge.accounting`): identical bytes are identical without reading
    further; differing bytes are different unless the kind's reader finds no difference *and* accounts
    for every differing byte as a named volatile field (``Outcome.masked``).
    """
    raw = _raw_bytes(art, ctx)
    if raw.identical:
        return _byte_identical(art, raw)
    if art.kind == kinds.BYTES:  # no reader: the bytes already said it
        return Outcome(DIFFERENT, raw.detail, raw.size)
    if art.kind == kinds.LOG:  # the accountant excuses what the normalizer replaces: one pass, not two
        found = account(art, ctx)
        if not isinstance(found, str) and found:
            return _excused_log(art, found)
    outcome = _judge(art, ctx)
    if outcome.verdict != IDENTICAL:
        return outcome
    found = (outcome.unaccounted or outcome.masked) if art.kind in SELF_ACCOUNTING else account(art, ctx)
    if isinstance(found, str) or not found:
        reason = found if isinstance(found, str) else "no volatile field explains the difference"
        outcome.verdict, outcome.masked = DIFFERENT, Counter()
        outcome.detail = f"{raw.detail}: {reason} (its reader sees no difference: the bytes decide)"
        if outcome.log is not None:
            outcome.log = raw_log_diff(ctx.a.file(art.key), ctx.b.file(art.key), outcome.log)
        if outcome.weights is not None:  # the tensors section says it too
            outcome.weights.status = DIFFERENT
            outcome.weights.notes.append(f"{art.key}: {outcome.detail}")
        return outcome
    outcome.masked = found
    outcome.detail += f"; masked: {describe(found)}"
    return outcome


# Kinds whose judge reads every byte it excuses itself (tensor files, TensorBoard events, pictures).
SELF_ACCOUNTING = (kinds.TENSORS, kinds.SCALARS, kinds.IMAGE)


def _raw_bytes(art: Artifact, ctx: Context) -> Bytes:
    """The artifact's files compared byte for byte (an event folder: file by file, in name order)."""
    files_a, files_b = sorted(art.a), sorted(art.b)
    if len(files_a) != len(files_b):
        return Bytes(False, f"RUN_A has {len(files_a)} files, RUN_B {len(files_b)}", 0)
    total = newlines = 0
    for pa, pb in zip(files_a, files_b, strict=True):
        raw = compare_file_bytes(pa, pb, ctx.a.show(art.key), ctx.b.show(art.key))
        if not raw.identical:
            return raw
        total, newlines = total + raw.size, newlines + raw.newlines
    return Bytes(True, f"{plural(total, 'byte')} identical", total, newlines)


def _byte_identical(art: Artifact, raw: Bytes) -> Outcome:
    """Identical bytes: identical, without a reader (a log still counts its lines for the logs section)."""
    outcome = Outcome(IDENTICAL, raw.detail, 0, by_bytes=True)
    if art.kind == kinds.LOG:
        lines = line_count(art.a[0])
        outcome.log = LogDiff(art.key, art.key, lines, lines, 0, None)
        outcome.units = lines
    return outcome


def _excused_log(art: Artifact, found: Counter[str]) -> Outcome:
    lines = line_count(art.a[0])
    outcome = Outcome(IDENTICAL, f"{plural(lines, 'line')} identical; masked: {describe(found)}", lines)
    outcome.log, outcome.masked = LogDiff(art.key, art.key, lines, lines, 0, None), found
    return outcome


def _judge(art: Artifact, ctx: Context) -> Outcome:
    """The kind's reader on two files whose bytes differ."""
    (pa, *_), (pb, *_) = art.a, art.b
    shown_a, shown_b = ctx.a.show(art.key), ctx.b.show(art.key)
    if art.kind == kinds.TENSORS:
        return _tensors(pa, pb, art.key, ctx)
    if art.kind == kinds.CONFIG:
        return _config(art.key, ctx)
    if art.kind == kinds.LOG:
        return _log(art.key, ctx)
    if art.kind in (kinds.TABLE, kinds.MANIFEST):
        from twinrun.compare.judge.tables import compare_tables

        table = compare_tables(pa, pb, shown_a, shown_b, lambda v: masked(v, ctx.mask))
        detail = "; ".join(p for p in (table.detail, table.wall_clock_note) if p)
        return Outcome(table.verdict, detail, table.rows)
    if art.kind == kinds.SCALARS:
        from twinrun.compare.judge.scalars import compare_scalars

        verdict, detail, units, found = compare_scalars(art.a, art.b, art.key)
        return Outcome(verdict, detail, units, masked=found)
    if art.kind == kinds.IMAGE:
        from twinrun.compare.judge.images import compare_images

        verdict, detail, units, found = compare_images(pa, pb, shown_a, shown_b)
        return Outcome(verdict, detail, units, masked=found)
    return compare_bytes(pa, pb, shown_a, shown_b)


def account(art: Artifact, ctx: Context) -> Counter[str] | str:
    """The volatile fields that explain every differing byte of a text artifact, or why none can."""
    from twinrun.compare.judge.excuses import account_text

    shown = ctx.a.show(art.key), ctx.b.show(art.key)
    return account_text(art.kind, art.key == HYDRA_RECORD, art.a[0], art.b[0], *shown, ctx.mask)


def compare_bytes(pa: Path, pb: Path, shown_a: str, shown_b: str) -> Outcome:
    """Streamed, chunk by chunk: equal files cost one read each; the first differing byte is named."""
    raw = compare_file_bytes(pa, pb, shown_a, shown_b)
    return Outcome(IDENTICAL if raw.identical else DIFFERENT, raw.detail, raw.size)


def _tensors(pa: Path, pb: Path, rel: str, ctx: Context) -> Outcome:
    from twinrun.compare.judge.tensors import compare_tensor_pair

    try:
        sec = compare_tensor_pair(pa, pb, rel, ctx, account_bytes=True)
    except UnusableRunError:  # a .bin of another format: its bytes are what it is
        if not _both_foreign(pa, pb, rel, ctx):
            raise
        outcome = compare_bytes(pa, pb, ctx.a.show(rel), ctx.b.show(rel))
        outcome.detail += " (not a tensor file: compared as bytes)"
        return outcome
    # The reader accounted for the differing bytes itself (judge/tensor_bytes.py): named fields, or why not.
    outcome = Outcome(sec.status, sec.summary, max(sec.tensors_a, sec.tensors_b), weights=sec)
    outcome.masked, outcome.unaccounted = Counter(sec.masked), sec.unaccounted
    return outcome


def _both_foreign(pa: Path, pb: Path, rel: str, ctx: Context) -> bool:
    """True when neither file is a readable tensor file and one is of no tensor format at all (random
    bytes in a ``.bin`` may start like a pickle): their bytes decide. A readable tensor file beside one
    that is not, or two files that claim a tensor format and are refused (bombs, corruption): unusable."""
    from twinrun.compare.judge.tensor_files import NotATensorFileError, open_tensor_file

    foreign = False
    for path, run in ((pa, ctx.a), (pb, ctx.b)):
        try:
            with open_tensor_file(path, run.show(rel), trust_pickle=False):
                return False
        except NotATensorFileError:
            foreign = True
        except UnusableRunError:
            continue
    return foreign


def comparable_yaml(run: RunDir, rel: str, mask: PathMask) -> Any:
    """A YAML file as compared: paths masked, volatile keys dropped; Hydra's files by what matters."""
    tree = read_yaml(run, rel)
    if rel == HYDRA_OVERRIDES and isinstance(tree, list):
        return comparable_overrides([masked(str(item), mask) for item in tree])
    if rel == HYDRA_RECORD and isinstance(tree, dict):
        # Hydra's record of the launch: paths, times and the job id vary; the chosen config groups and
        # the task's overrides do not.
        hydra = tree.get("hydra") if isinstance(tree.get("hydra"), dict) else {}
        runtime = hydra.get("runtime") if isinstance(hydra.get("runtime"), dict) else {}
        overrides = hydra.get("overrides") if isinstance(hydra.get("overrides"), dict) else {}
        task = overrides.get("task") or []
        return {
            "choices": masked(runtime.get("choices"), mask),
            "task_overrides": comparable_overrides([masked(str(o), mask) for o in task])
            if isinstance(task, list)
            else masked(task, mask),
        }
    return canonicalize(_typed_keys(masked(tree, mask)))


def _typed_keys(tree: Any) -> Any:
    """Mappings whose non-string keys say their type: YAML ``1:`` and ``'1':`` are two keys."""
    if isinstance(tree, dict):
        return {
            (k if isinstance(k, str) else f"{k!r} ({type(k).__name__})"): _typed_keys(v)
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [_typed_keys(v) for v in tree]
    return tree


def _config(rel: str, ctx: Context) -> Outcome:
    ta, tb = comparable_yaml(ctx.a, rel, ctx.mask), comparable_yaml(ctx.b, rel, ctx.mask)
    fa, fb = (
        flatten(ta) if isinstance(ta, dict) else {"": ta},
        flatten(tb) if isinstance(tb, dict) else {"": tb},
    )
    keys = differing_keys(fa, fb)
    if not keys:
        return Outcome(IDENTICAL, f"{plural(len(fa), 'key')} identical", len(fa))
    key = keys[0]
    shown = f"{key or 'value'}: {show_value(fa.get(key, ABSENT))} -> {show_value(fb.get(key, ABSENT))}"
    more = f" (+{len(keys) - 1} more)" if len(keys) > 1 else ""
    return Outcome(DIFFERENT, shown + more, len(fa))


def _log(rel: str, ctx: Context) -> Outcome:
    la, lb = read_log(ctx.a, rel, ctx.mask), read_log(ctx.b, rel, ctx.mask)
    count, first = diff_lines(la, lb)
    if first is not None:  # a report never carries a 300 MB line
        first = LineDiff(first.line, *(shorten(x, SHOWN_LINE) if x else x for x in (first.a, first.b)))
    diff = LogDiff(rel, rel, len(la), len(lb), count, first)
    set_a, set_b = set(la), set(lb)
    only = ([x for x in la if x not in set_b], [x for x in lb if x not in set_a])
    if first is None:
        return Outcome(IDENTICAL, f"{plural(len(la), 'line')} identical", len(la), log=diff, only_lines=only)
    detail = f"line {first.line} differs ({lines_differ(count)})"
    return Outcome(DIFFERENT, detail, len(la), log=diff, only_lines=only)
