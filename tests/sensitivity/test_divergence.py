"""Divergence forensics: an injected change at a known step is located at that step with its cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sensitivity.broken_trainers import (
    EXTRA_DRAWS,
    extra_rng_draw,
    perturb_one_ulp,
    reshuffled_from_epoch,
)
from tests.variants import APPS_BY_NAME, gate_examples
from twinrun.compare.runs import compare_runs

EPOCHS, STEPS_PER_EPOCH = 3, 4  # 192 samples in batches of 48
OVERRIDES = ("seed=9", f"training.epochs={EPOCHS}", "training.batch_size=48")
PARAMETERS = {
    "vae_mnist": ["decoder_out.bias", "encoder.weight"],
    "mnist_classifier": ["classifier.5.weight"],
}


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory) -> dict[str, Path]:
    """One undisturbed run per app, shared by every example."""
    runs = {}
    for name, app in APPS_BY_NAME.items():
        runs[name] = tmp_path_factory.mktemp(f"reference-{name}")
        app.train(app.compose(*OVERRIDES), runs[name])
    return runs


def disturbed(app_name: str, hooks, tmp_path_factory) -> Path:
    app, run_dir = APPS_BY_NAME[app_name], tmp_path_factory.mktemp("disturbed")
    app.train(app.compose(*OVERRIDES), run_dir, hooks=hooks)
    return run_dir


@gate_examples(2)  # the PR gate: two drawn (app, parameter, step); nightly: many
@given(data=st.data())
def test_one_ulp_names_the_step_and_parameter(data, reference_runs, tmp_path_factory) -> None:
    app_name = data.draw(st.sampled_from(sorted(PARAMETERS)))
    parameter = data.draw(st.sampled_from(PARAMETERS[app_name]))
    step = data.draw(st.integers(1, EPOCHS * STEPS_PER_EPOCH))
    report = compare_runs(
        reference_runs[app_name], disturbed(app_name, perturb_one_ulp(step, parameter), tmp_path_factory)
    )
    assert report.exit_code == 1
    divergence = report.divergence
    assert (divergence.step, divergence.cause, divergence.parameter) == (step, "computation", parameter)


@gate_examples(2)  # the PR gate: two drawn (app, step) per stream; nightly: many
@pytest.mark.parametrize("stream", sorted(EXTRA_DRAWS))
@given(app_name=st.sampled_from(sorted(APPS_BY_NAME)), step=st.integers(1, EPOCHS * STEPS_PER_EPOCH))
def test_extra_rng_draw_is_an_rng_stream_divergence(
    app_name, step, stream, reference_runs, tmp_path_factory
) -> None:
    report = compare_runs(
        reference_runs[app_name], disturbed(app_name, extra_rng_draw(step, stream), tmp_path_factory)
    )
    divergence = report.divergence
    assert (divergence.step, divergence.cause) == (step, "rng stream")
    assert divergence.rng_streams == [stream]


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
@pytest.mark.parametrize("epoch", range(1, EPOCHS + 1))
def test_reshuffle_is_a_data_order_divergence_at_the_epoch_start(
    app_name, epoch, reference_runs, tmp_path_factory
) -> None:
    report = compare_runs(
        reference_runs[app_name], disturbed(app_name, reshuffled_from_epoch(epoch), tmp_path_factory)
    )
    divergence = report.divergence
    assert (divergence.step, divergence.epoch, divergence.cause) == (
        (epoch - 1) * STEPS_PER_EPOCH + 1,
        epoch,
        "data order",
    )
