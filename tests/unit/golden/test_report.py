"""The verdict's renderings: text names the finding lines, markdown a table of the environment, JSON all."""

from __future__ import annotations

import json

from twinrun.compare.report.model import Divergence
from twinrun.golden.check import BANDS, EXACT, Breach, GoldenReport
from twinrun.golden.report import findings, render_json, render_markdown, render_text


def test_a_passed_exact_report_is_one_verdict_line_and_a_summary() -> None:
    text = render_text(GoldenReport("g.json", EXACT, steps=8))
    assert text.splitlines() == [
        "golden g.json: PASSED (same environment class: checked bit for bit)",
        "  8 traced steps, metrics, weights and files agree bit for bit",
    ]


def test_a_changed_report_lists_step_cause_parameter_and_more_than_ten_files() -> None:
    report = GoldenReport("g.json", EXACT, files=[f"f{i}: differs" for i in range(12)])
    report.divergence = Divergence(4, 1, "rng stream", "w", 5, ["torch"], "at step 4 (epoch 1): ...")
    lines = findings(report)
    assert lines[0].startswith("first divergent step 4 (epoch 1), cause: rng stream")
    assert lines[1] == "first differing parameter: w (step 5)"
    assert lines[-1] == "... and 2 more file differences"
    assert json.loads(render_json(report))["divergence"]["rng_streams"] == ["torch"]


def test_a_band_breach_in_markdown_shows_the_environment_table() -> None:
    report = GoldenReport("g.json", BANDS, environment=[("torch", "2.0", "2.1")])
    report.loss_breach = Breach("loss at step 3", 3, 10.0, 12.0, 0.2)
    markdown = render_markdown(report)
    assert "### :x: golden `g.json`: changed" in markdown
    assert '| `torch` | `"2.0"` | `"2.1"` |' in markdown
    assert "off by 2 > allowed 0.2 (10x the band)" in markdown
    assert json.loads(render_json(report))["loss_breach"]["off_by"] == 2.0
