"""Compare two run directories: ``compare_runs(a, b) -> Report``.

"identical" always means bit for bit: weights byte by byte, configs and metrics value by value (types
included), logs line by line after removing what legitimately varies (times, durations, the run's own
path). Sections that only one run has are reported but do not decide the verdict; the environment is
context that says whether bit-identity is to be expected at all.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from twinrun.compare.divergence import find_divergence, trace_section
from twinrun.compare.report_model import (
    DIFFERENT,
    IDENTICAL,
    NOT_COMPARED,
    SECTION_ORDER,
    ConfigSection,
    Divergence,
    EnvironmentSection,
    Mismatch,
    Report,
    Section,
    TraceSection,
    show_value,
)
from twinrun.compare.run_reader import (
    RunDir,
    UnusableRunError,
    comparable_overrides,
    open_run,
    read_config,
    read_json,
    read_jsonl,
    read_overrides,
)
from twinrun.compare.sections import (
    ABSENT,
    compare_environments,
    compare_logs,
    compare_metrics,
    mark_missing,
    same_value,
)
from twinrun.config import flatten
from twinrun.record import runs

__all__ = ["Report", "UnusableRunError", "compare_runs"]


def compare_configs(a: RunDir, b: RunDir) -> ConfigSection:
    """Canonical configs key by key (``flatten``), plus ``.hydra/overrides.yaml`` when both have one."""
    ca, cb = read_config(a), read_config(b)
    if ca is None or cb is None:
        return mark_missing("a config", ca is not None, cb is not None, ConfigSection())
    sec = ConfigSection(
        source_a=ca.source, source_b=cb.source, unresolvable_a=ca.unresolvable, unresolvable_b=cb.unresolvable
    )
    fa, fb = flatten(ca.tree), flatten(cb.tree)
    sec.keys = len(fa)
    sec.changed = [Mismatch(k, fa[k], fb[k]) for k in fa if k in fb and not same_value(fa[k], fb[k])]
    sec.only_in_a = {k: v for k, v in fa.items() if k not in fb}
    sec.only_in_b = {k: v for k, v in fb.items() if k not in fa}
    oa, ob = read_overrides(a), read_overrides(b)
    overrides_differ = False
    if oa is not None and ob is not None:
        sec.overrides_a, sec.overrides_b = comparable_overrides(oa), comparable_overrides(ob)
        overrides_differ = sec.overrides_a != sec.overrides_b
    parts = [f"{m.name}: {show_value(m.a)} -> {show_value(m.b)}" for m in sec.changed[:2]]
    if len(sec.changed) > 2:
        parts.append(f"+{len(sec.changed) - 2} more changed")
    if sec.only_in_a:
        parts.append(f"{len(sec.only_in_a)} keys only in RUN_A")
    if sec.only_in_b:
        parts.append(f"{len(sec.only_in_b)} keys only in RUN_B")
    if overrides_differ:
        parts.append("overrides differ")
    sec.status = DIFFERENT if parts else IDENTICAL
    sec.summary = (
        "; ".join(parts)
        if parts
        else f"{sec.keys} keys identical" + (", overrides identical" if sec.overrides_a is not None else "")
    )
    return sec


def config_changes(sec: Section) -> list[str]:
    """Names of the config keys (or "overrides") that differ; empty when the configs agree."""
    if not isinstance(sec, ConfigSection) or sec.status != DIFFERENT:
        return []
    names = [m.name for m in sec.changed] + list(sec.only_in_a) + list(sec.only_in_b)
    return names or ["overrides"]


def _manifest_note(a: RunDir, b: RunDir, weights_identical: bool) -> str | None:
    """Manifests never decide the verdict; a manifest that disagrees with the bytes is stale: say so."""
    if not (a.has(runs.MANIFEST) and b.has(runs.MANIFEST)):
        return None
    try:
        da, db = read_json(a, runs.MANIFEST).get("digest"), read_json(b, runs.MANIFEST).get("digest")
    except (UnusableRunError, AttributeError):
        return f"a {runs.MANIFEST} is unreadable; it was ignored (the verdict reads the weights themselves)"
    if da is None or db is None or (da == db) == weights_identical:
        return None
    claim = "agree but the weights differ" if da == db else "differ but the weights are identical"
    return f"the {runs.MANIFEST} digests {claim}: a manifest is stale"


FIRST_TRACE_FORMAT = "twinrun-trace/1"  # what env.json files without a trace_format key mean


def _trace_rows(run: RunDir) -> list[dict[str, Any]]:
    """``trace.jsonl``'s rows (``read_jsonl`` checks they are objects), their rng and params objects too."""
    rows = read_jsonl(run, runs.TRACE)
    for line, row in enumerate(rows, start=1):
        if any(not isinstance(row.get(key, {}), dict) for key in ("rng", "params")):
            raise UnusableRunError(
                f"{run.show(runs.TRACE)} line {line} is not a trace row (its rng and params must be "
                "objects); regenerate it by re-running the training"
            )
    return rows


def compare_traces(
    a: RunDir, b: RunDir, config: ConfigSection, environment: EnvironmentSection
) -> tuple[TraceSection, Divergence | None]:
    """The trace section and the first divergent step, when both runs have traces of one format."""
    if not (a.has(runs.TRACE) and b.has(runs.TRACE)):
        return mark_missing(runs.TRACE, a.has(runs.TRACE), b.has(runs.TRACE), TraceSection()), None
    change = next((m for m in environment.differing if m.name == "trace_format"), None)
    formats = [FIRST_TRACE_FORMAT if m == ABSENT else m for m in (change.a, change.b)] if change else []
    if formats and formats[0] != formats[1]:
        summary = (
            f"written in different trace formats ({formats[0]} vs {formats[1]}: other digests); "
            "train the older run again with this twinrun to compare traces"
        )
        return TraceSection(status=NOT_COMPARED, summary=summary), None
    rows_a, rows_b = _trace_rows(a), _trace_rows(b)
    changes = config_changes(config)
    divergence = find_divergence(rows_a, rows_b, config_differs=bool(changes), config_keys=changes)
    return trace_section(rows_a, rows_b, divergence), divergence


def compare_runs(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    trust_pickle: bool = False,
) -> Report:
    """Compare run directories ``a`` and ``b``; raise :class:`UnusableRunError` for unusable input."""
    run_a, run_b = open_run(a), open_run(b)
    if os.path.samefile(run_a.path, run_b.path):
        raise UnusableRunError("RUN_A and RUN_B are the same directory; compare two runs")
    for flag, value in (("--atol", atol), ("--rtol", rtol)):
        if value is not None and not value >= 0:
            raise UnusableRunError(
                f"{flag} must be a number >= 0, got {value}; give a non-negative tolerance"
            )
    # The weights modules (numpy; torch for legacy files) load only now: the checks above answer fast.
    from twinrun.compare.weights import compare_weights
    from twinrun.compare.weights_reader import open_weights

    with contextlib.ExitStack() as stack:
        # Weights first (cheap header validation), then everything small, so that unusable input
        # fails fast, before the long byte-by-byte part.
        wa = stack.enter_context(open_weights(run_a, trust_pickle=trust_pickle))
        wb = stack.enter_context(open_weights(run_b, trust_pickle=trust_pickle))
        config, environment = compare_configs(run_a, run_b), compare_environments(run_a, run_b)
        trace, divergence = compare_traces(run_a, run_b, config, environment)
        sections: dict[str, Section] = {
            "config": config,
            "logs": compare_logs(run_a, run_b),
            "metrics": compare_metrics(run_a, run_b),
            "environment": environment,
            "trace": trace,
        }
        weights = compare_weights(wa, wb, atol=atol, rtol=rtol)
    note = _manifest_note(run_a, run_b, weights.status == IDENTICAL)
    if note:
        weights.notes.append(note)
    sections["weights"] = weights
    return Report(str(a), str(b), {name: sections[name] for name in SECTION_ORDER}, divergence)
