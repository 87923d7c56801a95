"""``--explain``: when two runs part on computation at step s, replay step s of each twin and name the op.

Each twin is replayed from its nearest checkpoint before step s (or from the start when it has none),
in its own environment (the same app, overrides and hash seed as the twin), with ``+explain_step=s``:
the trainer records every aten op of step s (:mod:`twinrun.record.ops`) into ``ops/step-<s>.jsonl`` and
stops after it. The replayed step must be the recorded step (same loss, same parameter fingerprints as
the twin's trace row), else the answer would be about another step: that is reported, not an op.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from twinrun.compare.judge.ops import OpDivergence, first_differing_op, read_ops
from twinrun.record.ops import ops_path
from twinrun.record.runs import CHECKPOINTS, TRACE, write_bytes

_CHECKPOINT_NAME = re.compile(r"step-(\d+)\.pt")
_ROW_PARTS = {
    "batch": "batch indices",
    "rng": "RNG states",
    "loss": "loss bits",
    "params": "parameter fingerprints",
}
# Keys the replay sets itself: a twin's own value for them is dropped (Hydra refuses a key given twice).
_REPLAY_KEYS = {"explain_step", "training.max_steps", "training.resume_from", "hydra.run.dir"}
# (twin index, twin run dir, extra overrides) -> the replay's run directory
Replayer = Callable[[int, Path, list[str]], Path]


@dataclass
class Replay:
    """One twin's replay of the divergent step."""

    twin: Path
    run_dir: Path
    from_step: int  # the checkpoint's step (0: from the start)
    seconds: float
    problem: str | None = None  # why it cannot answer (does not reproduce, recorded no ops)


@dataclass
class ExplainResult:
    step: int
    replays: list[Replay] = field(default_factory=list)
    ops: OpDivergence | None = None

    @property
    def problem(self) -> str | None:
        return next((r.problem for r in self.replays if r.problem), None)

    def lines(self) -> list[str]:
        out = []
        for name, replay in zip("AB", self.replays, strict=False):
            start = f"checkpoint at step {replay.from_step}" if replay.from_step else "the start"
            out.append(
                f"replay {name}: step {self.step} from {start} "
                f"({self.step - replay.from_step} steps) in {replay.seconds:.2f}s"
            )
        out += [r.problem for r in self.replays if r.problem]
        if self.ops is not None:
            out.append(self.ops.describe())
        return out

    def to_dict(self) -> dict[str, Any]:
        ops = self.ops
        return {
            "step": self.step,
            "problem": self.problem,
            "first_differing_op": None
            if ops is None or not ops.found
            else {"index": ops.index, "a": ops.op_a, "b": ops.op_b, "identical_before": ops.identical_before},
            "summary": self.lines()[-1] if self.lines() else "",
            "replays": [
                {
                    "twin": str(r.twin),
                    "run_dir": str(r.run_dir),
                    "from_step": r.from_step,
                    "seconds": r.seconds,
                }
                for r in self.replays
            ],
        }


def nearest_checkpoint(run_dir: Path, step: int) -> tuple[Path | None, int]:
    """The newest ``checkpoints/step-N.pt`` with N < ``step``, and N (None, 0: replay from the start)."""
    best: tuple[Path | None, int] = (None, 0)
    for path in (Path(run_dir) / CHECKPOINTS).glob("step-*.pt"):
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match and best[1] < int(match.group(1)) < step:
            best = (path, int(match.group(1)))
    return best


def replay_overrides(step: int, checkpoint: Path | None) -> list[str]:
    """What turns a twin's own command into the replay of ``step``."""
    extra = [f"+explain_step={step}", f"training.max_steps={step}"]
    if checkpoint is not None:
        extra.append(f"training.resume_from={checkpoint}")
    return extra


def _trace_row(run_dir: Path, step: int) -> dict[str, Any] | None:
    try:
        with (run_dir / TRACE).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    if isinstance(row, dict) and row.get("step") == step:
                        return row
    except (OSError, ValueError):
        return None
    return None


def reproduction_problem(twin: Path, replay: Path, step: int) -> str | None:
    """None when the replay's trace row of ``step`` matches the twin's (loss, RNG, batch, parameters)."""
    recorded, replayed = _trace_row(twin, step), _trace_row(replay, step)
    if recorded is None or replayed is None:
        where = "the run" if recorded is None else "the replay"
        return f"replay does not reproduce step {step}: {where} has no trace row for it"
    for key, what in _ROW_PARTS.items():
        if key in recorded and key in replayed and recorded[key] != replayed[key]:
            return f"replay does not reproduce step {step}: its {what} differ from the run's trace row"
    return None


def explain_pair(run_a: Path, run_b: Path, step: int, replay: Replayer) -> ExplainResult:
    """Replay ``step`` of both twins and name the first op whose output differs."""
    result = ExplainResult(step)
    for index, twin in enumerate((Path(run_a), Path(run_b))):
        checkpoint, from_step = nearest_checkpoint(twin, step)
        started = time.perf_counter()
        run_dir = replay(index, twin, replay_overrides(step, checkpoint))
        seconds = time.perf_counter() - started
        record = ops_path(run_dir, step)
        problem = reproduction_problem(twin, run_dir, step)
        if not record.is_file():
            problem = f"the replay recorded no ops for step {step} (does the app train with twinrun's fit?)"
        else:  # kept beside the run, so two machines' replays can be compared later
            write_bytes(ops_path(twin, step), record.read_bytes())
        result.replays.append(Replay(twin, run_dir, from_step, seconds, problem))
    records = [ops_path(r.run_dir, step) for r in result.replays]
    if all(path.is_file() for path in records):
        # Also when a replay does not reproduce its twin's step: the op where the replays part is then
        # the nondeterministic one (a replay of the same step came out different).
        result.ops = first_differing_op(read_ops(records[0]), read_ops(records[1]), step)
    return result


def command_replayer(
    command: Any,
    overrides: Sequence[Sequence[str]],
    indices: Sequence[int],
    workdir: Path,
    timeout: float | None = None,
    shown: TextIO | None = None,
) -> Replayer:
    """Replays in fresh processes: each twin's own command, overrides and run index (its hash seed).

    Each replay's command line is written to ``shown`` (stderr by default) before it starts, so a
    person sees what runs.
    """
    from twinrun.verify.apps import app_argv, run_once

    def replay(position: int, twin: Path, extra: list[str]) -> Path:
        own = [o for o in overrides[position] if o.split("=", 1)[0].lstrip("+~") not in _REPLAY_KEYS]
        index = indices[position]
        argv = app_argv(command, [*own, *extra], workdir / f"replay-{index}")
        out = sys.stderr if shown is None else shown
        out.write(f"replay of {twin}: PYTHONHASHSEED={index} {shlex.join(argv)}\n")
        out.flush()
        record = run_once(
            command, [*own, *extra], index, len(indices), workdir, kind="replay", timeout=timeout
        )
        return record.run_dir

    return replay
