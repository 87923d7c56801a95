"""Divergence forensics over two ``trace.jsonl`` files: the first step where two runs part ways, and why."""

from __future__ import annotations

from typing import Any

from twinrun.compare.judge.sections import as_decimal, same_value
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, Divergence, TraceSection, plural

CONFIGURATION = "configuration"
DATA_ORDER = "data order"
RNG_STREAM = "rng stream"
COMPUTATION = "computation"
LENGTH = "length"
UNSEEDED_START = "unseeded start"  # the RNG state already differs before the first step


def _decimal(value: Any) -> str:
    """A ``float.hex`` loss as its decimal value; anything else as it is."""
    decimal = as_decimal(value)
    return repr(decimal) if decimal is not None else str(value)


def _rng_streams(row_a: dict[str, Any], row_b: dict[str, Any]) -> list[str]:
    rng_a, rng_b = row_a.get("rng") or {}, row_b.get("rng") or {}
    names = list(rng_a) + [k for k in rng_b if k not in rng_a]
    return [k for k in names if (k in rng_a) != (k in rng_b) or not same_value(rng_a.get(k), rng_b.get(k))]


def _differ(row_a: dict[str, Any], row_b: dict[str, Any], key: str) -> bool:
    """Typed: ``true`` is not ``1`` and ``2.0`` is not ``2`` (Python's ``==`` says they are)."""
    return (key in row_a) != (key in row_b) or not same_value(row_a.get(key), row_b.get(key))


def _first_parameter(
    rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], start: int
) -> tuple[Any, Any]:
    """(name, step) of the first parameter whose fingerprint differs, at or after row ``start``.

    Only rows where both runs traced parameters count; names follow RUN_A's trace key order, then
    names only RUN_B has.
    """
    for row_a, row_b in zip(rows_a[start:], rows_b[start:], strict=False):
        pa, pb = row_a.get("params"), row_b.get("params")
        if pa is None or pb is None or same_value(pa, pb):
            continue
        for name in [*pa, *(k for k in pb if k not in pa)]:
            if _differ(pa, pb, name):
                return name, row_a.get("step")
    return None, None


def _unseeded_start(row_a: dict[str, Any], row_b: dict[str, Any], streams: list[str]) -> bool:
    """Whether first rows that differ in RNG state show an unseeded start rather than one extra draw.

    An unseeded run starts every stream elsewhere (or, when data order comes from the global RNG, also a
    different first batch); one extra draw before the first step moves one stream and leaves the batch.
    """
    recorded = set(row_a.get("rng") or {}) & set(row_b.get("rng") or {})
    if not recorded:
        return False
    return _differ(row_a, row_b, "batch") or (len(recorded) > 1 and set(streams) >= recorded)


def find_divergence(
    rows_a: list[dict[str, Any]],
    rows_b: list[dict[str, Any]],
    *,
    config_differs: bool = False,
    config_keys: list[str] | None = None,
) -> Divergence | None:
    """The first step where the traces differ, with its most likely cause; None if they agree.

    The cause is decided in the order the inputs of a step are made: a configuration difference
    explains everything after it; else an RNG state that differs before the very first step is an
    unseeded start (whatever the batch); else a different ``batch`` digest means the data order differs; else
    a different RNG digest before the step means a random stream was consumed differently; else the
    same inputs gave different outputs (loss or parameters): the computation itself differs (kernels,
    threads, hardware). Rows are matched by position; a trace that stops early diverges at the first
    step it lacks (cause "length" unless the configs differ).
    """
    config_note = ""
    if config_differs:
        keys = ", ".join((config_keys or [])[:3])
        config_note = "; the configurations differ" + (f" ({keys})" if keys else "")
    for index, (row_a, row_b) in enumerate(zip(rows_a, rows_b, strict=False)):
        if same_value(row_a, row_b):
            continue
        step, epoch = row_a.get("step"), row_a.get("epoch")
        streams = _rng_streams(row_a, row_b)
        parameter, parameter_step = _first_parameter(rows_a, rows_b, index)
        what: list[str] = []
        if _differ(row_a, row_b, "step"):
            cause = CONFIGURATION if config_differs else LENGTH
            what.append(f"step numbers differ ({row_a.get('step')} vs {row_b.get('step')})")
        elif config_differs:
            cause = CONFIGURATION
        elif index == 0 and streams and _unseeded_start(row_a, row_b, streams):
            # Before the first step nothing but the start can have drawn differently: the model's
            # initial weights and the first batch come from unseeded draws. Not "data order".
            cause = UNSEEDED_START
            what.append(
                "the runs start from different random states (the model's initial weights and anything "
                "else drawn before training may differ); seed before the model is built"
            )
        elif _differ(row_a, row_b, "batch") or _differ(row_a, row_b, "epoch"):
            cause = DATA_ORDER
        elif streams:
            cause = RNG_STREAM
        else:
            cause = COMPUTATION
        if _differ(row_a, row_b, "batch"):
            what.append("the batch's sample indices differ")
        if streams:
            what.append(f"RNG state before the step differs ({', '.join(streams)})")
        if _differ(row_a, row_b, "loss"):
            what.append(f"loss differs: {_decimal(row_a.get('loss'))} vs {_decimal(row_b.get('loss'))}")
        if parameter is not None:
            what.append(f"parameter {parameter} differs at step {parameter_step}")
        detail = f"at step {step} (epoch {epoch}): " + ("; ".join(what) or "trace rows differ") + config_note
        return Divergence(step, epoch, cause, parameter, parameter_step, streams, detail)
    if len(rows_a) == len(rows_b):
        return None
    longer, label = (rows_a, "RUN_B") if len(rows_a) > len(rows_b) else (rows_b, "RUN_A")
    common = min(len(rows_a), len(rows_b))
    missing = longer[common]
    last = f"after step {longer[common - 1].get('step')}" if common else "before its first step"
    detail = f"{label}'s trace ends {last}; the other continues to step {longer[-1].get('step')}{config_note}"
    cause = CONFIGURATION if config_differs else LENGTH
    return Divergence(missing.get("step"), missing.get("epoch"), cause, None, None, [], detail)


def trace_section(
    rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], div: Divergence | None
) -> TraceSection:
    """The trace section's verdict line; the details live in the top-level divergence."""
    sec = TraceSection(steps_a=len(rows_a), steps_b=len(rows_b))
    if div is None:  # find_divergence found every row equal and the lengths too
        sec.status, sec.summary = IDENTICAL, f"{plural(len(rows_a), 'step')} identical"
    else:
        sec.status, sec.summary = DIFFERENT, f"diverges at {div.where}"
    return sec
