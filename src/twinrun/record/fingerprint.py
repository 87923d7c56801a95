"""Environment fingerprint (``env.json``): everything that decides whether bit-identity is expected."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from twinrun.record.determinism import determinism_flags
from twinrun.record.trace import TRACE_FORMAT

ENV_VARS = (
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "PYTHONHASHSEED",
    "TORCH_DETERMINISTIC",
    "NVIDIA_TF32_OVERRIDE",
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state(cwd: Path) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def environment_fingerprint(device: torch.device, dataset: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``env.json`` content for a run on ``device`` that used ``dataset`` (a data fingerprint)."""
    cuda = device.type == "cuda"
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "hydra": _version("hydra-core"),
        "omegaconf": _version("omegaconf"),
        "numpy": _version("numpy"),
        "twinrun": _version("twinrun"),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_model(),
        "cpu": _cpu_model(),
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "determinism": determinism_flags(),
        "env_vars": {name: os.environ.get(name) for name in ENV_VARS},
        "dataset": dataset,
        "git": _git_state(Path.cwd()),
        "trace_format": TRACE_FORMAT,
    }
