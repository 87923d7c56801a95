"""``twinrun verify --nproc-per-node N APP``: data-parallel twins under torchrun.

Each run is ``python -m torch.distributed.run --standalone --nproc-per-node N --no-python <app argv>``
(this interpreter's torchrun, no PATH lookup; ``--no-python`` because the app's own argv already
starts with its interpreter). Every rank writes into the same ``hydra.run.dir``: rank 0 the run
directory, rank r its final weights under ``ranks/rank-<r>/`` (see :mod:`twinrun.trainers.distributed`).

Three kinds of checks, each bit for bit:

* every pair of runs, in full (rank 0's run directory: weights, config, logs, metrics, trace);
* every rank's final weights across runs;
* within each run, every rank's weights against rank 0's: after DDP all ranks must hold the same model.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from twinrun.compare.report.model import DIFFERENT, IDENTICAL, Report
from twinrun.record.runs import rank_dir
from twinrun.verify.apps import (
    NO_OPTIONS,
    AppCommand,
    CompareOptions,
    VerifyError,
    VerifyResult,
    resolve_app,
    verify_app,
)

TORCHRUN = (sys.executable, "-m", "torch.distributed.run")


@dataclass
class RankCheck:
    """One weights-only comparison: a rank across two runs, or a rank against rank 0 in one run."""

    label: str
    report: Report


@dataclass
class DDPResult:
    """The runs, their full pairwise comparison (``verify``) and the per-rank checks."""

    verify: VerifyResult
    nproc: int
    checks: list[RankCheck]

    @property
    def identical(self) -> bool:
        return self.verify.identical and all(c.report.exit_code == 0 for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.identical else 1

    @property
    def workdir(self) -> Path:
        return self.verify.workdir


def torchrun_command(command: AppCommand, nproc: int) -> AppCommand:
    """``command`` started by torchrun with ``nproc`` processes on this machine."""
    argv = (*TORCHRUN, "--standalone", f"--nproc-per-node={nproc}", "--no-python", *command.argv)
    return AppCommand(command.app, argv, "torchrun")


def compare_weights_only(a: Path, b: Path, trust_pickle: bool = False) -> Report:
    """A report with one section: the final weights of ``a`` and ``b``, bit for bit."""
    from twinrun.compare.judge.tensor_files import open_weights
    from twinrun.compare.judge.weights import compare_weights
    from twinrun.compare.read.run_reader import open_run

    with (
        open_weights(open_run(a), trust_pickle=trust_pickle) as wa,
        open_weights(open_run(b), trust_pickle=trust_pickle) as wb,
    ):
        section = compare_weights(wa, wb)
    return Report(str(a), str(b), {"weights": section})


def _rank_dirs(run_dir: Path, nproc: int, app: str) -> list[Path]:
    dirs = [rank_dir(run_dir, r) for r in range(nproc)]
    missing = next((d for d in dirs if not d.is_dir()), None)
    if missing is not None:
        raise VerifyError(
            f"{missing} does not exist: every rank of a DDP run writes its weights there; "
            f"does {app} train with twinrun.trainers.loop.fit?"
        )
    return dirs


def verify_ddp(
    app: str | AppCommand,
    overrides: Sequence[str] = (),
    nproc: int = 2,
    runs: int = 2,
    workdir: str | Path | None = None,
    *,
    progress: TextIO | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    options: CompareOptions = NO_OPTIONS,
) -> DDPResult:
    """Run ``app`` ``runs`` times under torchrun with ``nproc`` processes (each run at most ``timeout``
    seconds); compare runs (with ``options``) and ranks."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 2:
        raise VerifyError(f"--nproc-per-node {nproc}: a DDP twin needs at least 2 processes")
    command = app if isinstance(app, AppCommand) else resolve_app(app)
    result = verify_app(
        torchrun_command(command, nproc),
        overrides,
        runs,
        workdir,
        progress=progress,
        cwd=cwd,
        timeout=timeout,
        options=options,
    )
    ranks = {run.index: _rank_dirs(run.run_dir, nproc, command.app) for run in result.runs}
    checks, trust = [], options.trust_pickle
    for a, b in itertools.combinations(result.runs, 2):
        for r in range(nproc):
            label = f"rank {r}: run-{a.index} / run-{b.index}"
            report = compare_weights_only(ranks[a.index][r], ranks[b.index][r], trust)
            checks.append(RankCheck(label, report))
    for run in result.runs:
        for r in range(1, nproc):
            label = f"run-{run.index}: rank {r} / rank 0"
            report = compare_weights_only(ranks[run.index][r], ranks[run.index][0], trust)
            checks.append(RankCheck(label, report))
    return DDPResult(result, nproc, checks)


def _pair_detail(report: Report) -> str:
    """Where two full runs part (step and cause), or which sections differ."""
    if not report.exit_code:
        return "every section identical"
    where = f"{report.divergence.where}; " if report.divergence is not None else ""
    return f"{where}differs in {', '.join(report.differing_sections)}"


def check_rows(result: DDPResult) -> list[tuple[str, str, str]]:
    rows = [
        (f"run-{i} / run-{j} (rank 0 run directory)", r.verdict, _pair_detail(r))
        for (i, j), r in result.verify.pairs.items()
    ]
    rows += [(c.label, c.report.verdict, c.report.sections["weights"].summary) for c in result.checks]
    return rows


def _headline(result: DDPResult) -> str:
    verdict = IDENTICAL if result.identical else DIFFERENT
    runs = len(result.verify.runs)
    return f"{verdict} ({runs} runs of {result.verify.app.app} under torchrun, {result.nproc} processes each)"


def to_dict(result: DDPResult) -> dict[str, Any]:
    """The ``ddp`` section of the JSON report."""
    return {
        "nproc_per_node": result.nproc,
        "verdict": IDENTICAL if result.identical else DIFFERENT,
        "exit_code": result.exit_code,
        "checks": [
            {
                "check": c.label,
                "a": c.report.run_a,
                "b": c.report.run_b,
                "verdict": c.report.verdict,
                "exit_code": c.report.exit_code,
                "weights": c.report.to_dict()["sections"]["weights"],
            }
            for c in result.checks
        ],
    }


def render(result: DDPResult, fmt: str = "text") -> str:
    """A table of every check, the details of the first rank check that differs, then verify's report."""
    from twinrun.compare.report.render import detail_lines, markdown_details, render_table
    from twinrun.verify.render import render as render_runs

    runs_report = render_runs(result.verify, fmt)
    if fmt == "json":
        tree = json.loads(runs_report)
        tree["ddp"] = to_dict(result)
        # Top-level verdict/exit_code answer for the whole verification, rank checks included.
        tree["verdict"], tree["exit_code"] = tree["ddp"]["verdict"], result.exit_code
        return json.dumps(tree, indent=2) + "\n"
    headers, rows = ["check", "verdict", "detail"], check_rows(result)
    # The weights of a rank check that differs, unless the full report below already shows them.
    failed = next((c for c in result.checks if c.report.exit_code), None) if result.verify.identical else None
    if fmt == "markdown":
        mark = "✅" if result.identical else "❌"
        out = [
            f"## {mark} twinrun verify (DDP): {_headline(result)}",
            "",
            render_table(headers, rows, markdown=True),
        ]
        if failed is not None:
            lines = detail_lines(failed.report.sections["weights"])
            out += ["", markdown_details(f"{failed.label}: different", lines, open_=True)]
        return "\n".join([*out, "", runs_report])
    out = [f"twinrun verify (DDP): {_headline(result)}", "", render_table(headers, rows)]
    if failed is not None:
        out += [
            "",
            f"{failed.label}: weights",
            *("  " + x for x in detail_lines(failed.report.sections["weights"])),
        ]
    return "\n".join([*out, "", runs_report])
