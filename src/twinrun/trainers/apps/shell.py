"""What every app shell does around ``train``: find the run directory, turn errors into one line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from twinrun.errors import TwinrunError

log = logging.getLogger("twinrun")


def run_under_hydra(train: Callable[[DictConfig, Path], Any], cfg: DictConfig) -> None:
    """Call ``train(cfg, <Hydra's output dir>)``; a :class:`TwinrunError` exits 2 with one line."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        train(cfg, run_dir)
    except TwinrunError as error:
        log.error("%s", error)
        sys.exit(2)
