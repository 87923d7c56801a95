"""Hypothesis: any seed (0 and 2**32 - 1 always tried) and any drawn overrides give identical twins."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.variants import APPS_BY_NAME
from twinrun.testing.strategies import batch_sizes_not_dividing, seed_edge_examples, seeds

TRAIN_SAMPLES = 192


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
@seed_edge_examples()
@given(seed=seeds())
def test_any_seed_gives_identical_twins(app_name: str, seed: int, twinrun_twins) -> None:
    app = APPS_BY_NAME[app_name]
    twinrun_twins(app.train, app.compose(f"seed={seed}", "training.epochs=1")).assert_identical()


@given(
    seed=seeds(),
    batch_size=batch_sizes_not_dividing(TRAIN_SAMPLES, low=16, high=120),
    lr=st.sampled_from(["0.0005", "0.002"]),
    app_name=st.sampled_from(sorted(APPS_BY_NAME)),
)
def test_drawn_overrides_give_identical_twins(
    seed: int, batch_size: int, lr: str, app_name: str, twinrun_twins
) -> None:
    assert TRAIN_SAMPLES % batch_size != 0  # the partial last batch is part of what is checked
    app = APPS_BY_NAME[app_name]
    cfg = app.compose(
        f"seed={seed}", f"training.batch_size={batch_size}", f"optimizer.lr={lr}", "training.epochs=1"
    )
    twinrun_twins(app.train, cfg).assert_identical()
