"""Figure: how fast ``compare`` judges logs, realistic and pathological (``--only logs``).

Two twin logs that differ only in their timestamps, durations and run paths (what the log reader
normalizes and the byte rule then accounts for, line by line) are compared through
:func:`twinrun.compare.judge.kinds.compare_artifact`, as ``compare`` does; the rate is one log's size over the
wall time. The pathological case is one line of many megabytes that differs in its last byte: a line
longer than ``MAX_NORMALIZED_LINE`` is compared as written, so its cost is a read, not the normalizer's
regular expressions (a 300 MB line took over 120 s before).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import Context
from benchmarks.table import Row

MB = 1_000_000
RATIO_TARGET = 1.5  # the accounted compare against normalizing both logs alone (the comparer before the rule)
LINE_TARGET = 50.0  # MB/s for one huge line: bounded by reading, not by the normalizer


def realistic_log(run: Path, size: int, seed: int) -> str:
    """Lines as a trainer logs them: a timestamp, losses, a duration, a rate, the run's path."""
    rnd = random.Random(seed)
    lines, total, step = [], 0, 0
    while total < size:
        step += 1
        stamp = f"[2026-12-07 05:{step // 60 % 60:02d}:{step % 60:02d},{rnd.randrange(1000):03d}]"
        line = (
            f"{stamp}[twinrun.trainers.loop][INFO] - epoch 1 step {step} train_loss={100 / step:.6f} "
            f"({rnd.uniform(0.1, 3):.2f}s) {rnd.uniform(50, 900):.1f} it/s saved {run}/checkpoints/s{step}.pt"
        )
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def time_compare(a: Path, b: Path, name: str) -> tuple[float, float]:
    from twinrun.compare.judge.kinds import Context as CompareContext
    from twinrun.compare.judge.kinds import compare_artifact
    from twinrun.compare.read.artifacts import LOG, Artifact
    from twinrun.compare.read.run_reader import open_run, path_mask

    run_a, run_b = open_run(a), open_run(b)
    ctx = CompareContext(run_a, run_b, path_mask(run_a, run_b))
    art = Artifact(name, LOG, [a / name], [b / name])
    start, cpu = time.perf_counter(), time.process_time()
    outcome = compare_artifact(art, ctx)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert outcome.verdict in ("identical", "different"), outcome
    return seconds, cpu


def time_normalize(a: Path, b: Path, name: str) -> float:
    """CPU seconds of normalizing both logs, what ``compare`` did before the byte rule."""
    from twinrun.compare.read.run_reader import open_run, path_mask, read_log

    run_a, run_b = open_run(a), open_run(b)
    mask = path_mask(run_a, run_b)
    cpu = time.process_time()
    assert read_log(run_a, name, mask) == read_log(run_b, name, mask)
    return time.process_time() - cpu


def measure(realistic_mb: int, line_mb: int, where: Path | None = None) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="twinrun-bench-logs-", dir=where))
    try:
        a, b = root / "a", root / "b"
        a.mkdir()
        b.mkdir()
        (a / "train.log").write_text(realistic_log(a, realistic_mb * MB, 1))
        (b / "train.log").write_text(realistic_log(b, realistic_mb * MB, 2))
        size = (a / "train.log").stat().st_size
        realistic, realistic_cpu = time_compare(a, b, "train.log")
        normalize_cpu = time_normalize(a, b, "train.log")
        line = "x" * (line_mb * MB)
        (a / "one.log").write_text(line + "a\n")
        (b / "one.log").write_text(line + "b\n")
        one, one_cpu = time_compare(a, b, "one.log")
        return {
            "size": size,
            "seconds": realistic,
            "cpu": realistic_cpu,
            "normalize_cpu": normalize_cpu,
            "line_size": line_mb * MB,
            "line_seconds": one,
            "line_cpu": one_cpu,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(ctx: Context) -> list[Row]:
    realistic_mb, line_mb = (8, 32) if ctx.sizes.quick else (64, 300)
    got = measure(realistic_mb, line_mb, ctx.scratch)
    # Per CPU second (one thread: the wall time on a quiet machine); a loaded machine stretches wall time.
    rate = got["size"] / got["cpu"] / MB
    ratio = got["cpu"] / got["normalize_cpu"]
    line_rate = got["line_size"] / got["line_cpu"] / MB
    command = ctx.command("logs")
    ctx.notes.append(
        f"logs: MB per CPU second of the comparing process; wall seconds {got['seconds']:.2f} (twin logs) "
        f"and {got['line_seconds']:.2f} (one line)."
    )
    return [
        Row(
            f"compare two {got['size'] / MB:.0f} MB twin logs (times, durations, rates, paths differ), "
            "accounted by the byte rule / only normalized (before)",
            f"{rate:.1f} MB/s ({got['cpu']:.2f} CPU s) / {got['size'] / got['normalize_cpu'] / MB:.1f} MB/s: "
            f"{ratio:.2f}x",
            f"<= {RATIO_TARGET:g}x",
            ratio <= RATIO_TARGET,
            command,
        ),
        Row(
            f"compare a {line_mb} MB single-line log (last byte differs)",
            f"{line_rate:.0f} MB/s ({got['line_cpu']:.2f} CPU s)",
            f">= {LINE_TARGET:g} MB/s",
            line_rate >= LINE_TARGET,
            command,
        ),
    ]


if __name__ == "__main__":  # pragma: no cover - python -m benchmarks.log_cost [REALISTIC_MB LINE_MB]
    import sys

    sizes = [int(x) for x in sys.argv[1:3]] or [8, 32]
    print(measure(*sizes))
