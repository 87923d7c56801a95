"""Run a golden's case again: the recorded app and overrides, in a fresh process (as verify does)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from twinrun.golden.layout import GoldenError
from twinrun.verify.apps import check_overrides, prepare_workdir, resolve_app, run_once

# Thread settings that the recorded run had and a re-run should have too: the same case on the same
# machine then stays in the same environment class (bit-exact) instead of falling back to bands.
PINNED_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (None: removed) for the block; restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pinned(golden: dict[str, Any]) -> dict[str, str | None]:
    """The recorded values of :data:`PINNED_VARS` (None where the recorded run had none set)."""
    env_vars = (golden.get("environment") or {}).get("env_vars") or {}
    return {
        k: (str(env_vars[k]) if env_vars.get(k) is not None else None) for k in PINNED_VARS if k in env_vars
    }


def run_app(
    app: str,
    overrides: Sequence[str],
    directory: Path,
    *,
    env: Mapping[str, str | None] | None = None,
    progress: TextIO | None = sys.stderr,
    index: int = 1,
    total: int = 1,
) -> Path:
    """Run ``app overrides...`` once into ``<directory>/run-<index>``; return the run directory."""
    command = resolve_app(app)
    checked = check_overrides(list(overrides))
    with environment(env or {}):
        record = run_once(command, checked, index, total, directory, progress)
    return record.run_dir


def rerun(golden: dict[str, Any], workdir: str | Path | None, progress: TextIO | None = sys.stderr) -> Path:
    """Run the golden's case again with its recorded thread settings; the new run directory."""
    case = golden.get("case") or {}
    if not case.get("app"):
        raise GoldenError(
            "this golden names no app (it was recorded --from a run); check a run with --run RUN"
        )
    overrides = case.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise GoldenError("the golden's case.overrides must be a list of strings; record it again")
    directory = prepare_workdir(workdir, 1)
    return run_app(case["app"], overrides, directory, env=pinned(golden), progress=progress)
