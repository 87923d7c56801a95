"""Negative controls: planted changes of numerics fail the golden check at the right step, with the
right cause; the same change under a simulated environment change fails the bands (a large one) or
passes them (a tiny one), and is never judged bit for bit."""

from __future__ import annotations

import pytest
import torch

from tests.sensitivity.broken_trainers import extra_rng_draw, perturb_one_ulp, reshuffled_from_epoch
from tests.sensitivity.planted_ops import one_ulp_in_to_mu
from twinrun.golden.check import BANDS, EXACT, check_golden
from twinrun.golden.record import golden_from_run
from twinrun.trainers.loop import Hooks, StepContext


def _shifted_initial_bias(ctx: StepContext) -> None:
    """A changed initial value: decoder_out.bias starts 0.5 higher."""
    if ctx.step == 1:
        with torch.no_grad():
            dict(ctx.model.named_parameters())["decoder_out.bias"].add_(0.5)


# name -> (hooks, step, cause, first differing parameter or None)
PLANTED = {
    "one_ulp_after_step_3": (perturb_one_ulp(3, "decoder_out.bias"), 3, "computation", "decoder_out.bias"),
    "extra_op_one_ulp_in_to_mu_step_2": (one_ulp_in_to_mu(2), 2, "computation", None),
    "changed_initial_value": (Hooks(before_step=[_shifted_initial_bias]), 1, "computation", None),
    "reordered_data_from_epoch_2": (reshuffled_from_epoch(2), 5, "data order", None),
    "extra_rng_draw_before_step_6": (extra_rng_draw(6, "torch"), 6, "rng stream", None),
}


@pytest.fixture(scope="module")
def reference_golden(reference_runs):
    """The golden of the unchanged VAE recorded here: the same environment class for certain."""
    return golden_from_run(reference_runs["vae_mnist"])


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_planted_change_fails_at_its_step_with_its_cause(name, reference_golden, planted) -> None:
    hooks, step, cause, parameter = PLANTED[name]
    current = golden_from_run(planted("vae_mnist", hooks))
    report = check_golden(reference_golden, current)
    assert (report.mode, report.exit_code) == (EXACT, 1)
    assert (report.divergence.step, report.divergence.cause) == (step, cause)
    assert report.divergence.parameter == (parameter or report.divergence.parameter)
    assert report.divergence.parameter is not None
    assert report.tensors  # the final weights differ too
    if cause == "rng stream":
        assert report.divergence.rng_streams == ["torch"]
    # The same run under a simulated environment change: judged by the bands, not bit for bit.
    moved = {**reference_golden, "environment": {**reference_golden["environment"], "torch": "2.0.0"}}
    banded = check_golden(moved, current)
    assert banded.mode == BANDS
    assert not banded.tensors and not banded.files
    if name == "changed_initial_value":  # a large change leaves the band at once
        assert banded.exit_code == 1
        assert banded.loss_breach.step == 1
        assert banded.loss_breach.off_by > 10 * banded.loss_breach.allowed
    elif "one_ulp" in name:  # a rounding-sized change stays inside it
        assert banded.passed
