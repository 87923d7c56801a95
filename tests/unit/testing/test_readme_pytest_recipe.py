"""The README's pytest recipe, taken from README.md itself (its whole ``pytest.ini`` and its test file), run
by pytester on an app written here in the template's layout that logs through ``getLogger(__name__)``:
twins in the test process, twins in fresh processes and parity pass; a planted command-line difference
(the negative control) fails parity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[3] / "README.md"

TRAIN_YAML = "seed: 1\nlr: 0.1\nmax_steps: 3\n"

# torch-free, so that the three app processes start fast; what the recipe checks does not need torch.
TRAIN_PY = """\
import json
import logging
import random
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

log = logging.getLogger(__name__)  # __main__ on the command line, src.train in the tests


def train(cfg):
    random.seed(cfg.seed)
    weights = [random.random() for _ in range(4)]
    for step in range(1, cfg.max_steps + 1):
        weights = [w - cfg.lr * (w - 0.5) for w in weights]
        log.info("step %d w0 %s", step, weights[0].hex())
    out = Path(HydraConfig.get().runtime.output_dir) / "weights.json"
    out.write_text(json.dumps([w.hex() for w in weights]))


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg):
    train(cfg)


if __name__ == "__main__":
    main()
"""

PLANTED_PY = """\
from src.train import main


def test_planted_difference(twinrun_parity):
    result = twinrun_parity("src/train.py", main, "train", ["lr=0.05"], cli_overrides=["max_steps=4"])
    result.assert_identical()
"""


def readme_block(language: str, must_contain: str) -> str:
    blocks = re.findall(rf"^```{language}\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    [block] = [b for b in blocks if must_contain in b]
    return block


def test_the_readme_pytest_recipe_passes_on_an_app_logging_through_dunder_name(
    pytester: pytest.Pytester,
) -> None:
    ini = readme_block("ini", "[pytest]")
    assert "pythonpath = ." in ini and "twinrun_config_dir = configs" in ini
    (pytester.path / "pytest.ini").write_text(ini)
    (pytester.mkdir("configs") / "train.yaml").write_text(TRAIN_YAML)
    src = pytester.mkdir("src")
    (src / "__init__.py").write_text("")
    (src / "train.py").write_text(TRAIN_PY)
    tests = pytester.mkdir("tests")
    recipe = readme_block("python", "def test_compose_matches_the_command_line")
    (tests / "test_train_repro.py").write_text(recipe)
    (tests / "test_planted.py").write_text(PLANTED_PY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-n", "0")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*FAILED tests/test_planted.py::test_planted_difference*"])
    named = (".hydra/config.yaml", "train.log", "weights.json")
    result.stdout.fnmatch_lines(["*differing files:", *(f"*  {name}" for name in named)])
