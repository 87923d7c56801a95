"""Dog-food: the committed goldens of both reference trainers pass; a simulated environment change is
judged by the bands, never bit-exactly, and a thread-count change does not fail a passing run."""

from __future__ import annotations

import pytest

from tests.golden.conftest import GOLDENS, TRAINERS, golden
from twinrun.golden.check import BANDS, EXACT, check_golden
from twinrun.golden.record import golden_from_run
from twinrun.golden.report import render_text


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_committed_golden_passes(name, reference_runs) -> None:
    report = check_golden(golden(name), golden_from_run(reference_runs[name]), name=str(GOLDENS[name]))
    assert report.passed, render_text(report)
    assert report.steps == 8
    # Same machine and settings: bit for bit; CI's runner or xdist's thread count: by the bands.
    assert report.mode in (EXACT, BANDS)


@pytest.mark.parametrize(
    "key, value",
    [("torch", "2.0.0+cpu"), ("threads", {"inter_op": 4, "intra_op": 4}), ("cpu", "Intel Xeon")],
)
def test_environment_change_is_judged_by_bands(key, value, reference_runs) -> None:
    edited = golden("vae_mnist")
    edited["environment"][key] = value
    report = check_golden(edited, golden_from_run(reference_runs["vae_mnist"]))
    assert report.mode == BANDS
    assert key in [k.split(".")[0] for k, _, _ in report.environment]
    assert report.passed, render_text(report)


def test_the_committed_goldens_are_small_and_exact() -> None:
    for path in GOLDENS.values():
        text = path.read_text(encoding="utf-8")
        assert len(text) < 20_000
        assert '"loss":"0x' in text  # IEEE-754 hex, never a rounded decimal
