"""Bands: the tolerance test, and calibration as a stated multiple of the observed range."""

from __future__ import annotations

import math

from twinrun.golden.bands import (
    DEFAULT_RTOL,
    calibrate,
    default_bands,
    metric_tolerance,
    step_tolerance,
    within,
)


def _golden(losses: list[float], test_loss: float) -> dict:
    rows = [{"step": i + 1, "loss": v.hex()} for i, v in enumerate(losses)]
    return {
        "trace": {"rows": rows},
        "metrics": {"kept": [{"epoch": 1, "step": 2, "test_loss": test_loss.hex()}]},
    }


def test_default_band_is_relative_to_the_golden_value() -> None:
    bands = default_bands()
    assert step_tolerance(bands, 0, 100.0) == DEFAULT_RTOL * 100.0
    assert within(101.9, 100.0, 2.0) and not within(102.1, 100.0, 2.0)
    assert within(math.nan, math.nan, 0.0) and not within(1.0, math.nan, 10.0)
    assert within(math.inf, math.inf, 0.0) and not within(1e308, math.inf, 1e308)


def test_calibrated_band_is_the_multiple_of_the_range_over_runs() -> None:
    golden = _golden([10.0, 5.0], 3.0)
    others = [_golden([10.5, 5.0], 3.25), _golden([9.75, 5.0], 3.0)]
    bands = calibrate(golden, others, multiple=2.0, note="seeds 1-2")
    assert bands["loss"]["per_step"] == [1.5, 0.0]  # 2 x (10.5 - 9.75); step 2 never moved
    assert bands["metrics"]["per_key"] == {"test_loss": 0.5}
    assert "2 x the range over 3 runs (seeds 1-2)" in bands["source"]
    # A measured band never narrows the default relative one.
    assert step_tolerance(bands, 0, 10.0) == 1.5
    assert step_tolerance(bands, 1, 5.0) == DEFAULT_RTOL * 5.0
    assert metric_tolerance(bands, "test_loss", 3.0) == 0.5


def test_calibrated_band_rounds_up_never_down() -> None:
    bands = calibrate(_golden([1.0], 1.0), [_golden([1.0 + 1.2345e-4], 1.0)], multiple=1.0)
    assert bands["loss"]["per_step"][0] >= 1.2345e-4
    assert bands["loss"]["per_step"][0] == 1.24e-4
