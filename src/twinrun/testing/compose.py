"""Compose a Hydra config outside ``@hydra.main`` without leaking Hydra's global state.

``compose`` creates no output directory, configures no logging and leaves ``HydraConfig`` unset
(``${hydra:runtime.output_dir}`` would resolve to nothing), so callers pass the run directory to
``train(cfg, run_dir)`` explicitly. ``GlobalHydra`` is restored afterwards, so tests that compose
one after another (or under xdist) never see each other's initialisation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from omegaconf import DictConfig

from twinrun.config import config_dir as default_config_dir


@contextlib.contextmanager
def _global_hydra_restored() -> Iterator[None]:
    """Start the block with no ``GlobalHydra``; put back whatever was initialised before."""
    from hydra.core.global_hydra import GlobalHydra

    previous = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        # initialize_config_dir swaps the GlobalHydra object on exit: ask for the current one again.
        GlobalHydra.instance().clear()
        if previous is not None:
            GlobalHydra.instance().initialize(previous)


@contextlib.contextmanager
def hydra_initialized(config_dir: str | Path | None = None) -> Iterator[None]:
    """Initialise Hydra on ``config_dir`` for the block; restore whatever was initialised before."""
    from hydra import initialize_config_dir

    directory = Path(config_dir) if config_dir is not None else default_config_dir()
    with (
        _global_hydra_restored(),
        initialize_config_dir(config_dir=str(directory.resolve()), version_base="1.3"),
    ):
        yield


def compose_config(
    config_name: str,
    overrides: Sequence[str] = (),
    config_dir: str | Path | None = None,
    *,
    return_hydra_config: bool = False,
) -> DictConfig:
    """``config_name`` from ``config_dir`` (default: twinrun's ``conf/``) with ``overrides`` applied.

    ``return_hydra_config=True`` keeps the ``hydra`` node (the app's own Hydra settings: job logging,
    ``job.chdir``, ``output_subdir``); :mod:`twinrun.testing.hydra_task` sets ``HydraConfig`` from it.
    """
    from hydra import compose

    with hydra_initialized(config_dir):
        return compose(
            config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config
        )


def hydra_defaults(job_name: str) -> DictConfig:
    """A config holding only Hydra's default ``hydra`` node (job name ``job_name``), as in a run."""
    from hydra import compose, initialize

    with _global_hydra_restored(), initialize(version_base="1.3", config_path=None, job_name=job_name):
        return compose(config_name=None, return_hydra_config=True)


def group_options(group: str, config_dir: str | Path | None = None) -> list[str]:
    """The options of config group ``group`` (e.g. ``experiment`` -> ``["exp1", "exp2"]``), sorted."""
    from hydra.core.global_hydra import GlobalHydra

    with hydra_initialized(config_dir):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))
