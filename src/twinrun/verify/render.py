"""Rendering a :class:`~twinrun.verify.apps.VerifyResult` (used by the CLI and by the DDP report)."""

from __future__ import annotations

import json

from twinrun.compare.report.model import DIFFERENT, IDENTICAL, Report
from twinrun.verify.apps import VerifyResult, pairs_list, run_dict


def pair_rows(result: VerifyResult) -> list[tuple[str, str, str]]:
    return [(f"run-{i} / run-{j}", r.verdict, _differing_sections(r)) for (i, j), r in result.pairs.items()]


def _differing_sections(report: Report) -> str:
    return ", ".join(report.differing_sections) or "-"


def render(result: VerifyResult, fmt: str = "text") -> str:
    """The report: one pair in compare's format; more pairs as a summary table plus the first that differs.

    JSON is always compare's report of that pair with a ``verify`` section (runs, commands, every pair).
    """
    from twinrun.compare.report.render import render_markdown, render_table, render_text

    report = result.report
    if fmt == "json":
        tree = report.to_dict()  # compare's keys at the top: the first differing pair decides them
        tree["verify"] = {
            "app": result.app.app,
            "workdir": str(result.workdir),
            "runs": [run_dict(r) for r in result.runs],
            "pairs": pairs_list(result.pairs),
        }
        return json.dumps(tree, indent=2) + "\n"
    verdict = IDENTICAL if result.identical else DIFFERENT
    runs = f"{len(result.runs)} runs of {result.app.app}"
    headers, rows = ["pair", "verdict", "differs in"], pair_rows(result)
    if fmt == "markdown":
        out = [f"## twinrun verify: {verdict} ({runs})", ""]
        if len(rows) > 1:
            out += [render_table(headers, rows, markdown=True), ""]
        return "\n".join([*out, render_markdown(report)])
    out = [f"twinrun verify: {verdict} ({runs})", ""]
    if len(rows) > 1:
        out += [render_table(headers, rows), ""]
    return "\n".join([*out, render_text(report)])
