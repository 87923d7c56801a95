"""Figure 2: what the per-step trace costs, for each trainer at a realistic size.

"on" is ``train(cfg, run_dir)`` as shipped. "off" is the same call with ``twinrun.training.TraceRecorder``
monkeypatched (in this process only) to a recorder whose per-step calls do nothing. The overhead is
``on/off - 1``, paired per round, rounds in alternating order, of: the median loop iteration
(load-robust), fit's logged epoch seconds (where the trace runs), and ``train()``'s whole wall time
(which also writes the trace). A further run per trainer times the real trace's calls directly.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import (
    Context,
    cli_equivalent,
    compose,
    median,
    patched_trace_recorder,
    percent_text,
    rotated,
    timed_train,
    timed_train_steps,
)
from benchmarks.table import Row

TARGET_PERCENT = 5.0


def _no_trace_class() -> type:
    from twinrun.trace import TraceRecorder

    class NoTrace(TraceRecorder):
        """A recorder that records nothing: the "trace off" baseline."""

        def before_step(self, step: int, epoch: int, indices: Any) -> None:
            pass

        def after_step(self, loss: float, model: Any, *, final: bool = False) -> None:
            pass

        def mark_final(self, model: Any) -> None:
            pass

    return NoTrace


def _met(ratios: list[float]) -> bool:
    return 100.0 * (median(ratios) - 1.0) <= TARGET_PERCENT


def run(ctx: Context) -> list[Row]:
    """On/off pairs for both trainers, plus one directly timed run each."""
    from benchmarks.profile_epoch import _timed_trace_class

    s = ctx.sizes
    no_trace = _no_trace_class()
    rows: list[Row] = []
    for app in ("vae_mnist", "mnist_classifier"):
        overrides = [
            "data=synthetic",
            f"data.root={ctx.data_root}",
            f"data.train_samples={s.trace_samples}",
            f"data.test_samples={max(s.trace_samples // 4, 64)}",
            "training.epochs=1",
            "device=cpu",
        ]
        cfg = compose(app, overrides)
        timed_train(app, cfg, ctx.scratch)  # warm-up, untimed: data generation, first-call costs
        on: list[Any] = []
        off: list[Any] = []
        for rep in range(s.trace_repeat):
            for variant in rotated(["on", "off"], rep):
                if variant == "on":
                    on.append(timed_train_steps(app, cfg, ctx.scratch))
                else:
                    with patched_trace_recorder(no_trace):
                        off.append(timed_train_steps(app, cfg, ctx.scratch))
            print(
                f"  trace {app} round {rep + 1}/{s.trace_repeat}: epoch on {on[-1][0].epoch:.2f}s "
                f"off {off[-1][0].epoch:.2f}s; step on {1000 * on[-1][1]:.2f} off {1000 * off[-1][1]:.2f} ms",
                flush=True,
            )
        timed = _timed_trace_class()
        with patched_trace_recorder(timed):
            direct = timed_train(app, cfg, ctx.scratch)
        in_trace = sum(timed.befores) + sum(timed.afters)  # type: ignore[attr-defined]
        direct_pct = 100.0 * in_trace / (direct.epoch - in_trace)

        step_ratios = [a[1] / b[1] for a, b in zip(on, off, strict=True)]
        epoch_ratios = [a[0].epoch / b[0].epoch for a, b in zip(on, off, strict=True)]
        wall_ratios = [a[0].wall / b[0].wall for a, b in zip(on, off, strict=True)]
        batch = int(cfg.training.batch_size)
        label = f"{app} ({s.trace_samples:,} samples, batch {batch})"
        cmd = f"{ctx.command('trace')}: `{cli_equivalent(app, overrides)}` (trace on vs patched off)"
        target = f"<= {TARGET_PERCENT:.0f}%"
        rows += [
            Row(
                f"trace overhead, median step, {label}",
                f"{percent_text(step_ratios)}; on {1000 * median([t[1] for t in on]):.2f} ms, "
                f"off {1000 * median([t[1] for t in off]):.2f} ms",
                target,
                _met(step_ratios),
                cmd,
            ),
            Row(
                f"trace overhead, epoch totals, {app}",
                f"{percent_text(epoch_ratios)}; on {median([t[0].epoch for t in on]):.2f} s, "
                f"off {median([t[0].epoch for t in off]):.2f} s",
                target,
                _met(epoch_ratios),
                cmd,
            ),
            Row(f"trace overhead, whole train(), {app}", percent_text(wall_ratios), command=cmd),
            Row(
                f"trace calls timed directly, {app}",
                f"{direct_pct:.1f}% of the rest of the epoch ({1000.0 * in_trace:.0f} ms in trace calls, "
                f"epoch {direct.epoch:.2f} s)",
                target,
                direct_pct <= TARGET_PERCENT,
                cmd,
            ),
        ]
    return rows
