"""What every per-kind comparer is given: its own module, so the comparers and the kinds that dispatch to
them import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

from twinrun.compare.read.run_reader import PathMask, RunDir


@dataclass
class Context:
    """What every comparer needs: the runs, the path mask, the tolerances and the pickle policy."""

    a: RunDir
    b: RunDir
    mask: PathMask
    atol: float | None = None
    rtol: float | None = None
    trust_pickle: bool = False
