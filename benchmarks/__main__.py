"""``python -m benchmarks``: twinrun's figures, measured side by side in one run, as one table.

    python -m benchmarks [--quick] [--only epoch,trace,twins,compare,logs,suite,mnist] [--repeat N]
                         [--compare-mb MB] [--suite-args "tests/unit -q"] [--threads N] [--profile]
                         [--output PATH]

Parts (``--only`` selects, comma-separated; default all):

  epoch    VAE epoch: twinrun ``fit`` vs the course DataLoader+ToTensor path vs a bare tensor loop
  trace    per-step trace on vs off (alternating blocks of steps in one run), both trainers
  twins    one twin check per trainer at the suite's test size
  compare  ``twinrun compare`` throughput and peak RSS (via ``benchmarks/bench_compare.py``)
  logs     ``compare`` on twin logs (normalized and accounted) and on one huge line, MB/s
  suite    ``pytest -n auto`` vs ``pytest -n 0`` wall time
  mnist    classifier accuracy and epoch time on real MNIST digits (skipped without them)

Run from the repository root. Absolute seconds depend on the machine and its load at the time; the
ratios are measured side by side (paired rounds, alternating order) to be less sensitive to it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Context, sizes_for
from benchmarks.table import Row, render

PARTS = ("epoch", "trace", "twins", "compare", "logs", "suite", "mnist")
REPO_ROOT = Path(__file__).resolve().parents[1]


def _runner(part: str) -> Callable[[Context], list[Row]]:
    # Imported on demand: --only compare never imports torch in this process.
    if part == "epoch":
        from benchmarks.epoch import run
    elif part == "trace":
        from benchmarks.trace_overhead import run
    elif part == "twins":
        from benchmarks.twin_cost import run
    elif part == "compare":
        from benchmarks.compare_cost import run
    elif part == "logs":
        from benchmarks.log_cost import run
    elif part == "suite":
        from benchmarks.suite_time import run
    else:
        from benchmarks.real_mnist import run
    return run


def _parts(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        known = ", ".join(PARTS)
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown)}; choose from {known}")
    return [p for p in PARTS if p in chosen]  # always in the documented order


def _machine() -> str:
    try:
        import torch

        threads = f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads"
    except ImportError:  # pragma: no cover - torch is a dependency
        threads = "torch absent"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {threads}, "
        f"python {platform.python_version()}; load average {load}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", type=_parts, default=list(PARTS), help=f"parts: {','.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    parser.add_argument(
        "--repeat",
        type=int,
        help="rounds per figure (default: epoch 5, trace 120 block pairs, twins 5, compare 1; quick 1)",
    )
    parser.add_argument("--compare-mb", type=int, help="MiB of weights per run for compare (1024; quick 32)")
    parser.add_argument(
        "--suite-args",
        type=shlex.split,
        help="pytest arguments for the suite part (default 'tests/unit tests/repro -q -p no:randomly')",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads in this process (default 1; 0 = torch's default)",
    )
    parser.add_argument("--profile", action="store_true", help="profile the twinrun epoch even if on target")
    parser.add_argument("--data-root", type=Path, help="reuse this dataset root (default: a temp dir)")
    parser.add_argument("--output", type=Path, help="also write the table (and notes) to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        # One thread by default: on a CPU shared with other jobs, multi-threaded kernels wait at every
        # barrier for a thread the scheduler has parked (measured here: a 5 ms VAE step took up to
        # 500 ms with 2 threads while another process held a core). One thread stays comparable.
        import torch

        torch.set_num_threads(args.threads)
    sizes = sizes_for(args.quick, args.repeat, args.compare_mb, args.suite_args)
    scratch = Path(tempfile.mkdtemp(prefix="twinrun-bench-"))
    data_root = args.data_root or scratch / "data"
    flags = (f" --threads {args.threads}" if args.threads != 1 else "") + (
        f" --repeat {args.repeat}" if args.repeat else ""
    )
    ctx = Context(sizes, data_root, scratch, REPO_ROOT, profile=args.profile, flags=flags)
    invocation = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    print(f"# twinrun benchmarks: {invocation}\nmachine: {_machine()}", flush=True)
    rows: list[Row] = []
    started = time.perf_counter()
    failed = False
    try:
        for part in args.only:
            print(f"[{part}] ...", flush=True)
            part_start = time.perf_counter()
            try:
                rows += _runner(part)(ctx)
            except Exception as exc:  # one broken part must not cost the other figures of a long run
                failed = True
                traceback.print_exc()
                rows.append(Row(f"{part}: FAILED", f"{type(exc).__name__}: {exc}", command=ctx.command(part)))
            print(f"[{part}] done in {time.perf_counter() - part_start:.1f}s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = "\n".join(
        [
            f"## twinrun benchmarks ({'quick smoke run' if sizes.quick else 'full run'})",
            "",
            f"`{invocation}` — {time.perf_counter() - started:.0f}s in all.",
            f"Machine: {_machine()} (at the end).",
            "Absolute times depend on the machine and on its load while this ran (other jobs share the "
            "CPUs); ratios compare variants measured side by side, in paired rounds of alternating order.",
            "",
            render(rows),
            "",
            "Notes:",
            *[f"- {note}" for note in ctx.notes],
            *[f"\n{section}" for section in ctx.details],
        ]
    )
    print("\n" + report, flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report + "\n", encoding="utf-8")
        print(f"\nwritten to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
