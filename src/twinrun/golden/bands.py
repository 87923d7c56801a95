"""Tolerance bands: how far a run in another environment may stray from the golden, and calibration.

A value passes when ``|current - golden| <= max(atol, rtol * |golden|, measured)``. The defaults
(``DEFAULT_RTOL``) hold until ``twinrun golden calibrate`` measures the spread of N runs across seeds
(and thread counts): the measured tolerance of a step (of a metric) is ``MULTIPLE`` times the range
(max - min) of that step's loss (that metric) over the calibration runs and the golden itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from twinrun.compare.judge.sections import as_decimal

DEFAULT_RTOL = 0.02  # 2 % of the golden value: far above thread/CPU rounding, far below a real change
MULTIPLE = 2.0  # calibrated band = MULTIPLE x the observed range across runs


def default_bands() -> dict[str, Any]:
    """The bands a golden starts with, before any calibration."""
    return {
        "source": "default",
        "loss": {"atol": 0.0, "rtol": DEFAULT_RTOL, "per_step": None},
        "metrics": {"atol": 0.0, "rtol": DEFAULT_RTOL, "per_key": {}},
    }


def number(value: Any) -> float | None:
    """A float from ``float.hex`` text or a JSON number; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return as_decimal(value)


def tolerance(band: dict[str, Any], golden: float, measured: float | None = None) -> float:
    """The allowed absolute difference from ``golden``."""
    allowed = max(float(band.get("atol") or 0.0), float(band.get("rtol") or 0.0) * abs(golden))
    return max(allowed, measured or 0.0)


def within(current: float, golden: float, allowed: float) -> bool:
    """True when ``current`` is inside the band; NaN matches NaN, infinities match themselves."""
    if math.isnan(golden) or math.isnan(current):
        return math.isnan(golden) and math.isnan(current)
    if math.isinf(golden) or math.isinf(current):
        return current == golden
    return abs(current - golden) <= allowed


def step_tolerance(bands: dict[str, Any], index: int, golden: float) -> float:
    loss = bands.get("loss") or {}
    per_step = loss.get("per_step") or []
    measured = float(per_step[index]) if index < len(per_step) and per_step[index] is not None else None
    return tolerance(loss, golden, measured)


def metric_tolerance(bands: dict[str, Any], key: str, golden: float) -> float:
    metrics = bands.get("metrics") or {}
    measured = (metrics.get("per_key") or {}).get(key)
    return tolerance(metrics, golden, float(measured) if measured is not None else None)


def _ceil3(value: float) -> float:
    """``value`` rounded *up* to 3 significant digits: a short number that never narrows the band."""
    if value <= 0 or not math.isfinite(value):
        return 0.0 if value <= 0 else value
    scale = 10 ** (math.floor(math.log10(value)) - 2)
    return float(f"{math.ceil(value / scale - 1e-9) * scale:.3g}")


def _spread(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite) - min(finite) if len(finite) > 1 else None


def calibrate(
    golden: dict[str, Any], others: Sequence[dict[str, Any]], multiple: float = MULTIPLE, note: str = ""
) -> dict[str, Any]:
    """Bands measured from ``others`` (goldens of calibration runs) and ``golden`` itself."""
    if not multiple > 0:
        raise ValueError(f"the multiple must be > 0, got {multiple}")
    bands = default_bands()
    bands["source"] = f"calibrated: {multiple:g} x the range over {len(others) + 1} runs" + (
        f" ({note})" if note else ""
    )
    bands["multiple"] = multiple
    rows = [(g.get("trace") or {}).get("rows") or [] for g in (golden, *others)]
    if rows[0]:
        per_step = []
        for index in range(len(rows[0])):
            spread = _spread([number(r[index].get("loss")) if index < len(r) else None for r in rows])
            per_step.append(_ceil3(multiple * spread) if spread is not None else None)
        bands["loss"]["per_step"] = per_step
    kept = [(g.get("metrics") or {}).get("kept") or [] for g in (golden, *others)]
    per_key: dict[str, float] = {}
    for index, row in enumerate(kept[0]):
        for key, value in row.items():
            if number(value) is None or key in ("epoch", "step"):
                continue
            spread = _spread([number(k[index].get(key)) if index < len(k) else None for k in kept])
            if spread is not None:
                per_key[key] = max(per_key.get(key, 0.0), _ceil3(multiple * spread))
    bands["metrics"]["per_key"] = per_key
    return bands
