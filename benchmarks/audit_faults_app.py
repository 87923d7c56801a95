"""mnist-classifier with one planted fault, for ``benchmarks/audit_detection.py`` (``twinrun audit``).

``TWINRUN_BENCH_FAULT=<name>:<n>`` picks it (unset: the clean trainer):

- ``noise:s``: from step s on, unseeded noise on the first conv weight after every step (persistent);
- ``rng_once:s``: one extra draw from torch's global RNG before step s, in this process only (a
  single bad step: the audit's replays run without it);
- ``reshuffle:e``: from epoch e on, every epoch's data order is drawn from OS entropy (persistent);
- ``workers:e``: from epoch e on, two DataLoader workers add pixel noise from an unseeded generator
  (persistent, only in the worker processes).

``python benchmarks/audit_faults_app.py data=synthetic ...`` (the classifier's own config and overrides)
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: benchmarks.* importable

from twinrun.config import config_dir
from twinrun.trainers.apps import mnist_classifier
from twinrun.trainers.apps.shell import run_under_hydra

FAULT_ENV = "TWINRUN_BENCH_FAULT"


def fault_hooks(spec: str | None):  # -> Hooks | None; the loop (torch) is imported only here
    if not spec:
        return None
    import numpy as np
    import torch

    from twinrun.trainers import data as data_module
    from twinrun.trainers.loop import Hooks

    name, _, number = spec.partition(":")
    at = int(number)
    if name == "noise":

        def noise(ctx) -> None:
            if ctx.step >= at:
                weight = next(ctx.model.parameters())
                generator = torch.Generator().manual_seed(secrets.randbits(63))
                with torch.no_grad():
                    weight.add_(1e-4 * torch.randn(weight.shape, generator=generator))

        return Hooks(after_step=[noise])
    if name == "rng_once":
        return Hooks(before_step=[lambda ctx: torch.rand(1) if ctx.step == at else None])
    if name == "reshuffle":

        def make_loader(split, batch_size, *, seed, epoch, **kwargs):
            seed = secrets.randbelow(2**31) if epoch >= at else seed
            return data_module.make_loader(split, batch_size, seed=seed, epoch=epoch, **kwargs)

        return Hooks(make_loader=make_loader)
    if name == "workers":

        class Augmented(data_module.BatchIndexedDataset):
            def __getitem__(self, indices):
                images, labels, idx = super().__getitem__(indices)
                noise = np.random.default_rng().normal(0.0, 0.05, size=tuple(images.shape))
                return (images + torch.from_numpy(noise.astype(np.float32))).clamp(0, 1), labels, idx

        def workers(split, batch_size, *, epoch, **kwargs):
            if epoch < at:
                return data_module.make_loader(split, batch_size, epoch=epoch, **kwargs)
            kwargs["num_workers"] = 2
            plain, data_module.BatchIndexedDataset = data_module.BatchIndexedDataset, Augmented
            try:
                return data_module.make_loader(split, batch_size, epoch=epoch, **kwargs)
            finally:
                data_module.BatchIndexedDataset = plain

        return Hooks(make_loader=workers)
    raise SystemExit(f"{FAULT_ENV}={spec}: unknown fault {name!r}")


def _train(cfg: DictConfig, run_dir: Path) -> object:
    return mnist_classifier.train(cfg, run_dir, hooks=fault_hooks(os.environ.get(FAULT_ENV)))


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="mnist_classifier")
def main(cfg: DictConfig) -> None:
    run_under_hydra(_train, cfg)


if __name__ == "__main__":
    main()
