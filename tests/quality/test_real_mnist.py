"""The trainers learn: real MNIST digits where the developers' machines have them, synthetic otherwise.

Real digits come from ``../shared/data/mnist-t10k`` (8,000 train / 2,000 test of the official test
split); the test skips with a reason where that folder is absent (a user's checkout).
"""

from __future__ import annotations

import json

import pytest

from benchmarks import mnist_t10k
from tests.variants import APPS_BY_NAME
from twinrun.testing.compose import compose_config


def final_metrics(run_dir) -> dict:
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return {key: float.fromhex(value) for key, value in row.items() if isinstance(value, str)}


@pytest.mark.slow
@pytest.mark.skipif(not mnist_t10k.available(), reason=f"real MNIST digits not found at {mnist_t10k.SHARED}")
def test_classifier_reaches_95_percent_on_real_digits(tmp_path, twinrun_data_root) -> None:
    root = mnist_t10k.build_root(twinrun_data_root / "mnist-t10k")
    cfg = compose_config(
        "mnist_classifier", ["data=mnist", f"data.root={root}", "training.epochs=3", "seed=1", "device=cpu"]
    )
    APPS_BY_NAME["mnist_classifier"].train(cfg, tmp_path)
    assert final_metrics(tmp_path)["test_accuracy"] >= 0.95


def test_classifier_beats_chance_on_synthetic_digits(tmp_path) -> None:
    cfg = APPS_BY_NAME["mnist_classifier"].compose(
        "data.train_samples=2048", "data.test_samples=512", "seed=5"
    )
    APPS_BY_NAME["mnist_classifier"].train(cfg, tmp_path)
    assert final_metrics(tmp_path)["test_accuracy"] >= 0.6  # chance is 0.1


def test_vae_loss_falls_on_synthetic_digits(tmp_path) -> None:
    cfg = APPS_BY_NAME["vae_mnist"].compose(
        "data.train_samples=1024", "data.test_samples=256", "training.epochs=3"
    )
    APPS_BY_NAME["vae_mnist"].train(cfg, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [float.fromhex(row["test_loss"]) for row in rows]
    assert losses[-1] < 0.8 * losses[0]
