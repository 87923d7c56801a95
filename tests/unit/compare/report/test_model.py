"""The report's data model: the one verdict rule (``decide``) and the small helpers every renderer uses."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from twinrun.compare.read.limits import RawNumber
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    IGNORED,
    MAX_SHOWN_CHARS,
    NOT_COMPARED,
    ONLY_IN_A,
    ONLY_IN_B,
    REPORT_FORMAT,
    ConfigSection,
    Divergence,
    EnvironmentSection,
    FileEntry,
    FilesSection,
    Mismatch,
    Report,
    Section,
    TensorDiff,
    WeightsSection,
    decide,
    describe_tensor_diff,
    lines_differ,
    plural,
    shorten,
    show_value,
    shown_report,
)

# --- decide: the one verdict rule ----------------------------------------------------------------------


def files(*entries: FileEntry, status: str = IDENTICAL) -> FilesSection:
    """A files section whose own status may disagree with its entries: ``decide`` reads the entries."""
    return FilesSection(status=status, files=list(entries))


@pytest.mark.parametrize(
    ("verdict", "decided", "exit_code"),
    [
        (DIFFERENT, DIFFERENT, 1),
        (ONLY_IN_A, DIFFERENT, 1),
        (ONLY_IN_B, DIFFERENT, 1),
        (IDENTICAL, IDENTICAL, 0),  # identical, not compared or ignored files do not decide
        (NOT_COMPARED, IDENTICAL, 0),
        (IGNORED, IDENTICAL, 0),
    ],
)
def test_one_decisive_file_decides_by_its_verdict(verdict: str, decided: str, exit_code: int) -> None:
    sections: dict[str, Section] = {
        "files": files(FileEntry("x", "bytes", IDENTICAL), FileEntry("y", "log", verdict))
    }
    assert decide(sections) == decided
    assert Report("a", "b", sections).exit_code == exit_code


def test_a_context_file_that_differs_does_not_decide() -> None:
    entry = FileEntry(path="env.json", kind="environment", verdict=DIFFERENT, decisive=False)
    assert not entry.differs
    assert decide({"files": files(entry)}) == IDENTICAL
    assert FileEntry("env.json", "environment", DIFFERENT).differs  # negative control: decisive by default


def test_a_files_section_is_read_by_its_entries_not_its_status() -> None:
    # The files section is found under its name; another name holding it is just a section.
    differs = files(FileEntry("w", "weights", DIFFERENT), status=IDENTICAL)
    assert decide({"files": differs}) == DIFFERENT
    assert decide({"listing": differs}) == IDENTICAL
    # A section named "files" that is no FilesSection is read by its status only.
    assert decide({"files": Section(status=IDENTICAL)}) == IDENTICAL


def test_sections_that_count_and_differ_decide_too() -> None:
    weights = WeightsSection(status=DIFFERENT)
    assert decide({"files": files(FileEntry("w", "weights", IDENTICAL)), "weights": weights}) == DIFFERENT
    assert decide({"weights": weights}) == DIFFERENT
    assert (
        decide({"weights": WeightsSection(status=NOT_COMPARED), "config": ConfigSection(status=IDENTICAL)})
        == IDENTICAL
    )
    assert decide({}) == IDENTICAL


def test_the_environment_never_decides() -> None:
    env = EnvironmentSection(status=DIFFERENT, affects_verdict=False, decisive=["torch"])
    report = Report("a", "b", {"environment": env, "config": ConfigSection(status=IDENTICAL)})
    assert report.verdict == IDENTICAL and report.exit_code == 0 and report.differing_sections == []
    env.affects_verdict = True  # negative control: the same section, counted, decides
    assert (
        report.verdict == DIFFERENT and report.exit_code == 1 and report.differing_sections == ["environment"]
    )


def test_differing_sections_lists_those_that_count_and_differ_in_order() -> None:
    report = Report(
        "a",
        "b",
        {
            "weights": WeightsSection(status=DIFFERENT),
            "config": ConfigSection(status=IDENTICAL),
            "environment": EnvironmentSection(status=DIFFERENT, affects_verdict=False),
            "metrics": Section(status=DIFFERENT),
            "trace": Section(status=NOT_COMPARED),
        },
    )
    assert report.differing_sections == ["weights", "metrics"]


# --- the model's own small rules -----------------------------------------------------------------------


def test_architecture_differs_by_any_missing_tensor_or_shape() -> None:
    assert not WeightsSection().architecture_differs
    assert WeightsSection(only_in_a=["x"]).architecture_differs
    assert WeightsSection(only_in_b=["x"]).architecture_differs
    assert WeightsSection(shape_mismatches=[Mismatch("x", [1], [2])]).architecture_differs
    assert not WeightsSection(dtype_mismatches=[Mismatch("x", "float32", "float64")]).architecture_differs


def test_divergence_where() -> None:
    assert Divergence(step=12, epoch=2, cause="rng stream").where == "step 12 (epoch 2): rng stream"


def test_to_dict_has_stable_keys_and_strict_values() -> None:
    weights = WeightsSection(status=DIFFERENT, summary="w", atol=math.inf, notes=["n"])
    div = Divergence(step=3, epoch=1, cause="length", rng_streams=["torch"], detail="d")
    report = Report("run/a", "run/b", {"weights": weights}, div, hints=["h"])
    tree = report.to_dict()
    assert list(tree) == [
        "format",
        "run_a",
        "run_b",
        "verdict",
        "exit_code",
        "sections",
        "divergence",
        "hints",
    ]
    assert (tree["format"], tree["run_a"], tree["run_b"]) == (REPORT_FORMAT, "run/a", "run/b")
    assert (tree["verdict"], tree["exit_code"]) == (DIFFERENT, 1)
    sec = tree["sections"]["weights"]
    assert (sec["status"], sec["summary"], sec["atol"], sec["notes"], sec["affects_verdict"]) == (
        DIFFERENT,
        "w",
        "inf",
        ["n"],
        True,
    )
    assert tree["divergence"] == {
        "step": 3,
        "epoch": 1,
        "cause": "length",
        "parameter": None,
        "parameter_step": None,
        "rng_streams": ["torch"],
        "detail": "d",
    }
    assert tree["hints"] == ["h"] and tree["hints"] is not report.hints
    json.dumps(tree, allow_nan=False)  # strict JSON
    plain = Report("a", "b", {}).to_dict()
    assert (plain["verdict"], plain["exit_code"], plain["divergence"], plain["hints"]) == (
        IDENTICAL,
        0,
        None,
        [],
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (1.5, 1.5),
        (0.0, 0.0),
        (7, 7),
        (True, True),
        (None, None),
        ("text", "text"),
        (RawNumber("1e999"), "1e999"),
        ({1: math.nan, "k": [1, (2, math.inf)]}, {"1": "nan", "k": [1, [2, "inf"]]}),
        ((), []),
        (object, "\"<class 'object'>\""),  # no JSON type: shown as a person would read it
    ],
)
def test_jsonable_values_in_to_dict(value: Any, written: Any) -> None:
    tree = Report("a", "b", {"config": ConfigSection(changed=[Mismatch("k", value, 0)])}).to_dict()
    got = tree["sections"]["config"]["changed"][0]["a"]
    assert got == written and type(got) is type(written)


# --- shown values -------------------------------------------------------------------------------------


def test_shorten_keeps_text_up_to_the_limit() -> None:
    assert MAX_SHOWN_CHARS == 300
    exact = "x" * 300
    assert shorten(exact) == exact
    long = "ab" * 160 + "c"  # 321 characters
    assert shorten(long) == long[:260] + "... (321 characters)"
    assert shorten("abcdefghij", limit=10) == "abcdefghij"
    assert shorten("y" * 50, limit=49) == "y" * 9 + "... (50 characters)"


def test_lines_differ_and_plural() -> None:
    assert (lines_differ(1), lines_differ(2), lines_differ(0)) == (
        "1 line differs",
        "2 lines differ",
        "0 lines differ",
    )
    assert (plural(1, "row"), plural(2, "row"), plural(0, "row")) == ("1 row", "2 rows", "0 rows")
    assert (plural(1, "entry", "entries"), plural(3, "entry", "entries")) == ("1 entry", "3 entries")


def test_show_value_as_written_on_a_command_line() -> None:
    assert show_value("abc") == "abc"  # strings unquoted
    assert show_value(RawNumber("1e999")) == "1e999"
    assert show_value(0.001) == "0.001" and show_value(None) == "null" and show_value(True) == "true"
    assert show_value({"a": [1, "b"]}) == '{"a": [1, "b"]}'
    assert show_value(object) == "\"<class 'object'>\""  # repr, as a JSON string
    assert show_value("z" * 400) == "z" * 260 + "... (400 characters)"
    assert show_value(list(range(200))).endswith("... (890 characters)")


def test_describe_tensor_diff() -> None:
    diff = TensorDiff("fc.weight", "float32", [5, 10], 50, 1, max_abs_diff=5.96e-08, max_ulp=1)
    assert describe_tensor_diff(diff) == "fc.weight (1 of 50 elements, max |a-b| 5.96e-08, max 1 ULP)"
    one = TensorDiff("b", "float32", [1], 1, 1, max_abs_diff=2.0, max_ulp=0, nan_mismatches=1)
    assert describe_tensor_diff(one) == "b (1 of 1 element, max |a-b| 2, max 0 ULP, 1 NaN on one side only)"
    flags = TensorDiff("mask", "bool", [3], 3, 2, max_abs_diff=1.0)
    assert describe_tensor_diff(flags) == "mask (2 of 3 elements)"  # |a-b| means nothing for bools
    raw = TensorDiff("cx", "complex64", [3], 3, 7, unit="bytes", max_abs_diff=0.0)
    assert describe_tensor_diff(raw) == "cx (7 differing bytes, max |a-b| 0)"
    assert describe_tensor_diff(TensorDiff("i", "int64", [], 1, 0)) == "i (0 of 1 element)"


def test_shown_report_is_the_first_that_differs() -> None:
    same = Report("a", "b", {})
    other = Report("a", "c", {"weights": WeightsSection(status=DIFFERENT)})
    later = Report("a", "d", {"weights": WeightsSection(status=DIFFERENT)})
    assert shown_report(iter([same, other, later])) is other
    assert shown_report(iter([same, Report("x", "y", {})])) is same
    assert shown_report(iter([])) is None
