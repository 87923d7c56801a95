"""Figure 2: what the per-step trace costs, for each trainer at a realistic size.

One ``train(cfg, run_dir)`` per trainer, with the trace switched on and off in blocks of ``BLOCK``
optimizer steps: blocks come in pairs, one block runs the real public ``Recorder`` ("on": its
``before_step``/``after_step``, the path every client takes, flushed at the block's end) and the
other a ``Recorder`` whose per-step calls do nothing ("off"), the order alternating
from pair to pair. Neighbouring blocks of one process see the same machine, memory and caches, so
pairs a fraction of a second apart are far less noisy than separate runs (measured on this 2-core
VM: pairs of whole runs ranged over -20..+37%, pairs of whole epochs over -13..+26%).

A block's time per step is the median of the loop iterations that begin and end inside it (timed
by a clock-only ``before_step`` hook), without the first (which carries the previous block's
after-effects), plus the block's flush time per step. The figures:

- ``on/off - 1`` per pair: median and range over all pairs (epoch 1, the warm-up, is left out);
- the recorder's own seconds (two ``perf_counter`` calls around each call, counted as trace cost)
  against the paired untraced block's time.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from benchmarks.common import (
    APPS,
    Context,
    cli_equivalent,
    compose,
    cycles,
    median,
    percent_text,
    timed_train,
)
from benchmarks.table import Row

TARGET_PERCENT = 5.0
BLOCK = 16  # optimizer steps; both trainers' epochs here are a whole number of block pairs


def _block(step: int) -> int:
    return (step - 1) // BLOCK


def _traced(block: int) -> bool:
    """Block ``2p + (p % 2)`` of pair ``p`` is traced: "on" goes first in even pairs, second in odd ones."""
    pair = block // 2
    return block == 2 * pair + pair % 2


def _alternating_class() -> type:
    from twinrun.record.recorder import Recorder

    class Alternating(Recorder):
        """The real Recorder in traced blocks, nothing at all in the others; own seconds per block."""

        seconds: defaultdict[int, float] = defaultdict(float)  # noqa: RUF012 - one class per call
        flushed: defaultdict[int, float] = defaultdict(float)  # noqa: RUF012
        step = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            untimed = self.trace.flush

            def flush() -> None:  # the trace's batched work, whoever calls it (fit, after_step)
                start = time.perf_counter()
                untimed()
                elapsed = time.perf_counter() - start
                Alternating.seconds[_block(Alternating.step)] += elapsed
                Alternating.flushed[_block(Alternating.step)] += elapsed

            self.trace.flush = flush  # type: ignore[method-assign]

        def before_step(self, indices: Any = None, batch: Any = None, **kwargs: Any) -> None:
            Alternating.step = kwargs["step"]
            if _traced(_block(Alternating.step)):
                start = time.perf_counter()
                super().before_step(indices, batch, **kwargs)
                Alternating.seconds[_block(Alternating.step)] += time.perf_counter() - start

        def after_step(self, loss: Any) -> None:
            block = _block(Alternating.step)
            if _traced(block):
                start, flushed = time.perf_counter(), Alternating.flushed[block]
                super().after_step(loss)
                nested = Alternating.flushed[block] - flushed  # counted by flush itself
                Alternating.seconds[block] += time.perf_counter() - start - nested
                if Alternating.step % BLOCK == 0:
                    self.trace.flush()  # the block's batched work belongs to the block

    return Alternating


@contextlib.contextmanager
def _patched_recorder(cls: type) -> Iterator[None]:
    """Make ``fit`` record through ``cls`` instead of ``Recorder`` (this process only, for the block)."""
    import twinrun.trainers.loop

    original = twinrun.trainers.loop.Recorder
    twinrun.trainers.loop.Recorder = cls  # type: ignore[misc]
    try:
        yield
    finally:
        twinrun.trainers.loop.Recorder = original  # type: ignore[misc]


def run(ctx: Context) -> list[Row]:
    """Alternating traced/untraced blocks for both trainers."""
    return [row for app in APPS for row in _app_rows(ctx, app)]


def _app_rows(ctx: Context, app: str) -> list[Row]:
    from twinrun.trainers.loop import Hooks

    s = ctx.sizes
    batch = int(compose(app, []).training.batch_size)
    pairs_per_epoch = max(-(-s.trace_samples // batch) // (2 * BLOCK), 1)  # the last batch is kept
    epochs = 1 + -(-s.trace_repeat // pairs_per_epoch)  # a warm-up epoch, then enough for the pairs
    overrides = [
        "data=synthetic",
        f"data.root={ctx.data_root}",
        f"data.train_samples={s.trace_samples}",
        "data.test_samples=256",
        f"training.epochs={epochs}",
        "checkpoint.every_epoch=false",
        "device=cpu",
    ]
    warm_up = [o for o in overrides if not o.startswith("training.epochs=")] + ["training.epochs=1"]
    timed_train(app, compose(app, warm_up), ctx.scratch)  # untimed: data generation, first calls
    cfg = compose(app, overrides)
    recorder = _alternating_class()
    stamps: dict[int, tuple[int, float]] = {}  # step -> (epoch, time its iteration began)
    hooks = Hooks(before_step=[lambda c: stamps.__setitem__(c.step, (c.epoch, time.perf_counter()))])
    print(f"  trace {app}: {epochs} epochs in blocks of {BLOCK} steps, traced and untraced", flush=True)
    with _patched_recorder(recorder):
        timed_train(app, cfg, ctx.scratch, hooks=hooks)
    own: dict[int, float] = recorder.seconds  # type: ignore[attr-defined]
    flushed: dict[int, float] = recorder.flushed  # type: ignore[attr-defined]

    def per_step(block: int) -> float | None:
        """Seconds a step in ``block``; None where an epoch's end cuts the block, or in epoch 1."""
        steps = range(block * BLOCK + 1, (block + 1) * BLOCK + 1)
        if any(step not in stamps for step in steps):
            return None
        in_epochs = {stamps[step][0] for step in steps}
        if len(in_epochs) > 1 or 1 in in_epochs:
            return None
        # Iterations that begin and end in the block: the last step's ends in the flush or the next block.
        iterations = cycles([stamps[step][1] for step in steps])
        return median(iterations[1:]) + flushed.get(block, 0.0) / BLOCK

    ratios, direct, on_steps, off_steps, own_steps = [], [], [], [], []
    for pair in range(len(stamps) // (2 * BLOCK)):
        on, off = sorted((2 * pair, 2 * pair + 1), key=lambda b: not _traced(b))
        on_step, off_step = per_step(on), per_step(off)
        if on_step is None or off_step is None:
            continue
        ratios.append(on_step / off_step)
        direct.append(100.0 * own[on] / (BLOCK * off_step))
        on_steps.append(on_step)
        off_steps.append(off_step)
        own_steps.append(own[on] / BLOCK)
    if not ratios:
        raise RuntimeError(f"no whole block pair: an epoch of {app} is shorter than {2 * BLOCK} steps")
    pairs = f"{len(ratios)} pair{'s' if len(ratios) != 1 else ''}"
    label = f"{app} ({s.trace_samples:,} samples, batch {batch}; {pairs} of {BLOCK}-step blocks)"
    cmd = f"{ctx.command('trace')}: `{cli_equivalent(app, overrides)}` (blocks traced and not)"
    target = f"<= {TARGET_PERCENT:.0f}%"
    return [
        Row(
            f"trace overhead, {label}",
            f"{percent_text(ratios)}; a step: on {1000 * median(on_steps):.2f} ms, "
            f"off {1000 * median(off_steps):.2f} ms",
            target,
            100.0 * (median(ratios) - 1.0) <= TARGET_PERCENT,
            cmd,
        ),
        Row(
            f"trace calls timed directly, {app}",
            f"{median(direct):.1f}% of an untraced step (median of {len(direct)} blocks, range "
            f"{min(direct):.1f}..{max(direct):.1f}%; {1e6 * median(own_steps):.0f} us a step)",
            target,
            median(direct) <= TARGET_PERCENT,
            cmd,
        ),
    ]
