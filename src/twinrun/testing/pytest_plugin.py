"""pytest plugin (entry point ``twinrun``): twin-run fixtures for your own Hydra app.

Installed with twinrun; no conftest needed. Fixtures (all session-scoped, so they also work inside
``@given`` tests without hypothesis' function-scoped-fixture health check):

``twinrun_compose(config_name, overrides=(), config_dir=None) -> DictConfig``
    Compose a config without ``@hydra.main``. Hydra's ``GlobalHydra`` and ``HydraConfig`` singletons
    are restored after every call. ``config_dir`` defaults to the ini option ``twinrun_config_dir``
    (relative to the rootdir), else twinrun's own ``conf/``.
``twinrun_data_root -> Path``
    One dataset directory per test session, shared by every xdist worker (dataset preparation in
    :mod:`twinrun.trainers.data` is guarded by a file lock). Pass it on: ``data.root=<it>``.
``twinrun_twins(train, cfg, runs=None) -> TwinResult``
    Call ``train(cfg, run_dir)`` ``runs`` times (default ``--twinrun-runs``, 2), each into a fresh
    unique directory (fresh per call, so also per hypothesis example), and compare every run with the
    first via :func:`twinrun.compare.runs.compare_runs`. Each twin starts from a *different* global RNG state
    (python, numpy, torch drawn from OS entropy): a train that forgets to seed cannot pass by luck, nor by
    pytest-randomly resetting the global RNGs per test. The caller's RNG state and torch's determinism
    switches are restored afterwards, so nothing leaks into other tests.
    ``result.assert_identical()`` fails with the text report.

Example (``tests/test_repro.py`` of your project)::

    from hypothesis import given
    from twinrun.testing.pytest_plugin import seeds

    from myapp import train

    @given(seed=seeds())
    def test_twins_identical(seed, twinrun_compose, twinrun_twins, twinrun_data_root):
        cfg = twinrun_compose("config", [f"seed={seed}", f"data.root={twinrun_data_root}"])
        twinrun_twins(train, cfg).assert_identical()

The strategies of :mod:`twinrun.testing.strategies` are re-exported
(``from twinrun.testing.pytest_plugin import seeds``).
Import-light on purpose: pytest loads this module in every session of every project that has twinrun
installed, so torch and hydra are imported only when a fixture is used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from twinrun.compare.report_model import Report

_STRATEGIES = (
    "SEED_MAX",
    "SEED_MIN",
    "batch_sizes_not_dividing",
    "group_choices",
    "leaf_overrides",
    "overrides",
    "seed_edge_examples",
    "seeds",
)


def __getattr__(name: str) -> Any:
    # Re-export the strategies lazily: importing them means importing hypothesis and hydra.
    if name in _STRATEGIES:
        from twinrun.testing import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("twinrun", "twinrun twin runs")
    group.addoption(
        "--twinrun-runs",
        type=int,
        default=None,
        help="how many runs twinrun_twins makes when the test does not say (default 2, at least 2)",
    )
    parser.addini("twinrun_config_dir", "config dir for twinrun_compose, relative to the rootdir", default="")


@dataclass
class TwinResult:
    """The runs of one ``twinrun_twins`` call: ``reports[i]`` compares run ``i + 1`` with run 0."""

    run_dirs: list[Path]
    reports: list[Report] = field(default_factory=list)

    @property
    def report(self) -> Report:
        """The first report that differs, else the first one."""
        from twinrun.compare.report_model import shown_report

        shown = shown_report(self.reports)
        assert shown is not None, "twinrun_twins makes at least two runs"
        return shown

    @property
    def identical(self) -> bool:
        return all(r.exit_code == 0 for r in self.reports)

    def text(self) -> str:
        """The text rendering of :attr:`report`."""
        from twinrun.compare.report import render_text

        return render_text(self.report)

    def assert_identical(self) -> None:
        """Raise ``AssertionError`` carrying the text report unless every run matched the first."""
        if not self.identical:
            raise AssertionError(f"twin runs differ:\n{self.text()}")


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Restore the global RNGs and torch's determinism switches that a training run changes."""
    import torch

    from twinrun.record.rng_state import capture_rng_state, restore_rng_state

    rng = capture_rng_state()
    switches = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    try:
        yield
    finally:
        restore_rng_state(rng)
        torch.use_deterministic_algorithms(switches[0], warn_only=switches[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = switches[2:4]
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches[4:6]


def scramble_global_rngs() -> None:
    """Seed python, numpy and torch from OS entropy: each twin starts from its own global state."""
    import random

    import numpy as np
    import torch

    random.seed(secrets.randbits(64))
    np.random.seed(secrets.randbits(32))
    torch.manual_seed(secrets.randbits(63))


def run_twins(
    train: Callable[[Any, Path], Any],
    cfg: Any,
    base_dir: Path,
    runs: int = 2,
) -> TwinResult:
    """Run ``train(cfg, base_dir / "run-<i>")`` ``runs`` times and compare each run with the first."""
    from twinrun.compare.runs import compare_runs

    if runs < 2:
        raise ValueError(f"twin runs need runs >= 2, got {runs}")
    run_dirs = [base_dir / f"run-{i}" for i in range(1, runs + 1)]
    with preserved_global_state():
        for run_dir in run_dirs:
            run_dir.mkdir(parents=True)
            scramble_global_rngs()
            train(cfg, run_dir)
    reports = [compare_runs(run_dirs[0], other) for other in run_dirs[1:]]
    return TwinResult(run_dirs, reports)


@pytest.fixture(scope="session")
def twinrun_compose(pytestconfig: pytest.Config) -> Callable[..., DictConfig]:
    """``compose(config_name, overrides=(), config_dir=None)``; Hydra's singletons restored per call
    (:func:`twinrun.testing.compose.compose_config` puts back any ``GlobalHydra`` it found)."""
    from twinrun.testing.compose import compose_config

    configured = pytestconfig.getini("twinrun_config_dir")
    default_dir = (Path(str(pytestconfig.rootpath)) / configured) if configured else None

    def compose(
        config_name: str, overrides: Sequence[str] = (), config_dir: str | Path | None = None
    ) -> DictConfig:
        return compose_config(config_name, overrides, config_dir or default_dir)

    return compose


@pytest.fixture(scope="session")
def twinrun_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset root shared by the whole session, xdist workers included."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is <session basetemp>/popen-gwN: the parent is shared.
    under_xdist = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    root = (base.parent if under_xdist else base) / "twinrun-data"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def twinrun_twins(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Callable[..., TwinResult]:
    """``twins(train, cfg, runs=None) -> TwinResult``: fresh run directories on every call."""
    default_runs = pytestconfig.getoption("twinrun_runs") or 2

    def twins(train: Callable[[Any, Path], Any], cfg: Any, runs: int | None = None) -> TwinResult:
        # A new numbered directory per call: hypothesis reuses fixtures across examples.
        return run_twins(train, cfg, tmp_path_factory.mktemp("twinrun-twins"), runs or default_runs)

    return twins
