"""``twinrun audit RUN``: argument parsing, ``--explain`` and the reports (text, JSON, markdown, HTML).

Registered in :mod:`twinrun.cli` through :func:`add_parser`; the core is :mod:`twinrun.verify.audit`
and :mod:`twinrun.verify.audit_run`.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path
from typing import Any

from twinrun.verify.audit import TRAINER, AuditResult
from twinrun.verify.resolve import VerifyError


def add_parser(subparsers: Any) -> None:
    """Register ``twinrun audit`` (handler: :func:`run_audit`)."""
    p = subparsers.add_parser(
        "audit",
        help="verify a long run by replaying a few segments of it from its checkpoints",
        description="Replay N segments of RUN (a checkpoint and the K steps after it; always the first and "
        "the last) in fresh processes of the run's own app, overrides and hash seed, and compare the "
        "replayed trace rows with the recorded ones. Exit 0 reproduced, 1 not reproduced, 2 unusable "
        "(no trace, no checkpoints, an app that cannot resume). See docs/audit.md.",
    )
    p.add_argument("run", metavar="RUN", help="the run directory to audit")
    p.add_argument(
        "--app", help="the app that made RUN (default: twinrun's trainers by their Hydra job name)"
    )
    p.add_argument("--segments", type=int, default=5, metavar="N", help="segments to replay (default 5)")
    p.add_argument("--steps", type=int, default=5, metavar="K", help="steps per segment (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the choice of segments (default 0)")
    p.add_argument("--jobs", type=int, default=1, metavar="J", help="replays at a time (default 1)")
    p.add_argument("--workdir", metavar="DIR", help="where the replays go (default: a new temp directory)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop a replay that runs longer")
    p.add_argument(
        "--trust-run-dirs",
        action="store_true",
        help="replay overrides that choose code (_target_, hydra.*, resolvers): "
        "runs code the run directories name",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="when a segment is not reproduced on computation, replay its divergent step twice and name "
        "the first op that differs (twinrun's trainers)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a machine-readable JSON report")
    fmt.add_argument("--markdown", action="store_true", help="print a markdown report (CI job summaries)")
    p.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report")
    p.set_defaults(handler=run_audit)


def _check(args: argparse.Namespace) -> None:
    for name, least in (("segments", 1), ("steps", 1), ("jobs", 1)):
        if getattr(args, name) < least:
            raise VerifyError(f"--{name} {getattr(args, name)}: give a number >= {least}")
    from twinrun.verify.apps import check_timeout

    check_timeout(args.timeout)


def run_audit(args: argparse.Namespace) -> int:
    """Handler of ``twinrun audit``: replay, print the report, return 0/1 (errors raise)."""
    from twinrun.verify.apps import prepare_workdir
    from twinrun.verify.audit_run import audit_run, read_run

    _check(args)
    audited = read_run(args.run, args.app, trusted=args.trust_run_dirs)
    workdir = prepare_workdir(args.workdir, 0, kind="segment")
    stale = sorted(p.name for p in workdir.glob("segment-*")) + sorted(
        p.name for p in workdir.glob("explain-*")
    )
    if stale:
        raise VerifyError(
            f"--workdir {args.workdir} already holds {stale[0]}; give an empty or new directory"
        )
    sys.stderr.write(
        f"twinrun audit: {audited.total_steps} steps of {audited.app.app} ({audited.kind}); "
        f"replays in {workdir}\n"
    )
    result = audit_run(
        audited,
        segments=args.segments,
        steps=args.steps,
        seed=args.seed,
        jobs=args.jobs,
        workdir=workdir,
        timeout=args.timeout,
        progress=lambda line: sys.stderr.write(f"  {line}\n"),
    )
    if args.explain and not result.reproduced:
        result.explain = _explain(audited, result, args.timeout)
    fmt = "json" if args.json else "markdown" if args.markdown else "text"
    if args.html:
        from twinrun.record.runs import write_bytes

        write_bytes(Path(args.html), render_html(result).encode("utf-8"))
        sys.stderr.write(f"HTML report written to {args.html}\n")
    sys.stdout.write(render(result, fmt))
    sys.stdout.flush()
    return result.exit_code


def _explain(audited: Any, result: AuditResult, timeout: float | None) -> Any:
    """Replay the first divergent step twice from the run's nearest checkpoint and name the op."""
    from twinrun.verify.audit_run import run_replay
    from twinrun.verify.explain import explain_pair

    first = result.first_divergent
    assert first is not None and first.divergence is not None
    if audited.kind != TRAINER:
        return "--explain records ops in twinrun's trainers only; this run's app is not one"
    if first.divergence.cause != "computation":
        return f"the replay parts on {first.divergence.cause}, not on computation: no op to name"
    step = int(first.divergence.step)
    procs: list[Any] = []

    def replay(index: int, _twin: Path, extra: list[str]) -> Path:
        run_dir = result.workdir / f"explain-{index + 1}"
        run_replay(audited, extra, {}, run_dir, timeout, procs)
        return run_dir

    return explain_pair(audited.run.path, audited.run.path, step, replay)


def to_dict(result: AuditResult) -> dict[str, Any]:
    explain = result.explain
    return {
        "run": str(result.run),
        "app": result.app,
        "kind": result.kind,
        "verdict": result.verdict,
        "reproduced": result.reproduced,
        "exit_code": result.exit_code,
        "total_steps": result.total_steps,
        "steps_per_segment": result.steps,
        "seed": result.seed,
        "replayed_steps": result.replayed_steps,
        "fraction_replayed": round(result.fraction, 6),
        "workdir": str(result.workdir),
        "segments": [
            {
                "start": s.segment.start,
                "stop": s.segment.stop,
                "checkpoint": str(s.segment.checkpoint) if s.segment.checkpoint else None,
                "run_dir": str(s.run_dir),
                "seconds": round(s.seconds, 3),
                "reproduced": s.reproduced,
                "divergence": None
                if s.divergence is None
                else {
                    "step": s.divergence.step,
                    "epoch": s.divergence.epoch,
                    "cause": s.divergence.cause,
                    "parameter": s.divergence.parameter,
                    "rng_streams": s.divergence.rng_streams,
                    "detail": s.divergence.detail,
                },
            }
            for s in result.segments
        ],
        "explain": None
        if explain is None
        else ({"summary": explain} if isinstance(explain, str) else explain.to_dict()),
    }


def _rows(result: AuditResult) -> list[tuple[str, str, str]]:
    return [
        (
            s.segment.label,
            f"checkpoint at step {s.segment.start}" if s.segment.start else "the start",
            "reproduced" if s.reproduced else s.divergence.detail,  # type: ignore[union-attr]
        )
        for s in result.segments
    ]


def _explain_lines(result: AuditResult) -> list[str]:
    explain = result.explain
    if explain is None:
        return []
    return [explain] if isinstance(explain, str) else explain.lines()


def render(result: AuditResult, fmt: str = "text") -> str:
    """The audit report as text, JSON or markdown."""
    if fmt == "json":
        return json.dumps(to_dict(result), indent=2) + "\n"
    from twinrun.compare.report.render import render_table

    headers, rows = ["segment", "from", "verdict"], _rows(result)
    explain = _explain_lines(result)
    if fmt == "markdown":
        out = [
            f"## twinrun audit: {result.verdict}",
            "",
            f"`{result.run}` ({result.app}, {result.total_steps} steps)",
        ]
        out += ["", render_table(headers, rows, markdown=True)]
        if explain:
            out += ["", "### explain", "", *(f"- {line}" for line in explain)]
        return "\n".join(out) + "\n"
    out = [
        f"twinrun audit: {result.verdict}",
        f"  run: {result.run} ({result.app}, {result.total_steps} steps)",
    ]
    out += ["", render_table(headers, rows)]
    if explain:
        out += ["", "explain", *(f"  {line}" for line in explain)]
    return "\n".join(out) + "\n"


def render_html(result: AuditResult) -> str:
    """One self-contained page: the verdict and every segment (no script, no external resource)."""
    esc = html.escape
    cells = "".join(
        f"<tr class='{'ok' if s.reproduced else 'bad'}'>"
        f"<td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>"
        for s, (a, b, c) in zip(result.segments, _rows(result), strict=True)
    )
    explain = "".join(f"<li>{esc(line)}</li>" for line in _explain_lines(result))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>twinrun audit</title><style>"
        "body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}.ok td:last-child{color:#070}.bad td:last-child{color:#b00}"
        f"</style></head><body><h1>twinrun audit: {esc(result.verdict)}</h1>"
        f"<p>{esc(str(result.run))} ({esc(result.app)}, {result.total_steps} steps, seed {result.seed})</p>"
        f"<table><tr><th>segment</th><th>from</th><th>verdict</th></tr>{cells}</table>"
        + (f"<h2>explain</h2><ul>{explain}</ul>" if explain else "")
        + "</body></html>\n"
    )
