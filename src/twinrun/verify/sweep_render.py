"""Rendering a :class:`~twinrun.verify.sweep.SweepResult`: the summary table across the matrix, the
JSON report, and the full report of the first point that differs (used by the CLI and the HTML page)."""

from __future__ import annotations

import json
from typing import Any

from twinrun.compare.report.model import DIFFERENT, IDENTICAL
from twinrun.verify.apps import pairs_list, run_dict
from twinrun.verify.sweep import SWEEP_FORMAT, PointResult, SweepResult


def summary_rows(result: SweepResult) -> list[tuple[str, str, str]]:
    """(point, verdict, first divergence) per point, in job order."""
    return [(point_name(p), p.verdict, p.first_divergence()) for p in result.points]


def point_name(point: PointResult) -> str:
    """``#1 x=2``; the row of files written outside the run directories has no job number."""
    return point.label if point.num < 0 else f"#{point.num} {point.label}"


def _headline(result: SweepResult) -> str:
    verdict = IDENTICAL if result.identical else DIFFERENT
    launcher = f"; launcher {result.launcher}" if result.launcher else ""
    return (
        f"twinrun verify: {verdict} ({len(result.points)} points x {len(result.sweeps)} sweeps of "
        f"{result.app.app}{launcher})"
    )


def to_dict(result: SweepResult) -> dict[str, Any]:
    """The JSON report: the matrix, every point's verdict and divergence, the first differing report."""
    first = result.first_different
    report = first.report if first is not None else None
    return {
        "format": SWEEP_FORMAT,
        "verdict": IDENTICAL if result.identical else DIFFERENT,
        "exit_code": result.exit_code,
        "app": result.app.app,
        "workdir": str(result.workdir),
        "launcher": result.launcher,
        "sweeps": [run_dict(r, "sweep_dir") for r in result.sweeps],
        "points": [_point_dict(p) for p in result.points],
        "report": report.to_dict() if report is not None else None,
    }


def _point_dict(point: PointResult) -> dict[str, Any]:
    shown = point.report
    divergence = shown.divergence if shown is not None and shown.exit_code else None
    return {
        "point": point.label,
        "job": point.num,
        "overrides": list(point.overrides),
        "run_dirs": [str(d) if d is not None else None for d in point.run_dirs],
        "verdict": point.verdict,
        "missing_in": point.missing_in,
        "differs_in": point.differs_in(),
        "first_divergence": None
        if divergence is None
        else {"step": divergence.step, "epoch": divergence.epoch, "cause": divergence.cause},
        "pairs": pairs_list(point.pairs),
    }


def render(result: SweepResult, fmt: str = "text") -> str:
    """The summary table across the matrix, then the full report of the first point that differs."""
    from twinrun.compare.report.render import render_markdown, render_table, render_text

    if fmt == "json":
        return json.dumps(to_dict(result), indent=2) + "\n"
    headers, rows = ["point", "verdict", "first divergence"], summary_rows(result)
    first = result.first_different
    report = first.report if first is not None else None
    if fmt == "markdown":
        mark = "✅" if result.identical else "❌"
        out = [f"## {mark} {_headline(result)}", "", render_table(headers, rows, markdown=True)]
        if report is not None:
            out += [
                "",
                f"First point that differs: `{point_name(first)}`",
                "",
                render_markdown(report),
            ]
        return "\n".join(out) + "\n"
    out = [_headline(result), "", render_table(headers, rows)]
    if report is not None:
        out += ["", f"first point that differs: {point_name(first)}", "", render_text(report)]
    return "\n".join(out) + ("" if report is not None else "\n")
