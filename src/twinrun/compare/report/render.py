"""Render a :class:`~twinrun.compare.report.model.Report` as terminal text, JSON or markdown.

Built from small reusable parts so that ``verify`` (many runs, pairwise) and sweep summaries can reuse
them: :func:`render_table` (any rows, text or markdown), :func:`summary_rows` (one report's table),
:func:`detail_lines` (one section's plain lines) and :func:`divergence_lines`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    NOT_COMPARED,
    ConfigSection,
    Divergence,
    EnvironmentSection,
    FilesSection,
    KindSection,
    LogsSection,
    MetricsSection,
    Report,
    Section,
    TraceSection,
    WeightsSection,
    describe_tensor_diff,
    plural,
    show_value,
)

MAX_ITEMS = 20  # longest list shown per kind of difference; the JSON report has them all
_COLORS = {IDENTICAL: "32", DIFFERENT: "31", "context": "33", "not compared": "33", "bold": "1"}


def paint(text: str, style: str, color: bool) -> str:
    """``text`` in the ANSI color for ``style`` (a verdict or "bold") when ``color`` is on."""
    code = _COLORS.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def section_verdict(section: Section) -> str:
    """The verdict column: context-only sections never read "different"."""
    if section.affects_verdict or section.status not in (IDENTICAL, DIFFERENT):
        return section.status
    return "identical" if section.status == IDENTICAL else "context"


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    markdown: bool = False,
    style: Callable[[int, str], str] | None = None,
) -> str:
    """A table as aligned text or GitHub markdown; ``style(column, cell)`` may decorate a padded cell."""
    if markdown:
        esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in esc])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            str(c).ljust(w) if i < len(widths) - 1 else str(c)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        if style:
            cells = [style(i, c) for i, c in enumerate(cells)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def summary_rows(report: Report) -> list[tuple[str, str, str]]:
    """(section, verdict, detail) for each section, in report order."""
    return [(name, section_verdict(s), s.summary) for name, s in report.sections.items()]


def _capped(items: Sequence[str], indent: str = "  ") -> list[str]:
    lines = [indent + item for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        lines.append(f"{indent}... and {len(items) - MAX_ITEMS} more (see --json)")
    return lines


def _weights_lines(s: WeightsSection) -> list[str]:
    if s.status == NOT_COMPARED and not s.notes:
        return []
    files = getattr(s, "files", None)  # the tensors section: every tensor file but the final weights
    if files:
        lines = [
            f"files: {', '.join(files)}",
            f"RUN_A: {plural(s.tensors_a, 'tensor')}, RUN_B: {s.tensors_b}",
        ]
    else:
        lines = [
            f"RUN_A: {s.source_a} ({plural(s.tensors_a, 'tensor')})",
            f"RUN_B: {s.source_b} ({plural(s.tensors_b, 'tensor')})",
        ]
    lines.append(f"compared {plural(s.compared, 'tensor')}, {plural(s.bytes_compared, 'byte')}, bit for bit")
    for label, names in (("only in RUN_A", s.only_in_a), ("only in RUN_B", s.only_in_b)):
        if names:
            lines += [f"{label}:", *_capped(names)]
    if s.shape_mismatches:
        lines += ["shapes differ:", *_capped([f"{m.name}: {m.a} vs {m.b}" for m in s.shape_mismatches])]
    if s.dtype_mismatches:
        lines += ["dtypes differ:", *_capped([f"{m.name}: {m.a} vs {m.b}" for m in s.dtype_mismatches])]
    if s.differing:
        items = []
        for d in s.differing:
            first = f"; first at flat index {d.first_index}: {d.first_a!r} vs {d.first_b!r}"
            close = "" if d.close is None else ("; within tolerance" if d.close else "; NOT within tolerance")
            items.append(f"{describe_tensor_diff(d)} {d.dtype} {d.shape}{first}{close}")
        lines += ["differing tensors:", *_capped(items)]
    if s.leaves_compared or s.leaves_only_in_a or s.leaves_only_in_b:
        lines.append(f"compared {plural(s.leaves_compared, 'other value')} exactly")
    for label, names in (
        ("values only in RUN_A", s.leaves_only_in_a),
        ("values only in RUN_B", s.leaves_only_in_b),
    ):
        if names:
            lines += [f"{label}:", *_capped(names)]
    if s.leaf_mismatches:
        lines += ["differing values:", *_capped([f"{m.name}: {m.a!r} vs {m.b!r}" for m in s.leaf_mismatches])]
    return lines + [f"note: {n}" for n in s.notes]


def _config_lines(s: ConfigSection) -> list[str]:
    lines = [f"RUN_A: {s.source_a}", f"RUN_B: {s.source_b}"]
    for label, keys in (("RUN_A", s.unresolvable_a), ("RUN_B", s.unresolvable_b)):
        if keys:
            lines.append(f"{label}: ignored (unresolvable outside its app): {', '.join(keys)}")
    if s.changed:
        changed = [f"{m.name}: {show_value(m.a)} -> {show_value(m.b)}" for m in s.changed]
        lines += ["changed:", *_capped(changed)]
    for label, keys in (("only in RUN_A", s.only_in_a), ("only in RUN_B", s.only_in_b)):
        if keys:
            lines += [f"{label}:", *_capped([f"{k}: {show_value(v)}" for k, v in keys.items()])]
    if s.overrides_a is not None and s.overrides_b is not None and s.overrides_a != s.overrides_b:
        only_a = [o for o in s.overrides_a if o not in s.overrides_b]
        only_b = [o for o in s.overrides_b if o not in s.overrides_a]
        lines += ["overrides only in RUN_A:", *_capped(only_a)] if only_a else []
        lines += ["overrides only in RUN_B:", *_capped(only_b)] if only_b else []
    return lines


def _logs_lines(s: LogsSection) -> list[str]:
    lines = []
    for f in s.files:
        names = f.name_a if f.name_a == f.name_b else f"{f.name_a} vs {f.name_b}"
        lines.append(
            f"{names}: {f.lines_a} vs {plural(f.lines_b, 'line')}, {f.differing_lines} differing "
            "(after normalizing)"
        )
        if f.first is not None:
            end = "<end of file>"
            lines += [
                f"  first difference at line {f.first.line}:",
                f"    RUN_A: {end if f.first.a is None else f.first.a}",
                f"    RUN_B: {end if f.first.b is None else f.first.b}",
            ]
    for label, names in (("only in RUN_A", s.only_in_a), ("only in RUN_B", s.only_in_b)):
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    return lines


def _metrics_lines(s: MetricsSection) -> list[str]:
    lines = [f"rows: {s.rows_a} vs {s.rows_b}; {plural(s.differing_rows, 'differing row')}"]
    if s.first is not None:
        lines.append(f"first differing row {s.first.row} (epoch {s.first.epoch}, step {s.first.step}):")
        for d in s.first.keys:
            a = show_value(d.a) + (f" ({d.a_decimal!r})" if d.a_decimal is not None else "")
            b = show_value(d.b) + (f" ({d.b_decimal!r})" if d.b_decimal is not None else "")
            lines.append(f"  {d.key}: {a} vs {b}")
    return lines


def _environment_lines(s: EnvironmentSection) -> list[str]:
    lines = [
        f"{m.name}: {show_value(m.a)} -> {show_value(m.b)}" + (" (decisive)" if m.name in s.decisive else "")
        for m in s.differing
    ]
    if s.bit_identity_expected is False:
        lines.append(f"bit-identity not expected: {', '.join(s.decisive)}")
    elif s.bit_identity_expected:
        lines.append("bit-identity expected: every decisive key is equal")
    return lines


def _files_lines(s: FilesSection) -> list[str]:
    """Every file that is not identical or had volatile fields masked (identical ones are counted in the
    summary), then the ignored."""
    shown = [e for e in s.files if e.verdict != IDENTICAL or e.masked]
    items = [
        f"{e.path}  [{e.kind}]  {e.verdict if e.decisive or e.verdict != DIFFERENT else 'context'}"
        + (f": {e.detail}" if e.detail else "")
        for e in shown
    ]
    return _capped(items)


def _kind_lines(s: KindSection) -> list[str]:
    return ["differing:", *_capped(s.differing)] if s.differing else []


def detail_lines(section: Section) -> list[str]:
    """Plain lines (no color, no markup) detailing one section."""
    if isinstance(section, FilesSection):
        return _files_lines(section)
    if isinstance(section, KindSection):
        return _kind_lines(section)
    if isinstance(section, WeightsSection):
        return _weights_lines(section)
    if isinstance(section, ConfigSection) and section.status != "not compared":
        return _config_lines(section)
    if isinstance(section, LogsSection):
        return _logs_lines(section)
    if isinstance(section, MetricsSection) and section.status != "not compared":
        return _metrics_lines(section)
    if isinstance(section, EnvironmentSection):
        return _environment_lines(section)
    if isinstance(section, TraceSection) and section.status != "not compared":
        return [f"steps: {section.steps_a} vs {section.steps_b}"]
    return []


def needs_details(section: Section) -> bool:
    """Sections worth a detail block: anything not identical, any section carrying notes, and the files
    section whenever a file was ignored or not compared (the report lists them)."""
    if isinstance(section, FilesSection):
        return any(e.verdict != IDENTICAL or e.masked for e in section.files)
    return section.status != IDENTICAL or bool(getattr(section, "notes", None))


def divergence_lines(div: Divergence) -> list[str]:
    """The divergence as plain lines."""
    return [
        f"step {div.step} (epoch {div.epoch}), cause: {div.cause}",
        f"first differing parameter: {div.parameter} (step {div.parameter_step})"
        if div.parameter
        else "first differing parameter: none (no traced parameter fingerprint differs at or after it)",
        f"rng streams that differ: {', '.join(div.rng_streams) or 'none'}",
        div.detail,
    ]


def verdict_line(report: Report, color: bool = False) -> str:
    """``RUN_A vs RUN_B: identical (exit 0)``."""
    verdict = paint(report.verdict, report.verdict, color)
    return f"{report.run_a} vs {report.run_b}: {verdict} (exit {report.exit_code})"


def render_text(report: Report, *, color: bool = False) -> str:
    """Terminal report: verdict, summary table, divergence, then details per section."""
    style = (lambda i, cell: paint(cell, cell.strip(), color) if i == 1 else cell) if color else None
    out = [paint("twinrun compare", "bold", color) + f": {verdict_line(report, color)}", ""]
    out.append(render_table(["section", "verdict", "detail"], summary_rows(report), style=style))
    if report.hints:
        out += ["", *(paint("hint:", "context", color) + " " + h for h in report.hints)]
    if report.divergence is not None:
        out += [
            "",
            paint("divergence", "bold", color),
            *("  " + x for x in divergence_lines(report.divergence)),
        ]
    for name, section in report.sections.items():
        lines = detail_lines(section) if needs_details(section) else []
        if lines:
            out += ["", paint(name, "bold", color), *("  " + x for x in lines)]
    return "\n".join(out) + "\n"


def render_json(report: Report) -> str:
    """The machine-readable report (stable keys: verdict, exit_code, sections, divergence)."""
    return json.dumps(report.to_dict(), indent=2) + "\n"


def markdown_details(title: str, lines: Sequence[str], *, open_: bool = False) -> str:
    """A collapsible block of plain lines for a GitHub job summary."""
    body = "\n".join(lines).replace("```", "'''")
    return (
        f"<details{' open' if open_ else ''}><summary>{title}</summary>\n\n```text\n{body}\n```\n\n</details>"
    )


def render_markdown(report: Report) -> str:
    """A report for ``$GITHUB_STEP_SUMMARY``: verdict, table, divergence, collapsible details."""
    mark = "✅" if report.verdict == IDENTICAL else "❌"
    out = [
        f"### {mark} twinrun compare: {report.verdict}",
        "",
        f"`{report.run_a}` vs `{report.run_b}` (exit {report.exit_code})",
        "",
        render_table(["section", "verdict", "detail"], summary_rows(report), markdown=True),
    ]
    if report.hints:
        out += ["", *(f"- hint: {h}" for h in report.hints)]
    if report.divergence is not None:
        d = report.divergence
        out += ["", f"**Divergence** at {d.where}", ""]
        out += [f"- {line}" for line in divergence_lines(d)[1:]]
    for name, section in report.sections.items():
        lines = detail_lines(section) if needs_details(section) else []
        if lines:
            title = f"{name}: {section_verdict(section)}"
            out += [
                "",
                markdown_details(title, lines, open_=section.status == DIFFERENT and section.affects_verdict),
            ]
    return "\n".join(out) + "\n"
