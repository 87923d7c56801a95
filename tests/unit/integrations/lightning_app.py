"""A small Lightning app written for these tests: a regression MLP with dropout on synthetic tensors.

Shaped like a user's app (a LightningModule, a DataLoader, a Trainer with callbacks); faults are
planted from outside, by callbacks and optimizer hooks, as a bug in a user's code would act.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler, TensorDataset

from twinrun import seed_everything
from twinrun.integrations.lightning import TwinrunCallback

SAMPLES, BATCH, EPOCHS = 32, 8, 3
STEPS_PER_EPOCH = SAMPLES // BATCH
PARAMETERS = ["net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"]


class Regressor(pl.LightningModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 1))
        self.post_step_hooks: list[Any] = []  # planted faults: run right after each optimizer step
        self.losses: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.losses.append(float(loss.detach()))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        for hook in self.post_step_hooks:  # registered before the callback's: they run first
            optimizer.register_step_post_hook(hook)
        return optimizer


class TwoOptimizers(Regressor):
    """Manual optimization: two optimizers, each stepped once per batch (a GAN's shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        first, second = self.optimizers()
        for optimizer, scale in ((first, 1.0), (second, 2.0)):
            loss = scale * nn.functional.mse_loss(self.net(x), y)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            self.losses.append(float(loss.detach()))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            torch.optim.SGD(self.net[0].parameters(), lr=self.lr),
            torch.optim.SGD(self.net[3].parameters(), lr=self.lr),
        ]


class EpochShuffle(Sampler[int]):
    """A user's sampler: a permutation per epoch from (seed, epoch); ``shift`` reshuffles from an epoch."""

    def __init__(self, size: int, seed: int, reshuffle_from: int | None = None) -> None:
        self.size, self.seed, self.reshuffle_from, self.epoch = size, seed, reshuffle_from, 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it with the 0-based epoch
        self.epoch = epoch

    def __iter__(self):
        shifted = self.reshuffle_from is not None and self.epoch + 1 >= self.reshuffle_from
        generator = torch.Generator().manual_seed(1000 * self.seed + self.epoch + (7 if shifted else 0))
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def dataset() -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(SAMPLES, 4, generator=generator)
    return TensorDataset(x, x.sum(dim=1, keepdim=True).sin())


def loader(sampler: str = "custom", *, seed: int = 3, reshuffle_from: int | None = None) -> DataLoader:
    data = dataset()
    if sampler == "distributed":  # its order is readable without drawing: the callback records indices
        chosen: Sampler[int] = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=seed)
    else:
        chosen = EpochShuffle(len(data), seed, reshuffle_from)
    return DataLoader(data, batch_size=BATCH, sampler=chosen)


class ReseedDistributedSampler(pl.Callback):
    """Planted fault for the distributed-sampler loader: another shuffle seed from epoch ``epoch`` on."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epoch:
            trainer.train_dataloader.sampler.seed = 99


class DrawBeforeStep(pl.Callback):
    """Planted fault: one extra draw from a global RNG before step ``step``'s batch starts."""

    def __init__(self, step: int, draw: Any) -> None:
        self.step, self.draw = step, draw

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx
    ) -> None:
        if trainer.global_step + 1 == self.step:
            self.draw()


def fit(
    run_dir: Path,
    *,
    module: Callable[[], Regressor] = Regressor,
    data: DataLoader | None = None,
    callbacks: list[pl.Callback] | None = None,
    epochs: int = EPOCHS,
    seed: int = 3,
    **trainer_kwargs: Any,
) -> Regressor:
    """Seed, build ``module()`` and fit; ``callbacks`` go before the TwinrunCallback (faults act first)."""
    seed_everything(seed)
    model = module()
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        default_root_dir=run_dir,
        callbacks=[*(callbacks or []), TwinrunCallback()],
        **trainer_kwargs,
    )
    trainer.fit(model, train_dataloaders=data if data is not None else loader(seed=seed))
    return model
