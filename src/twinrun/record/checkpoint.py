"""Resumable checkpoints: model, optimizer, scheduler, every RNG state and the data position.

Files hold only tensors and plain containers, so they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from twinrun.errors import TwinrunError, first_line
from twinrun.record.runs import CHECKPOINTS, atomic_path

CHECKPOINT_FORMAT = "twinrun-checkpoint/1"


class CheckpointError(TwinrunError, RuntimeError):
    """A checkpoint that cannot be used for resuming."""


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}.pt"


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep_last: int | None = None) -> Path:
    """Write ``state`` atomically as ``checkpoints/step-XXXXXXXX.pt``; keep only the newest ``keep_last``."""
    path = checkpoint_path(run_dir, step)
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    if keep_last:
        for old in sorted(path.parent.glob("step-*.pt"))[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the newest checkpoint of a run directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        folder = path / CHECKPOINTS if (path / CHECKPOINTS).is_dir() else path
        found = sorted(folder.glob("step-*.pt"))
        if not found:
            raise CheckpointError(f"training.resume_from={path} holds no checkpoints (checkpoints/step-*.pt)")
        return found[-1]
    if not path.is_file():
        raise CheckpointError(
            f"training.resume_from={path} does not exist; give a checkpoint or a run directory"
        )
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; one-line error for anything unusable."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load checkpoint {path}: {first_line(exc)}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a twinrun checkpoint ({CHECKPOINT_FORMAT})")
    return state
