"""find_divergence's causes, decided in the order a step's inputs are made, and the decisive env keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.divergence import find_divergence
from twinrun.compare.run_reader import UnusableRunError
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
