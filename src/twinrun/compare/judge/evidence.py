"""No verdict without evidence: "identical" needs at least one compared file that training produced.

Two runs that left only Hydra's own record (``.hydra/``, an empty job log, a resolved config) are
identical whatever the training did: they are *unverified*, exit 2, with one line saying what to write
where. Compare, verify, sweeps, DDP and the pytest fixtures all reach this rule through
:func:`twinrun.compare.runs.compare_runs`, the one place it is applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from twinrun.compare.read import artifacts as kinds
from twinrun.compare.read.artifacts import Artifact
from twinrun.compare.read.run_reader import HYDRA_DIR, UnusableRunError
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, FileEntry
from twinrun.record import runs

# Inputs and context, not outputs of training: a run that left only these proved nothing.
NOT_EVIDENCE_KINDS = (kinds.ENVIRONMENT, kinds.MANIFEST)
NOT_EVIDENCE_FILES = (runs.RESOLVED_CONFIG,)
# Lines Hydra itself writes into a job log (``[2024-01-01 10:00:00,000][HYDRA] ...``, its launchers).
_HYDRA_LINE = re.compile(r"^\s*(\[[^\]]*\])?\s*\[(HYDRA|hydra[\w.]*)\]")
MAX_LOG_BYTES = 1 << 20  # enough to find one line of the app's own; logs are compared elsewhere anyway

MISSING = (
    "{runs} left nothing that training produced ({left}): no weights, tensors, metrics, trace or log "
    "line to compare, so there is no verdict; save into the run directory "
    "(HydraConfig.get().runtime.output_dir), e.g. torch.save(model.state_dict(), "
    "os.path.join(output_dir, 'model.pt')), and log through Python's logging"
)


def is_evidence(entry: FileEntry, artifact: Artifact | None) -> bool:
    """Whether ``entry`` is a compared file that training produced (not Hydra's, not context)."""
    if entry.verdict not in (IDENTICAL, DIFFERENT) or not entry.decisive:
        return False
    if entry.path.startswith(HYDRA_DIR + "/") or entry.path in NOT_EVIDENCE_FILES:
        return False
    if entry.kind in NOT_EVIDENCE_KINDS:
        return False
    if entry.kind == kinds.LOG:
        return artifact is not None and any(app_logged(path) for path in artifact.a + artifact.b)
    return True


def app_logged(path: Path) -> bool:
    """Whether a log file holds at least one non-blank line that Hydra did not write itself."""
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_LOG_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    return any(line.strip() and not _HYDRA_LINE.match(line) for line in text.splitlines())


def check_evidence(entries: Iterable[FileEntry], found: Iterable[Artifact], verdict: str) -> None:
    """Raise :class:`UnusableRunError` when two runs called identical compared no file of training."""
    if verdict != IDENTICAL:
        return  # a difference is evidence enough
    listed = list(entries)
    by_key = {art.key: art for art in found}
    if any(is_evidence(entry, by_key.get(entry.path)) for entry in listed):
        return
    left = sorted({entry.path.split("/")[0] + ("/" if "/" in entry.path else "") for entry in listed})
    shown = ", ".join(left[:4]) + (" ..." if len(left) > 4 else "") if left else "no files"
    raise UnusableRunError(MISSING.format(runs="both runs", left=f"only {shown}"))
