"""Judging a run against a golden, on small hand-made goldens: exact mode names step, cause and
parameter; bands mode says what differed in the environment and where the curve left the band."""

from __future__ import annotations

import copy

from twinrun.golden.bands import default_bands
from twinrun.golden.check import BANDS, EXACT, check_golden, decisive_differences
from twinrun.golden.record import thin_trace
from twinrun.golden.report import render_json, render_markdown, render_text

ENV = {"torch": "2.14.1", "threads": {"intra_op": 2}, "python": "3.11.7", "env_vars": {"PYTHONHASHSEED": "1"}}


def _row(step: int, loss: float = 0.0) -> dict:
    return {
        "step": step,
        "epoch": 1 + (step - 1) // 4,
        "batch": f"{step:016x}",
        "rng": {"python": "p", "numpy": "n", "torch": f"t{step}"},
        "loss": (100.0 / step + loss).hex(),
        "params": {"first.weight": f"{step:016x}", "last.bias": f"{step + 1:016x}"},
    }


def _golden(rows: list[dict] | None = None, env: dict | None = None) -> dict:
    rows = rows if rows is not None else [_row(s) for s in range(1, 9)]
    return {
        "format": "twinrun-golden/1",
        "case": {"app": None, "overrides": []},
        "config_digest": "c0",
        "environment": copy.deepcopy(env or ENV),
        "trace": thin_trace(rows),
        "metrics": {"rows": 1, "every": 1, "kept": [{"epoch": 2, "step": 8, "test_loss": (3.0).hex()}]},
        "weights": {
            "file": "weights.safetensors",
            "tensors": {"w": {"dtype": "float32", "shape": [2], "sha256": "a"}},
        },
        "artifacts": {"images/x.png": {"kind": "image", "sha256": "b"}},
        "bands": default_bands(),
    }


def test_identical_run_passes_bit_for_bit_and_ignores_non_decisive_keys() -> None:
    current = _golden(env={**ENV, "python": "3.12.0", "env_vars": {"PYTHONHASHSEED": "7"}})
    report = check_golden(_golden(), current)
    assert (report.mode, report.verdict, report.exit_code) == (EXACT, "passed", 0)
    assert "PASSED" in render_text(report)


def test_computation_change_names_step_cause_and_first_parameter() -> None:
    rows = [_row(s) for s in range(1, 9)]
    rows[4]["params"]["last.bias"] = "ffff"  # step 5: same inputs, other parameters
    current = _golden(rows)
    current["weights"]["tensors"]["w"]["sha256"] = "changed"
    report = check_golden(_golden(), current)
    d = report.divergence
    assert (report.exit_code, d.step, d.cause, d.parameter, d.parameter_step) == (
        1,
        5,
        "computation",
        "last.bias",
        5,
    )
    assert report.tensors == ["w: bytes differ"]
    text = render_text(report)
    assert "first divergent step 5" in text and "first differing parameter: last.bias" in text


def test_cause_follows_the_inputs_of_the_step() -> None:
    for field, value, cause in (("batch", "ffff", "data order"), ("rng", {"torch": "other"}, "rng stream")):
        rows = [_row(s) for s in range(1, 9)]
        rows[2][field] = value if field == "batch" else {**rows[2]["rng"], **value}
        report = check_golden(_golden(), _golden(rows))
        assert (report.divergence.step, report.divergence.cause) == (3, cause)
    report = check_golden(_golden(), _golden([_row(s) for s in range(1, 7)]))
    assert (report.divergence.step, report.divergence.cause) == (7, "length")
    changed = _golden()
    changed["config_digest"] = "other"
    assert check_golden(_golden(), changed).config_changed


def test_files_and_metrics_are_compared_exactly() -> None:
    current = _golden()
    current["artifacts"]["images/x.png"]["sha256"] = "c"
    current["artifacts"]["extra.csv"] = {"kind": "table", "sha256": "d"}
    current["metrics"]["kept"][0]["test_loss"] = (3.0000001).hex()
    report = check_golden(_golden(), current)
    assert report.files == ["images/x.png: differs", "extra.csv: only in the current run"]
    assert report.metrics and "test_loss" in report.metrics[0]


def test_other_environment_is_judged_by_bands() -> None:
    env = {**ENV, "threads": {"intra_op": 8}}
    rows = [_row(s, loss=1e-6) for s in range(1, 9)]  # rounding-sized differences everywhere
    current = _golden(rows, env=env)
    current["weights"]["tensors"]["w"]["sha256"] = "changed"
    report = check_golden(_golden(), current)
    assert report.mode == BANDS and report.passed
    assert report.environment == [("threads.intra_op", 2, 8)]
    assert decisive_differences(ENV, {**ENV, "python": "3.12"}) == []


def test_bands_keep_positions_and_missing_metrics_exact() -> None:
    current = _golden(env={**ENV, "torch": "2.0.0"})
    current["metrics"]["kept"][0].pop("test_loss")
    current["metrics"]["kept"][0]["step"] = 9
    report = check_golden(_golden(), current)
    assert report.mode == BANDS and report.exit_code == 1
    assert [m.split(":")[0] for m in report.metrics] == ["row 1", "row 1"]
    assert "step 9 vs golden 8" in report.metrics[0] and "test_loss '(absent)'" in report.metrics[1]


def test_band_breach_says_where_and_by_how_much() -> None:
    rows = [_row(s) for s in range(1, 9)]
    rows[5]["loss"] = (100.0 / 6 * 1.5).hex()  # step 6: 50 % off, the band is 2 %
    report = check_golden(_golden(), _golden(rows, env={**ENV, "torch": "2.0.0"}))
    breach = report.loss_breach
    assert (report.mode, report.exit_code, breach.step) == (BANDS, 1, 6)
    assert abs(breach.off_by - 100.0 / 12) < 1e-9
    assert "left the band first at step 6" in render_text(report)
    assert '"step": 6' in render_json(report)
    markdown = render_markdown(report)
    assert ":x:" in markdown and "| `torch` |" in markdown


def test_thinned_long_trace_still_names_the_exact_step_and_the_next_recorded_parameter() -> None:
    rows = [_row(s) for s in range(1, 201)]
    changed = [_row(s) for s in range(1, 201)]
    for row in changed[19:]:  # from step 20 on the last layer's parameters differ
        row["params"] = {**row["params"], "last.bias": "ffff"}
    golden, current = _golden(rows), _golden(changed)
    assert golden["trace"]["full_every"] == 13 and len(golden["trace"]["full"]) == 17
    d = check_golden(golden, current).divergence
    assert (d.step, d.cause, d.parameter, d.parameter_step) == (20, "computation", "last.bias", 27)
