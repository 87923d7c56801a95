"""``--html``: one page with the golden and the current curve on one plot, the band and the step marked."""

from __future__ import annotations

from twinrun.golden.check import BANDS, Breach, GoldenReport
from twinrun.golden.html import curve_svg, render_html, write_html


def test_the_page_plots_both_curves_and_escapes_names(tmp_path) -> None:
    report = GoldenReport("<g>.json", BANDS)
    report.curve = {
        "step": [1, 2, 3],
        "golden": [3.0, 2.0, 1.0],
        "current": [3.0, 2.5, 1.5],
        "allowed": [0.1] * 3,
    }
    report.loss_breach = Breach("loss at step 2", 2, 2.0, 2.5, 0.1)
    svg = curve_svg(report)
    assert svg.startswith("<svg") and "golden" in svg and "current" in svg and "band" in svg
    write_html(tmp_path / "r.html", report)
    page = (tmp_path / "r.html").read_text()
    assert "&lt;g&gt;.json" in page and "<g>.json" not in page and "<svg" in page


def test_a_golden_without_a_trace_gets_a_page_without_a_plot() -> None:
    assert curve_svg(GoldenReport("g.json", BANDS)) is None
    assert "No traced loss to plot" in render_html(GoldenReport("g.json", BANDS))
