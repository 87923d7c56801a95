"""One short training run per reference trainer, shared by the golden tests of this folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from twinrun.golden.layout import load_golden
from twinrun.testing.compose import compose_config
from twinrun.trainers.apps import mnist_classifier, vae_mnist

HERE = Path(__file__).parent
TRAINERS = {"vae_mnist": vae_mnist.train, "mnist_classifier": mnist_classifier.train}
GOLDENS = {name: HERE / f"{name}.json" for name in TRAINERS}


def golden(name: str) -> dict[str, Any]:
    """The committed golden of a reference trainer (a fresh dict each call: tests may edit it)."""
    return load_golden(GOLDENS[name])


def train_case(name: str, run_dir: Path, data_root: Path, hooks: Any = None, *extra: str) -> Path:
    """Train the committed golden's case of ``name`` in this process into ``run_dir``."""
    overrides = [*golden(name)["case"]["overrides"], f"data.root={data_root}", *extra]
    cfg = compose_config(name, overrides)
    kwargs = {"hooks": hooks} if hooks is not None else {}
    TRAINERS[name](cfg, run_dir, **kwargs)
    return run_dir


class _ReferenceRuns(dict):
    """Runs of the unchanged trainers, each made the first time a test asks for it."""

    def __init__(self, factory: pytest.TempPathFactory, data_root: Path) -> None:
        super().__init__()
        self.factory, self.data_root = factory, data_root

    def __missing__(self, name: str) -> Path:
        self[name] = train_case(name, self.factory.mktemp(f"golden-{name}"), self.data_root)
        return self[name]


@pytest.fixture(scope="session")
def reference_runs(tmp_path_factory: pytest.TempPathFactory, twinrun_data_root: Path) -> dict[str, Path]:
    """The unchanged trainers, at most once each per worker: the runs every golden test compares."""
    return _ReferenceRuns(tmp_path_factory, twinrun_data_root)


@pytest.fixture
def planted(tmp_path_factory: pytest.TempPathFactory, twinrun_data_root: Path) -> Callable[..., Path]:
    """``planted(name, hooks)``: the golden's case trained with a planted change."""

    def run(name: str, hooks: Any) -> Path:
        return train_case(name, tmp_path_factory.mktemp("planted"), twinrun_data_root, hooks)

    return run
