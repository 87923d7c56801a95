"""The comparisons of the small artifacts: logs, metrics and environment (and shared helpers).

:mod:`twinrun.compare.runs` puts them together with the config and weights sections into a report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypeVar

from twinrun.compare.read.run_reader import RunDir, UnusableRunError, read_json, read_jsonl
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    NOT_COMPARED,
    EnvironmentSection,
    LineDiff,
    LogDiff,
    MetricsSection,
    Mismatch,
    RowDiff,
    Section,
    ValueDiff,
    plural,
    shorten,
)
from twinrun.config import VOLATILE_PATTERNS, flatten, is_volatile
from twinrun.record import runs

S = TypeVar("S", bound=Section)

# Metrics keys that measure time rather than learning; excluded like volatile config keys.
METRICS_VOLATILE = (
    *VOLATILE_PATTERNS,
    "time",
    "time_*",
    "*duration*",
    "*elapsed*",
    "*seconds*",
    "*_sec",
    "*_s",
    "*per_sec*",
    "*throughput*",
    "wall*",
)

# env.json keys whose difference voids the expectation of bit-identity. PyTorch promises identical
# results only for the same release, platform and device; torchvision decodes and transforms the data;
# thread counts change reduction order; determinism flags choose kernels; the dataset is the input;
# env_vars (CUBLAS_WORKSPACE_CONFIG, OMP_NUM_THREADS, PYTHONHASHSEED...) are recorded because they
# change kernels or ordering. Not decisive: python, hydra, omegaconf, numpy (its legacy RandomState
# stream is frozen across versions), twinrun and git: they are shown, since a code change can explain a
# difference, but they do not by themselves make identical results impossible. CUDA_VISIBLE_DEVICES only
# selects among devices whose name is compared anyway.
DECISIVE_ENV = (
    "torch",
    "torchvision",
    "cuda",
    "cudnn",
    "device",
    "device_name",
    "platform",
    "machine",
    "cpu",
    "threads",
    "determinism",
    "dataset",
    "env_vars",
)
# PYTHONHASHSEED: verify gives each run its own on purpose (a run that depends on str hashing must
# show it), so its values differing is what verify does, not a reason to expect different results.
NON_DECISIVE_ENV = ("env_vars.CUDA_VISIBLE_DEVICES", "env_vars.PYTHONHASHSEED")


ABSENT = "(absent)"  # the value shown for a key that only the other run has


def differing_keys(fa: dict[str, Any], fb: dict[str, Any]) -> list[str]:
    """Keys (A's order, then B's own) whose values differ, a key only one side has included."""
    keys = [*fa, *(k for k in fb if k not in fa)]
    return [k for k in keys if (k in fa) != (k in fb) or not same_value(fa.get(k), fb.get(k))]


def same_value(a: Any, b: Any) -> bool:
    """Equal including type: ``1``, ``1.0`` and ``True`` are three different config values."""
    return json.dumps(a, sort_keys=True, default=_typed) == json.dumps(b, sort_keys=True, default=_typed)


def _typed(value: Any) -> str:
    """Values JSON has no type for keep their type: a RawNumber 1e999 is not the string "1e999"."""
    return f"<{type(value).__name__}> {value!r}"


def mark_missing(name: str, has_a: bool, has_b: bool, section: S) -> S:
    """Mark ``section`` "not compared" because one run or both lack ``name``."""
    section.status = NOT_COMPARED
    section.summary = (
        f"neither run has {name}"
        if not (has_a or has_b)
        else f"only {'RUN_A' if has_a else 'RUN_B'} has {name}"
    )
    return section


def diff_lines(la: list[str], lb: list[str]) -> tuple[int, LineDiff | None]:
    """(lines that differ, the first of them) of two line lists compared position by position."""
    count, first = 0, None
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x != y:
            count += 1
            first = first or LineDiff(i + 1, x, y)
    return count, first


def line_count(path: Path) -> int:
    """The lines of a file (a last line without its newline counts), read in chunks."""
    count = last = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            count, last = count + chunk.count(b"\n"), chunk[-1]
    return count + (1 if last and last not in b"\n\r" else 0)


def raw_log_diff(pa: Path, pb: Path, diff: LogDiff) -> LogDiff:
    """``diff`` naming the first line whose raw text differs (the bytes, not the normalized lines)."""
    la = pa.read_bytes().decode("utf-8", "replace").splitlines(keepends=True)
    lb = pb.read_bytes().decode("utf-8", "replace").splitlines(keepends=True)
    index = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    shown = [shorten(lines[index].rstrip("\r\n"), 4096) if index < len(lines) else None for lines in (la, lb)]
    return LogDiff(diff.name_a, diff.name_b, diff.lines_a, diff.lines_b, 1, LineDiff(index + 1, *shown))


_HEX_FLOAT = re.compile(
    r"^[-+]?(0x[0-9a-f]+(\.[0-9a-f]*)?p[-+]?\d+|inf|infinity|nan)$|^nan:0x[0-9a-f]{16}$", re.IGNORECASE
)


def as_decimal(value: Any) -> float | None:
    """The decimal value of an exact float (``float.hex``, or ``nan:0x...`` of ``runs.exact``); None for
    anything else."""
    if isinstance(value, str) and _HEX_FLOAT.match(value):
        try:
            return runs.from_exact(value)
        except ValueError:  # a nan:0x... whose bits are no NaN
            return None
    return None


def _comparable_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flatten(row).items() if not is_volatile(k, METRICS_VOLATILE)}


def compare_metrics(a: RunDir, b: RunDir) -> MetricsSection:
    """``metrics.jsonl`` row by row, exactly; the first differing row names its keys."""
    if not (a.has(runs.METRICS) and b.has(runs.METRICS)):
        return mark_missing(runs.METRICS, a.has(runs.METRICS), b.has(runs.METRICS), MetricsSection())
    rows_a, rows_b = read_jsonl(a, runs.METRICS), read_jsonl(b, runs.METRICS)
    sec = MetricsSection(rows_a=len(rows_a), rows_b=len(rows_b))
    for index, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=False), start=1):
        fa, fb = _comparable_row(ra), _comparable_row(rb)
        keys = differing_keys(fa, fb)
        if not keys:
            continue
        sec.differing_rows += 1
        if sec.first is None:
            # "approx.x" repeats "x" in decimal: list it only when the exact value does not differ.
            keys = [k for k in keys if not (k.startswith("approx.") and k.removeprefix("approx.") in keys)]
            diffs = [
                ValueDiff(k, a_value, b_value, as_decimal(a_value), as_decimal(b_value))
                for k in keys
                for a_value, b_value in [(fa.get(k, ABSENT), fb.get(k, ABSENT))]
            ]
            sec.first = RowDiff(index, ra.get("epoch"), ra.get("step"), diffs)
    length_differs = len(rows_a) != len(rows_b)
    sec.status = DIFFERENT if sec.first or length_differs else IDENTICAL
    parts = []
    if sec.first:
        names = ", ".join(d.key for d in sec.first.keys[:3]) + (" ..." if len(sec.first.keys) > 3 else "")
        parts.append(f"row {sec.first.row} (epoch {sec.first.epoch}, step {sec.first.step}) differs: {names}")
    if length_differs:
        parts.append(f"RUN_A has {plural(len(rows_a), 'row')}, RUN_B {len(rows_b)}")
    sec.summary = "; ".join(parts) if parts else f"{plural(len(rows_a), 'row')} identical"
    return sec


def _decisive(key: str) -> bool:
    return key not in NON_DECISIVE_ENV and key.split(".", 1)[0] in DECISIVE_ENV


def compare_environments(a: RunDir, b: RunDir) -> EnvironmentSection:
    """``env.json`` key by key; never decides the verdict, says whether bit-identity is expected.

    See ``DECISIVE_ENV`` for the keys whose difference voids that expectation and why.
    """
    sec = EnvironmentSection(affects_verdict=False)
    if not (a.has(runs.ENV) and b.has(runs.ENV)):
        mark_missing(runs.ENV, a.has(runs.ENV), b.has(runs.ENV), sec)
        sec.summary += "; cannot tell whether bit-identity is expected"
        return sec
    ea, eb = read_json(a, runs.ENV), read_json(b, runs.ENV)
    for run, env in ((a, ea), (b, eb)):
        if not isinstance(env, dict):
            raise UnusableRunError(
                f"{run.show(runs.ENV)} must hold a JSON object; regenerate it by re-running the training"
            )
    fa, fb = flatten(ea), flatten(eb)
    sec.differing = [Mismatch(k, fa.get(k, ABSENT), fb.get(k, ABSENT)) for k in differing_keys(fa, fb)]
    sec.decisive = [m.name for m in sec.differing if _decisive(m.name)]
    sec.bit_identity_expected = not sec.decisive
    sec.status = DIFFERENT if sec.differing else IDENTICAL
    if sec.decisive:
        shown = ", ".join(sec.decisive[:5]) + (" ..." if len(sec.decisive) > 5 else "")
        sec.summary = f"bit-identity not expected: {shown}"
    elif sec.differing:
        sec.summary = (
            f"bit-identity expected (differs only in {', '.join(m.name for m in sec.differing[:5])})"
        )
    else:
        sec.summary = "same environment; bit-identity expected"
    return sec
