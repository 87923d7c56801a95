"""Divergence forensics for a plain training loop that records with ``twinrun.Recorder``.

The loop is written here the way a user would write one (a model, an optimizer, a permutation per
epoch, ``Recorder`` around it); the same planted faults as ``test_divergence.py`` must be named at the
right step with the right cause and first parameter. Twin loops without a fault are the negative
control: identical.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from twinrun import Recorder, compare_runs, seed_everything

EPOCHS, STEPS_PER_EPOCH, BATCH = 3, 4, 6
PARAMETERS = ["0.weight", "0.bias", "3.weight", "3.bias"]
DRAWS = {"torch": lambda: torch.rand(1), "numpy": np.random.rand, "python": random.random}
Hook = Callable[[int, nn.Module], None]


def train(
    run_dir: Path,
    *,
    with_indices: bool = True,
    before_step: Hook | None = None,
    after_optimizer_step: Hook | None = None,
    shuffle_seed: Callable[[int], int] = lambda epoch: epoch,
) -> None:
    """A user's loop: MLP with dropout, a permutation per epoch, ``Recorder`` around it all."""
    seed_everything(7)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH * STEPS_PER_EPOCH, 5, generator=generator)
    y = x.sum(dim=1, keepdim=True).cos()
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    step = 0
    with Recorder(run_dir, model, optimizer) as rec:
        for epoch in range(1, EPOCHS + 1):
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(shuffle_seed(epoch)))
            for indices in order.split(BATCH):
                step += 1
                if before_step:
                    before_step(step, model)
                batch = (x[indices], y[indices])
                rec.before_step(indices=indices if with_indices else None, batch=batch, epoch=epoch)
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(batch[0]), batch[1])
                loss.backward()
                optimizer.step()
                if after_optimizer_step:
                    after_optimizer_step(step, model)
                rec.after_step(loss)


def _divergence(tmp_path: Path, **fault) -> dict:
    train(tmp_path / "a")
    train(tmp_path / "b", **fault)
    report = compare_runs(tmp_path / "a", tmp_path / "b")
    assert report.exit_code == 1
    return report.to_dict()["divergence"]


@pytest.mark.parametrize("with_indices", [True, False])
def test_twin_loops_are_identical(tmp_path, with_indices: bool) -> None:
    train(tmp_path / "a", with_indices=with_indices)
    train(tmp_path / "b", with_indices=with_indices)
    report = compare_runs(tmp_path / "a", tmp_path / "b")
    assert report.exit_code == 0 and report.divergence is None
    assert report.to_dict()["sections"]["trace"]["steps_a"] == EPOCHS * STEPS_PER_EPOCH


@pytest.mark.parametrize(("step", "parameter"), [(1, "0.weight"), (7, "3.bias"), (12, "3.weight")])
def test_one_ulp_names_the_step_and_parameter(tmp_path, step: int, parameter: str) -> None:
    def perturb(at: int, model: nn.Module) -> None:
        if at == step:
            with torch.no_grad():
                flat = dict(model.named_parameters())[parameter].view(-1)
                flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))

    divergence = _divergence(tmp_path, after_optimizer_step=perturb)
    assert (divergence["step"], divergence["cause"], divergence["parameter"]) == (
        step,
        "computation",
        parameter,
    )


@pytest.mark.parametrize("stream", sorted(DRAWS))
def test_extra_rng_draw_is_an_rng_stream_divergence(tmp_path, stream: str) -> None:
    divergence = _divergence(tmp_path, before_step=lambda at, _model: DRAWS[stream]() if at == 6 else None)
    assert (divergence["step"], divergence["cause"], divergence["rng_streams"]) == (6, "rng stream", [stream])


@pytest.mark.parametrize("epoch", range(1, EPOCHS + 1))
def test_reshuffle_is_a_data_order_divergence_at_the_epoch_start(tmp_path, epoch: int) -> None:
    divergence = _divergence(tmp_path, shuffle_seed=lambda e: e + 100 if e >= epoch else e)
    expected = ((epoch - 1) * STEPS_PER_EPOCH + 1, epoch, "data order")
    assert (divergence["step"], divergence["epoch"], divergence["cause"]) == expected
