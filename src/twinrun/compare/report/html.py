"""``--html REPORT.html``: one self-contained page a person would rather look at.

The verdict and summary table, the ``files`` table, both runs' loss curves overlaid with the first
divergent step marked and their per-step difference on a log scale, a heat map of the parameter
fingerprints that differ from that step on, the runs' pictures side by side, and each section's details
as the text report gives them. Everything is inline (SVG drawn by matplotlib, pictures as data URIs, CSS
in the page, no script), so it opens offline and can be attached to a CI job as an artifact. It reads
only the files the comparison read, each a regular file inside its run
(:mod:`~twinrun.compare.report.page_files`);
every name from the runs is escaped here and drawn as plain text in the pictures.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twinrun.compare.report import curves as series
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, Report
from twinrun.compare.report.page_files import PageFiles
from twinrun.compare.report.render import divergence_lines, render_text, summary_rows

MAX_PICTURES = 12  # pairs shown side by side
MAX_PICTURE_BYTES = 1 << 20  # a larger picture is listed, not embedded
SHORT_CELL = 24  # characters: a longer cell wraps (anywhere), a shorter one never does
PICTURE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;padding:0 16px;
max-width:1200px;color:#222}
h1,h2,h3,p,li,figcaption{overflow-wrap:anywhere}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:16px 0 6px}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:600}
.identical{background:#2e7d32} .different{background:#c62828}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
td.long{white-space:normal;overflow-wrap:anywhere;min-width:15em}
th{background:#f4f4f4}
td.identical{color:#2e7d32;background:none} td.different{color:#c62828;background:none}
pre{background:#f7f7f7;padding:10px;font-size:12.5px;white-space:pre-wrap;overflow-wrap:anywhere}
.chart svg{display:block;width:100%;height:auto}
.pair{display:flex;gap:16px;flex-wrap:wrap} .pair figure{margin:0;flex:1 1 240px;min-width:0}
.pair img{width:100%;max-width:560px;height:auto;image-rendering:pixelated}
figcaption{font-size:13px;color:#555} .muted{color:#666;font-size:13px}
"""


def _esc(value: Any) -> str:
    return html.escape(series.shown(str(value)), quote=True)


def _cell(value: Any) -> str:
    """A table cell's text: booleans as yes/no (a reader's words, not Python's)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).strip()


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], verdict_column: int | None = None) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = _cell(cell)
            css = f' class="{text}"' if i == verdict_column and text in (IDENTICAL, DIFFERENT) else ""
            css = ' class="long"' if len(text) > SHORT_CELL else css
            cells.append(f"<td{css}>{_esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _files_table(report: Report) -> str:
    """The ``files`` section's entries as a table (whatever keys each entry has, in order)."""
    section = report.to_dict()["sections"].get("files")
    entries = section.get("files") if isinstance(section, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        return ""
    # "masked" is said in each entry's detail already ("...; masked: 3 paths"): no column of its own.
    headers = [k for k in dict.fromkeys(k for e in entries for k in e) if k != "masked"]
    rows = [
        [e.get(h, "") if not isinstance(e.get(h), dict | list) else e.get(h) for h in headers]
        for e in entries
    ]
    verdict = headers.index("verdict") if "verdict" in headers else None
    return "<h2>Files</h2>" + _table(headers, rows, verdict)


def _pictures(files: PageFiles) -> str:
    pairs = files.named(*PICTURE_SUFFIXES)
    if not pairs:
        return ""
    out = ["<h2>Pictures</h2>"]
    for rel in pairs[:MAX_PICTURES]:
        figures = []
        for label, side in (("run A", "a"), ("run B", "b")):
            data = files.read_bytes(side, rel, MAX_PICTURE_BYTES)
            if data is None:
                figures.append(f"<figure><figcaption>{label}: not shown</figcaption></figure>")
                continue
            mime = PICTURE_SUFFIXES[Path(rel).suffix.lower()]
            uri = f"data:{mime};base64,{base64.b64encode(data).decode()}"
            figures.append(
                f'<figure><img alt="{_esc(rel)} {label}" src="{uri}">'
                f"<figcaption>{label}</figcaption></figure>"
            )
        out.append(f'<h3>{_esc(rel)}</h3><div class="pair">{"".join(figures)}</div>')
    if len(pairs) > MAX_PICTURES:
        out.append(f'<p class="muted">{len(pairs) - MAX_PICTURES} more pairs not shown</p>')
    return "".join(out)


def _divergent_step(report: Report) -> int | None:
    step = report.divergence.step if report.divergence is not None else None
    return step if isinstance(step, int) else None


def _charts(report: Report, files: PageFiles) -> str:
    from twinrun.compare.report import plots

    step = _divergent_step(report)
    out = []
    for curve in series.loss_curves(files):
        marked = step if curve.source == "trace.jsonl" else None
        shown = series.downsample(curve, keep=[step] if step is not None else [])
        out.append(f'<div class="chart">{plots.curve_svg(shown, marked)}</div>')
    if out:
        out.insert(0, "<h2>Loss curves</h2>")
    drift = series.parameter_drift(files, step)
    if drift is not None and step is not None:
        out.append(f'<h2>Parameter drift</h2><div class="chart">{plots.drift_svg(drift)}</div>')
    return "".join(out)


def render_html(
    report: Report,
    run_a: str | Path,
    run_b: str | Path,
    *,
    title: str = "twinrun compare",
    table: tuple[Sequence[str], Sequence[Sequence[Any]]] | None = None,
) -> str:
    """The page for ``report`` of runs ``run_a`` and ``run_b``; ``table`` adds verify's/sweeps' own rows."""
    files = PageFiles.from_report(report, run_a, run_b)
    verdict = report.verdict
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}: {verdict}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p><span class="verdict {verdict}" id="verdict">{verdict}</span> '
        f'<span class="muted">exit {report.exit_code} &middot; A: {_esc(report.run_a)} &middot; '
        f"B: {_esc(report.run_b)}</span></p>",
    ]
    if table is not None:
        parts.append(_table(table[0], table[1], verdict_column=1))
    parts.append("<h2>Summary</h2>" + _table(["section", "verdict", "detail"], summary_rows(report), 1))
    step = _divergent_step(report)
    if report.divergence is not None:
        lines = "".join(f"<li>{_esc(x)}</li>" for x in divergence_lines(report.divergence))
        data_step = f' data-step="{step}"' if step is not None else ""
        parts.append(f'<h2>Divergence</h2><ul id="divergence"{data_step}>{lines}</ul>')
    parts.append(_files_table(report))
    parts.append(_charts(report, files))
    parts.append(_pictures(files))
    if files.skipped:
        parts.append(f'<p class="muted">{_esc("; ".join(files.skipped))}</p>')
    parts.append(f"<h2>Details</h2><pre>{_esc(render_text(report))}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


def write_html(path: str | Path, page: str) -> None:
    """Write the page atomically (a temp file renamed into place)."""
    from twinrun.record.runs import write_bytes

    # A file name that is not UTF-8 (held as surrogate escapes) is shown as \udcff, not a crash.
    write_bytes(Path(path), page.encode("utf-8", "backslashreplace"))
