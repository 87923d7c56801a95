"""``twinrun golden check --html``: the golden and the current loss curve on one plot, with the band."""

from __future__ import annotations

import html
import math
from pathlib import Path

from twinrun.compare.report.plots import _pyplot, _svg
from twinrun.golden.check import GoldenReport
from twinrun.golden.report import findings, render_text
from twinrun.record.runs import write_text


def curve_svg(report: GoldenReport) -> str | None:
    """Golden and current loss over steps, the band shaded, the first divergent or breaching step marked."""
    curve = report.curve
    if not curve.get("step"):
        return None
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8.0, 4.0))
    steps, golden, current, allowed = curve["step"], curve["golden"], curve["current"], curve["allowed"]
    low = [g - a if math.isfinite(g) else g for g, a in zip(golden, allowed, strict=True)]
    high = [g + a if math.isfinite(g) else g for g, a in zip(golden, allowed, strict=True)]
    axis.fill_between(steps, low, high, color="#999999", alpha=0.25, label="band")
    axis.plot(steps, golden, "-", color="#1f77b4", label="golden", linewidth=1.4)
    axis.plot(steps, current, "--", color="#d62728", label="current", linewidth=1.4)
    marked = report.divergence.step if report.divergence else None
    marked = report.loss_breach.step if report.loss_breach else marked
    if isinstance(marked, int | float):
        axis.axvline(marked, color="#444444", linestyle=":", linewidth=1.2)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(f"loss: golden vs current ({report.mode})", fontsize=10)
    axis.legend(loc="upper right", fontsize=9)
    return _svg(fig)


def render_html(report: GoldenReport) -> str:
    svg = curve_svg(report) or "<p>No traced loss to plot.</p>"
    items = "".join(f"<li>{html.escape(line)}</li>" for line in findings(report))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>golden {html.escape(report.golden)}: {report.verdict}</title></head><body>"
        f"<h1>golden {html.escape(report.golden)}: {report.verdict}</h1>"
        f"<pre>{html.escape(render_text(report))}</pre><ul>{items}</ul>{svg}</body></html>\n"
    )


def write_html(path: str | Path, report: GoldenReport) -> None:
    write_text(Path(path), render_html(report))
