"""An autoencoder app that saves the whole trained module with torch.save (pickled, class in model.py)."""

import logging
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from model import AutoEncoder
from omegaconf import DictConfig

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    data = torch.rand(cfg.samples, 16)
    model = AutoEncoder(16, cfg.hidden, cfg.latent)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for step in range(cfg.steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(data), data)
        loss.backward()
        optimizer.step()
        log.info("step %d loss %.6f", step, loss.item())
    out = Path(HydraConfig.get().runtime.output_dir)
    torch.save(model, out / "trained_model.pt")
    log.info("saved %s", out / "trained_model.pt")


if __name__ == "__main__":
    main()
