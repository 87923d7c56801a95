"""A plain Hydra + PyTorch loop recorded with ``twinrun.Recorder`` and resumable by ``twinrun audit``.

Written for these tests (``tests/cli/test_audit_cli.py``): a linear regressor with dropout on synthetic
tensors, shuffled by a generator of its own, checkpointed through the recorder every ``ckpt_every``
steps. ``TWINRUN_TEST_NOISE_FROM=s`` plants a fault: unseeded noise on the weights from step ``s`` on.
``python tests/apps/recorder_loop/train.py epochs=4``
"""

from __future__ import annotations

import os

import hydra
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from torch import nn

from twinrun import Recorder, seed_everything

ConfigStore.instance().store(
    name="train", node={"seed": 0, "epochs": 4, "batch": 8, "samples": 40, "lr": 0.05, "ckpt_every": 5}
)


def train(cfg: DictConfig, run_dir: str) -> None:
    seed_everything(cfg.seed)
    x = torch.randn(cfg.samples, 4)
    y = x.sum(dim=1, keepdim=True)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    noise_from = int(os.environ.get("TWINRUN_TEST_NOISE_FROM", "0")) or None
    with Recorder(run_dir, model, optimizer) as rec:
        start_epoch, skip = 1, 0
        state = rec.resume_point()  # twinrun audit's checkpoint, else None
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            shuffle.set_state(state["shuffle"])
            start_epoch, skip = state["epoch"], state["batch"]
        for epoch in range(start_epoch, cfg.epochs + 1):
            if skip == 0:
                epoch_shuffle = shuffle.get_state()
                order = torch.randperm(cfg.samples, generator=shuffle)
            else:  # resumed mid-epoch: the generator's state at this epoch's start was saved
                epoch_shuffle = state["epoch_shuffle"]
                order = torch.randperm(cfg.samples, generator=torch.Generator().set_state(epoch_shuffle))
            for batch, indices in enumerate(order.split(cfg.batch)):
                if batch < skip:
                    continue
                rec.before_step(indices=indices, epoch=epoch)
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(x[indices]), y[indices])
                loss.backward()
                optimizer.step()
                if noise_from is not None and rec.last_step + 1 >= noise_from:  # the planted fault
                    noise = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
                    with torch.no_grad():
                        model[0].weight.add_(1e-3 * torch.randn(model[0].weight.shape, generator=noise))
                rec.after_step(loss)
                if rec.last_step % cfg.ckpt_every == 0:
                    rec.save_checkpoint(
                        {
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "shuffle": shuffle.get_state(),
                            "epoch_shuffle": epoch_shuffle,
                            "epoch": epoch,
                            "batch": batch + 1,
                        }
                    )
                if rec.stop_requested:  # twinrun audit replays a few steps only
                    return
            skip = 0


@hydra.main(version_base=None, config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
