"""vae-mnist with a fault planted in one op at one step of one run, for ``verify --explain`` tests.

``TWINRUN_TEST_FAULT_STEP=s`` and ``TWINRUN_TEST_FAULT_RUN=i``: the run whose PYTHONHASHSEED is ``i``
(verify's run index; a replay of that run has it too) moves to_mu's output by one ULP at step ``s``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: tests.* importable

from twinrun.config import config_dir
from twinrun.trainers.apps import vae_mnist
from twinrun.trainers.apps.shell import run_under_hydra


def _train(cfg: DictConfig, run_dir: Path) -> object:
    from tests.sensitivity.planted_ops import one_ulp_in_to_mu

    step = os.environ.get("TWINRUN_TEST_FAULT_STEP")
    faulty = step and os.environ.get("PYTHONHASHSEED") == os.environ.get("TWINRUN_TEST_FAULT_RUN")
    return vae_mnist.train(cfg, run_dir, hooks=one_ulp_in_to_mu(int(step)) if faulty else None)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="vae_mnist")
def main(cfg: DictConfig) -> None:
    run_under_hydra(_train, cfg)


if __name__ == "__main__":
    main()
