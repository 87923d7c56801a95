"""verify's work directory: a new ``twinrun-verify-<timestamp>`` in the temp dir, or the user's
``--workdir``; removed after identical runs unless the user named it or asked to keep it."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from pathlib import Path

from twinrun.verify.resolve import VerifyError


def new_workdir(parent: Path | None = None) -> Path:
    """A new ``twinrun-verify-<timestamp>`` directory under the system temp dir."""
    parent = parent or Path(tempfile.gettempdir())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in itertools.count(1):
        candidate = parent / (f"twinrun-verify-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def prepare_workdir(workdir: str | Path | None, runs: int, kind: str = "run") -> Path:
    """The work directory: new, or the given one when it holds no ``<kind>-<i>`` of an earlier verify."""
    if workdir is None:
        return new_workdir()
    path = Path(workdir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise VerifyError(f"--workdir {workdir} is a file; give a directory")
    stale = [
        p.name
        for i in range(1, runs + 1)
        for p in (path / f"{kind}-{i}", path / f"{kind}-{i}.out")
        if p.exists()
    ]
    if stale:
        raise VerifyError(f"--workdir {workdir} already holds {stale[0]}; give an empty or new directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def clean_up(workdir: Path, exit_code: int, kept: bool) -> str:
    """Remove verify's own temp work directory after identical runs; the line that says what happened.

    Runs that differ (or failed: those never get here) stay for inspection, and so does a directory the
    user named (``--workdir``) or asked to keep (``--keep``).
    """
    if kept or exit_code != 0:
        return f"run directories kept in {workdir}\n"
    shutil.rmtree(workdir, ignore_errors=True)
    return f"run directories removed ({workdir}): the runs are identical; --keep keeps them\n"
