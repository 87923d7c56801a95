"""One comparer per kind of file (see :mod:`twinrun.compare.artifacts`), each giving an :class:`Outcome`.

twinrun's own contract files (weights, metrics, trace, env, manifest) are compared by
:mod:`twinrun.compare.runs` through their sections; everything else a run leaves comes here: tensor
files, YAML configs, logs, tables, TensorBoard scalars, images, and any other file byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun.compare import artifacts as kinds
from twinrun.compare.artifacts import Artifact
from twinrun.compare.report_model import (
    DIFFERENT,
    IDENTICAL,
    LogDiff,
    WeightsSection,
    lines_differ,
    plural,
    show_value,
)
from twinrun.compare.run_reader import (
    HYDRA_DIR,
    HYDRA_OVERRIDES,
    PathMask,
    RunDir,
    UnusableRunError,
    comparable_overrides,
    read_log,
    read_yaml,
    unreadable_reason,
)
from twinrun.compare.sections import ABSENT, diff_lines, differing_keys
from twinrun.config import canonicalize, flatten

CHUNK = 1 << 20
HYDRA_RECORD = f"{HYDRA_DIR}/hydra.yaml"


@dataclass
class Context:
    """What every comparer needs: the runs, the path mask, the tolerances and the pickle policy."""

    a: RunDir
    b: RunDir
    mask: PathMask
    atol: float | None = None
    rtol: float | None = None
    trust_pickle: bool = False


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
    """Compare one artifact both runs have (one file each; event folders may hold several)."""
    (pa, *_), (pb, *_) = art.a, art.b
    shown_a, shown_b = ctx.a.show(art.key), ctx.b.show(art.key)
    if art.kind == kinds.TENSORS:
        return _tensors(pa, pb, art.key, ctx)
    if art.kind == kinds.CONFIG:
        return _config(art.key, ctx)
    if art.kind == kinds.LOG:
        return _log(art.key, ctx)
    if art.kind in (kinds.TABLE, kinds.MANIFEST):
        from twinrun.compare.tables import compare_tables

        table = compare_tables(pa, pb, shown_a, shown_b, lambda v: masked(v, ctx.mask))
        detail = "; ".join(p for p in (table.detail, table.wall_clock_note) if p)
        return Outcome(table.verdict, detail, table.rows)
    if art.kind == kinds.SCALARS:
        from twinrun.compare.scalars import compare_scalars

        return Outcome(*compare_scalars(art.a, art.b, art.key))
    if art.kind == kinds.IMAGE:
        from twinrun.compare.images import compare_images

        return Outcome(*compare_images(pa, pb, shown_a, shown_b))
    return compare_bytes(pa, pb, shown_a, shown_b)


def compare_bytes(pa: Path, pb: Path, shown_a: str, shown_b: str) -> Outcome:
    """Streamed, chunk by chunk: equal files cost one read each; the first differing byte is named."""
    try:
        with pa.open("rb") as fa, pb.open("rb") as fb:
            offset = 0
            while True:
                ca, cb = fa.read(CHUNK), fb.read(CHUNK)
                if ca != cb:
                    index = next((i for i, (x, y) in enumerate(zip(ca, cb, strict=False)) if x != y), None)
                    where = offset + (index if index is not None else min(len(ca), len(cb)))
                    sizes = pa.stat().st_size, pb.stat().st_size
                    detail = f"first differing byte at offset {where}" + (
                        f"; sizes {sizes[0]} vs {sizes[1]}" if sizes[0] != sizes[1] else ""
                    )
                    return Outcome(DIFFERENT, detail, offset + len(ca))
                if not ca:
                    return Outcome(IDENTICAL, f"{plural(offset, 'byte')} identical", offset)
                offset += len(ca)
    except OSError as exc:
        shown = shown_a if exc.filename == str(pa) else shown_b
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None


def _tensors(pa: Path, pb: Path, rel: str, ctx: Context) -> Outcome:
    from twinrun.compare.tensor_files import NotATensorFileError
    from twinrun.compare.tensors import compare_tensor_pair

    try:
        sec = compare_tensor_pair(pa, pb, rel, ctx)
    except NotATensorFileError:  # a .bin of another format, both runs alike: its bytes are what it is
        if not _both_foreign(pa, pb, rel, ctx):
            raise
        outcome = compare_bytes(pa, pb, ctx.a.show(rel), ctx.b.show(rel))
        outcome.detail += " (not a tensor file: compared as bytes)"
        return outcome
    return Outcome(sec.status, sec.summary, max(sec.tensors_a, sec.tensors_b), weights=sec)


def _both_foreign(pa: Path, pb: Path, rel: str, ctx: Context) -> bool:
    """True when neither file is of a tensor format (one that is and one that is not: unusable)."""
    from twinrun.compare.tensor_files import NotATensorFileError, open_tensor_file

    for path, run in ((pa, ctx.a), (pb, ctx.b)):
        try:
            with open_tensor_file(path, run.show(rel), trust_pickle=False):
                return False
        except NotATensorFileError:
            continue
        except UnusableRunError:
            return False
    return True


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
    return canonicalize(masked(tree, mask))


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
    diff = LogDiff(rel, rel, len(la), len(lb), count, first)
    set_a, set_b = set(la), set(lb)
    only = ([x for x in la if x not in set_b], [x for x in lb if x not in set_a])
    if first is None:
        return Outcome(IDENTICAL, f"{plural(len(la), 'line')} identical", len(la), log=diff, only_lines=only)
    detail = f"line {first.line} differs ({lines_differ(count)})"
    return Outcome(DIFFERENT, detail, len(la), log=diff, only_lines=only)
