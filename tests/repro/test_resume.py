"""Bit-exact resume: k steps, a checkpoint, then the rest gives what one uninterrupted run gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.variants import APPS_BY_NAME
from twinrun.compare.runs import compare_runs

EPOCHS, STEPS_PER_EPOCH = 2, 4  # 192 samples in batches of 48
OVERRIDES = ("seed=21", f"training.epochs={EPOCHS}", "training.batch_size=48")
RESULT_SECTIONS = ("weights", "metrics", "trace", "config")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[tuple[str, int], Path]:
    """Reference runs per (app, num_workers), computed once for all examples."""
    runs = {}
    for name, app in APPS_BY_NAME.items():
        for workers in (0, 2):
            runs[name, workers] = tmp_path_factory.mktemp(f"full-{name}-{workers}")
            app.train(app.compose(*OVERRIDES, f"training.num_workers={workers}"), runs[name, workers])
    return runs


def assert_resumed_run_matches(reference: Path, resumed: Path, app_name: str, step: int) -> None:
    # The resumed run really resumed (a silently ignored resume_from would train from scratch and match).
    assert f"(step {step})" in (resumed / f"{app_name}.log").read_text().split("resumed from", 1)[1]
    report = compare_runs(reference, resumed)
    for section in RESULT_SECTIONS:
        assert report.sections[section].status == "identical", (section, report.sections[section].summary)
    assert report.divergence is None


@given(
    app_name=st.sampled_from(sorted(APPS_BY_NAME)),
    stop_after=st.integers(1, EPOCHS * STEPS_PER_EPOCH - 1),
    workers=st.sampled_from([0, 2]),
)
def test_stop_and_resume_is_bit_identical(
    app_name, stop_after, workers, uninterrupted, tmp_path_factory
) -> None:
    app = APPS_BY_NAME[app_name]
    first, second = tmp_path_factory.mktemp("part1"), tmp_path_factory.mktemp("part2")
    common = (*OVERRIDES, f"training.num_workers={workers}")
    app.train(app.compose(*common, f"training.max_steps={stop_after}"), first)
    assert (first / "checkpoints" / f"step-{stop_after:08d}.pt").is_file()
    app.train(app.compose(*common, f"training.resume_from={first}"), second)
    assert_resumed_run_matches(uninterrupted[app_name, workers], second, app_name, stop_after)


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_resume_from_an_epoch_checkpoint_file(app_name, uninterrupted, tmp_path_factory) -> None:
    app = APPS_BY_NAME[app_name]
    first, second = tmp_path_factory.mktemp("part1"), tmp_path_factory.mktemp("part2")
    app.train(app.compose(*OVERRIDES, "training.epochs=1"), first)  # ends with an end-of-epoch checkpoint
    checkpoint = first / "checkpoints" / f"step-{STEPS_PER_EPOCH:08d}.pt"
    app.train(app.compose(*OVERRIDES, f"training.resume_from={checkpoint}"), second)
    assert_resumed_run_matches(uninterrupted[app_name, 0], second, app_name, STEPS_PER_EPOCH)
