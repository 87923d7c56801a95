"""Start-up stays light: the apps' modules, the CLI, ``twinrun`` and the pytest plugin import neither
torch nor torchvision, and neither do ``vae-mnist --help``, ``vae-mnist --cfg job`` or ``twinrun --help``
(torch alone takes seconds; torchvision.utils pulls in its models, ops and torch._dynamo).

Each check runs a fresh interpreter under ``python -X importtime``, which lists every module imported;
a negative control shows the checker sees an import of torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "torchvision")
LIGHT_MODULES = (
    "twinrun",
    "twinrun.cli",
    "twinrun.trainers.apps.vae_mnist",
    "twinrun.trainers.apps.mnist_classifier",
    "twinrun.testing.pytest_plugin",
)


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    """The modules a fresh ``python -X importtime ARGS`` imports (it must exit 0)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def heavy(modules: set[str]) -> list[str]:
    """The torch/torchvision modules among ``modules``."""
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_importing_the_apps_the_cli_and_the_plugin_imports_no_torch(tmp_path: Path) -> None:
    code = "import " + ", ".join(LIGHT_MODULES)
    modules = imported_modules(["-c", code], tmp_path)
    assert set(LIGHT_MODULES) <= modules  # they were imported here, not skipped
    assert heavy(modules) == []


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "twinrun.trainers.apps.vae_mnist", "--help"],
        ["-m", "twinrun.trainers.apps.vae_mnist", "data=synthetic", "--cfg", "job"],
        ["-m", "twinrun.trainers.apps.mnist_classifier", "--help"],
        ["-m", "twinrun", "--help"],
    ],
    ids=["vae-mnist --help", "vae-mnist --cfg job", "mnist-classifier --help", "twinrun --help"],
)
def test_help_and_cfg_job_import_no_torch(args: list[str], tmp_path: Path) -> None:
    modules = imported_modules(args, tmp_path)
    assert heavy(modules) == []
    assert not list(tmp_path.iterdir())  # --help and --cfg job leave no run directory behind


def test_the_checker_sees_torch_imported_where_training_starts(tmp_path: Path) -> None:
    # negative control: the same check on the path that trains reports torch
    code = "from twinrun.trainers.apps import vae_mnist; import twinrun.trainers.loop"
    assert "torch" in heavy(imported_modules(["-c", code], tmp_path))
    assert heavy({"torchvision.utils", "torch._dynamo", "torchmetrics", "twinrun"}) == [
        "torch._dynamo",
        "torchvision.utils",
    ]


def test_the_help_page_is_twinruns(tmp_path: Path) -> None:
    for module, command in (("vae_mnist", "vae-mnist"), ("mnist_classifier", "mnist-classifier")):
        done = subprocess.run(
            [sys.executable, "-m", f"twinrun.trainers.apps.{module}", "--help"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        page = done.stdout
        assert page.startswith(f"{command}: a reproducible PyTorch trainer")
        assert "data: fashion_mnist, mnist, synthetic" in page  # the config groups and their options
        assert "data=synthetic" in page.split("== Offline ==")[1]
        examples = page.split("== Examples ==")[1].split("==")[0].strip().splitlines()
        assert len(examples) == 3 and all(command in line for line in examples)
        assert "is powered by Hydra" not in page  # Hydra's default page is gone
