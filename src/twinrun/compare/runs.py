"""Compare two run directories: ``compare_runs(a, b) -> Report``.

A run is every file it left. Both directories are walked, each file is classified and compared by its
kind (:mod:`twinrun.compare.judge.kinds`), and the verdict follows one rule
(:func:`twinrun.compare.report.model.decide`): identical only when every file that is not ignored is
identical in both runs; a file only one run has is a difference. "identical" always means bit for bit:
tensors byte by byte, configs and metrics value by value (types included), logs line by line after
removing what legitimately varies (times, durations, the runs' own paths). The environment is context
that says whether bit-identity is to be expected at all; it never decides.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from twinrun.compare.judge.accounting import compare_file_bytes, describe
from twinrun.compare.judge.context import Context
from twinrun.compare.judge.divergence import find_divergence, trace_section
from twinrun.compare.judge.evidence import check_evidence
from twinrun.compare.judge.hints import find_hints
from twinrun.compare.judge.kinds import Outcome, account, compare_artifact, masked
from twinrun.compare.judge.sections import (
    ABSENT,
    compare_environments,
    compare_metrics,
    mark_missing,
    same_value,
)
from twinrun.compare.judge.views import files_section, kind_sections, logs_section
from twinrun.compare.read import artifacts as kinds
from twinrun.compare.read.artifacts import (
    DEFAULT_IGNORE,
    Artifact,
    check_has_output,
    match,
    project_ignore,
    walk,
)
from twinrun.compare.read.run_reader import (
    PathMask,
    RunDir,
    UnusableRunError,
    comparable_overrides,
    open_run,
    path_mask,
    read_config,
    read_json,
    read_jsonl,
    read_overrides,
)
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    KIND_SECTIONS,
    ONLY_IN_A,
    ONLY_IN_B,
    SECTION_ORDER,
    ConfigSection,
    Divergence,
    EnvironmentSection,
    FileEntry,
    Mismatch,
    Report,
    Section,
    TraceSection,
    WeightsSection,
    show_value,
)
from twinrun.config import canonicalize, flatten
from twinrun.record import runs

__all__ = ["Report", "UnusableRunError", "compare_runs"]


def compare_configs(a: RunDir, b: RunDir, mask: PathMask | None = None) -> ConfigSection:
    """Canonical configs key by key (``flatten``), plus ``.hydra/overrides.yaml`` when both have one.

    ``mask``: both runs' directories replaced in every string, so that twins in two places agree.
    """
    ca, cb = read_config(a), read_config(b)
    if mask is not None:
        for c in (ca, cb):
            if c is not None:
                c.tree = canonicalize(masked(c.tree, mask))
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
        if mask is not None:
            oa, ob = [mask(o) for o in oa], [mask(o) for o in ob]
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
    """The trace section and the first divergent step, when both runs have traces."""
    if not (a.has(runs.TRACE) and b.has(runs.TRACE)):
        return mark_missing(runs.TRACE, a.has(runs.TRACE), b.has(runs.TRACE), TraceSection()), None
    rows_a, rows_b = _trace_rows(a), _trace_rows(b)
    changes = config_changes(config)
    divergence = find_divergence(rows_a, rows_b, config_differs=bool(changes), config_keys=changes)
    section = trace_section(rows_a, rows_b, divergence)
    # Rule 5: env.json is context. A trace format it names explains a difference, never hides one.
    change = next((m for m in environment.differing if m.name == "trace_format"), None)
    formats = [FIRST_TRACE_FORMAT if m == ABSENT else m for m in (change.a, change.b)] if change else []
    if section.status == DIFFERENT and formats and formats[0] != formats[1]:
        section.summary += (
            f" (env.json names different trace formats, {formats[0]} vs {formats[1]}; "
            "train the older run again with this twinrun to compare traces of one format)"
        )
    return section, divergence


def _check_tolerances(atol: float | None, rtol: float | None) -> None:
    for flag, value in (("--atol", atol), ("--rtol", rtol)):
        # "not >= 0" rather than "< 0": NaN is neither, and must be refused too.
        if value is not None and not value >= 0:
            raise UnusableRunError(
                f"{flag} must be a number >= 0, got {value}; give a non-negative tolerance"
            )


def compare_runs(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    trust_pickle: bool = False,
    ignore: Sequence[str] = (),
) -> Report:
    """Compare every file of run directories ``a`` and ``b``; raise :class:`UnusableRunError` for
    unusable input (a file that cannot be read, a run that left nothing).

    ``ignore``: more glob patterns to leave out, beside :data:`~twinrun.compare.read.artifacts.DEFAULT_IGNORE`
    and ``[tool.twinrun] ignore`` of ``pyproject.toml`` in the working directory.
    """
    run_a, run_b = open_run(a), open_run(b)
    if os.path.samefile(run_a.path, run_b.path):
        raise UnusableRunError("RUN_A and RUN_B are the same directory; compare two runs")
    _check_tolerances(atol, rtol)
    patterns = [*DEFAULT_IGNORE, *project_ignore(), *ignore]
    walk_a, walk_b = walk(run_a, patterns), walk(run_b, patterns)
    check_has_output(run_a, walk_a)
    check_has_output(run_b, walk_b)
    ctx = Context(run_a, run_b, path_mask(run_a, run_b), atol, rtol, trust_pickle)
    found = match(run_a, walk_a, run_b, walk_b)
    # Small contract files first, so that bad input fails fast, before the long byte-by-byte parts.
    config, environment = compare_configs(run_a, run_b, ctx.mask), compare_environments(run_a, run_b)
    trace, divergence = compare_traces(run_a, run_b, config, environment)
    metrics = compare_metrics(run_a, run_b)
    weights = compare_final_weights(run_a, run_b, ctx)
    contract = {
        kinds.WEIGHTS: weights,
        kinds.METRICS: metrics,
        kinds.TRACE: trace,
        kinds.ENVIRONMENT: environment,
    }
    entries: list[FileEntry] = []
    outcomes: dict[str, Outcome] = {}
    # Rule 4: every file is its own entry; a weights file the section did not read is a tensor file.
    used = {_final_weights_name(run_a), _final_weights_name(run_b)}
    for art in found:
        if art.kind == kinds.WEIGHTS and art.key not in used:
            art = Artifact(art.key, kinds.TENSORS, art.a, art.b)
        entry, outcome = _entry(art, ctx, contract)
        entries.append(entry)
        if outcome is not None:
            outcomes[art.key] = outcome
    sections: dict[str, Section] = {
        "files": files_section(entries, walk_a, walk_b, patterns),
        "weights": weights,
        "config": config,
        "logs": logs_section(found, outcomes),
        "metrics": metrics,
        "environment": environment,
        "trace": trace,
    }
    sections.update(kind_sections(found, outcomes))
    order = [*SECTION_ORDER[:2], "tensors", *SECTION_ORDER[2:5], *KIND_SECTIONS[1:], *SECTION_ORDER[5:]]
    report = Report(str(a), str(b), {n: sections[n] for n in order if n in sections}, divergence)
    check_evidence(entries, found, report.verdict)  # rule 2: no "identical" without a file of training
    report.hints = find_hints(report, read_config(run_a), outcomes, (run_a, run_b))
    return report


def _entry(art: Artifact, ctx: Context, contract: dict[str, Section]) -> tuple[FileEntry, Outcome | None]:
    """The files-section entry of one artifact (and the outcome, for the sections built from them)."""
    if not art.b or not art.a:
        return FileEntry(art.key, art.kind, ONLY_IN_A if art.a else ONLY_IN_B), None
    section = contract.get(art.kind)
    if section is not None:
        # Compared by its section (a legacy and a safetensors run compare their weights across names).
        entry = FileEntry(art.key, art.kind, section.status, section.summary, section.affects_verdict)
        if art.kind in (kinds.METRICS, kinds.TRACE, kinds.WEIGHTS) and section.status == IDENTICAL:
            _bytes_decide(entry, art, ctx)
            if entry.verdict == DIFFERENT and isinstance(section, WeightsSection):  # the weights say it too
                section.status = DIFFERENT
                section.notes.append(f"{art.key}: {entry.detail}")
        return entry, None
    outcome = compare_artifact(art, ctx)
    entry = FileEntry(art.key, art.kind, outcome.verdict, outcome.detail, outcome.decisive)
    entry.masked = dict(outcome.masked)
    return entry, outcome


def _bytes_decide(entry: FileEntry, art: Artifact, ctx: Context) -> None:
    """The byte rule for a contract file its section found identical: what differs must be excused."""
    raw = compare_file_bytes(art.a[0], art.b[0], ctx.a.show(art.key), ctx.b.show(art.key))
    if raw.identical:
        return
    if art.kind == kinds.WEIGHTS:  # safetensors (or a legacy torch file): the tensor files' accounting
        from twinrun.compare.judge.tensor_bytes import account_tensor_bytes

        same = lambda x, y: ctx.mask(x) == ctx.mask(y)  # noqa: E731
        found = account_tensor_bytes(art.a[0], art.b[0], same, frozenset(), frozenset())
    else:
        found = account(art, ctx)
    if isinstance(found, str):
        entry.verdict, entry.decisive = DIFFERENT, True
        entry.detail = f"{raw.detail}: {found} (its reader sees no difference: the bytes decide)"
    else:
        entry.masked = dict(found)
        entry.detail += f"; masked: {describe(found)}"


def _final_weights_name(run: RunDir) -> str | None:
    """The file the weights section reads as ``run``'s final weights: safetensors first, else legacy."""
    from twinrun.compare.read.weights_reader import LEGACY_WEIGHTS

    return next((n for n in (runs.WEIGHTS, LEGACY_WEIGHTS) if run.has(n)), None)


def compare_final_weights(a: RunDir, b: RunDir, ctx: Context) -> WeightsSection:
    """The final weights (``weights.safetensors``, else a legacy ``trained_model.pt``) of each run.

    Not comparing them is no error: an app may leave only checkpoints, or no tensors at all; the
    verdict then rests on the files the runs left (the ``files`` section).
    """
    from twinrun.compare.read.weights_reader import LEGACY_WEIGHTS

    name_a, name_b = _final_weights_name(a), _final_weights_name(b)
    if name_a is None or name_b is None:
        what = f"{runs.WEIGHTS} or {LEGACY_WEIGHTS}"
        sec = mark_missing(what, name_a is not None, name_b is not None, WeightsSection())
        if name_a is None and name_b is None:
            sec.summary += "; the verdict rests on the files the runs left"
        return sec
    # numpy (and torch, for legacy files) load only now: the checks before answer fast.
    from twinrun.compare.judge.tensor_files import open_weights
    from twinrun.compare.judge.weights import compare_weights

    with (
        open_weights(a, trust_pickle=ctx.trust_pickle) as wa,
        open_weights(b, trust_pickle=ctx.trust_pickle) as wb,
    ):
        sec = compare_weights(wa, wb, atol=ctx.atol, rtol=ctx.rtol)
    note = _manifest_note(a, b, sec.status == IDENTICAL)
    if note:
        sec.notes.append(note)
    return sec
