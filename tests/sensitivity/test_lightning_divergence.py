"""Divergence forensics for a Lightning app recording with ``TwinrunCallback``.

The same planted faults as ``test_divergence.py`` (one ULP at step s, an extra RNG draw before step s,
a reshuffled epoch), in a Lightning app written for the tests: each must be named at the right step,
with the right cause and, for the ULP, the right first parameter. Twin fits without a fault are the
negative control: identical.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

from tests.unit.integrations.lightning_app import (
    EPOCHS,
    STEPS_PER_EPOCH,
    DrawBeforeStep,
    Regressor,
    ReseedDistributedSampler,
    fit,
    loader,
)
from twinrun.compare.runs import compare_runs

DRAWS = {"torch": lambda: torch.rand(1), "numpy": np.random.rand, "python": random.random}
LOADERS = ("custom", "distributed")  # batch contents only / the sampler's indices too


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Path]:
    runs = {}
    for kind in LOADERS:
        runs[kind] = tmp_path_factory.mktemp(f"reference-{kind}")
        fit(runs[kind], data=loader(kind))
    return runs


def _divergence(reference_run: Path, disturbed: Path) -> dict:
    report = compare_runs(reference_run, disturbed)
    assert report.exit_code == 1
    return report.to_dict()["divergence"]


@pytest.mark.parametrize("kind", LOADERS)
def test_twin_fits_are_identical(kind, reference, tmp_path) -> None:
    fit(tmp_path, data=loader(kind))
    report = compare_runs(reference[kind], tmp_path)
    assert report.exit_code == 0 and report.divergence is None
    assert report.to_dict()["sections"]["trace"]["steps_a"] == EPOCHS * STEPS_PER_EPOCH


def _one_ulp_after(step: int, parameter: str, module: Regressor):
    """An optimizer step hook that moves one element of ``parameter`` by one ULP after step ``step``."""
    steps = itertools.count(1)

    def hook(optimizer, args, kwargs) -> None:
        if next(steps) == step:
            with torch.no_grad():
                flat = dict(module.named_parameters())[parameter].view(-1)
                flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))

    return hook


@pytest.mark.parametrize(
    ("step", "parameter"),
    [(1, "net.0.weight"), (6, "net.3.bias"), (EPOCHS * STEPS_PER_EPOCH, "net.3.weight")],
)
def test_one_ulp_names_the_step_and_parameter(step, parameter, reference, tmp_path) -> None:
    def perturbed() -> Regressor:
        module = Regressor()
        module.post_step_hooks.append(_one_ulp_after(step, parameter, module))
        return module

    fit(tmp_path, module=perturbed)
    divergence = _divergence(reference["custom"], tmp_path)
    assert (divergence["step"], divergence["cause"], divergence["parameter"]) == (
        step,
        "computation",
        parameter,
    )


@pytest.mark.parametrize("stream", sorted(DRAWS))
def test_extra_rng_draw_is_an_rng_stream_divergence(stream, reference, tmp_path) -> None:
    fit(tmp_path, callbacks=[DrawBeforeStep(5, DRAWS[stream])])
    divergence = _divergence(reference["custom"], tmp_path)
    assert (divergence["step"], divergence["cause"], divergence["rng_streams"]) == (5, "rng stream", [stream])


@pytest.mark.parametrize(("kind", "epoch"), [("custom", 1), ("custom", 3), ("distributed", 2)])
def test_reshuffle_is_a_data_order_divergence_at_the_epoch_start(kind, epoch, reference, tmp_path) -> None:
    if kind == "custom":
        fit(tmp_path, data=loader(kind, reshuffle_from=epoch))
    else:
        fit(tmp_path, data=loader(kind), callbacks=[ReseedDistributedSampler(epoch)])
    divergence = _divergence(reference[kind], tmp_path)
    expected = ((epoch - 1) * STEPS_PER_EPOCH + 1, epoch, "data order")
    assert (divergence["step"], divergence["epoch"], divergence["cause"]) == expected
