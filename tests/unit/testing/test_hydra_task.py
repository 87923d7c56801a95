"""Hydra task functions (``task(cfg)`` writing into Hydra's output directory) twinned in the test process.

The task below is written here in the shape of the Lightning + Hydra template's ``train``: it finds its
output directory through ``HydraConfig``, logs through a module logger, writes ``checkpoints/last.ckpt``
under an interpolated ``${paths.output_dir}``, and seeds only when ``cfg.seed`` is set.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from twinrun.compare.report.model import DIFFERENT, IDENTICAL
from twinrun.compare.runs import compare_runs
from twinrun.config import ConfigError
from twinrun.testing.compose import compose_config
from twinrun.testing.hydra_task import RUN_DIR_PLACEHOLDER, as_task, hydra_run, hydra_task, job_name, run_task
from twinrun.testing.parity import report_files

log = logging.getLogger(__name__)

TRAIN_YAML = """\
seed: 0
steps: 3
lr: 0.1
paths:
  output_dir: ${hydra:runtime.output_dir}
callbacks:
  model_checkpoint:
    dirpath: ${paths.output_dir}/checkpoints
"""


def template_train(cfg):
    """The template's shape: output dir from HydraConfig, checkpoints and a log written into it."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    log.info("Instantiating model; output dir %s", output_dir)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    x = torch.randn(16, 3)
    y = x.sum(dim=1, keepdim=True)
    for step in range(1, cfg.steps + 1):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        log.info("step %d train/loss %s", step, loss.item().hex())
    checkpoints = Path(cfg.callbacks.model_checkpoint.dirpath)
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "global_step": cfg.steps}, checkpoints / "last.ckpt")
    return loss.item()


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    return template_train(cfg)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text(TRAIN_YAML)
    return tmp_path / "configs"


def test_the_task_alone_fails_after_compose(conf: Path) -> None:
    # What twinrun_twins used to hit: compose leaves HydraConfig unset.
    with pytest.raises(ValueError, match="HydraConfig was not set"):
        template_train(compose_config("train", config_dir=conf))


def test_a_seeded_task_gives_identical_twins(conf: Path, twinrun_twins) -> None:
    result = twinrun_twins(template_train, compose_config("train", config_dir=conf))
    result.assert_identical()
    assert result.verdict == IDENTICAL and report_files(result.report) == []
    assert result.report.sections["config"].status == IDENTICAL  # compared, no longer "not compared"
    for run_dir in result.run_dirs:
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        lines = (run_dir / "test_hydra_task.log").read_text().splitlines()
        assert any(str(run_dir) in line for line in lines) and sum("train/loss" in x for x in lines) == 3
        resolved = OmegaConf.load(run_dir / "resolved_config.yaml")
        assert resolved.callbacks.model_checkpoint.dirpath == f"{RUN_DIR_PLACEHOLDER}/checkpoints"
        assert "output_dir: ${hydra:runtime.output_dir}" in (run_dir / ".hydra" / "config.yaml").read_text()
    assert HydraConfig.instance().cfg is None and not GlobalHydra.instance().is_initialized()


def test_an_unseeded_task_gives_different_twins(conf: Path, twinrun_twins) -> None:
    # The negative control of the test above: seed=null skips seeding, so the twins draw differently.
    result = twinrun_twins(template_train, compose_config("train", ["seed=null"], config_dir=conf))
    assert not result.identical and result.verdict == DIFFERENT
    assert "checkpoints/last.ckpt" in report_files(result.report)
    with pytest.raises(AssertionError, match="twin runs differ"):
        result.assert_identical()


def test_the_hydra_main_function_itself_is_unwrapped(conf: Path, twinrun_twins) -> None:
    assert as_task(main) is main.__wrapped__ and job_name(main) == "test_hydra_task"
    twinrun_twins(main, compose_config("train", config_dir=conf)).assert_identical()
    unseeded = twinrun_twins(main, compose_config("train", ["seed=null"], config_dir=conf))
    assert not unseeded.identical


def test_the_config_each_twin_was_given_is_compared(conf: Path, tmp_path: Path) -> None:
    name = job_name(template_train)
    runs = {}
    for label, lr in (("a", 0.1), ("b", 0.1), ("c", 0.2)):
        runs[label] = tmp_path / label
        run_task(template_train, compose_config("train", [f"lr={lr}"], config_dir=conf), runs[label], name)
    assert compare_runs(runs["a"], runs["b"]).sections["config"].status == IDENTICAL
    changed = compare_runs(runs["a"], runs["c"]).sections["config"]
    assert changed.status == DIFFERENT and [m.name for m in changed.changed] == ["lr"]


def test_task_or_train_is_told_by_the_signature() -> None:
    def train(cfg, run_dir, hooks=None): ...

    def task(cfg): ...

    def ambiguous(cfg, extra=None): ...

    assert as_task(train) is None and as_task(task) is task and as_task(ambiguous) is None
    marked = hydra_task(ambiguous)
    assert as_task(marked) is ambiguous and job_name(marked) == "test_hydra_task"


def test_hydra_run_restores_what_it_changed(conf: Path, tmp_path: Path) -> None:
    overrides = ["hydra.job.chdir=true", "+hydra.job.env_set.TWINRUN_TEST_ENV_SET=on"]
    cfg = compose_config("train", overrides, config_dir=conf, return_hydra_config=True)
    marker = object()
    HydraConfig.instance().cfg = marker
    cwd, handlers = os.getcwd(), list(logging.getLogger().handlers)
    try:
        with hydra_run(cfg, tmp_path / "run", "job", ["lr=0.1"]) as job_cfg:
            assert "hydra" not in job_cfg and os.getcwd() == str((tmp_path / "run").resolve())
            assert os.environ["TWINRUN_TEST_ENV_SET"] == "on"
            assert HydraConfig.get().runtime.output_dir == str((tmp_path / "run").resolve())
            assert HydraConfig.get().run.dir == HydraConfig.get().runtime.output_dir
            logging.getLogger("twinrun.test").warning("into the job log")
        assert HydraConfig.instance().cfg is marker
    finally:
        HydraConfig.instance().cfg = None
    assert os.getcwd() == cwd and "TWINRUN_TEST_ENV_SET" not in os.environ
    assert logging.getLogger().handlers == handlers
    assert "into the job log" in (tmp_path / "run" / "job.log").read_text()
    assert OmegaConf.load(tmp_path / "run" / ".hydra" / "overrides.yaml") == ["lr=0.1"]


def test_a_config_that_does_not_resolve_is_one_line(tmp_path: Path) -> None:
    cfg = OmegaConf.create({"lr": "???"})
    with pytest.raises(ConfigError, match=r"does not resolve.*override the key"):
        run_task(lambda cfg: None, cfg, tmp_path / "run", "job")
