"""``twinrun verify ... --html REPORT.html``: the HTML report of a verification (twins, sweeps, DDP).

The page is compare's (:mod:`twinrun.compare.report.html`) for the pair shown in full (the first that differs,
else the first), with verify's own table on top: every pair, every sweep point, or every rank check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinrun.compare.report.html import render_html, write_html
from twinrun.compare.report.model import Report


def _shown_pair(pairs: dict[tuple[int, int], Report], dirs: list[Path | None]) -> tuple[Report, Path, Path]:
    """The report shown in full among ``pairs`` (1-based run numbers) and its two run directories."""
    from twinrun.compare.report.model import shown_report

    report = shown_report(pairs.values())
    assert report is not None, "a verification always has a pair"
    (i, j) = next(key for key, value in pairs.items() if value is report)
    a, b = dirs[i - 1], dirs[j - 1]
    assert a is not None and b is not None
    return report, a, b


def verify_html(result: Any) -> str:
    """The page for a :class:`VerifyResult`, :class:`SweepResult` or :class:`DDPResult`."""
    from twinrun.verify import ddp, sweep, sweep_render
    from twinrun.verify.render import pair_rows

    if isinstance(result, sweep.SweepResult):
        shown = result.first_different or result.points[0]
        points = [p for p in (shown, *result.points) if p.pairs]
        if not points:  # no point ran in two sweeps: nothing to show but the table
            raise ValueError("no sweep point ran in two sweeps")
        report, a, b = _shown_pair(points[0].pairs, points[0].run_dirs)
        table = (["point", "verdict", "first divergence"], sweep_render.summary_rows(result))
        return render_html(report, a, b, title=f"twinrun verify -m: point {points[0].label}", table=table)
    if isinstance(result, ddp.DDPResult):
        report, a, b = _shown_pair(result.verify.pairs, result.verify.run_dirs)
        table = (["check", "verdict", "detail"], ddp.check_rows(result))
        return render_html(report, a, b, title="twinrun verify (DDP)", table=table)
    report, a, b = _shown_pair(result.pairs, result.run_dirs)
    title = f"twinrun verify: {len(result.runs)} runs of {result.app.app}"
    table = (["pair", "verdict", "differs in"], pair_rows(result))
    return render_html(report, a, b, title=title, table=table)


def write_verify_html(path: str | Path, result: Any) -> None:
    write_html(path, verify_html(result))
