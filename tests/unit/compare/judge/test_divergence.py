"""find_divergence's causes, decided in the order a step's inputs are made, and the decisive env keys."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.judge.divergence import find_divergence, trace_section
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.runs import compare_runs
from twinrun.record import runs


def test_data_order_comes_before_the_rng_streams() -> None:
    a, b = fr.trace_rows(), fr.trace_rows()
    b[2].update(batch="other")
    b[2]["rng"]["torch"] = "other"
    div = find_divergence(a, b)
    assert div is not None and (div.step, div.cause, div.rng_streams) == (3, "data order", ["torch"])
    b[2].update(batch=a[2]["batch"])  # control: the same batch leaves the RNG stream as the cause
    assert find_divergence(a, b).cause == "rng stream"


def test_an_epoch_mismatch_with_the_same_batch_is_data_order() -> None:
    a, b = fr.trace_rows(), fr.trace_rows()
    b[4].update(epoch=1)  # same step and batch digest, another epoch: the data order is off
    div = find_divergence(a, b)
    assert div is not None and (div.step, div.cause) == (5, "data order")


def test_a_shorter_trace_with_a_config_difference_is_configuration() -> None:
    a, b = fr.trace_rows(), fr.trace_rows()[:4]
    div = find_divergence(a, b, config_differs=True, config_keys=["training.epochs"])
    assert div is not None and (div.step, div.cause) == (5, "configuration")
    assert "training.epochs" in div.detail
    assert find_divergence(a, b).cause == "length"  # control: the same configs


@pytest.mark.parametrize("value", [math.nan, -1.0, -math.inf])
@pytest.mark.parametrize("flag", ["atol", "rtol"])
def test_tolerances_that_are_not_non_negative_numbers_are_refused(
    tmp_path: Path, flag: str, value: float
) -> None:
    a, b = fr.make_twins(tmp_path)
    with pytest.raises(UnusableRunError, match=f"--{flag} must be a number >= 0"):
        compare_runs(a, b, **{flag: value})
    assert compare_runs(a, b, **{flag: 0.0}).exit_code == 0  # control: zero is a tolerance


@pytest.mark.parametrize(
    ("change", "decisive"),
    [
        ({"determinism": {"deterministic_algorithms": False, "cudnn_benchmark": False}}, True),
        ({"threads": {"intra_op": 4, "inter_op": 2}}, True),
        ({"env_vars": {"CUBLAS_WORKSPACE_CONFIG": ":16:8", "OMP_NUM_THREADS": None}}, True),
        (
            {
                "env_vars": {
                    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
                    "OMP_NUM_THREADS": None,
                    "PYTHONHASHSEED": "2",
                }
            },
            False,
        ),
        ({"python": "3.12.1"}, False),
    ],
    ids=["determinism", "threads", "cublas", "pythonhashseed", "python"],
)
def test_decisive_environment_keys(tmp_path: Path, change: dict, decisive: bool) -> None:
    a, b = fr.make_twins(tmp_path)
    fr.edit_json(a, runs.ENV, lambda env: env["env_vars"].update(PYTHONHASHSEED="1"))
    fr.edit_json(b, runs.ENV, lambda env: env.update(change))
    env = compare_runs(a, b).sections["environment"]
    assert env.status == "different"
    assert bool(env.decisive) is decisive, env.decisive
    assert env.bit_identity_expected is not decisive


# --- find_divergence and trace_section on hand-made rows ---------------------------------------------


def _row(step: int, epoch: int = 1, **fields: Any) -> dict[str, Any]:
    """A trace row with a fixed batch digest, RNG digests and loss; ``fields`` replace or add keys."""
    row: dict[str, Any] = {"step": step, "epoch": epoch, "batch": f"b{step}", "rng": {"torch": f"t{step}"}}
    row["loss"] = runs.exact(1.0)
    row.update(fields)
    return row


def test_identical_traces_have_no_divergence_and_an_identical_section() -> None:
    rows = [_row(1), _row(2)]
    assert find_divergence(rows, [dict(r) for r in rows]) is None
    assert find_divergence([], []) is None
    sec = trace_section(rows, list(rows), None)
    assert (sec.status, sec.summary, sec.steps_a, sec.steps_b) == ("identical", "2 steps identical", 2, 2)
    one = trace_section(rows[:1], rows[:1], None)
    assert (one.summary, one.steps_a, one.steps_b) == ("1 step identical", 1, 1)


def test_a_divergent_trace_section_names_where_and_counts_both_traces() -> None:
    a, b = [_row(1), _row(2)], [_row(1)]
    div = find_divergence(a, b)
    sec = trace_section(a, b, div)
    assert (sec.status, sec.summary) == ("different", "diverges at step 2 (epoch 1): length")
    assert (sec.steps_a, sec.steps_b) == (2, 1)


def test_the_loss_is_shown_as_a_decimal_and_the_first_parameter_is_named() -> None:
    a = [_row(1), _row(2, params={"w": "1", "b": "1"})]
    b = [_row(1), _row(2, loss=runs.exact(0.5), params={"w": "1", "b": "2"})]
    div = find_divergence(a, b)
    assert div is not None
    assert (div.step, div.epoch, div.cause, div.parameter, div.parameter_step) == (
        2,
        1,
        "computation",
        "b",
        2,
    )
    assert div.rng_streams == []
    assert div.detail == "at step 2 (epoch 1): loss differs: 1.0 vs 0.5; parameter b differs at step 2"


def test_a_loss_that_is_not_a_float_hex_is_shown_as_it_is() -> None:
    div = find_divergence([_row(1, loss="n/a")], [_row(1, loss=runs.exact(2.0))])
    assert div is not None and div.detail == "at step 1 (epoch 1): loss differs: n/a vs 2.0"
    div = find_divergence([_row(1, loss=None)], [_row(1, loss=1.5)])
    assert div is not None and div.detail == "at step 1 (epoch 1): loss differs: None vs 1.5"


def test_rows_that_differ_in_no_named_field_say_so() -> None:
    div = find_divergence([_row(3, epoch=2)], [_row(3, epoch=2, lr=0.1)])
    assert div is not None and (div.cause, div.parameter, div.parameter_step) == ("computation", None, None)
    assert div.detail == "at step 3 (epoch 2): trace rows differ"


def test_every_difference_of_the_first_divergent_row_is_listed_in_order() -> None:
    a = [_row(1), _row(2, rng={"python": "p", "torch": "t"}, params={"w": "1"})]
    b = [
        _row(1),
        _row(2, batch="x", loss=runs.exact(3.0), rng={"numpy": "n", "torch": "u"}, params={"w": "2"}),
    ]
    div = find_divergence(a, b)
    assert div is not None and (div.cause, div.rng_streams) == ("data order", ["python", "torch", "numpy"])
    assert div.detail == (
        "at step 2 (epoch 1): the batch's sample indices differ; "
        "RNG state before the step differs (python, torch, numpy); "
        "loss differs: 1.0 vs 3.0; parameter w differs at step 2"
    )


def test_rng_streams_only_one_run_traced_are_differences() -> None:
    a, b = [_row(1, rng=None)], [_row(1, rng={"numpy": "n", "torch": "t"})]
    div = find_divergence(a, b)
    assert div is not None and (div.cause, div.rng_streams) == ("rng stream", ["numpy", "torch"])
    div = find_divergence(b, [_row(1, rng={"numpy": "n", "torch": "other"})])
    assert div is not None and div.rng_streams == ["torch"]  # the equal stream is not named
    # One stream moved before the first step, the batch the same: one extra draw, not an unseeded start.
    assert div.cause == "rng stream"
    assert div.detail.endswith(": RNG state before the step differs (torch)")
    div = find_divergence(b, [_row(1, rng={"numpy": "other", "torch": "other"})])
    assert div is not None and div.cause == "unseeded start"  # every stream started elsewhere


def test_the_first_parameter_is_looked_for_from_the_divergent_step_on() -> None:
    # step 1: equal parameters; steps 2 and 3: only one run traced them there, so they are not compared
    a = [
        _row(1, params={"w": "1"}),
        _row(2, params={"w": "a"}),
        _row(3),
        _row(4, params={"w": "4", "v": "4"}),
    ]
    b = [_row(1, params={"w": "1"}), _row(2, loss=runs.exact(2.0)), _row(3, params={"w": "b"})]
    b.append(_row(4, params={"w": "4", "v": "x"}))
    div = find_divergence(a, b)
    assert div is not None and (div.step, div.parameter, div.parameter_step) == (2, "v", 4)


def test_a_parameter_only_run_b_traced_is_named_after_run_a_s() -> None:
    a = [_row(1, params={"w": "1", "v": "1"})]
    b = [_row(1, params={"z": "1", "v": "2", "w": "1"})]
    div = find_divergence(a, b)
    assert div is not None and (div.parameter, div.parameter_step, div.cause) == ("v", 1, "computation")
    b = [_row(1, params={"z": "1", "v": "1", "w": "1"})]  # only the extra name differs
    div = find_divergence(a, b)
    assert div is not None and div.parameter == "z"


def test_parameters_are_compared_after_a_shorter_trace_diverges_earlier() -> None:
    a = [_row(1), _row(2, params={"w": "1"}), _row(3)]
    b = [_row(1, loss=runs.exact(4.0)), _row(2, params={"w": "2"})]
    div = find_divergence(a, b)
    assert div is not None and (div.step, div.parameter, div.parameter_step) == (1, "w", 2)
    assert find_divergence(b, a).parameter == "w"  # either run may be the shorter one
    div = find_divergence([_row(1), _row(2), _row(3)], [_row(1, loss=runs.exact(4.0)), _row(2)])
    assert div is not None and (div.step, div.parameter, div.parameter_step) == (1, None, None)  # none left


def test_other_step_numbers_are_a_length_difference_or_the_configuration() -> None:
    a, b = [_row(1), _row(2, params={"w": "1"})], [_row(1), _row(3, params={"w": "2"})]
    div = find_divergence(a, b)
    assert div is not None and (div.step, div.epoch, div.cause) == (2, 1, "length")
    assert (div.parameter, div.parameter_step) == ("w", 2)  # RUN_A's step
    assert div.detail == (
        "at step 2 (epoch 1): step numbers differ (2 vs 3); the batch's sample indices differ; "
        "RNG state before the step differs (torch); parameter w differs at step 2"
    )
    div = find_divergence(a, b, config_differs=True)
    assert div is not None and div.cause == "configuration"
    assert div.detail.endswith("parameter w differs at step 2; the configurations differ")


def test_a_configuration_difference_explains_any_other_difference() -> None:
    a, b = [_row(1)], [_row(1, batch="x")]
    keys = ["a.b", "c", "d", "e"]
    div = find_divergence(a, b, config_differs=True, config_keys=keys)
    assert div is not None and div.cause == "configuration"
    assert (
        div.detail
        == "at step 1 (epoch 1): the batch's sample indices differ; the configurations differ (a.b, c, d)"
    )
    div = find_divergence(a, b, config_differs=True, config_keys=[])
    assert div is not None and div.detail.endswith("differ; the configurations differ")
    div = find_divergence(a, b, config_differs=True)
    assert div is not None and div.detail.endswith("differ; the configurations differ")
    div = find_divergence(a, b, config_keys=keys)  # keys without config_differs: not mentioned
    assert div is not None and (div.cause, div.detail) == (
        "data order",
        "at step 1 (epoch 1): the batch's sample indices differ",
    )


@pytest.mark.parametrize("swap", [False, True])
def test_a_trace_that_stops_early_names_the_missing_step(swap: bool) -> None:
    long = [_row(1), _row(2), _row(3, epoch=2), _row(4, epoch=2)]
    short = long[:2]
    a, b, label = (short, long, "RUN_A") if swap else (long, short, "RUN_B")
    div = find_divergence(a, b)
    assert div is not None
    assert (div.step, div.epoch, div.cause, div.parameter, div.parameter_step) == (3, 2, "length", None, None)
    assert div.rng_streams == []
    assert div.detail == f"{label}'s trace ends after step 2; the other continues to step 4"
    div = find_divergence(a, b, config_differs=True, config_keys=["x"])
    assert div is not None and div.cause == "configuration"
    assert (
        div.detail
        == f"{label}'s trace ends after step 2; the other continues to step 4; the configurations differ (x)"
    )


def test_an_empty_trace_ends_before_its_first_step() -> None:
    div = find_divergence([], [_row(1), _row(2)])
    assert div is not None and (div.step, div.epoch, div.cause) == (1, 1, "length")
    assert div.detail == "RUN_A's trace ends before its first step; the other continues to step 2"


def test_rng_states_that_differ_before_the_first_step_are_an_unseeded_start_not_data_order() -> None:
    """An unseeded model: the RNG state differs before step 1, and so does the first batch."""
    a, b = fr.trace_rows(), fr.trace_rows()
    for row in b:
        row["rng"]["torch"] = "other" + row["rng"]["torch"]
        row["batch"] = "other" + str(row["batch"])
    div = find_divergence(a, b)
    assert div is not None and (div.step, div.cause) == (a[0]["step"], "unseeded start")
    assert "start from different random states" in div.detail
    b[0]["rng"]["torch"] = a[0]["rng"]["torch"]  # control: the same start, another first batch
    assert find_divergence(a, b).cause == "data order"


@pytest.mark.parametrize(("field", "a", "b"), [("batch", True, 1), ("loss", 2.0, 2), ("extra", 1, True)])
def test_trace_rows_are_compared_with_their_types(field: str, a: Any, b: Any) -> None:
    rows_a, rows_b = [_row(1, **{field: a})], [_row(1, **{field: b})]
    assert a == b  # Python's == calls them equal
    div = find_divergence(rows_a, rows_b)
    assert div is not None and div.step == 1
    if field == "batch":  # the cause is read with types too: another batch is the data order
        assert div.cause == "data order" and "the batch's sample indices differ" in div.detail
    assert find_divergence(rows_a, [_row(1, **{field: a})]) is None  # negative control
