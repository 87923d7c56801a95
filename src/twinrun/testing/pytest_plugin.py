"""pytest plugin (entry point ``twinrun``): twin-run fixtures for your own Hydra app.

Installed with twinrun; no conftest needed. Fixtures (all session-scoped, so they also work inside
``@given`` tests without hypothesis' function-scoped-fixture health check):

``twinrun_compose(config_name, overrides=(), config_dir=None, *, return_hydra_config=False)``
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
    switches are restored afterwards, so nothing leaks into other tests. Files a twin writes outside its
    run directory are moved into its ``outside/`` and compared (:mod:`twinrun.verify.outside`).
    ``train`` may also be a Hydra task ``task(cfg)`` (or the ``@hydra.main``-decorated function) that
    writes into ``HydraConfig.get().runtime.output_dir``: each twin runs it as Hydra would, with its own
    directory as output directory (:mod:`twinrun.testing.hydra_task`), and gets a ``resolved_config.yaml``.
    ``result.assert_identical()`` fails with the text report.
``twinrun_cli_twins(app, overrides=(), runs=None, cwd=None) -> TwinResult``
    The same twin check in fresh processes, as ``twinrun verify`` runs them (console script,
    ``module:function`` or script path).
``twinrun_golden(path, run_dir=None, *, train=None, cfg=None, app=None, overrides=())``
    Check a run against a committed golden file (:mod:`twinrun.testing.golden_fixture`); a missing
    file is recorded and the test fails saying so; ``--twinrun-update-golden`` regenerates.
``twinrun_parity(app, train, config_name, overrides=(), *, config_dir=None, cli_overrides=(), cwd=None)``
    Compose-versus-command-line parity (:mod:`twinrun.testing.parity`): ``train`` on the composed
    config here, ``app`` with the same overrides in a fresh process; ``.assert_identical()`` names
    the differing files.

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

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from twinrun.testing.golden_fixture import add_options as _add_golden_options
from twinrun.testing.golden_fixture import twinrun_golden
from twinrun.testing.hydra_task import hydra_task
from twinrun.testing.twins import (
    TwinResult,
    preserved_global_state,
    run_cli_twins,
    run_twins,
    scramble_global_rngs,
)

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from twinrun.testing.parity import ParityResult

__all__ = [
    "TwinResult",
    "hydra_task",
    "preserved_global_state",
    "run_cli_twins",
    "run_twins",
    "scramble_global_rngs",
    "twinrun_golden",
]

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
    _add_golden_options(group)
    parser.addini("twinrun_config_dir", "config dir for twinrun_compose, relative to the rootdir", default="")


def _config_dir(pytestconfig: pytest.Config) -> Path | None:
    configured = pytestconfig.getini("twinrun_config_dir")
    return (Path(str(pytestconfig.rootpath)) / configured) if configured else None


@pytest.fixture(scope="session")
def twinrun_compose(pytestconfig: pytest.Config) -> Callable[..., DictConfig]:
    """``compose(config_name, overrides=(), config_dir=None, *, return_hydra_config=False)``; Hydra's
    singletons restored per call (:func:`twinrun.testing.compose.compose_config` puts back any
    ``GlobalHydra`` it found)."""
    from twinrun.testing.compose import compose_config

    default_dir = _config_dir(pytestconfig)

    def compose(
        config_name: str,
        overrides: Sequence[str] = (),
        config_dir: str | Path | None = None,
        *,
        return_hydra_config: bool = False,
    ) -> DictConfig:
        return compose_config(
            config_name, overrides, config_dir or default_dir, return_hydra_config=return_hydra_config
        )

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
    """``twins(train_or_task, cfg, runs=None) -> TwinResult``: fresh run directories on every call."""
    default_runs = pytestconfig.getoption("twinrun_runs") or 2

    def twins(train: Callable[..., Any], cfg: Any, runs: int | None = None) -> TwinResult:
        # A new numbered directory per call: hypothesis reuses fixtures across examples.
        return run_twins(train, cfg, tmp_path_factory.mktemp("twinrun-twins"), runs or default_runs)

    return twins


@pytest.fixture(scope="session")
def twinrun_cli_twins(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Callable[..., TwinResult]:
    """``cli_twins(app, overrides=(), runs=None, cwd=None) -> TwinResult``: fresh-process runs."""
    default_runs = pytestconfig.getoption("twinrun_runs") or 2

    def cli_twins(
        app: str, overrides: Sequence[str] = (), runs: int | None = None, cwd: str | Path | None = None
    ) -> TwinResult:
        workdir = tmp_path_factory.mktemp("twinrun-cli-twins")
        return run_cli_twins(app, overrides, workdir, runs or default_runs, cwd=cwd)

    return cli_twins


@pytest.fixture(scope="session")
def twinrun_parity(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Callable[..., ParityResult]:
    """``parity(app, train_or_task, config_name, overrides=(), *, config_dir=None, cli_overrides=(),
    cwd=None) -> ParityResult``: a compose run here against a command-line run in a fresh process."""
    from twinrun.testing.parity import run_parity

    default_dir = _config_dir(pytestconfig)

    def parity(
        app: str,
        train: Callable[..., Any],
        config_name: str,
        overrides: Sequence[str] = (),
        *,
        config_dir: str | Path | None = None,
        cli_overrides: Sequence[str] = (),
        cwd: str | Path | None = None,
    ) -> ParityResult:
        return run_parity(
            app,
            train,
            config_name,
            overrides,
            workdir=tmp_path_factory.mktemp("twinrun-parity"),
            config_dir=config_dir or default_dir,
            cli_overrides=cli_overrides,
            cwd=cwd,
        )

    return parity
