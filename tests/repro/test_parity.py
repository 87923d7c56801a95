"""Compose-versus-command-line parity of both trainers: ``compose`` + ``train(cfg, run_dir)`` in this
process and the console script in a fresh process leave identical run directories (weights, resolved
config, metrics, trace, checkpoints, images; logs normalized), and a difference planted on the command
line only is caught with the differing files named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.variants import DEVICE
from twinrun.trainers.apps import mnist_classifier, vae_mnist

TRAINERS = {
    "vae-mnist": (vae_mnist.train, "vae_mnist"),
    "mnist-classifier": (mnist_classifier.train, "mnist_classifier"),
}
# One epoch of tiny synthetic data: the fresh process's start is most of the cost.
TINY = (
    "data=synthetic",
    "data.train_samples=64",
    "data.test_samples=32",
    "training.epochs=1",
    f"device={DEVICE}",
)


def overrides(data_root: Path, *more: str) -> list[str]:
    return [*TINY, f"data.root={data_root}", "seed=5", *more]


@pytest.mark.slow  # a fresh process per trainer
@pytest.mark.parametrize("app", sorted(TRAINERS))
def test_compose_and_command_line_runs_are_identical(app: str, twinrun_parity, twinrun_data_root) -> None:
    train, config_name = TRAINERS[app]
    result = twinrun_parity(app, train, config_name, overrides(twinrun_data_root))
    result.assert_identical()
    assert result.differing_files == [] and result.report.verdict == "identical"
    for name in ("weights.safetensors", "resolved_config.yaml", "metrics.jsonl", "trace.jsonl"):
        assert (result.compose_dir / name).is_file() and (result.cli_dir / name).is_file(), name
    assert sorted(p.name for p in (result.cli_dir / ".hydra").iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]


@pytest.mark.slow  # a fresh process
def test_an_override_on_the_command_line_only_is_named(twinrun_parity, twinrun_data_root) -> None:
    # The negative control: the same parity check with one override planted on the command line only.
    train, config_name = TRAINERS["mnist-classifier"]
    result = twinrun_parity(
        "mnist-classifier",
        train,
        config_name,
        overrides(twinrun_data_root),
        cli_overrides=["optimizer.lr=0.002"],
    )
    assert not result.identical and result.verdict == "different"
    differing = result.differing_files
    for name in ("resolved_config.yaml", "weights.safetensors", "metrics.jsonl", ".hydra/overrides.yaml"):
        assert name in differing, (name, differing)
    with pytest.raises(AssertionError, match=r"differ in .*resolved_config\.yaml"):
        result.assert_identical()
