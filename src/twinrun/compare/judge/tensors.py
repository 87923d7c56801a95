"""Tensor files of a run, one pair at a time, and the ``tensors`` section that merges them.

Each pair goes to :func:`twinrun.compare.judge.tensor_files.compare_tensor_files` (every tensor anywhere in
the saved object, pickles read without running them, the runs' directories masked in strings).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    NOT_COMPARED,
    Mismatch,
    TensorsSection,
    WeightsSection,
    describe_tensor_diff,
    plural,
    show_value,
)

if TYPE_CHECKING:
    from twinrun.compare.judge.context import Context


def compare_tensor_pair(
    pa: Path, pb: Path, rel: str, ctx: Context, account_bytes: bool = False
) -> WeightsSection:
    """The comparison of one tensor file both runs have; tensor names start with ``rel: ``
    (``account_bytes``: see :func:`~twinrun.compare.judge.tensor_files.compare_tensor_files`).

    Raises :class:`~twinrun.compare.judge.tensor_files.NotATensorFileError` for a file of another format.
    """
    from twinrun.compare.judge.tensor_files import compare_tensor_files

    return compare_tensor_files(
        pa,
        pb,
        label=rel,
        atol=ctx.atol,
        rtol=ctx.rtol,
        trust_pickle=ctx.trust_pickle,
        normalize=lambda text, side: ctx.mask(text),
        account_bytes=account_bytes,
    )


def merge(files: list[str], sections: Iterable[WeightsSection]) -> TensorsSection:
    """One section over every tensor file but the final weights."""
    out = TensorsSection(files=list(files))
    for s in sections:
        out.tensors_a += s.tensors_a
        out.tensors_b += s.tensors_b
        out.compared += s.compared
        out.bytes_compared += s.bytes_compared
        out.only_in_a += s.only_in_a
        out.only_in_b += s.only_in_b
        out.dtype_mismatches += s.dtype_mismatches
        out.shape_mismatches += s.shape_mismatches
        out.differing += s.differing
        out.notes += s.notes
        out.leaves_compared += s.leaves_compared
        out.leaf_mismatches += s.leaf_mismatches
        out.leaves_only_in_a += s.leaves_only_in_a
        out.leaves_only_in_b += s.leaves_only_in_b
        out.atol, out.rtol = s.atol, s.rtol
        if s.close is not None:
            out.close = s.close if out.close is None else out.close and s.close
        if s.status == DIFFERENT:
            out.status = DIFFERENT
        elif s.status == IDENTICAL and out.status == NOT_COMPARED:
            out.status = IDENTICAL
    return out


def tensors_summary(sec: TensorsSection, differing_files: list[str]) -> str:
    """``2 files (a.ckpt, b.ckpt), 47 tensors``, after the first difference when there is one."""
    shown = ", ".join(sec.files[:3]) + (" ..." if len(sec.files) > 3 else "")
    tensors = plural(max(sec.tensors_a, sec.tensors_b), "tensor")
    if sec.status != DIFFERENT:
        return f"{plural(len(sec.files), 'file')} ({shown}), {tensors}"
    first = ""
    if sec.differing:
        first = describe_tensor_diff(sec.differing[0])
    elif sec.only_in_a or sec.only_in_b:
        first = f"in one run only: {', '.join((sec.only_in_a + sec.only_in_b)[:2])}"
    elif sec.shape_mismatches or sec.dtype_mismatches:
        m: Mismatch = (sec.shape_mismatches + sec.dtype_mismatches)[0]
        first = f"{m.name}: {m.a} vs {m.b}"
    elif sec.leaf_mismatches:
        m = sec.leaf_mismatches[0]
        first = f"{m.name}: {show_value(m.a)} vs {show_value(m.b)}"
    elif sec.leaves_only_in_a or sec.leaves_only_in_b:
        first = f"value in one run only: {', '.join((sec.leaves_only_in_a + sec.leaves_only_in_b)[:2])}"
    elif sec.notes:
        first = sec.notes[0]
    verb = "differs" if len(differing_files) == 1 else "differ"
    return f"{first}; {len(differing_files)} of {plural(len(sec.files), 'file')} {verb}, {tensors}"
