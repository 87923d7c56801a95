"""``python -m benchmarks.golden_cost [--repeat N]``: what a golden check costs beyond its one run.

``twinrun golden check GOLDEN`` is one run of the recorded case in a fresh process plus the comparison
(the current run's golden dict built from its run directory: digests of the weights, files and trace;
then the judgement). Per reference trainer (the committed goldens under ``tests/golden/``), each round
times the run (``twinrun.golden.runner.rerun``, the same call the command makes) and the comparison
apart; the figure is the comparison as a share of the run (target: under 5 %). Run from the repository
root; the medians of ``--repeat`` rounds are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOLDENS = sorted((Path(__file__).resolve().parents[1] / "tests" / "golden").glob("*.json"))
TARGET = 0.05


def one_round(golden_path: Path, scratch: Path) -> tuple[float, float, str]:
    """(seconds of the run, seconds of the comparison, verdict) of one golden check."""
    from twinrun.golden.check import check_golden
    from twinrun.golden.layout import load_golden
    from twinrun.golden.record import golden_from_run
    from twinrun.golden.runner import rerun

    golden = load_golden(golden_path)
    start = time.perf_counter()
    run_dir = rerun(golden, tempfile.mkdtemp(dir=scratch), progress=None)
    ran = time.perf_counter()
    report = check_golden(load_golden(golden_path), golden_from_run(run_dir))
    done = time.perf_counter()
    return ran - start, done - ran, f"{report.verdict} ({report.mode})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.golden_cost", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per trainer (default 3)")
    args = parser.parse_args(argv)
    rows = [
        "| golden | run (median) | comparison (median) | comparison / run | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    ok = True
    with tempfile.TemporaryDirectory(prefix="golden-cost-") as scratch:
        for path in GOLDENS:
            rounds = [one_round(path, Path(scratch)) for _ in range(args.repeat)]
            run_s = statistics.median(r[0] for r in rounds)
            cmp_s = statistics.median(r[1] for r in rounds)
            ratios = [r[1] / r[0] for r in rounds]
            share = statistics.median(ratios)
            ok = ok and share < TARGET
            rows.append(
                f"| {path.name} | {run_s:.2f} s | {cmp_s * 1000:.0f} ms | {share:.1%} "
                f"({min(ratios):.1%}-{max(ratios):.1%}) | {rounds[-1][2]} |"
            )
            print(
                f"  {path.name}: "
                + ", ".join(f"run {r[0]:.2f}s compare {r[1] * 1000:.0f}ms" for r in rounds),
                file=sys.stderr,
            )
    print("\n".join(rows))
    print(f"\ntarget: comparison under {TARGET:.0%} of the run: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
