"""The replay protocol of ``twinrun audit`` for loops that record through :class:`Recorder`.

An audit replays a few steps of a finished run in a fresh process of the run's own app. It tells the app
what to do through two environment variables (the reference trainers get overrides instead):

- ``TWINRUN_RESUME_FROM=<checkpoint>``: resume from this checkpoint (written by
  :meth:`Recorder.save_checkpoint`, or a Lightning ``.ckpt`` with ``TwinrunCallback``);
- ``TWINRUN_STOP_AFTER_STEP=<s>``: stop once step ``s`` (1-based, the trace's numbering) is done.

A Recorder checkpoint holds the user's own state (model, optimizer, generators: tensors and plain
containers, so it loads with ``weights_only=True``), the trace rows so far and every global RNG state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESUME_ENV = "TWINRUN_RESUME_FROM"
STOP_ENV = "TWINRUN_STOP_AFTER_STEP"
RECORDER_KIND = "recorder"


@dataclass(frozen=True)
class ReplayRequest:
    """What an audit asked of this process: where to resume (None: from the start), when to stop."""

    resume_from: Path | None = None
    stop_after: int | None = None


def replay_request(environ: Mapping[str, str] | None = None) -> ReplayRequest:
    """The request in ``environ`` (default: this process's environment); bad values are one-line errors."""
    from twinrun.errors import RecorderError

    environ = os.environ if environ is None else environ
    resume = environ.get(RESUME_ENV) or None
    stop_text = environ.get(STOP_ENV) or None
    stop = None
    if stop_text is not None:
        try:
            stop = int(stop_text)
        except ValueError:
            stop = -1
        if stop < 1:
            raise RecorderError(f"{STOP_ENV}={stop_text!r} is not a step number >= 1")
    return ReplayRequest(Path(resume) if resume else None, stop)


def checkpoint_state(state: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What :meth:`Recorder.save_checkpoint` writes: the user's state, the trace rows, the RNG states."""
    from twinrun.record.rng_state import capture_rng_state

    return {"kind": RECORDER_KIND, "state": dict(state), "trace": list(rows), "rng": capture_rng_state()}


def load_recorder_checkpoint(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(user state, trace rows, RNG states) of a Recorder checkpoint; one-line errors otherwise."""
    from twinrun.record.checkpoint import CheckpointError, load_checkpoint

    saved = load_checkpoint(path)
    if saved.get("kind") != RECORDER_KIND or not isinstance(saved.get("state"), dict):
        raise CheckpointError(f"{path} was not written by Recorder.save_checkpoint; resume from one that was")
    rows = saved.get("trace")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "step" in r for r in rows):
        raise CheckpointError(f"{path} is not usable: its trace rows are not a list of rows")
    return saved["state"], rows, saved["rng"]
