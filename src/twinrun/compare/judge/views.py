"""The report sections built from the per-file outcomes: ``files``, ``logs`` and the kind sections
(``tensors``, ``tables``, ``scalars``, ``images``, ``other``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from twinrun.compare.judge.accounting import describe
from twinrun.compare.judge.kinds import Outcome
from twinrun.compare.judge.tensors import merge, tensors_summary
from twinrun.compare.read import artifacts as kinds
from twinrun.compare.read.artifacts import Artifact, Walk
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    IGNORED,
    NOT_COMPARED,
    ONLY_IN_A,
    ONLY_IN_B,
    FileEntry,
    FilesSection,
    KindSection,
    LogsSection,
    Section,
    lines_differ,
    plural,
)

# kind section -> (file kinds, what its units are)
KIND_SECTION_KINDS = {
    "tables": ((kinds.TABLE,), "row"),  # manifest.json: in the files section, beside the weights
    "scalars": ((kinds.SCALARS,), "scalar point"),
    "images": ((kinds.IMAGE,), "pixel"),
    "other": ((kinds.BYTES,), "byte"),
}


def _names(paths: Sequence[str], limit: int = 3) -> str:
    return ", ".join(paths[:limit]) + (f" +{len(paths) - limit} more" if len(paths) > limit else "")


def files_section(entries: list[FileEntry], wa: Walk, wb: Walk, patterns: Sequence[str]) -> FilesSection:
    """Every file of both runs with its kind and verdict, the ignored ones last."""
    sec = FilesSection(files=list(entries), ignore_patterns=list(patterns))
    ignored = {**wa.ignored, **wb.ignored}
    sec.files += [
        FileEntry(rel, "ignored", IGNORED, f"matches {ignored[rel]}", False) for rel in sorted(ignored)
    ]
    for run, linked in (("RUN_A", wa.linked_dirs), ("RUN_B", wb.linked_dirs)):
        sec.files += [
            FileEntry(
                rel, "link", NOT_COMPARED, f"{run}: a symbolic link to a directory, not followed", False
            )
            for rel in linked
        ]
    counted = [e for e in entries]
    by_verdict: dict[str, list[str]] = {}
    for e in counted:
        by_verdict.setdefault(e.verdict if e.decisive or e.verdict != DIFFERENT else "context", []).append(
            e.path
        )
    parts = [f"{plural(len(counted), 'file')}"]
    for verdict in (IDENTICAL, DIFFERENT, ONLY_IN_A, ONLY_IN_B, NOT_COMPARED, "context"):
        paths = by_verdict.get(verdict, [])
        if paths:
            parts.append(f"{len(paths)} {verdict}" + (f" ({_names(paths)})" if verdict != IDENTICAL else ""))
    if ignored:
        parts.append(f"{len(ignored)} ignored")
    masked_files = [e for e in entries if e.masked and not e.differs]
    if masked_files:
        total: Counter[str] = Counter()
        for e in masked_files:
            total.update(e.masked)
        parts.append(f"masked: {describe(total)} ({_names([e.path for e in masked_files])})")
    sec.status = DIFFERENT if any(e.differs for e in entries) else IDENTICAL if counted else NOT_COMPARED
    sec.summary = parts[0] + ": " + ", ".join(parts[1:]) if len(parts) > 1 else parts[0]
    return sec


def logs_section(found: list[Artifact], outcomes: dict[str, Outcome]) -> LogsSection:
    """Every ``*.log`` of the runs, matched by path; a log only one run has is a difference."""
    logs = [art for art in found if art.kind == kinds.LOG]
    sec = LogsSection()
    if not logs:
        sec.summary = "neither run has a *.log file"
        return sec
    sec.only_in_a = [art.key for art in logs if not art.b]
    sec.only_in_b = [art.key for art in logs if not art.a]
    sec.files = [outcomes[art.key].log for art in logs if art.key in outcomes and outcomes[art.key].log]
    differing = [f for f in sec.files if f.differing_lines]
    sec.status = DIFFERENT if differing or sec.only_in_a or sec.only_in_b else IDENTICAL
    parts = []
    if differing:
        f = differing[0]
        assert f.first is not None
        parts.append(f"{f.name_a} line {f.first.line} differs ({lines_differ(f.differing_lines)})")
    for label, names in (("only in RUN_A", sec.only_in_a), ("only in RUN_B", sec.only_in_b)):
        if names:
            parts.append(f"{label}: {_names(names)}")
    if parts:
        sec.summary = "; ".join(parts)
    else:
        sec.summary = ", ".join(f"{f.name_a}: {plural(f.lines_a, 'line')}" for f in sec.files) + " identical"
    return sec


def _kind_section(arts: list[Artifact], outcomes: dict[str, Outcome], unit: str) -> KindSection:
    sec = KindSection(files=[art.key for art in arts], unit=unit)
    for art in arts:
        outcome = outcomes.get(art.key)
        if outcome is None:  # only one run has it
            sec.differing.append(f"{art.key}: {ONLY_IN_A if art.a else ONLY_IN_B}")
            continue
        sec.units += outcome.units
        if outcome.verdict == DIFFERENT and outcome.decisive:
            sec.differing.append(f"{art.key}: {outcome.detail}")
    compared = [art.key for art in arts if art.key in outcomes and outcomes[art.key].verdict != NOT_COMPARED]
    sec.status = DIFFERENT if sec.differing else IDENTICAL if compared else NOT_COMPARED
    by_bytes = sum(1 for a in arts if a.key in outcomes and outcomes[a.key].by_bytes)
    judged = [a for a in arts if a.key in outcomes and not outcomes[a.key].by_bytes]
    what = f"{plural(len(arts), 'file')} ({_names(sec.files)})"
    if judged or not by_bytes:
        what += f", {plural(sec.units, unit)}"
    if by_bytes:
        what += f", {by_bytes} byte-identical"
    if sec.status == DIFFERENT:
        sec.summary = f"{sec.differing[0]}; {what}"
    elif sec.status == NOT_COMPARED:
        reasons = sorted({outcomes[a.key].detail for a in arts if a.key in outcomes})
        sec.summary = f"{what}: not compared ({'; '.join(reasons)})"
    else:
        sec.summary = what
    return sec


def kind_sections(found: list[Artifact], outcomes: dict[str, Outcome]) -> dict[str, Section]:
    """The sections of the kinds the runs have files of (tensor files, tables, scalars, images, other)."""
    out: dict[str, Section] = {}
    tensor_arts = [art for art in found if art.kind == kinds.TENSORS]
    if tensor_arts:
        both = [art for art in tensor_arts if art.key in outcomes]
        sec = merge([art.key for art in tensor_arts], [w for a in both if (w := outcomes[a.key].weights)])
        one_side = [art.key for art in tensor_arts if art.key not in outcomes]
        if one_side:
            sec.status = DIFFERENT
            sec.notes.append(f"in one run only: {_names(one_side)}")
        differing = [a.key for a in both if outcomes[a.key].verdict == DIFFERENT] + one_side
        if differing:  # the byte rule may call a file different that its reader found equal
            sec.status = DIFFERENT
        by_bytes = [a.key for a in both if outcomes[a.key].by_bytes]
        if by_bytes and sec.status == NOT_COMPARED:
            sec.status = IDENTICAL
        sec.summary = tensors_summary(sec, differing)
        if by_bytes:
            sec.summary += f" ({len(by_bytes)} byte-identical)"
        out["tensors"] = sec
    for name, (file_kinds, unit) in KIND_SECTION_KINDS.items():
        arts = [art for art in found if art.kind in file_kinds]
        if arts:
            out[name] = _kind_section(arts, outcomes, unit)
    return out
