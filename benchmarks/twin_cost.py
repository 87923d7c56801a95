"""Figure 3: what one twin check costs per trainer at the suite's test size.

Uses the suite's own machinery: ``twinrun.testing.pytest_plugin.run_twins(train, cfg, base_dir)`` with the
config the repro tests compose (``tests/variants.py`` ``TEST_SIZE``). ``train`` is wrapped to time each
twin's ``train(cfg, run_dir)`` wall (config checks, data load, model, 2 epochs, evaluation, every
artifact); the rest of ``run_twins`` is RNG scrambling/restoring and ``compare_runs``. One untimed
check per trainer first (it generates the data and pays first-call costs).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import APPS, Context, cli_equivalent, compose, median, train_function
from benchmarks.table import Row

TARGET_SECONDS = 1.5  # tests/variants.py: "Small enough for a twin check in about a second"


def _test_size() -> tuple[str, ...]:
    from tests.variants import TEST_SIZE  # the suite's size, not a copy that could drift

    return tuple(TEST_SIZE)


def one_check(app: str, cfg: Any, scratch: Path) -> tuple[float, float, bool]:
    """(seconds in both twins' train, seconds of the whole check, identical?) for one twin check."""
    from twinrun.testing.pytest_plugin import run_twins

    train = train_function(app)
    train_seconds: list[float] = []

    def timed(cfg: Any, run_dir: Path) -> Any:
        start = time.perf_counter()
        result = train(cfg, run_dir)
        train_seconds.append(time.perf_counter() - start)
        return result

    base = Path(tempfile.mkdtemp(prefix=f"twins-{app}-", dir=scratch))
    try:
        start = time.perf_counter()
        result = run_twins(timed, cfg, base)
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return sum(train_seconds), total, result.identical


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    size = _test_size()
    for app in APPS:
        overrides = [*size, f"data.root={ctx.data_root}"]
        cfg = compose(app, overrides)
        one_check(app, cfg, ctx.scratch)  # warm-up, untimed
        trains, totals, identical = [], [], True
        for rep in range(ctx.sizes.twin_repeat):
            t, total, same = one_check(app, cfg, ctx.scratch)
            trains.append(t)
            totals.append(total)
            identical = identical and same
            print(f"  twins {app} {rep + 1}/{ctx.sizes.twin_repeat}: train x2 {t:.2f}s total {total:.2f}s")
        n = len(trains)
        rows.append(
            Row(
                f"twin check, {app} (test size: {' '.join(size[1:4])})",
                f"train() x2 {median(trains):.2f} s, whole check {median(totals):.2f} s "
                f"(median of {n}; min {min(trains):.2f} / {min(totals):.2f}); "
                f"{'identical' if identical else 'DIFFERED'}",
                f"about 1 s per check (<= {TARGET_SECONDS} s)",
                median(totals) <= TARGET_SECONDS,
                f"{ctx.command('twins')}: run_twins(train, `{cli_equivalent(app, overrides)}`)",
            )
        )
    return rows
