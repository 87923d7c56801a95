"""The small contract sections (metrics, environment) and the helpers they share, on hand-made files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.judge.sections import (
    ABSENT,
    as_decimal,
    compare_environments,
    compare_metrics,
    diff_lines,
    differing_keys,
    mark_missing,
    same_value,
)
from twinrun.compare.read.limits import RawNumber
from twinrun.compare.read.run_reader import RunDir, UnusableRunError, open_run
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    NOT_COMPARED,
    LineDiff,
    MetricsSection,
    RowDiff,
    ValueDiff,
)
from twinrun.record import runs


def run_with(path: Path, **files: Any) -> RunDir:
    """A directory holding only the given files: ``env={...}`` (env.json), ``metrics=[rows]``."""
    path.mkdir(parents=True, exist_ok=True)
    if "env" in files:
        runs.write_json(path / runs.ENV, files["env"])
    if "metrics" in files:
        runs.write_jsonl(path / runs.METRICS, files["metrics"])
    return open_run(path)


def pair(tmp_path: Path, a: dict[str, Any], b: dict[str, Any]) -> tuple[RunDir, RunDir]:
    return run_with(tmp_path / "run_a", **a), run_with(tmp_path / "run_b", **b)


# --- shared helpers -----------------------------------------------------------------------------------


def test_same_value_is_equality_including_type() -> None:
    assert same_value(1, 1) and same_value({"a": 1, "b": [2.5, None]}, {"b": [2.5, None], "a": 1})
    assert same_value({"b": 1, "a": 2}, {"a": 2, "b": 1}) and same_value({"a": 2, "b": 1}, {"b": 1, "a": 2})
    assert not same_value(1, 1.0) and not same_value(1, True) and not same_value(0, False)
    assert not same_value("1", 1) and not same_value(None, "null")
    assert same_value(RawNumber("1e999"), RawNumber("1e999"))
    assert not same_value(RawNumber("1e999"), RawNumber("2e999"))
    assert not same_value(RawNumber("1e999"), "1e999")  # a number JSON cannot hold is not its text
    assert not same_value(RawNumber("1e999"), 1e999)

    class Lookalike:
        """Another type JSON has no place for, shown like the RawNumber."""

        def __repr__(self) -> str:
            return "1e999"

    assert not same_value(RawNumber("1e999"), Lookalike())  # same repr, other type


def test_differing_keys_in_order_a_key_only_one_side_has_included() -> None:
    fa = {"x": 1, "same": 2, "gone": None, "y": 1}
    fb = {"new": None, "y": 1.0, "same": 2, "x": 2}
    assert differing_keys(fa, fb) == ["x", "gone", "y", "new"]
    assert differing_keys({}, {}) == [] and differing_keys(fa, dict(fa)) == []


def test_mark_missing_names_the_run_that_has_it() -> None:
    sec = MetricsSection(status=IDENTICAL)
    assert mark_missing("x.json", True, False, sec) is sec
    assert (sec.status, sec.summary) == (NOT_COMPARED, "only RUN_A has x.json")
    assert mark_missing("x.json", False, True, MetricsSection()).summary == "only RUN_B has x.json"
    assert mark_missing("x.json", False, False, MetricsSection()).summary == "neither run has x.json"


def test_diff_lines_counts_by_position_and_names_the_first() -> None:
    assert diff_lines(["a", "b"], ["a", "b"]) == (0, None)
    assert diff_lines([], []) == (0, None)
    assert diff_lines(["a", "b", "c", "d"], ["a", "B", "c", "D"]) == (2, LineDiff(2, "b", "B"))
    assert diff_lines(["a"], ["a", "x", "y"]) == (2, LineDiff(2, None, "x"))
    assert diff_lines(["a", "x"], ["a"]) == (1, LineDiff(2, "x", None))
    assert diff_lines(["z"], ["a"]) == (1, LineDiff(1, "z", "a"))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x1.8000000000000p+1", 3.0),
        ("-0x1.0p-1", -0.5),
        ("+0X1P+0", 1.0),
        ("0x1p4", 16.0),
        ("0x0.0p+0", 0.0),
        ("inf", float("inf")),
        ("-Infinity", float("-inf")),
    ],
)
def test_as_decimal_reads_float_hex(text: str, value: float) -> None:
    assert as_decimal(text) == value


def test_as_decimal_nan_and_what_is_not_float_hex() -> None:
    nan = as_decimal("nan")
    assert nan is not None and nan != nan
    for other in ("1.5", "0x1.8p+1 ", " 0x1p0", "x0x1p0", "0x1.8", "nan!", "", "infinite", "0xg.0p+1"):
        assert as_decimal(other) is None, other
    assert as_decimal(1.5) is None and as_decimal(None) is None


# --- metrics ------------------------------------------------------------------------------------------


def row(epoch: int, step: int, **values: Any) -> dict[str, Any]:
    return {"epoch": epoch, "step": step, **values}


def test_identical_metrics(tmp_path: Path) -> None:
    rows = [row(1, 3, loss="0x1.0p+0"), row(2, 6, loss="0x1.0p-1")]
    sec = compare_metrics(*pair(tmp_path, {"metrics": rows}, {"metrics": rows}))
    assert (sec.status, sec.summary, sec.rows_a, sec.rows_b, sec.differing_rows, sec.first) == (
        IDENTICAL,
        "2 rows identical",
        2,
        2,
        0,
        None,
    )
    one = compare_metrics(*pair(tmp_path / "one", {"metrics": rows[:1]}, {"metrics": rows[:1]}))
    assert one.summary == "1 row identical"


def test_first_differing_row_names_its_keys_and_counts_the_rest(tmp_path: Path) -> None:
    rows_a = [row(1, 3, a=1), row(2, 6, a=1, b=1, c=1, d=1, e=1), row(3, 9, a=1), row(4, 12, a=1)]
    rows_b = [row(1, 3, a=1), row(2, 6, a=2, b=2, c=2, d=2, e=1), row(3, 9, a=1), row(5, 12, a=1)]
    sec = compare_metrics(*pair(tmp_path, {"metrics": rows_a}, {"metrics": rows_b}))
    assert sec.status == DIFFERENT and sec.differing_rows == 2
    assert sec.first == RowDiff(2, 2, 6, [ValueDiff(k, 1, 2) for k in "abcd"])
    assert sec.summary == "row 2 (epoch 2, step 6) differs: a, b, c ..."


def test_three_differing_keys_are_all_named(tmp_path: Path) -> None:
    rows_b = [row(1, 3, a=2, b=2, c=2)]
    sec = compare_metrics(*pair(tmp_path, {"metrics": [row(1, 3, a=1, b=1, c=1)]}, {"metrics": rows_b}))
    assert sec.summary == "row 1 (epoch 1, step 3) differs: a, b, c"


def test_epoch_and_step_come_from_run_a(tmp_path: Path) -> None:
    sec = compare_metrics(*pair(tmp_path, {"metrics": [{"loss": 1}]}, {"metrics": [row(9, 9, loss=1)]}))
    assert (sec.first.row, sec.first.epoch, sec.first.step) == (1, None, None)
    assert [d.key for d in sec.first.keys] == ["epoch", "step"]
    assert sec.summary == "row 1 (epoch None, step None) differs: epoch, step"


def test_a_key_only_one_row_has_is_shown_absent(tmp_path: Path) -> None:
    sec = compare_metrics(*pair(tmp_path, {"metrics": [row(1, 1, x=1)]}, {"metrics": [row(1, 1, y=2)]}))
    assert sec.first.keys == [ValueDiff("x", 1, ABSENT), ValueDiff("y", ABSENT, 2)]
    assert ABSENT == "(absent)"


def test_float_hex_values_are_shown_in_decimal_too(tmp_path: Path) -> None:
    rows_a = [row(1, 1, loss=runs.exact(0.5), approx={"loss": 0.5}, n=3)]
    rows_b = [row(1, 1, loss=runs.exact(0.75), approx={"loss": 0.75}, n=4)]
    sec = compare_metrics(*pair(tmp_path, {"metrics": rows_a}, {"metrics": rows_b}))
    # "approx.loss" repeats "loss" in decimal: not listed beside it.
    assert sec.first.keys == [
        ValueDiff("loss", runs.exact(0.5), runs.exact(0.75), 0.5, 0.75),
        ValueDiff("n", 3, 4),
    ]


def test_an_approx_value_alone_is_listed(tmp_path: Path) -> None:
    rows_a = [row(1, 1, loss="0x1.0p+0", approx={"loss": 1.0, "acc": 0.5})]
    rows_b = [row(1, 1, loss="0x1.0p+0", approx={"loss": 1.0, "acc": 0.25})]
    sec = compare_metrics(*pair(tmp_path, {"metrics": rows_a}, {"metrics": rows_b}))
    assert sec.first.keys == [ValueDiff("approx.acc", 0.5, 0.25)]


TIME_KEYS = ("time", "time_total", "epoch_duration", "elapsed", "seconds_used", "load_sec", "step_s")
TIME_KEYS += (
    "samples_per_sec",
    "throughput",
    "wall_clock",
    "epoch_time",
    "checkpoint_dir",
    "timing.batch_time",
)


@pytest.mark.parametrize(
    "key",
    TIME_KEYS,
)
def test_metrics_that_measure_time_are_left_out(tmp_path: Path, key: str) -> None:
    def rows(value: float) -> list[dict[str, Any]]:
        return [row(1, 1, timing={"batch_time": value}) if "." in key else row(1, 1, **{key: value})]

    sec = compare_metrics(*pair(tmp_path, {"metrics": rows(1.0)}, {"metrics": rows(2.0)}))
    assert sec.status == IDENTICAL, key


def test_a_metric_that_only_looks_like_time_is_compared(tmp_path: Path) -> None:
    for key in ("timesteps", "sec", "s_loss"):
        sec = compare_metrics(
            *pair(tmp_path / key, {"metrics": [row(1, 1, **{key: 1})]}, {"metrics": [row(1, 1, **{key: 2})]})
        )
        assert sec.status == DIFFERENT, key


def test_metrics_of_different_lengths(tmp_path: Path) -> None:
    rows = [row(1, 1), row(2, 2), row(3, 3)]
    sec = compare_metrics(*pair(tmp_path, {"metrics": rows}, {"metrics": rows[:1]}))
    assert (sec.status, sec.first, sec.rows_a, sec.rows_b) == (DIFFERENT, None, 3, 1)
    assert sec.summary == "RUN_A has 3 rows, RUN_B 1"
    sec = compare_metrics(*pair(tmp_path / "2", {"metrics": rows[:1]}, {"metrics": [row(1, 9), row(2, 2)]}))
    assert sec.summary == "row 1 (epoch 1, step 1) differs: step; RUN_A has 1 row, RUN_B 2"


def test_metrics_missing_on_one_side_or_both(tmp_path: Path) -> None:
    rows = [row(1, 1)]
    sec = compare_metrics(*pair(tmp_path, {}, {"metrics": rows}))
    assert (sec.status, sec.summary) == (NOT_COMPARED, "only RUN_B has metrics.jsonl")
    sec = compare_metrics(*pair(tmp_path / "2", {"metrics": rows}, {}))
    assert (sec.status, sec.summary) == (NOT_COMPARED, "only RUN_A has metrics.jsonl")
    sec = compare_metrics(*pair(tmp_path / "3", {}, {}))
    assert (sec.status, sec.summary) == (NOT_COMPARED, "neither run has metrics.jsonl")


# --- environment --------------------------------------------------------------------------------------


def environments(tmp_path: Path, **changes: Any) -> tuple[RunDir, RunDir]:
    return pair(tmp_path, {"env": fr.environment()}, {"env": fr.environment(**changes)})


def test_same_environment(tmp_path: Path) -> None:
    sec = compare_environments(*environments(tmp_path))
    assert (sec.status, sec.summary, sec.bit_identity_expected, sec.affects_verdict) == (
        IDENTICAL,
        "same environment; bit-identity expected",
        True,
        False,
    )
    assert sec.differing == [] and sec.decisive == []


@pytest.mark.parametrize(
    ("changes", "decisive"),
    [
        ({"torch": "2.13.0"}, "torch"),
        ({"torchvision": "0.1"}, "torchvision"),
        ({"cuda": "12.4"}, "cuda"),
        ({"cudnn": 90100}, "cudnn"),
        ({"device": "cuda:0"}, "device"),
        ({"device_name": "H200"}, "device_name"),
        ({"platform": "Darwin"}, "platform"),
        ({"machine": "arm64"}, "machine"),
        ({"cpu": "Other CPU"}, "cpu"),
        ({"threads": {"intra_op": 4, "inter_op": 2}}, "threads.intra_op"),
        (
            {"determinism": {"deterministic_algorithms": False, "cudnn_benchmark": False}},
            "determinism.deterministic_algorithms",
        ),
        ({"dataset": {"name": "synthetic", "sha256": "cd" * 32}}, "dataset.sha256"),
        (
            {"dataset": {"name": "synthetic", "sha256": "ab" * 32, "files": {"n": 1}}},
            "dataset.files.n",
        ),  # nested deeper
        (
            {"env_vars": {"CUBLAS_WORKSPACE_CONFIG": ":16:8", "OMP_NUM_THREADS": None}},
            "env_vars.CUBLAS_WORKSPACE_CONFIG",
        ),
    ],
)
def test_a_decisive_difference_voids_bit_identity(
    tmp_path: Path, changes: dict[str, Any], decisive: str
) -> None:
    sec = compare_environments(*environments(tmp_path, **changes))
    assert sec.status == DIFFERENT and sec.affects_verdict is False
    assert (sec.decisive, sec.bit_identity_expected) == ([decisive], False)
    assert sec.summary == f"bit-identity not expected: {decisive}"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"python": "3.12.1"}, "python"),
        ({"numpy": "1.26"}, "numpy"),
        ({"git": {"commit": "1" * 40, "dirty": False}}, "git.commit"),
        ({"hydra": "1.4"}, "hydra"),
        (
            {
                "env_vars": {
                    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
                    "OMP_NUM_THREADS": None,
                    "PYTHONHASHSEED": "1",
                }
            },
            "env_vars.PYTHONHASHSEED",
        ),
        (
            {
                "env_vars": {
                    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
                    "OMP_NUM_THREADS": None,
                    "CUDA_VISIBLE_DEVICES": "1",
                }
            },
            "env_vars.CUDA_VISIBLE_DEVICES",
        ),
        ({"torch_version": "x"}, "torch_version"),  # only the first dotted part names the key
    ],
)
def test_a_context_difference_keeps_bit_identity_expected(
    tmp_path: Path, changes: dict[str, Any], key: str
) -> None:
    sec = compare_environments(*environments(tmp_path, **changes))
    assert (sec.status, sec.decisive, sec.bit_identity_expected) == (DIFFERENT, [], True)
    assert [m.name for m in sec.differing] == [key]
    assert sec.summary == f"bit-identity expected (differs only in {key})"


def test_many_differences_are_shortened_to_five(tmp_path: Path) -> None:
    context = {f"k{i}": i for i in range(7)}
    sec = compare_environments(*environments(tmp_path, **context))
    assert sec.summary == "bit-identity expected (differs only in k0, k1, k2, k3, k4)"
    decisive = dict(torch="1", torchvision="1", cuda="1", cudnn="1", device="1", platform="1")
    sec = compare_environments(*environments(tmp_path / "2", **decisive))
    assert (
        sec.summary == "bit-identity not expected: cuda, cudnn, device, platform, torch ..."
    )  # env.json key order
    five = compare_environments(
        *environments(tmp_path / "3", torch="1", torchvision="1", cuda="1", cudnn="1", device="1")
    )
    assert five.summary == "bit-identity not expected: cuda, cudnn, device, torch, torchvision"


def test_differing_environment_values_are_listed_with_absent_sides(tmp_path: Path) -> None:
    env_b = fr.environment(torch="2.0")
    del env_b["python"]
    env_b["extra"] = 1
    sec = compare_environments(*pair(tmp_path, {"env": fr.environment()}, {"env": env_b}))
    assert [(m.name, m.a, m.b) for m in sec.differing] == [
        ("python", "3.11.7", ABSENT),
        ("torch", "2.14.1", "2.0"),
        ("extra", ABSENT, 1),
    ]
    assert sec.decisive == ["torch"]


@pytest.mark.parametrize(
    ("has_a", "has_b", "summary"),
    [
        (True, False, "only RUN_A has env.json"),
        (False, True, "only RUN_B has env.json"),
        (False, False, "neither run has env.json"),
    ],
)
def test_a_missing_environment_cannot_tell(tmp_path: Path, has_a: bool, has_b: bool, summary: str) -> None:
    env = {"env": fr.environment()}
    sec = compare_environments(*pair(tmp_path, env if has_a else {}, env if has_b else {}))
    assert (sec.status, sec.bit_identity_expected, sec.affects_verdict) == (NOT_COMPARED, None, False)
    assert sec.summary == summary + "; cannot tell whether bit-identity is expected"


@pytest.mark.parametrize("side", ["run_a", "run_b"])
def test_an_environment_that_is_no_object_is_unusable(tmp_path: Path, side: str) -> None:
    a, b = environments(tmp_path)
    (tmp_path / side / runs.ENV).write_text("[1]")
    message = f"{side}/env.json must hold a JSON object; regenerate it by re-running the training"
    with pytest.raises(UnusableRunError, match=message):
        compare_environments(a, b)
