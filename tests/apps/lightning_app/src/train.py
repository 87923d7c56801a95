"""Training entry point shaped like the Lightning + Hydra template's src/train.py (written for the tests)."""

import logging
import sys
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root, as rootutils would

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    if cfg.get("seed"):  # as in the template: seed=0 and seed=null skip seeding
        L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    (out / "config_tree.log").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (out / "tags.log").write_text(f"{list(cfg.tags)}\n")
    log.info(f"Instantiating datamodule <{cfg.data._target_}>")
    datamodule = hydra.utils.instantiate(cfg.data)
    log.info(f"Instantiating model <{cfg.model._target_}>")
    model = hydra.utils.instantiate(cfg.model)
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="epoch_{epoch:03d}",
        monitor="val/loss",
        mode="min",
        save_last=True,
        auto_insert_metric_name=False,
    )
    loggers = [CSVLogger(save_dir=out, name="csv"), TensorBoardLogger(save_dir=out, name="tensorboard")]
    trainer = L.Trainer(**cfg.trainer, callbacks=[checkpoint], logger=loggers, default_root_dir=out)
    log.info("Starting training!")
    trainer.fit(model=model, datamodule=datamodule)
    log.info(f"Best ckpt path: {checkpoint.best_model_path}")
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> float:
    metrics = train(cfg)
    log.info(f"Metrics: {metrics}")
    return metrics["val/loss"]


if __name__ == "__main__":
    main()
