"""``twinrun verify`` on the command line: argument parsing and rendering over :func:`verify_app`.

Registered in :mod:`twinrun.cli` through :func:`add_parser`. With more than two runs
the report is a pairwise summary table followed by the full report of the first pair that differs.
``-m`` verifies every point of a Hydra sweep (:mod:`twinrun.verify.sweep`); ``--nproc-per-node N`` runs each
twin under torchrun and compares the ranks too (:mod:`twinrun.verify.ddp`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from twinrun.verify.apps import CompareOptions, VerifyError, verify_app
from twinrun.verify.render import render
from twinrun.verify.workdir import clean_up


class _TrailingOptions(argparse.ArgumentParser):
    """Reads verify's options given after APP; only those given are set; errors are one line."""

    def __init__(self) -> None:
        super().__init__(prog="twinrun verify", add_help=False, argument_default=argparse.SUPPRESS)
        _add_options(self, trailing=True)

    def error(self, message: str) -> NoReturn:
        raise VerifyError(f"{message}; see twinrun verify --help")


def _add_options(parser: argparse.ArgumentParser, trailing: bool = False) -> None:
    default = argparse.SUPPRESS if trailing else 2
    parser.add_argument("--runs", type=int, default=default, metavar="N", help="how many runs (default 2)")
    parser.add_argument(
        "-m",
        "--multirun",
        action="store_true",
        default=argparse.SUPPRESS if trailing else False,
        help="verify every point of a Hydra sweep (comma lists, glob(), range()) run by the app's "
        "configured Hydra launcher (hydra/launcher=joblib, submitit_local, submitit_slurm, ...)",
    )
    parser.add_argument(
        "--nproc-per-node",
        type=int,
        metavar="N",
        default=argparse.SUPPRESS if trailing else 1,
        help="run each twin under torchrun with N processes (DistributedDataParallel) and compare every "
        "rank's weights too",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="where the runs go, kept afterwards (default: a new temp directory, removed when the runs "
        "are identical)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        default=argparse.SUPPRESS if trailing else False,
        help="keep the default temp work directory even when the runs are identical",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop a run (or a sweep) that takes longer than this and exit 2 (default: no limit)",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        default=argparse.SUPPRESS if trailing else False,
        help="load, with full pickle (torch.load weights_only=False), every torch file of either run "
        "that the inert reader refuses: this runs whatever code those files name; only for files you "
        "made yourself",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        metavar="GLOB",
        default=argparse.SUPPRESS if trailing else [],
        help="leave files matching GLOB (relative to the run directory) out of the verdict; repeatable",
    )
    parser.add_argument(
        "--html",
        metavar="REPORT.html",
        default=argparse.SUPPRESS if trailing else None,
        help="also write a self-contained HTML report of the pair shown in full, with verify's table",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        default=argparse.SUPPRESS if trailing else False,
        help="when the runs part on computation at step s, replay step s of both from their nearest "
        "checkpoint and name the first op whose output differs (twinrun's trainers)",
    )
    fmt = parser if trailing else parser.add_mutually_exclusive_group()  # checked again in run_verify
    fmt.add_argument("--json", action="store_true", help="print a machine-readable JSON report")
    fmt.add_argument("--markdown", action="store_true", help="print a markdown report (CI job summaries)")


def add_parser(subparsers: Any) -> None:
    """Register ``twinrun verify`` (handler: :func:`run_verify`)."""
    p = subparsers.add_parser(
        "verify",
        help="run a Hydra app N times in fresh processes and compare the runs",
        description="Run APP (a console script, module:function or script.py) N times, each in a fresh "
        "interpreter with its own PYTHONHASHSEED and run directory, and compare every pair. "
        "Exit 0 identical, 1 different, 2 unusable (unknown app, a run failed or timed out).",
    )
    p.add_argument(
        "app",
        metavar="APP",
        help="vae-mnist, mnist-classifier, a console script, module:function or a script.py",
    )
    # REMAINDER: Hydra overrides may be followed by verify's own options; run_verify sorts them out.
    p.add_argument(
        "overrides", nargs=argparse.REMAINDER, metavar="OVERRIDE", help="Hydra overrides, key=value"
    )
    _add_options(p)
    p.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Handler of ``twinrun verify``: run, print the report, return 0/1 (errors raise VerifyError)."""
    trailing, overrides = _TrailingOptions().parse_known_args(args.overrides)
    for name, value in vars(trailing).items():
        # --ignore before and after APP adds up; any other option given after APP wins.
        setattr(args, name, args.ignore + value if name == "ignore" else value)
    if args.json and args.markdown:
        raise VerifyError("--json and --markdown exclude each other; pick one")
    if args.nproc_per_node < 1:
        raise VerifyError(f"--nproc-per-node {args.nproc_per_node}: give a number of processes >= 1")
    if args.explain and (args.multirun or args.nproc_per_node > 1):
        raise VerifyError("--explain works on twins of one run; leave out -m and --nproc-per-node")
    if args.multirun and args.nproc_per_node > 1:
        raise VerifyError(
            "-m and --nproc-per-node exclude each other; verify a DDP config one point at a time"
        )
    fmt = "json" if args.json else "markdown" if args.markdown else "text"
    common = {
        "runs": args.runs,
        "workdir": args.workdir,
        "progress": sys.stderr,
        "timeout": args.timeout,
        "options": CompareOptions(trust_pickle=args.trust_pickle, ignore=tuple(args.ignore)),
    }
    if args.multirun:
        from twinrun.verify import sweep, sweep_render

        result: Any = sweep.verify_sweep(args.app, overrides, **common)
        text = sweep_render.render(result, fmt)
    elif args.nproc_per_node > 1:
        from twinrun.verify import ddp as verify_ddp

        result = verify_ddp.verify_ddp(args.app, overrides, args.nproc_per_node, **common)
        text = verify_ddp.render(result, fmt)
    else:
        result = verify_app(args.app, overrides, **common)
        text = render(result, fmt)
        if args.explain:
            text = _explained(text, result, overrides, args.timeout, fmt)
    if args.html:
        from twinrun.verify.html_page import write_verify_html

        write_verify_html(args.html, result)
        sys.stderr.write(f"HTML report written to {args.html}\n")
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.stderr.write(clean_up(result.workdir, result.exit_code, kept=bool(args.workdir or args.keep)))
    return result.exit_code


def _explained(text: str, result: Any, overrides: list[str], timeout: float | None, fmt: str) -> str:
    """The report with the op-level explanation added (``--explain``)."""
    import json

    from twinrun.verify.explain_cli import explain_verified

    sys.stderr.write("explain: replaying the divergent step of both runs ...\n")
    explained = explain_verified(result, overrides, timeout)
    if fmt == "json":
        tree = json.loads(text)
        tree["explain"] = explained.to_dict() if not isinstance(explained, str) else {"summary": explained}
        return json.dumps(tree, indent=2) + "\n"
    lines = [explained] if isinstance(explained, str) else explained.lines()
    if fmt == "markdown":
        return text + "\n### explain\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
    return text + "\nexplain\n" + "".join(f"  {line}\n" for line in lines)
