"""The first op whose output differs between two per-op records of one step (``ops/step-<s>.jsonl``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinrun.compare.read.run_reader import UnusableRunError


@dataclass
class OpDivergence:
    """Where two replays of one step part: the first op (by index) whose name or outputs differ."""

    step: int
    index: int | None  # None: the records are identical
    identical_before: int  # ops before it, identical by construction of "first"
    ops_a: int
    ops_b: int
    op_a: dict[str, Any] | None = None
    op_b: dict[str, Any] | None = None

    @property
    def found(self) -> bool:
        return self.index is not None

    def describe(self) -> str:
        """``first differing op: aten::addmm in encoder (forward), src/.../vae.py:31``."""
        if self.index is None:
            return f"step {self.step}: all {self.ops_a} ops identical in both replays"
        op = self.op_a or self.op_b or {}
        if self.op_a is None or self.op_b is None:
            side = "B" if self.op_a is None else "A"
            return (
                f"step {self.step}: run {side} runs more ops; its op {self.index} is {_where(op)} "
                f"({self.identical_before} ops identical before it)"
            )
        if self.op_a.get("op") != self.op_b.get("op"):
            return (
                f"step {self.step}: the op sequences part at op {self.index}: A runs {_where(self.op_a)}, "
                f"B runs {_where(self.op_b)} ({self.identical_before} ops identical before it)"
            )
        return (
            f"step {self.step}, first differing op: {_where(op)} "
            f"(op {self.index}; {self.identical_before} ops identical before it)"
        )


def _where(op: dict[str, Any]) -> str:
    text = f"{op.get('op')}"
    if op.get("module"):
        text += f" in {op['module']}"
    text += f" ({op.get('phase')})"
    if op.get("source"):
        text += f", {op['source']}"
    return text


def read_ops(path: str | Path) -> list[dict[str, Any]]:
    """The rows of one op record; :class:`UnusableRunError` (one line, naming it) for bad input."""
    path = Path(path)
    rows = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise UnusableRunError(f"{path}: line {number} is not a JSON object; re-run --explain")
                rows.append(row)
    except OSError as exc:
        raise UnusableRunError(f"{path}: cannot read the op record ({exc.strerror})") from None
    except ValueError as exc:
        raise UnusableRunError(f"{path}: not JSON lines ({exc}); re-run --explain") from None
    return rows


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row.get("op"), row.get("overload"), row.get("outputs"), row.get("shapes"), row.get("dtypes"))


def first_differing_op(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], step: int) -> OpDivergence:
    """Compare two records op by op: name, overload, output digests, shapes, dtypes."""
    for index, (a, b) in enumerate(zip(rows_a, rows_b, strict=False)):
        if _key(a) != _key(b):
            return OpDivergence(step, index, index, len(rows_a), len(rows_b), a, b)
    shorter = min(len(rows_a), len(rows_b))
    if len(rows_a) != len(rows_b):
        extra_a = rows_a[shorter] if len(rows_a) > shorter else None
        extra_b = rows_b[shorter] if len(rows_b) > shorter else None
        return OpDivergence(step, shorter, shorter, len(rows_a), len(rows_b), extra_a, extra_b)
    return OpDivergence(step, None, shorter, len(rows_a), len(rows_b))
