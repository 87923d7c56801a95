"""``twinrun golden record | check | calibrate``: arguments and handlers (thin over the package).

Exit codes of ``check``: 0 passed, 1 changed (the report says where), 2 unusable input (one line).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from twinrun.golden.layout import GoldenError


def add_parser(subparsers: Any) -> None:
    """Register ``twinrun golden`` and its three subcommands."""
    p = subparsers.add_parser(
        "golden",
        help="record a golden run, check a run against it, calibrate its bands",
        description="Golden runs: a small committed file per case; a later run is checked against it, "
        "bit for bit in the same environment class, by tolerance bands in another. See docs/golden.md.",
    )
    sub = p.add_subparsers(dest="golden_command", metavar="ACTION", required=True)

    rec = sub.add_parser("record", help="write a golden file from a fresh run or an existing run directory")
    rec.add_argument("app", metavar="APP", nargs="?", help="console script, module:function or script.py")
    rec.add_argument("overrides", metavar="OVERRIDE", nargs="*", help="Hydra overrides of the case")
    rec.add_argument("-o", "--output", required=True, metavar="GOLDEN.json", help="the golden file to write")
    rec.add_argument(
        "--from",
        dest="from_run",
        metavar="RUN",
        help="record an existing run directory (with APP: its .hydra/overrides.yaml becomes the case)",
    )
    rec.add_argument("--workdir", help="where the fresh run goes (default: a new temp directory)")
    rec.set_defaults(handler=run_record)

    chk = sub.add_parser("check", help="re-run the golden's case (or --run RUN) and judge it")
    chk.add_argument("golden", metavar="GOLDEN", help="the golden file")
    chk.add_argument("--run", metavar="RUN", help="check this run directory instead of re-running the case")
    chk.add_argument("--workdir", help="where the re-run goes (default: a new temp directory)")
    fmt = chk.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a machine-readable JSON report")
    fmt.add_argument("--markdown", action="store_true", help="print a markdown report (CI job summaries)")
    chk.add_argument("--html", metavar="REPORT.html", help="also write an HTML page: golden vs current curve")
    chk.set_defaults(handler=run_check)

    cal = sub.add_parser("calibrate", help="measure the golden's bands from runs across seeds and threads")
    cal.add_argument("golden", metavar="GOLDEN", help="the golden file (its bands are rewritten)")
    cal.add_argument("--runs", type=int, default=4, help="calibration runs of the case (default 4)")
    cal.add_argument("--multiple", type=float, default=None, help="band = MULTIPLE x observed range (2)")
    cal.add_argument(
        "--from",
        dest="from_runs",
        action="append",
        default=[],
        metavar="RUN",
        help="use these run directories instead of new runs (repeatable)",
    )
    cal.add_argument("--workdir", help="where the calibration runs go (default: a new temp directory)")
    cal.set_defaults(handler=run_calibrate)


def run_record(args: argparse.Namespace) -> int:
    from twinrun.golden.layout import write_golden
    from twinrun.golden.record import golden_from_run
    from twinrun.verify.apps import prepare_workdir

    overrides = list(args.overrides)
    if args.from_run:
        if overrides:
            raise GoldenError("--from RUN records that run as it is; give no overrides with it")
        run_dir = Path(args.from_run)
        overrides = recorded_overrides(run_dir) if args.app else []
    elif args.app:
        from twinrun.golden.runner import run_app

        run_dir = run_app(args.app, overrides, prepare_workdir(args.workdir, 1))
    else:
        raise GoldenError("give APP [OVERRIDE...] to record a fresh run, or --from RUN")
    golden = golden_from_run(run_dir, args.app, overrides)
    path = write_golden(args.output, golden)
    size = path.stat().st_size
    steps = (golden.get("trace") or {}).get("steps", 0)
    print(
        f"golden written to {path} ({size:,} bytes, {steps} traced steps, {len(golden['artifacts'])} files)"
    )
    return 0


def recorded_overrides(run_dir: Path) -> list[str]:
    """A Hydra run's own overrides (``.hydra/overrides.yaml``) minus its run directory and other paths."""
    from twinrun.compare.read.run_reader import open_run, read_overrides
    from twinrun.config import is_volatile

    items = read_overrides(open_run(run_dir)) or []
    return [o for o in items if not is_volatile(o.split("=", 1)[0].lstrip("+~").replace("/", "."))]


def run_check(args: argparse.Namespace) -> int:
    from twinrun.golden.check import check_golden
    from twinrun.golden.layout import load_golden
    from twinrun.golden.record import golden_from_run
    from twinrun.golden.report import render_json, render_markdown, render_text

    golden = load_golden(args.golden)
    if args.run:
        run_dir = Path(args.run)
    else:
        from twinrun.golden.runner import rerun

        run_dir = rerun(golden, args.workdir)
    report = check_golden(golden, golden_from_run(run_dir), name=str(args.golden))
    text = (
        render_json(report)
        if args.json
        else render_markdown(report)
        if args.markdown
        else render_text(report)
    )
    if args.html:
        from twinrun.golden.html import write_html

        write_html(args.html, report)
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.html:
        sys.stderr.write(f"HTML report written to {args.html}\n")
    return report.exit_code


def calibration_overrides(overrides: list[str], seed: int) -> list[str]:
    """The case's overrides with ``seed`` replaced (or added)."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+") != "seed"]
    return [*kept, f"seed={seed}"]


def run_calibrate(args: argparse.Namespace) -> int:
    from twinrun.golden.bands import MULTIPLE, calibrate
    from twinrun.golden.layout import load_golden, write_golden
    from twinrun.golden.record import golden_from_run

    golden = load_golden(args.golden)
    multiple = MULTIPLE if args.multiple is None else args.multiple
    if not multiple > 0:
        raise GoldenError(f"--multiple {multiple}: give a number > 0")
    if args.from_runs:
        run_dirs, note = [Path(r) for r in args.from_runs], f"runs {', '.join(args.from_runs)}"
    else:
        run_dirs, note = _calibration_runs(golden, args.runs, args.workdir)
    others = [golden_from_run(r) for r in run_dirs]
    golden["bands"] = calibrate(golden, others, multiple, note)
    write_golden(args.golden, golden)
    print(f"bands of {args.golden} {golden['bands']['source']}")
    return 0


def _calibration_runs(golden: dict[str, Any], runs: int, workdir: str | None) -> tuple[list[Path], str]:
    """``runs`` runs of the case, seeds 1..runs, alternating 1 thread and every core where there are more."""
    from twinrun.golden.runner import run_app
    from twinrun.verify.apps import prepare_workdir

    case = golden.get("case") or {}
    if not case.get("app"):
        raise GoldenError("this golden names no app (it was recorded --from a run); calibrate --from RUN...")
    if isinstance(runs, bool) or runs < 1:
        raise GoldenError(f"--runs {runs}: give at least 1 run")
    directory = prepare_workdir(workdir, runs)
    threads = [1, os.cpu_count() or 1] if (os.cpu_count() or 1) > 1 else [1]
    dirs, used = [], []
    for index in range(1, runs + 1):
        count = threads[(index - 1) % len(threads)]
        overrides = calibration_overrides(list(case.get("overrides") or []), index)
        env = {"OMP_NUM_THREADS": str(count)}
        dirs.append(run_app(case["app"], overrides, directory, env=env, index=index, total=runs))
        used.append(f"seed {index} on {count} thread{'s' if count > 1 else ''}")
    return dirs, "; ".join(used)
