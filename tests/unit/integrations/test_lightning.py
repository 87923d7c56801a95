import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

pytest.importorskip("lightning")

import lightning.pytorch as pl
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig

from tests.unit.integrations.lightning_app import STEPS_PER_EPOCH, Regressor, TwoOptimizers, fit, loader
from twinrun import seed_everything
from twinrun.integrations.lightning import TwinrunCallback, sampler_batches
from twinrun.record import runs
from twinrun.record.trace import DataDigest, param_fingerprints


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / runs.TRACE).read_text().splitlines()]


def test_one_row_per_step_with_the_training_loss_and_final_weights(tmp_path) -> None:
    module = fit(tmp_path, epochs=2)
    rows = _rows(tmp_path)
    assert [(row["step"], row["epoch"]) for row in rows] == [
        (step, 1 + (step - 1) // STEPS_PER_EPOCH) for step in range(1, 2 * STEPS_PER_EPOCH + 1)
    ]
    assert [float.fromhex(row["loss"]) for row in rows] == module.losses
    assert rows[-1]["params"] == param_fingerprints(module)
    for name in (runs.WEIGHTS, runs.MANIFEST, runs.ENV):
        assert (tmp_path / name).is_file(), name


def test_gradient_accumulation_gives_a_row_per_optimizer_step(tmp_path) -> None:
    module = fit(tmp_path, epochs=1, data=loader("distributed"), accumulate_grad_batches=2)
    rows = _rows(tmp_path)
    assert len(rows) == STEPS_PER_EPOCH // 2
    # Each row's loss is the sum of what Lightning backwarded: the micro-batch losses / 2.
    pairs = zip(module.losses[::2], module.losses[1::2], strict=True)
    assert [float.fromhex(row["loss"]) for row in rows] == pytest.approx([(a + b) / 2 for a, b in pairs])
    # The data digest covers both micro-batches, each as the sampler's indices, then the contents.
    data = loader("distributed")
    expected = DataDigest()
    for indices, batch in list(zip(sampler_batches(data), data, strict=True))[:2]:
        expected.add_indices(indices)
        expected.add_batch(batch)
    assert rows[0]["batch"] == expected.hexdigest()


def test_the_sampler_indices_are_read_only_where_it_draws_nothing() -> None:
    batches = sampler_batches(loader("distributed"))
    assert sorted(i for batch in batches for i in batch) == list(range(32)) and len(batches) == 4
    assert sampler_batches(loader("custom")) is None
    shuffled = torch.utils.data.DataLoader(list(range(8)), batch_size=2, shuffle=True)
    state = torch.get_rng_state()
    assert sampler_batches(shuffled) is None and torch.equal(torch.get_rng_state(), state)


def test_several_optimizers_give_a_row_each(tmp_path) -> None:
    module = fit(tmp_path, module=TwoOptimizers, epochs=1)
    rows = _rows(tmp_path)
    assert len(rows) == 2 * STEPS_PER_EPOCH
    assert [float.fromhex(row["loss"]) for row in rows] == module.losses
    assert rows[0]["batch"] == rows[1]["batch"] != rows[2]["batch"]  # two steps on one batch
    # Optimizer 1 updates net.0, optimizer 2 net.3: each row shows only its own step's change.
    assert rows[0]["params"]["net.0.weight"] == rows[1]["params"]["net.0.weight"]
    assert rows[0]["params"]["net.3.weight"] != rows[1]["params"]["net.3.weight"]


def test_artifacts_go_to_hydras_run_directory_when_it_is_set(tmp_path) -> None:
    hydra_dir = tmp_path / "hydra-run"
    cfg = OmegaConf.create({"hydra": OmegaConf.structured(HydraConf)})
    cfg.hydra.runtime.output_dir = str(hydra_dir)
    HydraConfig.instance().set_config(cfg)
    try:
        fit(tmp_path / "root", epochs=1)
    finally:
        HydraConfig.instance().cfg = None
    assert (hydra_dir / runs.TRACE).is_file() and (hydra_dir / runs.WEIGHTS).is_file()
    assert not (tmp_path / "root" / runs.TRACE).exists()


class _Fails(Regressor):
    def training_step(self, batch, batch_idx):
        if batch_idx == 2:
            raise RuntimeError("boom")
        return super().training_step(batch, batch_idx)


def test_a_fit_that_raises_writes_no_trace_or_weights(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        fit(tmp_path, module=_Fails, epochs=1)
    assert (tmp_path / runs.ENV).is_file()
    assert not (tmp_path / runs.TRACE).exists() and not (tmp_path / runs.WEIGHTS).exists()


def _trainer(tmp_path: Path, epochs: int, run_dir: Path) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[TwinrunCallback(run_dir)],
    )


def test_the_trace_travels_in_lightnings_checkpoints(tmp_path) -> None:
    seed_everything(3)
    trainer = _trainer(tmp_path, 1, tmp_path / "first")
    trainer.fit(Regressor(), train_dataloaders=loader())
    trainer.save_checkpoint(tmp_path / "epoch1.ckpt")
    trainer = _trainer(tmp_path, 2, tmp_path / "resumed")
    trainer.fit(Regressor(), train_dataloaders=loader(), ckpt_path=tmp_path / "epoch1.ckpt")
    rows = _rows(tmp_path / "resumed")
    assert [row["step"] for row in rows] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert rows[:STEPS_PER_EPOCH] == _rows(tmp_path / "first")
