"""A golden verdict as text, markdown (CI job summaries) and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from twinrun.golden.check import EXACT, Breach, GoldenReport

MAX_LISTED = 10


def _mode_line(report: GoldenReport) -> str:
    if report.mode == EXACT:
        return "same environment class: checked bit for bit"
    keys = ", ".join(k for k, _, _ in report.environment[:5]) or "env.json"
    return f"environment differs ({keys}): bit-identity not expected, checked by the golden's bands"


def findings(report: GoldenReport) -> list[str]:
    """One line per finding, most telling first."""
    lines: list[str] = []
    if report.config_changed:
        lines.append("the resolved config differs from the golden's (another case: re-record it if intended)")
    if report.divergence is not None:
        d = report.divergence
        lines.append(f"first divergent step {d.step} (epoch {d.epoch}), cause: {d.cause}: {d.detail}")
        if d.parameter is not None:
            lines.append(f"first differing parameter: {d.parameter} (step {d.parameter_step})")
    if report.loss_breach is not None:
        lines.append(
            f"the loss curve left the band first at step {report.loss_breach.step}: "
            + report.loss_breach.describe()
        )
    lines += [f"metric out of band: {b.describe()}" for b in report.metric_breaches[:MAX_LISTED]]
    for label, items in (("tensor", report.tensors), ("file", report.files), ("metrics", report.metrics)):
        lines += [f"{label} differs: {item}" for item in items[:MAX_LISTED]]
        if len(items) > MAX_LISTED:
            lines.append(f"... and {len(items) - MAX_LISTED} more {label} differences")
    return lines


def environment_lines(report: GoldenReport) -> list[str]:
    return [
        f"{k}: {json.dumps(g, default=str)} (golden) -> {json.dumps(c, default=str)}"
        for k, g, c in report.environment[:MAX_LISTED]
    ]


def render_text(report: GoldenReport) -> str:
    head = f"golden {report.golden}: {report.verdict.upper()} ({_mode_line(report)})"
    lines = [head]
    lines += [f"  environment: {line}" for line in environment_lines(report)]
    lines += [f"  {line}" for line in findings(report)]
    lines += [f"  note: {note}" for note in report.notes]
    if report.passed:
        what = "bit for bit" if report.mode == EXACT else "within the bands"
        lines.append(
            f"  {report.steps} traced steps, metrics, weights and files agree {what}"
            if report.mode == EXACT
            else f"  {report.steps} traced steps and metrics {what}"
        )
    return "\n".join(lines) + "\n"


def render_markdown(report: GoldenReport) -> str:
    icon = ":white_check_mark:" if report.passed else ":x:"
    lines = [f"### {icon} golden `{report.golden}`: {report.verdict}", "", f"*{_mode_line(report)}*", ""]
    if report.environment:
        lines += ["| environment key | golden | current |", "| --- | --- | --- |"]
        lines += [
            f"| `{k}` | `{json.dumps(g, default=str)}` | `{json.dumps(c, default=str)}` |"
            for k, g, c in report.environment[:MAX_LISTED]
        ]
        lines.append("")
    lines += [f"- {line}" for line in findings(report)]
    lines += [f"- note: {note}" for note in report.notes]
    if report.passed:
        lines.append(
            f"- {report.steps} traced steps agree" + ("" if report.mode == EXACT else " within the bands")
        )
    return "\n".join(lines) + "\n\n"  # a blank line ends it: several verdicts append to one summary


def _breach(b: Breach | None) -> dict[str, Any] | None:
    return None if b is None else {**asdict(b), "off_by": b.off_by}


def report_dict(report: GoldenReport) -> dict[str, Any]:
    d = report.divergence
    return {
        "golden": report.golden,
        "verdict": report.verdict,
        "exit_code": report.exit_code,
        "mode": report.mode,
        "environment": [{"key": k, "golden": g, "current": c} for k, g, c in report.environment],
        "config_changed": report.config_changed,
        "divergence": None
        if d is None
        else {
            "step": d.step,
            "epoch": d.epoch,
            "cause": d.cause,
            "parameter": d.parameter,
            "parameter_step": d.parameter_step,
            "rng_streams": d.rng_streams,
            "detail": d.detail,
        },
        "loss_breach": _breach(report.loss_breach),
        "metric_breaches": [_breach(b) for b in report.metric_breaches],
        "tensors": report.tensors,
        "files": report.files,
        "metrics": report.metrics,
        "notes": report.notes,
        "steps": report.steps,
    }


def render_json(report: GoldenReport) -> str:
    return json.dumps(report_dict(report), indent=2, default=str) + "\n"
