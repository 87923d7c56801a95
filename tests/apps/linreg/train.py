"""Linear regression on synthetic data: a plain Hydra app that saves a state_dict and metrics.json."""

import json
import logging
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    if cfg.seeded:
        torch.manual_seed(1234)
    out = Path(HydraConfig.get().runtime.output_dir)
    x = torch.randn(cfg.samples, cfg.features)
    y = x @ torch.arange(1.0, cfg.features + 1) + 0.1 * torch.randn(cfg.samples)
    model = torch.nn.Linear(cfg.features, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    for epoch in range(cfg.epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
        loss.backward()
        optimizer.step()
        log.info("epoch %d loss %.6f", epoch, loss.item())
    torch.save(model.state_dict(), out / "model.pt")
    metrics = {"final_loss": loss.item(), "epochs": cfg.epochs}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
