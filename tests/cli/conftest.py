"""Helpers for tests that run the installed console scripts as real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def console_script(name: str) -> str:
    """The console script installed beside this interpreter (falls back to PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"console script {name!r} is not installed; run `pip install -e .[test]`")
    return found


@pytest.fixture
def run_script(twinrun_data_root: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a console script in a fresh interpreter; ``hash_seed`` sets PYTHONHASHSEED."""

    def run(
        name: str, *args: str, hash_seed: int = 0, env: dict[str, str] | None = None, timeout: float = 300
    ):
        environment = {
            **os.environ,
            "PYTHONHASHSEED": str(hash_seed),
            "TWINRUN_DATA_ROOT": str(twinrun_data_root),
        }
        environment.update(env or {})
        return subprocess.run(
            [console_script(name), *args], capture_output=True, text=True, env=environment, timeout=timeout
        )

    return run
