"""Figure 5: the test suite's wall time with pytest-xdist (``-n auto``) against one process (``-n 0``).

``python -m benchmarks.suite_time [PYTEST ARGS]`` runs only the PR gate (``pytest -n auto -q``) and
prints its wall time against the 4-minute budget (exit 1 over it or when the suite fails).

Each run is a fresh ``python -m pytest`` subprocess in the repository root: ``-n 0`` first (so the
xdist runs get warm file caches: any advantage goes to xdist), then ``-n auto``, then ``-n auto`` with
``OMP_NUM_THREADS=1``. The last one asks whether xdist's workers, each running torch's default
multi-threaded kernels on the same few cores, get in each other's way.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

from benchmarks.common import Context
from benchmarks.table import Row

TIMEOUT_SECONDS = 3600
# (label, -n value, extra environment)
RUNS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("-n 0", "0", {}),
    ("-n auto", "auto", {}),
    ("-n auto, OMP_NUM_THREADS=1", "auto", {"OMP_NUM_THREADS": "1"}),
)


def _summary(output: str) -> str:
    """pytest's last summary line (``12 passed in 3.4s``), else the last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if any(word in line for word in ("passed", "failed", "error", "no tests ran")):
            return line.strip("= ")
    return lines[-1] if lines else "(no output)"


def run_pytest(ctx: Context, workers: str, env: dict[str, str]) -> tuple[float, int, str]:
    """(wall seconds, exit code, summary line) of ``pytest -n WORKERS <suite args>``."""
    command = [sys.executable, "-m", "pytest", "-n", workers, *ctx.sizes.suite_args]
    start = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=ctx.repo_root,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env={**os.environ, **env},
    )
    return time.perf_counter() - start, proc.returncode, _summary(proc.stdout + proc.stderr)


def run(ctx: Context) -> list[Row]:
    args = " ".join(shlex.quote(a) for a in ctx.sizes.suite_args)
    results: dict[str, tuple[float, int, str]] = {}
    rows = []
    for label, workers, env in RUNS:
        print(f"  pytest {label} {args} ...", flush=True)
        results[label] = secs, rc, summary = run_pytest(ctx, workers, env)
        print(f"  -> {secs:.1f}s rc={rc}: {summary}", flush=True)
        prefix = "".join(f"{key}={value} " for key, value in env.items())
        rows.append(
            Row(
                f"pytest {label} wall",
                f"{secs:.1f} s (rc {rc}: {summary})",
                command=f"`{prefix}python -m pytest -n {workers} {args}`",
            )
        )
    ctx.notes.append(
        f"suite: `-n 0` ran first, then the `-n auto` runs ({os.cpu_count()} CPUs visible, so "
        f"{os.cpu_count()} workers), each a fresh pytest process; times include collection and xdist "
        "start-up. The suite's processes use torch's default thread count unless OMP_NUM_THREADS says."
    )
    cmd = ctx.command("suite", f" --suite-args {shlex.quote(args)}")
    serial, serial_rc = results["-n 0"][:2]
    for label, _, _ in RUNS[1:]:
        seconds, rc = results[label][:2]
        speedup = serial / seconds
        # A failed run is no speed-up, however fast it failed.
        met = speedup > 1.0 if serial_rc == rc == 0 else False
        rows.append(Row(f"pytest {label} speed-up over -n 0", f"{speedup:.2f}x", "> 1x", met, cmd))
    return rows


GATE_BUDGET_S = 240.0  # the PR gate's budget for `pytest -n auto` on 2 cores (issue 24: at most 4 minutes)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.suite_time [PYTEST ARGS]``: the PR gate as CI runs it (``pytest -n auto -q``,
    the slow tests left out by ``addopts``), its wall time and whether it is within the budget."""
    from pathlib import Path

    extra = sys.argv[1:] if argv is None else argv
    command = [sys.executable, "-m", "pytest", "-n", "auto", "-q", *extra]
    print(f"suite: {shlex.join(command)} ({os.cpu_count()} CPUs visible)", flush=True)
    start = time.perf_counter()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    seconds = time.perf_counter() - start
    verdict = "within" if seconds <= GATE_BUDGET_S else "over"
    print(f"suite: {seconds:.1f} s wall, rc {proc.returncode}: {_summary(proc.stdout + proc.stderr)}")
    print(f"suite: {verdict} the {GATE_BUDGET_S:.0f} s budget")
    return 0 if proc.returncode == 0 and seconds <= GATE_BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
