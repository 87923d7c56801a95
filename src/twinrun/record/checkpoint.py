"""Resumable checkpoints: model, optimizer, scheduler, every RNG state and the data position.

Files hold only tensors and plain containers, so they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from twinrun.errors import TwinrunError, first_line
from twinrun.record.runs import CHECKPOINTS, write_bytes

CHECKPOINT_FORMAT = "twinrun-checkpoint/1"
# The data position's fields and the least value each may hold (see trainers.loop.Position).
_POSITION_MINIMUM = {"epoch": 1, "batch": 0, "step": 0, "epoch_samples": 0}


class CheckpointError(TwinrunError, RuntimeError):
    """A checkpoint that cannot be used for resuming."""


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}.pt"


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep_last: int | None = None) -> Path:
    """Write ``state`` atomically as ``checkpoints/step-XXXXXXXX.pt``; keep only the newest ``keep_last``."""
    if keep_last is not None and (type(keep_last) is not int or keep_last < 1):
        # [:-keep_last] with keep_last <= 0 would delete the checkpoint just written
        raise ValueError(f"keep_last={keep_last!r}: give an integer >= 1 or None")
    path = checkpoint_path(run_dir, step)
    # Serialised in memory, written by Python: torch's own writer reports a full disk or a file-size
    # limit as "enforce fail ... unexpected pos", Python as ENOSPC/EFBIG (one line, see write_bytes).
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    write_bytes(path, buffer.getbuffer())
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
    _check_values(path, state)
    return state


def _check_values(path: Path, state: dict[str, Any]) -> None:
    """Refuse values a crafted (but loadable) file could hold where the loop expects counts."""
    position = state.get("position")
    if position is not None and not isinstance(position, dict):
        raise CheckpointError(f"{path} is not usable: position is a {type(position).__name__}, not a mapping")
    for key, least in _POSITION_MINIMUM.items():
        value = (position or {}).get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise CheckpointError(
                f"{path} is not usable: position.{key}={value!r} is not an integer >= {least}; "
                "resume from a checkpoint twinrun wrote"
            )
    loss_sum = (position or {}).get("epoch_loss_sum", 0.0)
    if isinstance(loss_sum, bool) or not isinstance(loss_sum, int | float):
        raise CheckpointError(f"{path} is not usable: position.epoch_loss_sum={loss_sum!r} is not a number")
    metrics = state.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(row, dict) for row in metrics):
        raise CheckpointError(f"{path} is not usable: metrics is not a list of objects")
