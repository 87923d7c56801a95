"""Hypothesis: any seed (0 and 2**32 - 1 always tried) and any drawn overrides give identical twins.

Every example trains two epochs on a smaller set (``TRAIN_SAMPLES``), so a fault that starts in the
second epoch shows; the seed property trains with DataLoader workers (``REPRO_WORKERS``), the drawn
overrides draw 0 or 2 workers. Cases that must be reached are explicit ``@example``\\ s, not luck of the draw:
DataLoader workers for each trainer, and the seed edges.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.variants import APPS_BY_NAME, REPRO_WORKERS, gate_examples
from twinrun.testing.strategies import batch_sizes_not_dividing, seed_edge_examples, seeds

TRAIN_SAMPLES = 96
SMALL = (f"data.train_samples={TRAIN_SAMPLES}", "training.epochs=2")


@gate_examples(2)  # the PR gate: both seed edges and two drawn seeds per trainer; nightly: many
@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
@seed_edge_examples()
@given(seed=seeds())
def test_any_seed_gives_identical_twins(app_name: str, seed: int, twinrun_twins) -> None:
    app = APPS_BY_NAME[app_name]
    twinrun_twins(app.train, app.compose(*SMALL, f"seed={seed}", REPRO_WORKERS)).assert_identical()


@gate_examples(2)  # the PR gate: the two explicit cases and two drawn ones; nightly: many
@example(seed=5, batch_size=40, lr="0.002", app_name="mnist_classifier", workers=2)
@example(seed=6, batch_size=28, lr="0.0005", app_name="vae_mnist", workers=2)
@given(
    seed=seeds(),
    batch_size=batch_sizes_not_dividing(TRAIN_SAMPLES, low=16, high=60),
    lr=st.sampled_from(["0.0005", "0.002"]),
    app_name=st.sampled_from(sorted(APPS_BY_NAME)),
    workers=st.sampled_from([0, 2]),
)
def test_drawn_overrides_give_identical_twins(
    seed: int, batch_size: int, lr: str, app_name: str, workers: int, twinrun_twins
) -> None:
    assert TRAIN_SAMPLES % batch_size != 0  # the partial last batch is part of what is checked
    app = APPS_BY_NAME[app_name]
    cfg = app.compose(
        *SMALL,
        f"seed={seed}",
        f"training.batch_size={batch_size}",
        f"optimizer.lr={lr}",
        f"training.num_workers={workers}",
    )
    twinrun_twins(app.train, cfg).assert_identical()
