"""A Hydra + Lightning app recorded with ``TwinrunCallback`` and resumable by ``twinrun audit``.

Written for these tests (``tests/cli/test_audit_cli.py``): a regression MLP with dropout on synthetic
tensors, shuffled per epoch by a seeded ``DistributedSampler`` (a DataLoader's own generator is not in
Lightning's checkpoints: a resumed run would reshuffle), a checkpoint every 3 steps named with its step
(``step=N.ckpt``; mid-epoch, see docs/audit.md); ``trainer.fit(..., ckpt_path=resume_path())`` resumes
where an audit says.
``TWINRUN_TEST_NOISE_FROM=s`` plants a fault: unseeded noise on the weights after every step from ``s``.
"""

from __future__ import annotations

import os
import warnings

import hydra
import lightning.pytorch as pl
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from twinrun import seed_everything
from twinrun.integrations.lightning import TwinrunCallback, resume_path

ConfigStore.instance().store(name="train", node={"seed": 0, "epochs": 4, "batch": 8, "samples": 32})
warnings.filterwarnings("ignore")  # Lightning's advice on workers and loggers is not this test's subject


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 1))
        self.noise_from = int(os.environ.get("TWINRUN_TEST_NOISE_FROM", "0")) or None

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def on_before_zero_grad(self, optimizer) -> None:  # right after each optimizer step
        step = self.trainer.global_step  # steps done, this one included
        if self.noise_from is not None and step >= self.noise_from:  # the planted fault
            noise = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
            with torch.no_grad():
                self.net[0].weight.add_(1e-3 * torch.randn(self.net[0].weight.shape, generator=noise))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class ResumableLoader(DataLoader):
    """A DataLoader that Lightning can resume mid-epoch (``state_dict``/``load_state_dict``: the epoch and
    how many of its batches were served); a plain DataLoader restarts its epoch from the first batch."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.served, self.resume_at = 0, (-1, 0)  # (epoch, batches of it to skip)

    def __iter__(self):
        epoch = self.sampler.epoch
        skip = self.resume_at[1] if self.resume_at[0] == epoch else 0
        self.served, self.resume_at = skip, (-1, 0)
        for number, batch in enumerate(super().__iter__()):
            if number >= skip:
                self.served += 1
                yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.sampler.epoch, "served": self.served}

    def load_state_dict(self, state: dict) -> None:
        self.resume_at = (state["epoch"], state["served"])


@hydra.main(version_base=None, config_name="train")
def main(cfg: DictConfig) -> None:
    run_dir = HydraConfig.get().runtime.output_dir
    seed_everything(cfg.seed)
    x = torch.randn(cfg.samples, 4)
    data = TensorDataset(x, x.sum(dim=1, keepdim=True))
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=cfg.seed)
    # A generator of its own: a new epoch iterator draws its base seed from it, not from torch's global RNG.
    loader = ResumableLoader(data, batch_size=cfg.batch, sampler=sampler, generator=torch.Generator())
    checkpoints = pl.callbacks.ModelCheckpoint(
        dirpath=os.path.join(run_dir, "ckpt"), filename="{step}", save_top_k=-1, every_n_train_steps=3
    )
    trainer = pl.Trainer(
        max_epochs=cfg.epochs,
        accelerator="cpu",
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[TwinrunCallback(run_dir), checkpoints],
        default_root_dir=run_dir,
    )
    trainer.fit(Regressor(), loader, ckpt_path=resume_path())


if __name__ == "__main__":
    main()
