"""``vae-mnist``: the VAE trainer. ``train(cfg, run_dir)`` is pure; ``main`` is the Hydra shell."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from twinrun.trainers.apps.help import quick_help
from twinrun.trainers.apps.shell import app_main, run_under_hydra

if TYPE_CHECKING:  # the loop imports torch: only train() needs it, so --help and --cfg job start fast
    from twinrun.trainers.loop import Hooks, TrainResult

APP_NAME = "vae_mnist"


def train(cfg: DictConfig, run_dir: str | Path, hooks: Hooks | None = None) -> TrainResult:
    """Train the VAE described by ``cfg`` and write the run directory ``run_dir``."""
    from twinrun.trainers.loop import fit
    from twinrun.trainers.objectives import VAEObjective

    return fit(cfg, run_dir, app_name=APP_NAME, objective=VAEObjective(), hooks=hooks)


@app_main(APP_NAME)  # hydra.main, with Hydra's own errors (an unknown option ...) as one line
def hydra_main(cfg: DictConfig) -> None:
    run_under_hydra(train, cfg)


def main() -> None:
    """The console script: the Hydra app, its ``--help`` page listing only the app's config groups."""
    with quick_help(app=APP_NAME):
        hydra_main()


if __name__ == "__main__":
    main()
