"""Bit-exact resume: k steps, a checkpoint, then the rest gives what one uninterrupted run gives.

Every run here (the reference, the stopped part, the resumed part) starts from global RNGs seeded from
OS entropy, as the plugin's twins do: a resume that does not restore the RNG streams cannot match by
luck. Cases that must be reached are explicit ``@example``\\ s: a stop in the middle of the second
epoch with DataLoader workers, for each trainer; a learning-rate scheduler whose next step depends on
its restored state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.variants import APPS_BY_NAME, REPRO_WORKERS, gate_examples, train_from_scrambled_rngs
from twinrun.compare.runs import compare_runs
from twinrun.record.checkpoint import load_checkpoint

EPOCHS, STEPS_PER_EPOCH = 2, 4  # 192 samples in batches of 48
OVERRIDES = ("seed=21", f"training.epochs={EPOCHS}", "training.batch_size=48")
RESULT_SECTIONS = ("weights", "metrics", "trace", "config")
# Halves the learning rate every second epoch: a scheduler rebuilt from scratch on resume (last_epoch 0
# instead of 1 after the first epoch) skips the halving at the end of epoch 2, and epoch 3 differs.
# (step_size=1 would not show it: StepLR multiplies the restored optimizer's lr, whatever its count.)
LR, GAMMA = 0.001, 0.5
SCHEDULER = (
    REPRO_WORKERS,
    f"optimizer.lr={LR}",
    f"scheduler={{_target_:torch.optim.lr_scheduler.StepLR,step_size:2,gamma:{GAMMA}}}",
    "training.epochs=3",
)

Reference = Callable[..., Path]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Reference:
    """``uninterrupted(app_name, *overrides)``: the reference run of ``OVERRIDES + overrides``, trained
    on first use (each xdist worker trains only the references its tests need) and then reused."""
    runs: dict[tuple[str, ...], Path] = {}

    def reference(app_name: str, *overrides: str) -> Path:
        key = (app_name, *overrides)
        if key not in runs:
            app = APPS_BY_NAME[app_name]
            run_dir = tmp_path_factory.mktemp(f"full-{app_name}")
            train_from_scrambled_rngs(app, app.compose(*OVERRIDES, *overrides), run_dir)
            runs[key] = run_dir
        return runs[key]

    return reference


def stop_and_resume(app_name: str, stop_after: int, overrides: tuple[str, ...], tmp_path_factory) -> Path:
    """Train ``stop_after`` steps, then resume from that run directory's newest checkpoint."""
    app = APPS_BY_NAME[app_name]
    first, second = tmp_path_factory.mktemp("part1"), tmp_path_factory.mktemp("part2")
    common = (*OVERRIDES, *overrides)
    train_from_scrambled_rngs(app, app.compose(*common, f"training.max_steps={stop_after}"), first)
    assert (first / "checkpoints" / f"step-{stop_after:08d}.pt").is_file()
    train_from_scrambled_rngs(app, app.compose(*common, f"training.resume_from={first}"), second)
    return second


def assert_resumed_run_matches(reference: Path, resumed: Path, app_name: str, step: int) -> None:
    # The resumed run really resumed (a silently ignored resume_from would train from scratch and match).
    assert f"(step {step})" in (resumed / f"{app_name}.log").read_text().split("resumed from", 1)[1]
    report = compare_runs(reference, resumed)
    for section in RESULT_SECTIONS:
        assert report.sections[section].status == "identical", (section, report.sections[section].summary)
    assert report.divergence is None


@gate_examples(2)  # the PR gate: the two explicit stops and two drawn ones; nightly: many
@example(app_name="mnist_classifier", stop_after=STEPS_PER_EPOCH + 2, workers=2)  # mid-epoch 2
@example(app_name="vae_mnist", stop_after=STEPS_PER_EPOCH + 1, workers=2)
@given(
    app_name=st.sampled_from(sorted(APPS_BY_NAME)),
    stop_after=st.integers(1, EPOCHS * STEPS_PER_EPOCH - 1),
    workers=st.sampled_from([0, 2]),
)
def test_stop_and_resume_is_bit_identical(
    app_name, stop_after, workers, uninterrupted, tmp_path_factory
) -> None:
    workers_override = (f"training.num_workers={workers}",)
    resumed = stop_and_resume(app_name, stop_after, workers_override, tmp_path_factory)
    assert_resumed_run_matches(uninterrupted(app_name, *workers_override), resumed, app_name, stop_after)


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_resume_from_an_epoch_checkpoint_file(app_name, uninterrupted, tmp_path_factory) -> None:
    app = APPS_BY_NAME[app_name]
    first, second = tmp_path_factory.mktemp("part1"), tmp_path_factory.mktemp("part2")
    # ends with an end-of-epoch checkpoint
    train_from_scrambled_rngs(app, app.compose(*OVERRIDES, REPRO_WORKERS, "training.epochs=1"), first)
    checkpoint = first / "checkpoints" / f"step-{STEPS_PER_EPOCH:08d}.pt"
    resume = f"training.resume_from={checkpoint}"
    train_from_scrambled_rngs(app, app.compose(*OVERRIDES, REPRO_WORKERS, resume), second)
    assert_resumed_run_matches(uninterrupted(app_name, REPRO_WORKERS), second, app_name, STEPS_PER_EPOCH)


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_resume_with_a_scheduler_is_bit_identical(app_name, uninterrupted, tmp_path_factory) -> None:
    stop_after = STEPS_PER_EPOCH + 2  # mid-epoch 2: the scheduler has stepped once
    resumed = stop_and_resume(app_name, stop_after, SCHEDULER, tmp_path_factory)
    assert_resumed_run_matches(uninterrupted(app_name, *SCHEDULER), resumed, app_name, stop_after)
    # Control: the scheduler was built and acted (halved the rate once, after epoch 2, in both runs).
    for run_dir in (uninterrupted(app_name, *SCHEDULER), resumed):
        final = load_checkpoint(run_dir)
        assert final["scheduler"]["last_epoch"] == 3
        assert final["optimizer"]["param_groups"][0]["lr"] == LR * GAMMA
