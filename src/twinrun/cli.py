"""twinrun's command line: ``twinrun compare RUN_A RUN_B``, ``twinrun verify`` (:mod:`twinrun.verify.cli`) and
``twinrun explain`` (:mod:`twinrun.verify.explain_cli`).

Each subcommand is a function ``add_parser(subparsers)`` that registers its parser and sets
``handler=<fn(args) -> int>``; :data:`SUBCOMMANDS` lists them. Errors of the ``TwinrunError`` family
become one line ``twinrun <command>: error: <what is wrong>; <what to do>`` and exit code 2; so does any
unexpected exception (the traceback only with ``TWINRUN_DEBUG=1``). Import-light: the comparer (and
torch) load only when a subcommand runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from twinrun import __version__
from twinrun.errors import TwinrunError
from twinrun.golden.cli import add_parser as add_golden_parser
from twinrun.verify.audit_cli import add_parser as add_audit_parser
from twinrun.verify.cli import add_parser as add_verify_parser
from twinrun.verify.doctor_cli import add_parser as add_doctor_parser
from twinrun.verify.explain_cli import add_parser as add_explain_parser
from twinrun.verify.processes import Terminated

PROG = "twinrun"
EXIT_UNUSABLE = 2

Subparsers = Any  # argparse's _SubParsersAction is private; typing it adds nothing


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``twinrun compare: error: ...; see twinrun compare --help``)
    and exit code 2; the subcommands' parsers are of this class too."""

    subcommands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {text}; see {self.prog} --help\n")


def _color_wanted(mode: str) -> bool:
    if mode != "auto":
        return mode == "always"
    # Colors only on a terminal; https://no-color.org and dumb terminals opt out.
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def add_compare_parser(subparsers: Subparsers) -> None:
    """Register ``twinrun compare``."""
    p = subparsers.add_parser(
        "compare",
        help="compare two run directories bit for bit",
        description="Compare two run directories: weights bit for bit, resolved config, logs, metrics, "
        "environment, and where traced runs diverge. Exit 0 identical, 1 different, 2 unusable input "
        "(then one line on stderr and nothing on stdout, also with --json).",
    )
    p.add_argument("run_a", metavar="RUN_A", help="first run directory")
    p.add_argument("run_b", metavar="RUN_B", help="second run directory")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a machine-readable JSON report")
    fmt.add_argument("--markdown", action="store_true", help="print a markdown report (CI job summaries)")
    p.add_argument(
        "--atol",
        type=float,
        help="also report closeness (torch.isclose, NaN == NaN) with this absolute "
        "tolerance; the other tolerance defaults to 0. 'identical' still means bit for bit",
    )
    p.add_argument("--rtol", type=float, help="relative tolerance for the closeness report (see --atol)")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load, with full pickle (torch.load weights_only=False), every torch file of either run "
        "that the inert reader refuses: this runs whatever code those files name; only for files you "
        "made yourself",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out files matching GLOB (repeatable; 'name', 'dir/', 'path/*.csv'), beside caches, temp "
        "and lock files, .submitit/, wandb/, mlruns/ and [tool.twinrun] ignore in ./pyproject.toml",
    )
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colored text report")
    p.add_argument(
        "--html",
        metavar="REPORT.html",
        help="also write a self-contained HTML report (curves, divergence, heat map, pictures)",
    )
    p.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    """Handler of ``twinrun compare``: print the report, return its exit code."""
    from twinrun.compare.report.render import render_json, render_markdown, render_text
    from twinrun.compare.runs import compare_runs

    report = compare_runs(
        args.run_a,
        args.run_b,
        atol=args.atol,
        rtol=args.rtol,
        trust_pickle=args.trust_pickle,
        ignore=args.ignore,
    )
    if args.json:
        text = render_json(report)
    elif args.markdown:
        text = render_markdown(report)
    else:
        text = render_text(report, color=_color_wanted(args.color))
    if args.html:
        from twinrun.compare.report.html import render_html, write_html

        write_html(args.html, render_html(report, args.run_a, args.run_b))
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.html:
        sys.stderr.write(f"HTML report written to {args.html}\n")
    return report.exit_code


SUBCOMMANDS: list[Callable[[Subparsers], None]] = [
    add_compare_parser,
    add_verify_parser,
    add_explain_parser,
    add_golden_parser,
    add_doctor_parser,
    add_audit_parser,
]

# The project has no published site: the docs are the README and docs/ of its source tree.
DOCS = "README.md and docs/ of the twinrun source (docs/verify.md, docs/compare.md, docs/pytest-plugin.md)"
EXAMPLES = f"""\
examples:
  twinrun doctor                                    check the install: do torch and torchvision match?
  twinrun verify vae-mnist data=synthetic training.epochs=1    run an app twice, compare the runs
  twinrun compare runs/A runs/B --html report.html             compare two run directories

docs: {DOCS}
"""


def build_parser() -> _Parser:
    """The ``twinrun`` parser with every registered subcommand."""
    parser = _Parser(
        prog=PROG,
        description="Prove that PyTorch training reproduces bit for bit.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    parser.subcommands = dict(subparsers.choices)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``twinrun`` console script and ``python -m twinrun``; returns the exit code."""
    parser = build_parser()
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        # A run's file name that is not UTF-8 (surrogate escapes) prints as \udcff instead of failing.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # named by the subcommand's parser, so that the line points to its --help
            where = parser.subcommands.get(args.command, parser)
            where.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_UNUSABLE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_UNUSABLE
    where = f"{PROG} {args.command}"
    try:
        return int(args.handler(args))
    except TwinrunError as exc:
        print(f"{where}: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:  # SIGTERM/SIGHUP during verify's runs: the run in progress was stopped
        print(f"{where}: stopped by {exc.name}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; silence the flush at exit as well.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get("TWINRUN_DEBUG") == "1":
            raise
        print(
            f"{where}: error: unexpected {_one_line(exc)}; rerun with TWINRUN_DEBUG=1 for the traceback "
            "and report it",
            file=sys.stderr,
        )
    return EXIT_UNUSABLE
