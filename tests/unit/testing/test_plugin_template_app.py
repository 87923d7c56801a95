"""The plugin on a user's project in the Lightning + Hydra template's layout (``configs/train.yaml``,
``src/train.py`` with a ``@hydra.main`` task writing into Hydra's output directory), seen through
pytester: twins in the test process, twins in fresh processes, and compose-versus-command-line parity.
The project's files are the recipe of ``docs/pytest-plugin.md``; the app is written here, in the
template's shape, not copied from it.
"""

from __future__ import annotations

import pytest

# Each user project runs in a pytest subprocess (see test_pytest_plugin.py for why).
pytest_plugins = ["pytester"]

TRAIN_YAML = """\
seed: 1
lr: 0.1
max_steps: 3
paths:
  output_dir: ${hydra:runtime.output_dir}
callbacks:
  model_checkpoint:
    dirpath: ${paths.output_dir}/checkpoints
"""

# SEEDING is replaced below: the seeded app, or one that forgot to seed.
TRAIN_PY = """\
import logging
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig

log = logging.getLogger(__name__)  # __main__ as a script, src.train in a test: parity takes both as one


def train(cfg):
    SEEDING
    log.info("output dir: %s", HydraConfig.get().runtime.output_dir)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    x = torch.randn(32, 4)
    y = x.sum(dim=1, keepdim=True)
    for step in range(1, cfg.max_steps + 1):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        log.info("step %d loss %s", step, loss.item().hex())
    checkpoints = Path(cfg.callbacks.model_checkpoint.dirpath)
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "global_step": cfg.max_steps}, checkpoints / "last.ckpt")


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg):
    train(cfg)


if __name__ == "__main__":
    main()
"""

TEST_PY = """\
from src.train import main


def test_twins_in_this_process(twinrun_compose, twinrun_twins):
    twinrun_twins(main, twinrun_compose("train", ["lr=0.05"])).assert_identical()


def test_twins_in_fresh_processes(twinrun_cli_twins):
    twinrun_cli_twins("src/train.py", ["lr=0.05"]).assert_identical()


def test_compose_matches_the_command_line(twinrun_parity):
    twinrun_parity("src/train.py", main, "train", ["lr=0.05"]).assert_identical()
"""

# The negative control of parity: a difference planted on the command line only.
PLANTED_PY = """\
from src.train import main


def test_planted_difference(twinrun_parity):
    result = twinrun_parity("src/train.py", main, "train", ["lr=0.05"], cli_overrides=["max_steps=4"])
    result.assert_identical()
"""

INI = """\
[pytest]
pythonpath = .
twinrun_config_dir = configs
"""


def make_template_project(pytester: pytest.Pytester, seeded: bool) -> None:
    pytester.makeini(INI)
    (pytester.mkdir("configs") / "train.yaml").write_text(TRAIN_YAML)
    src = pytester.mkdir("src")
    (src / "__init__.py").write_text("")
    seeding = "torch.manual_seed(cfg.seed)" if seeded else "pass  # forgot to seed"
    (src / "train.py").write_text(TRAIN_PY.replace("SEEDING", seeding))
    tests = pytester.mkdir("tests")
    (tests / "test_train_repro.py").write_text(TEST_PY)
    (tests / "test_planted.py").write_text(PLANTED_PY)


@pytest.mark.slow  # a pytest subprocess importing torch; four fresh app processes
def test_template_project_passes_and_a_planted_difference_is_named(pytester: pytest.Pytester) -> None:
    make_template_project(pytester, seeded=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*FAILED tests/test_planted.py::test_planted_difference*"])
    result.stdout.fnmatch_lines(["*the compose run * and the command-line run * differ in *"])
    named = (".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/last.ckpt", "train.log")
    result.stdout.fnmatch_lines(["*differing files:", *(f"*  {name}" for name in named)])


@pytest.mark.slow  # a pytest subprocess importing torch; two fresh app processes
def test_template_project_that_forgot_to_seed_fails_both_twin_checks(pytester: pytest.Pytester) -> None:
    # The negative control of the twin checks above: the same project, the seed forgotten.
    make_template_project(pytester, seeded=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-k", "twins")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*AssertionError: twin runs differ:*", "*checkpoints/last.ckpt*"])


def test_the_docs_recipe_is_the_tested_project() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[3] / "docs" / "pytest-plugin.md").read_text()
    seeded = TRAIN_PY.replace("SEEDING", "torch.manual_seed(cfg.seed)")
    for text in (INI, TRAIN_YAML, seeded, TEST_PY):
        assert text in docs, text.splitlines()[0]
