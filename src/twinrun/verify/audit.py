"""``twinrun audit RUN``: verify a long run without running it twice (the pure core).

An audit picks *segments* of a finished run (a checkpoint at step c and the k steps after it; the
first segment starts from the beginning, at c = 0), replays each in a fresh process of the run's own app
(:mod:`twinrun.verify.audit_run`) and compares the replayed trace rows of steps c+1..c+k with the rows
the run recorded, by the twin rules (:func:`twinrun.compare.judge.divergence.find_divergence`). The first and
the last segment are always replayed; the others are drawn with ``--seed``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun.compare.judge.divergence import find_divergence
from twinrun.compare.report.model import Divergence
from twinrun.record.runs import CHECKPOINTS

TRAINER, RECORDER, LIGHTNING = "trainer", "recorder", "lightning"
_STEP_FILE = re.compile(r"step-(\d+)\.pt")
_LIGHTNING_STEP = re.compile(r"(?:^|[^a-z])step[=_-]?(\d+)(?:\D|$)")
_MAX_CKPT_SEARCH = 10_000  # files looked at under a run directory for Lightning checkpoints


@dataclass(frozen=True)
class Segment:
    """Replay steps ``start + 1 .. stop``: from ``checkpoint`` (written after step ``start``), or from
    the beginning when ``start`` is 0."""

    start: int
    stop: int
    checkpoint: Path | None

    @property
    def steps(self) -> int:
        return self.stop - self.start

    @property
    def label(self) -> str:
        return f"steps {self.start + 1}-{self.stop}"


@dataclass
class SegmentResult:
    """One replayed segment: where it went, how long it took, and the first row that differs."""

    segment: Segment
    run_dir: Path
    output: Path
    seconds: float
    divergence: Divergence | None = None

    @property
    def reproduced(self) -> bool:
        return self.divergence is None


@dataclass
class AuditResult:
    """Every replayed segment of one audit and the verdict over them."""

    run: Path
    app: str
    kind: str
    workdir: Path
    total_steps: int
    steps: int  # k: steps per segment asked for
    seed: int
    segments: list[SegmentResult] = field(default_factory=list)
    explain: Any = None  # ExplainResult or a line saying why there is none

    @property
    def reproduced(self) -> bool:
        return all(s.reproduced for s in self.segments)

    @property
    def exit_code(self) -> int:
        return 0 if self.reproduced else 1

    @property
    def replayed_steps(self) -> int:
        return sum(s.segment.steps for s in self.segments)

    @property
    def fraction(self) -> float:
        return self.replayed_steps / self.total_steps if self.total_steps else 0.0

    @property
    def first_divergent(self) -> SegmentResult | None:
        """The failing segment whose divergent step comes first in the run."""
        failed = [s for s in self.segments if s.divergence is not None]
        return min(failed, key=lambda s: _as_int(s.divergence.step), default=None)  # type: ignore[union-attr]

    @property
    def verdict(self) -> str:
        n, k = len(self.segments), self.steps
        if self.reproduced:
            return (
                f"reproduced ({n} segment{'s' * (n != 1)}, {k} step{'s' * (k != 1)} each, "
                f"{100 * self.fraction:.2g}% of the run replayed)"
            )
        first = self.first_divergent
        assert first is not None and first.divergence is not None
        div = first.divergence
        parameter = f", parameter {div.parameter}" if div.parameter else ""
        return (
            f"not reproduced: step {div.step} ({div.cause}{parameter}) in the replay of {first.segment.label}"
        )


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 1 << 62


def checkpoint_steps(run_dir: Path, kind: str) -> dict[int, Path]:
    """Step -> checkpoint: ``checkpoints/step-N.pt`` (trainers, Recorder loops), or for Lightning any
    ``*.ckpt`` whose name carries the step (``step=N.ckpt``, ``epoch=1-step=40.ckpt``)."""
    found: dict[int, Path] = {}
    if kind != LIGHTNING:
        for path in (run_dir / CHECKPOINTS).glob("step-*.pt"):
            match = _STEP_FILE.fullmatch(path.name)
            if match:
                found[int(match.group(1))] = path
        return found
    for number, path in enumerate(sorted(run_dir.rglob("*.ckpt"))):
        if number >= _MAX_CKPT_SEARCH:
            break
        match = _LIGHTNING_STEP.search(path.stem)
        if match and path.is_file() and not path.is_symlink():
            found.setdefault(int(match.group(1)), path)
    return found


def candidate_segments(checkpoints: dict[int, Path], total_steps: int, steps: int) -> list[Segment]:
    """Every segment an audit may replay: from the start, and from each checkpoint before the last step."""
    starts = [0, *sorted(s for s in checkpoints if 0 < s < total_steps)]
    return [Segment(s, min(s + steps, total_steps), checkpoints.get(s)) for s in starts]


def choose_segments(candidates: list[Segment], count: int, seed: int) -> list[Segment]:
    """The first and the last candidate, and ``count - 2`` others drawn with ``seed``, in run order."""
    if count >= len(candidates):
        return list(candidates)
    if count <= 1:
        return candidates[:1]
    middle = random.Random(seed).sample(candidates[1:-1], count - 2)
    return sorted([candidates[0], *middle, candidates[-1]], key=lambda s: s.start)


def _comparable(row: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """A row without the parameter fingerprints when the other row has none (``params_every`` > 1: the
    replay's last step always carries them, the run's row of that step may not)."""
    return {k: v for k, v in row.items() if k != "params" or "params" in other}


def segment_divergence(
    recorded: list[dict[str, Any]], replayed: list[dict[str, Any]], segment: Segment
) -> Divergence | None:
    """The first step of ``segment`` where the replay's trace row differs from the run's (None: all equal)."""

    def window(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            r for r in rows if isinstance(r.get("step"), int) and segment.start < r["step"] <= segment.stop
        ]

    ours, theirs = window(recorded), window(replayed)
    pairs = list(zip(ours, theirs, strict=False))
    ours = [_comparable(a, b) for a, b in pairs] + ours[len(pairs) :]
    theirs = [_comparable(b, a) for a, b in pairs] + theirs[len(pairs) :]
    return find_divergence(ours, theirs)
