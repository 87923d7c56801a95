"""Seeding, deterministic mode and DataLoader worker seeding (RNG state capture: ``rng_state``).

Everything random in a run flows from one integer seed. Global RNGs (python, numpy, torch CPU/CUDA)
drive model initialisation, dropout and the VAE's noise; the data order never touches them: it comes
from generators derived from ``(seed, epoch)`` so that a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import secrets
from typing import Any

import numpy as np
import torch

from twinrun.config import SEED_MAX

log = logging.getLogger(__name__)

# cuBLAS needs a fixed workspace to be deterministic; it must be in the environment before CUDA
# initialises, so it is set as soon as twinrun.record.determinism is imported (a user's value wins).
CUBLAS_WORKSPACE = ":4096:8"
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def draw_seed() -> int:
    """Draw a fresh seed from OS entropy (used for ``seed: null``)."""
    return secrets.randbelow(SEED_MAX + 1)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device) from one integer; 0 is a valid seed."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an integer in [0, {SEED_MAX}], got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def enable_deterministic_mode(enabled: bool = True) -> None:
    """Deterministic kernels, no cuDNN autotuning, no TF32 (TF32 rounds differently per kernel choice)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled and torch.backends.cudnn.benchmark
    if enabled:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def derived_seed(seed: int, *labels: object) -> int:
    """A 63-bit seed derived from ``seed`` and labels (e.g. ``"shuffle", epoch``), stable across platforms."""
    text = ":".join([str(seed), *map(str, labels)]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def make_generator(seed: int, *labels: object) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``derived_seed(seed, *labels)``."""
    generator = torch.Generator()
    generator.manual_seed(derived_seed(seed, *labels))
    return generator


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive python/numpy seeds from the worker's torch seed.

    torch seeds each worker from the loader's generator; python and numpy would otherwise start from
    the forked parent's state in every worker.
    """
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def determinism_flags() -> dict[str, Any]:
    """The switches that decide whether bit-identity can be expected (recorded in env.json)."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
