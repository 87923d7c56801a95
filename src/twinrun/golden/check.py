"""Judge a run against a golden: bit-exact in the same environment class, by bands in another.

Both sides are golden dicts (the current run's is built by :func:`twinrun.golden.record.golden_from_run`),
so the judgement is a comparison of two small trees. The environment class is decided by the keys that
decide "is bit-identity expected" for twin runs (:data:`twinrun.compare.judge.sections.DECISIVE_ENV`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twinrun.compare.judge.divergence import (
    COMPUTATION,
    CONFIGURATION,
    DATA_ORDER,
    LENGTH,
    RNG_STREAM,
)
from twinrun.compare.judge.sections import ABSENT, DECISIVE_ENV, NON_DECISIVE_ENV, differing_keys
from twinrun.compare.report.model import Divergence
from twinrun.config import flatten
from twinrun.golden.bands import metric_tolerance, number, step_tolerance, within
from twinrun.golden.record import epochs

EXACT, BANDS = "exact", "bands"
PASSED, CHANGED = "passed", "changed"


@dataclass
class Breach:
    """Where a value left its band first: the step (or metrics row and key), both values, by how much."""

    where: str
    step: Any
    golden: float
    current: float
    allowed: float

    @property
    def off_by(self) -> float:
        return abs(self.current - self.golden)

    def describe(self) -> str:
        times = f" ({self.off_by / self.allowed:.3g}x the band)" if self.allowed > 0 else ""
        return (
            f"{self.where}: {self.current!r} vs golden {self.golden!r}, off by {self.off_by:.6g} "
            f"> allowed {self.allowed:.6g}{times}"
        )


@dataclass
class GoldenReport:
    """The verdict of one golden check and everything that explains it."""

    golden: str
    mode: str  # exact | bands
    environment: list[tuple[str, Any, Any]] = field(default_factory=list)  # decisive differences
    notes: list[str] = field(default_factory=list)
    config_changed: bool = False
    divergence: Divergence | None = None
    tensors: list[str] = field(default_factory=list)  # "name: why" of each differing tensor
    files: list[str] = field(default_factory=list)  # "path: why" of each differing file
    metrics: list[str] = field(default_factory=list)
    loss_breach: Breach | None = None
    metric_breaches: list[Breach] = field(default_factory=list)
    steps: int = 0
    curve: dict[str, list[Any]] = field(default_factory=dict)  # step, golden, current, allowed

    @property
    def passed(self) -> bool:
        return not (
            self.config_changed
            or self.divergence
            or self.tensors
            or self.files
            or self.metrics
            or self.loss_breach
            or self.metric_breaches
        )

    @property
    def verdict(self) -> str:
        return PASSED if self.passed else CHANGED

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def decisive_differences(golden_env: Any, current_env: Any) -> list[tuple[str, Any, Any]]:
    """(key, golden, current) of every env.json key whose difference voids bit-identity."""
    fa, fb = flatten(golden_env or {}), flatten(current_env or {})
    return [
        (k, fa.get(k, ABSENT), fb.get(k, ABSENT))
        for k in differing_keys(fa, fb)
        if k not in NON_DECISIVE_ENV and k.split(".", 1)[0] in DECISIVE_ENV
    ]


def _first_parameter(full_g: list[dict], full_c: list[dict], step: Any) -> tuple[Any, Any]:
    """(name, step) of the first parameter that differs in the whole rows at or after ``step``."""
    current = {row.get("step"): row for row in full_c}
    for row in full_g:
        other = current.get(row.get("step"))
        if other is None or not isinstance(step, int) or not isinstance(row.get("step"), int):
            continue
        if row["step"] < step:
            continue
        pa, pb = row.get("params"), other.get("params")
        if pa is None or pb is None or pa == pb:
            continue
        for name in [*pa, *(k for k in pb if k not in pa)]:
            if pa.get(name) != pb.get(name):
                return name, row["step"]
    return None, None


def _streams(full_g: list[dict], full_c: list[dict], step: Any) -> list[str]:
    row_g = next((r for r in full_g if r.get("step") == step), None)
    row_c = next((r for r in full_c if r.get("step") == step), None)
    if row_g is None or row_c is None:
        return []
    ra, rb = row_g.get("rng") or {}, row_c.get("rng") or {}
    return [k for k in [*ra, *(k for k in rb if k not in ra)] if ra.get(k) != rb.get(k)]


def trace_divergence(golden: dict, current: dict, config_changed: bool) -> Divergence | None:
    """The first step where the current run leaves the golden's trace, with its cause."""
    tg, tc = golden.get("trace") or {}, current.get("trace") or {}
    rows_g, rows_c = tg.get("rows") or [], tc.get("rows") or []
    full_g, full_c = tg.get("full") or [], tc.get("full") or []
    epochs_g, epochs_c = epochs(rows_g), epochs(rows_c)
    for index, (a, b) in enumerate(zip(rows_g, rows_c, strict=False)):
        if a == b:
            continue
        step, epoch = a.get("step"), epochs_g[index]
        streams = _streams(full_g, full_c, step) if a.get("rng") != b.get("rng") else []
        parameter, parameter_step = _first_parameter(full_g, full_c, step)
        if a.get("step") != b.get("step"):
            cause = CONFIGURATION if config_changed else LENGTH
        elif config_changed:
            cause = CONFIGURATION
        elif a.get("batch") != b.get("batch") or epoch != epochs_c[index]:
            cause = DATA_ORDER
        elif a.get("rng") != b.get("rng"):
            cause = RNG_STREAM
        else:
            cause = COMPUTATION
        what = []
        if a.get("batch") != b.get("batch"):
            what.append("the batch's sample indices differ")
        if a.get("rng") != b.get("rng"):
            what.append("RNG state before the step differs" + (f" ({', '.join(streams)})" if streams else ""))
        if a.get("loss") != b.get("loss"):
            what.append(f"loss {_show(b.get('loss'))} vs golden {_show(a.get('loss'))}")
        if parameter is not None:
            what.append(f"parameter {parameter} differs at step {parameter_step}")
        detail = f"at step {step} (epoch {epoch}): " + ("; ".join(what) or "trace rows differ")
        return Divergence(step, epoch, cause, parameter, parameter_step, streams, detail)
    if len(rows_g) == len(rows_c):
        return None
    common = min(len(rows_g), len(rows_c))
    longer = rows_g if len(rows_g) > len(rows_c) else rows_c
    who = "the current run" if longer is rows_g else "the golden"
    detail = f"{who}'s trace ends after {common} steps; the other continues to step {longer[-1].get('step')}"
    missing = longer[common]
    epoch = epochs(longer)[common]
    return Divergence(missing.get("step"), epoch, CONFIGURATION if config_changed else LENGTH, detail=detail)


def _show(value: Any) -> str:
    decimal = number(value)
    return repr(decimal) if decimal is not None else str(value)


def _dict_changes(golden: dict, current: dict, what: str) -> list[str]:
    out = []
    for name in [*golden, *(k for k in current if k not in golden)]:
        a, b = golden.get(name), current.get(name)
        if a == b:
            continue
        if a is None or b is None:
            out.append(f"{name}: only in the {'current run' if a is None else 'golden'}")
            continue
        changed = [k for k in ("kind", "dtype", "shape", "sha256") if a.get(k) != b.get(k)]
        reason = ", ".join(f"{k} {a.get(k)} -> {b.get(k)}" for k in changed if k != "sha256")
        out.append(f"{name}: {reason or what}")
    return out


def _metric_changes(golden: dict, current: dict) -> list[str]:
    kg, kc = (golden.get("metrics") or {}).get("kept") or [], (current.get("metrics") or {}).get("kept") or []
    out = []
    for index, (a, b) in enumerate(zip(kg, kc, strict=False), start=1):
        keys = differing_keys(a, b)
        if keys:
            shown = ", ".join(
                f"{k} {_show(b.get(k, ABSENT))} vs golden {_show(a.get(k, ABSENT))}" for k in keys[:3]
            )
            out.append(f"row {index} (epoch {a.get('epoch')}, step {a.get('step')}): {shown}")
    if len(kg) != len(kc):
        out.append(f"the golden has {len(kg)} metrics rows, the current run {len(kc)}")
    return out


def _band_loss(report: GoldenReport, golden: dict, current: dict) -> None:
    rows_g = (golden.get("trace") or {}).get("rows") or []
    rows_c = (current.get("trace") or {}).get("rows") or []
    bands = golden.get("bands") or {}
    for index, (a, b) in enumerate(zip(rows_g, rows_c, strict=False)):
        g, c = number(a.get("loss")), number(b.get("loss"))
        if g is None or c is None:
            continue
        allowed = step_tolerance(bands, index, g)
        report.curve.setdefault("step", []).append(a.get("step"))
        report.curve.setdefault("golden", []).append(g)
        report.curve.setdefault("current", []).append(c)
        report.curve.setdefault("allowed", []).append(allowed)
        if report.loss_breach is None and not within(c, g, allowed):
            report.loss_breach = Breach(f"loss at step {a.get('step')}", a.get("step"), g, c, allowed)
    if len(rows_g) != len(rows_c):
        report.divergence = trace_divergence(golden, current, report.config_changed)


def _band_metrics(report: GoldenReport, golden: dict, current: dict) -> None:
    kg, kc = (golden.get("metrics") or {}).get("kept") or [], (current.get("metrics") or {}).get("kept") or []
    bands = golden.get("bands") or {}
    for index, (a, b) in enumerate(zip(kg, kc, strict=False), start=1):
        for key, value in a.items():
            g, c = number(value), number(b.get(key))
            if key in ("epoch", "step") or g is None or c is None:  # positions and text: exactly
                if b.get(key, ABSENT) != value and (g is None or c is None or g != c):
                    report.metrics.append(f"row {index}: {key} {b.get(key, ABSENT)!r} vs golden {value!r}")
                continue
            allowed = metric_tolerance(bands, key, g)
            if not within(c, g, allowed):
                report.metric_breaches.append(
                    Breach(f"metrics row {index} {key}", a.get("step"), g, c, allowed)
                )
    if len(kg) != len(kc):
        report.metrics.append(f"the golden has {len(kg)} metrics rows, the current run {len(kc)}")


def check_golden(golden: dict[str, Any], current: dict[str, Any], name: str = "golden") -> GoldenReport:
    """Judge ``current`` (the golden dict of a new run) against ``golden``."""
    ge, ce = golden.get("environment"), current.get("environment")
    differences = decisive_differences(ge, ce)
    report = GoldenReport(name, BANDS if differences or (ge is None) != (ce is None) else EXACT)
    report.environment = differences
    if (ge is None) != (ce is None):
        report.notes.append("only one side has env.json: bit-identity cannot be expected")
    report.steps = ((golden.get("trace") or {}).get("steps")) or 0
    report.config_changed = golden.get("config_digest") != current.get("config_digest")
    if report.mode == EXACT:
        report.divergence = trace_divergence(golden, current, report.config_changed)
        wg, wc = golden.get("weights") or {}, current.get("weights") or {}
        report.tensors = _dict_changes(wg.get("tensors") or {}, wc.get("tensors") or {}, "bytes differ")
        report.files = _dict_changes(golden.get("artifacts") or {}, current.get("artifacts") or {}, "differs")
        report.metrics = _metric_changes(golden, current)
        report.curve = _curve(golden, current)
    else:
        report.notes.append("weights and files are not compared bit for bit: bit-identity is not expected")
        _band_loss(report, golden, current)
        _band_metrics(report, golden, current)
    if not (golden.get("trace") or golden.get("metrics") or report.mode == EXACT):
        report.notes.append("the golden has neither a trace nor metrics: nothing to check by bands")
    return report


def _curve(golden: dict, current: dict) -> dict[str, list[Any]]:
    scratch = GoldenReport("", EXACT)
    _band_loss(scratch, golden, current)
    return scratch.curve
