"""What every figure shares: sizes, the run context, timing statistics and timed ``train`` calls.

Torch, Hydra and twinrun are imported inside the functions that need them, so that importing this
module (e.g. from the ``compare`` child process, which must stay small) costs nothing.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APPS = ("vae_mnist", "mnist_classifier")
CLI_NAMES = {"vae_mnist": "vae-mnist", "mnist_classifier": "mnist-classifier"}
DEFAULT_SUITE_ARGS = ("tests/unit", "tests/repro", "-q", "-p", "no:randomly")
QUICK_SUITE_ARGS = ("tests/unit/test_config.py", "tests/unit/record/test_trace.py", "-q", "-p", "no:randomly")


@dataclass(frozen=True)
class Sizes:
    """How big each figure's workload is: the full run, or ``--quick`` for a smoke run."""

    quick: bool
    epoch_samples: int  # full: the 60,000-sample MNIST training split
    epoch_test_samples: int
    epoch_batch: int
    epoch_repeat: int
    profile_samples: int  # per-step costs do not depend on the epoch length: profile a shorter one
    trace_samples: int
    trace_repeat: int  # pairs of traced/untraced step blocks per trainer
    twin_repeat: int
    compare_mb: int
    compare_repeat: int
    suite_args: tuple[str, ...]
    mnist_overrides: tuple[str, ...]


def sizes_for(
    quick: bool,
    repeat: int | None = None,
    compare_mb: int | None = None,
    suite_args: Sequence[str] | None = None,
) -> Sizes:
    """The sizes of a full or ``--quick`` run; ``repeat``/``compare_mb``/``suite_args`` override."""
    if quick:
        sizes = Sizes(
            quick=True,
            epoch_samples=6000,
            epoch_test_samples=1000,
            epoch_batch=100,
            epoch_repeat=repeat or 1,
            profile_samples=3000,
            trace_samples=4096,  # 32 VAE steps an epoch: one pair of 16-step blocks
            trace_repeat=repeat or 1,
            twin_repeat=repeat or 1,
            compare_mb=compare_mb or 32,
            compare_repeat=1,
            suite_args=tuple(suite_args) if suite_args else QUICK_SUITE_ARGS,
            mnist_overrides=("training.epochs=1", "data.train_samples=2000", "data.test_samples=1000"),
        )
    else:
        sizes = Sizes(
            quick=False,
            epoch_samples=60000,
            epoch_test_samples=10000,
            epoch_batch=100,
            epoch_repeat=repeat or 5,
            profile_samples=12000,
            trace_samples=8192,
            trace_repeat=repeat or 120,  # block pairs per trainer
            twin_repeat=repeat or 5,
            compare_mb=compare_mb or 1024,
            compare_repeat=repeat or 1,
            suite_args=tuple(suite_args) if suite_args else DEFAULT_SUITE_ARGS,
            mnist_overrides=(),
        )
    return sizes


@dataclass
class Context:
    """One benchmark run: its sizes, the shared temp data root, and notes printed under the table."""

    sizes: Sizes
    data_root: Path
    scratch: Path  # run directories of timed trainings live (briefly) here
    repo_root: Path
    profile: bool = False
    flags: str = ""  # non-default options of this run (e.g. " --threads 0"), repeated in every command
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # longer sections (profiles) printed at the end

    def command(self, part: str, extra: str = "") -> str:
        """The entry-point invocation that reproduces ``part`` at this run's sizes."""
        quick = " --quick" if self.sizes.quick else ""
        return f"`python -m benchmarks --only {part}{quick}{self.flags}{extra}`"


# -- statistics --------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def cycles(stamps: Sequence[float]) -> list[float]:
    """The seconds between consecutive clock stamps (one loop iteration each)."""
    return [b - a for a, b in itertools.pairwise(stamps)]


def seconds(values: Sequence[float], digits: int = 2) -> str:
    """``"12.34 s (median of 3, min 11.90)"``; a single value is printed alone."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f} s (1 run)"
    return f"{median(values):.{digits}f} s (median of {len(values)}, min {min(values):.{digits}f})"


def ratio_text(ratios: Sequence[float], suffix: str = "x") -> str:
    """Median of per-repetition ratios with their range: the spread shows how much load moved them."""
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}{suffix} (1 pair)"
    return (
        f"{median(ratios):.2f}{suffix} (median of {len(ratios)} pairs, "
        f"range {min(ratios):.2f}–{max(ratios):.2f})"
    )


def percent_text(ratios: Sequence[float]) -> str:
    """Overheads ``on/off - 1`` as signed percentages, median and range."""
    pct = [100.0 * (r - 1.0) for r in ratios]
    if len(pct) == 1:
        return f"{pct[0]:+.1f}% (1 pair)"
    return f"{median(pct):+.1f}% (median of {len(pct)} pairs, range {min(pct):+.1f}..{max(pct):+.1f}%)"


def rotated(items: Sequence[Any], rep: int) -> list[Any]:
    """``items`` rotated by ``rep``: each variant takes every position in turn, so drifting machine
    load does not always favour the one measured first."""
    k = rep % len(items)
    return [*items[k:], *items[:k]]


# -- Hydra configs and timed trainings ---------------------------------------------------------


def compose(app: str, overrides: Sequence[str]) -> Any:
    """``app``'s config with ``overrides`` applied (Hydra compose, no output directory)."""
    from twinrun.testing.compose import compose_config

    return compose_config(app, list(overrides))


def cli_equivalent(app: str, overrides: Sequence[str]) -> str:
    """The console-script line that trains the same config (``data.root`` shown as ``$ROOT``)."""
    shown = [o if not o.startswith("data.root=") else "data.root=$ROOT" for o in overrides]
    return " ".join([CLI_NAMES[app], *shown])


def train_function(app: str) -> Callable[..., Any]:
    from twinrun.trainers.apps import mnist_classifier, vae_mnist

    return {"vae_mnist": vae_mnist.train, "mnist_classifier": mnist_classifier.train}[app]


@contextlib.contextmanager
def logged_epoch_seconds() -> Iterator[list[float]]:
    """Collect the seconds ``fit`` logs at the end of every epoch.

    ``fit`` logs ``"epoch %d/%d step %d %s (%.2fs)"``; the record's last argument is the unrounded
    float: the time from building the epoch's loader to its last optimizer step (data, steps, trace,
    hooks, progress bar), without evaluation and without any writing.
    """
    found: list[float] = []

    class _Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, str) and record.msg.startswith("epoch ") and record.args:
                found.append(float(record.args[-1]))  # type: ignore[index]

    logger = logging.getLogger("twinrun.trainers.loop")
    handler = _Grab(level=logging.INFO)
    logger.addHandler(handler)
    try:
        yield found
    finally:
        logger.removeHandler(handler)


@dataclass(frozen=True)
class TrainTiming:
    wall: float  # the whole train() call: config checks, data load, model, epochs, eval, all artifacts
    epochs: list[float]  # fit's own per-epoch seconds (see logged_epoch_seconds)
    metrics: list[dict[str, Any]]

    @property
    def epoch(self) -> float:
        return sum(self.epochs)


def timed_train(app: str, cfg: Any, scratch: Path, hooks: Any = None) -> TrainTiming:
    """Call ``train(cfg, run_dir)`` of ``app`` into a fresh run directory (removed afterwards)."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{app}-", dir=scratch))
    train = train_function(app)
    gc.collect()  # garbage of the previous measurement is not this one's cost
    try:
        with logged_epoch_seconds() as epochs:
            start = time.perf_counter()
            result = train(cfg, run_dir, hooks=hooks) if hooks is not None else train(cfg, run_dir)
            wall = time.perf_counter() - start
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if not epochs:
        raise RuntimeError("fit logged no 'epoch ... (N.NNs)' line: its log format changed?")
    return TrainTiming(wall=wall, epochs=list(epochs), metrics=result.metrics)


def timed_train_steps(app: str, cfg: Any, scratch: Path) -> tuple[TrainTiming, float]:
    """``timed_train`` plus the median seconds of one loop iteration, read by a clock-only hook.

    ``Hooks.before_step`` runs once per step, batch in hand: the time between two calls is one whole
    iteration (fetch, step, trace, progress bar). Its median hardly moves when other jobs' load
    comes in bursts, unlike the epoch's total.
    """
    from twinrun.trainers.loop import Hooks

    stamps: list[float] = []
    hooks = Hooks(before_step=[lambda _context: stamps.append(time.perf_counter())])
    timing = timed_train(app, cfg, scratch, hooks=hooks)
    steps = cycles(stamps)
    return timing, (median(steps) if steps else timing.epoch)


@contextlib.contextmanager
def patched_trace_recorder(cls: type) -> Iterator[None]:
    """Make ``fit`` build ``cls`` instead of ``TraceRecorder`` (this process only, for the block)."""
    import twinrun.trainers.loop

    original = twinrun.trainers.loop.TraceRecorder
    twinrun.trainers.loop.TraceRecorder = cls  # type: ignore[misc]
    try:
        yield
    finally:
        twinrun.trainers.loop.TraceRecorder = original  # type: ignore[misc]


def timed_trace_class() -> type:
    """The real ``TraceRecorder``, with the seconds of each per-step call and each flush kept on the class.

    Two ``perf_counter`` calls per timed call (about 0.1 us each) are the only difference from the
    shipped recorder; they count as trace time wherever the class is used.
    """
    from twinrun.record.trace import TraceRecorder

    class TimedTrace(TraceRecorder):
        befores: list[float] = []  # noqa: RUF012 - one fresh class per call of timed_trace_class
        afters: list[float] = []  # noqa: RUF012
        flushes: list[float] = []  # noqa: RUF012

        def before_step(self, step: int, epoch: int, indices: Any) -> None:
            start = time.perf_counter()
            super().before_step(step, epoch, indices)
            TimedTrace.befores.append(time.perf_counter() - start)

        def after_step(self, loss: float, model: Any, *, final: bool = False) -> None:
            flushes, start = len(TimedTrace.flushes), time.perf_counter()
            super().after_step(loss, model, final=final)
            nested = sum(TimedTrace.flushes[flushes:])  # a flush inside is counted as a flush
            TimedTrace.afters.append(time.perf_counter() - start - nested)

        def flush(self) -> None:
            start = time.perf_counter()
            super().flush()
            TimedTrace.flushes.append(time.perf_counter() - start)

    return TimedTrace
