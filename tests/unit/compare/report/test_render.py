"""Rendering reports: text (colors only on request), strict JSON, markdown for job summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    Divergence,
    EnvironmentSection,
    Report,
    TensorDiff,
    WeightsSection,
    shown_report,
)
from twinrun.compare.report.render import (
    render_json,
    render_markdown,
    render_table,
    render_text,
    summary_rows,
)
from twinrun.compare.runs import compare_runs
from twinrun.record import runs


@pytest.fixture
def identical(tmp_path: Path) -> Report:
    return compare_runs(*fr.make_twins(tmp_path))


@pytest.fixture
def different(tmp_path: Path) -> Report:
    a, b = fr.make_twins(tmp_path)
    fr.flip_bit(b, "encoder.weight", index=2)
    fr.edit_jsonl(b, runs.TRACE, lambda rows: rows[1].update(batch="0"))
    return compare_runs(a, b)


def test_text_starts_with_the_summary_table(identical: Report) -> None:
    text = render_text(identical)
    lines = text.splitlines()
    assert lines[0].endswith("identical (exit 0)")
    assert lines[2].split() == ["section", "verdict", "detail"]
    assert [line.split()[0] for line in lines[4 : 4 + len(identical.sections)]] == list(identical.sections)
    assert "\x1b[" not in text
    assert "divergence" not in text  # identical sections get no detail block


def test_text_details_and_divergence(different: Report) -> None:
    text = render_text(different)
    assert "different (exit 1)" in text.splitlines()[0]
    assert "encoder.weight (1 of 12 elements" in text and "max 1 ULP" in text
    assert "step 2 (epoch 1), cause: data order" in text
    assert "first at flat index 2" in text


def test_colors_only_when_asked(different: Report) -> None:
    colored = render_text(different, color=True)
    assert "\x1b[31mdifferent\x1b[0m" in colored and "\x1b[32midentical" in colored
    assert colored.replace("\x1b[0m", "").count("\x1b[") > 0


def test_json_is_strict_and_stable(different: Report) -> None:
    tree = json.loads(render_json(different), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert tree["verdict"] == DIFFERENT and tree["exit_code"] == 1
    assert list(tree["sections"]) == list(different.sections)
    assert list(tree["sections"])[:2] == ["files", "weights"] and tree["hints"] == different.hints
    assert tree["divergence"]["cause"] == "data order" and tree["divergence"]["step"] == 2
    assert tree["sections"]["weights"]["differing"][0]["max_ulp"] == 1


def test_json_writes_non_finite_floats_as_strings() -> None:
    diff = TensorDiff("w", "float32", [1], 1, 1, max_abs_diff=float("inf"), first_a=float("nan"))
    report = Report("a", "b", {"weights": WeightsSection(status=DIFFERENT, differing=[diff])})
    tree = json.loads(render_json(report), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert tree["sections"]["weights"]["differing"][0]["max_abs_diff"] == "inf"
    assert tree["sections"]["weights"]["differing"][0]["first_a"] == "nan"


def test_markdown_for_job_summaries(different: Report, identical: Report) -> None:
    md = render_markdown(different)
    assert md.startswith("### ❌ twinrun compare: different")
    assert "| section | verdict | detail |" in md and "| weights | different |" in md
    assert "max \\|a-b\\|" in md  # pipes inside cells are escaped
    assert "<details open><summary>weights: different</summary>" in md
    assert "**Divergence** at step 2 (epoch 1): data order" in md
    assert render_markdown(identical).startswith("### ✅ twinrun compare: identical")
    md_same = render_markdown(identical)
    # An identical report opens nothing; it lists only the files whose volatile fields were masked.
    assert "<details open" not in md_same
    assert md_same.count("<details") == md_same.count("<details><summary>files: identical</summary>")


def test_environment_is_context_in_the_table() -> None:
    env = EnvironmentSection(
        status=DIFFERENT,
        affects_verdict=False,
        summary="bit-identity not expected: torch",
        decisive=["torch"],
    )
    report = Report("a", "b", {"environment": env})
    assert report.verdict == IDENTICAL
    assert summary_rows(report) == [("environment", "context", "bit-identity not expected: torch")]
    assert "bit-identity not expected: torch" in render_text(report)


def test_render_table_is_reusable() -> None:
    rows = [("run-0 / run-1", "identical", "-"), ("run-0 / run-2", "different", "weights")]
    text = render_table(["pair", "verdict", "differs in"], rows)
    assert text.splitlines()[0] == "pair           verdict    differs in"
    assert text.splitlines()[3] == "run-0 / run-2  different  weights"
    md = render_table(["pair", "verdict"], [("a|b", "x")], markdown=True)
    assert md.splitlines() == ["| pair | verdict |", "| --- | --- |", "| a\\|b | x |"]


def test_divergence_without_parameter() -> None:
    div = Divergence(step=4, epoch=1, cause="length", detail="RUN_B's trace ends after step 3")
    text = render_text(Report("a", "b", {}, div))
    assert "step 4 (epoch 1), cause: length" in text and "first differing parameter: none" in text


def test_shown_report_is_the_first_that_differs(identical: Report, different: Report) -> None:
    assert shown_report([identical, different, identical]) is different
    assert shown_report([identical, identical]) is identical  # none differs: the first
    assert shown_report([]) is None
