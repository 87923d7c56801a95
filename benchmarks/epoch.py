"""Figure 1: one VAE epoch through twinrun's ``fit`` against the course data path and a bare loop.

All three train the same model (``cfg.model``), optimizer (``cfg.optimizer``) and loss step
(``VAEObjective.loss``, mean-scaled backward, ``optimizer.step``, ``loss.item()``) over the same
synthetic IDX files, with the same deterministic-mode switches that ``fit`` turns on. They differ only
in how batches reach the step, and in what ``fit`` adds per step (trace, hooks, progress bar):

* twinrun -- ``vae_mnist.train(cfg, run_dir)``; the epoch is the seconds ``fit`` logs (loader built,
  every step with its trace; no evaluation, no writing). ``train()``'s whole wall time is shown too.
* course  -- ``DataLoader(MNIST(root, transform=ToTensor()), batch_size=100, shuffle=True)``: a PIL
  image and a ``ToTensor`` per sample, then collation. The dataset object is built before the clock.
* bare    -- pre-shuffled in-memory tensors sliced in a Python loop: the compute limit.

Two statistics per loop: the epoch's total seconds (what a user waits for; sensitive to other jobs'
load spikes) and the median time of one loop iteration (batch fetch + step + per-step extras), which
a burst of load on a shared machine barely moves. twinrun's iterations are timed with a
``Hooks.before_step`` hook that only reads the clock.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Context,
    cli_equivalent,
    compose,
    cycles,
    median,
    ratio_text,
    rotated,
    seconds,
    timed_train_steps,
    train_function,
)
from benchmarks.table import Row

TWINRUN_TARGET = 1.15  # twinrun epoch / bare loop epoch, at most
COURSE_TARGET = 1.7  # course epoch / twinrun epoch, at least
VARIANTS = ("bare", "twinrun", "course")


@dataclass(frozen=True)
class LoopTiming:
    total: float  # seconds for the epoch
    step: float  # median seconds of one loop iteration

    @staticmethod
    def from_stamps(total: float, stamps: list[float]) -> LoopTiming:
        steps = cycles(stamps)
        return LoopTiming(total, median(steps) if steps else total)


def _model_and_optimizer(cfg: Any) -> tuple[Any, Any]:
    import hydra.utils

    from twinrun.record.determinism import enable_deterministic_mode, seed_everything

    # The same switches and seeding fit applies, so the three loops run the same kernels.
    enable_deterministic_mode(bool(cfg.get("deterministic", True)))
    seed_everything(int(cfg.seed))
    model = hydra.utils.instantiate(cfg.model)
    optimizer = hydra.utils.instantiate(cfg.optimizer, params=model.parameters())
    model.train()
    return model, optimizer


def _train_loop(cfg: Any, batches: Iterable[tuple[Any, Any]], max_batches: int | None) -> LoopTiming:
    """The step every variant shares, over ``batches``; the clock is read where fit's hook reads it."""
    from twinrun.trainers.objectives import VAEObjective

    model, optimizer = _model_and_optimizer(cfg)
    objective, total, stamps = VAEObjective(), 0.0, []
    start = time.perf_counter()
    for i, (x, y) in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        stamps.append(time.perf_counter())  # batch in hand, step not started: as Hooks.before_step
        optimizer.zero_grad(set_to_none=True)
        loss = objective.loss(model, x, y)
        (loss / len(y)).backward()
        optimizer.step()
        total += loss.item()  # fit reads the loss every step too
    return LoopTiming.from_stamps(time.perf_counter() - start, stamps)


def bare_epoch(
    cfg: Any, images: Any, labels: Any, batch_size: int, max_batches: int | None = None
) -> LoopTiming:
    """One epoch over pre-shuffled tensors, sliced in a plain Python loop."""
    batches = (
        (images[lo : lo + batch_size], labels[lo : lo + batch_size])
        for lo in range(0, len(labels), batch_size)
    )
    return _train_loop(cfg, batches, max_batches)


def course_loader(idx_root: Path, batch_size: int) -> Any:
    """The course script's data path over the IDX files under ``idx_root``."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    dataset = datasets.MNIST(str(idx_root), transform=transforms.ToTensor())
    return DataLoader(dataset, batch_size=batch_size, shuffle=True)


def course_epoch(cfg: Any, idx_root: Path, batch_size: int, max_batches: int | None = None) -> LoopTiming:
    """One epoch through the course script's torchvision data path."""
    return _train_loop(cfg, course_loader(idx_root, batch_size), max_batches)


def twinrun_epoch(cfg: Any, ctx: Context) -> tuple[LoopTiming, float]:
    """fit's logged epoch seconds and its median iteration, plus ``train()``'s whole wall time."""
    timing, step = timed_train_steps("vae_mnist", cfg, ctx.scratch)
    return LoopTiming(timing.epoch, step), timing.wall


def data_path_per_batch(loader: Iterable[Any]) -> float:
    """Median seconds to fetch one batch, with no training step at all."""
    stamps = [time.perf_counter()]
    for _ in loader:
        stamps.append(time.perf_counter())
    return median(cycles(stamps))


def idx_root_of(data_root: Path, train_samples: int) -> Path:
    """The generated dataset directory (``<it>/MNIST/raw/*-ubyte``) holding ``train_samples`` digits."""
    hits = sorted(data_root.glob(f"synthetic-*-{train_samples}x*/MNIST/raw/train-images-idx3-ubyte"))
    if not hits:
        raise RuntimeError(f"no synthetic IDX files with {train_samples} train samples under {data_root}")
    return hits[0].parents[2]


def warm_up(cfg: Any, images: Any, labels: Any, idx_root: Path, ctx: Context) -> None:
    """A few untimed steps of each loop: the process's first kernels, imports and allocator growth
    would otherwise be charged to whichever variant happens to run first."""
    from omegaconf import OmegaConf

    batch = int(cfg.training.batch_size)
    bare_epoch(cfg, images, labels, batch, max_batches=10)
    course_epoch(cfg, idx_root, batch, max_batches=10)
    short = OmegaConf.merge(cfg, {"training": {"max_steps": 10}})  # stops (and checkpoints) after 10 steps
    run_dir = Path(tempfile.mkdtemp(prefix="warm-up-", dir=ctx.scratch))
    train_function("vae_mnist")(short, run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)


def run(ctx: Context) -> list[Row]:
    """Time the three loops side by side, ``epoch_repeat`` rounds in rotating order."""
    import torch

    from twinrun.trainers.data import load_datasets, make_loader

    s = ctx.sizes
    overrides = [
        "data=synthetic",
        f"data.root={ctx.data_root}",
        f"data.train_samples={s.epoch_samples}",
        f"data.test_samples={s.epoch_test_samples}",
        f"training.batch_size={s.epoch_batch}",
        "training.epochs=1",
        "device=cpu",
    ]
    cfg = compose("vae_mnist", overrides)
    start = time.perf_counter()
    data = load_datasets(cfg.data)  # generates the IDX files once; every later load only reads them
    ctx.notes.append(
        f"epoch: synthetic data ({s.epoch_samples} train / {s.epoch_test_samples} test) generated and "
        f"loaded once in {time.perf_counter() - start:.1f}s under the temp data root; not in any figure. "
        "twinrun's epoch = the seconds fit logs (loader built + every step with trace, hooks, tqdm; no "
        "evaluation, no checkpoint); bare/course = their loop only (model, optimizer and the course's "
        "MNIST object built before the clock). All three: same model, Adam, loss step and .item() per "
        "step, deterministic mode on, fresh model per round; 10 untimed warm-up steps of each first. "
        "'per step' = median of one loop iteration (batch fetch + step + per-step extras); 'best round "
        "of each' divides the variants' lowest per-step medians over the rounds (load only adds time)."
    )
    idx_root = idx_root_of(ctx.data_root, s.epoch_samples)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(int(cfg.seed)))
    images, labels = data.train.images[order], data.train.labels[order]  # shuffled before the clock

    warm_up(cfg, images, labels, idx_root, ctx)
    got: dict[str, list[LoopTiming]] = {v: [] for v in VARIANTS}
    walls: list[float] = []
    for rep in range(s.epoch_repeat):
        for variant in rotated(VARIANTS, rep):
            if variant == "bare":
                got["bare"].append(bare_epoch(cfg, images, labels, s.epoch_batch))
            elif variant == "course":
                got["course"].append(course_epoch(cfg, idx_root, s.epoch_batch))
            else:
                timing, wall = twinrun_epoch(cfg, ctx)
                got["twinrun"].append(timing)
                walls.append(wall)
            last = got[variant][-1]
            print(
                f"  epoch round {rep + 1}/{s.epoch_repeat}: {variant} {last.total:.2f}s "
                f"({1000 * last.step:.2f} ms/step)",
                flush=True,
            )
    # The data paths alone (no model step), back to back, best of 3 medians.
    course_batch = min(data_path_per_batch(course_loader(idx_root, s.epoch_batch)) for _ in range(3))
    twin_batch = min(
        data_path_per_batch(make_loader(data.train, s.epoch_batch, seed=int(cfg.seed), epoch=1))
        for _ in range(3)
    )

    def pairs(num: str, den: str, field: str) -> list[float]:
        return [getattr(a, field) / getattr(b, field) for a, b in zip(got[num], got[den], strict=True)]

    def timing_text(variant: str) -> str:
        steps = [1000 * t.step for t in got[variant]]
        return f"{seconds([t.total for t in got[variant]])}; per step {median(steps):.2f} ms"

    def best(variant: str) -> float:
        # The least disturbed round of a variant: load from other jobs only ever adds time.
        return min(t.step for t in got[variant])

    def best_text(ratio: float, paired: list[float]) -> str:
        return (
            f"{ratio:.2f}x (paired median {median(paired):.2f}x, range {min(paired):.2f}–{max(paired):.2f})"
        )

    over_bare, over_bare_step = pairs("twinrun", "bare", "total"), pairs("twinrun", "bare", "step")
    speedup, speedup_step = pairs("course", "twinrun", "total"), pairs("course", "twinrun", "step")
    best_over_bare, best_speedup = best("twinrun") / best("bare"), best("course") / best("twinrun")
    size = f"{s.epoch_samples:,} samples, batch {s.epoch_batch}"
    cmd = ctx.command("epoch")
    cli = f"{cmd}: `{cli_equivalent('vae_mnist', overrides)}`"
    rest = [w - t.total for w, t in zip(walls, got["twinrun"], strict=True)]
    rows = [
        Row(f"VAE epoch, twinrun fit ({size})", timing_text("twinrun"), command=cli),
        Row(f"VAE epoch, bare tensor loop ({size})", timing_text("bare"), command=cmd),
        Row(f"VAE epoch, course DataLoader+ToTensor ({size})", timing_text("course"), command=cmd),
        Row(
            "twinrun epoch / bare loop (epoch totals)",
            ratio_text(over_bare),
            f"<= {TWINRUN_TARGET}x",
            median(over_bare) <= TWINRUN_TARGET,
            cmd,
        ),
        Row(
            "twinrun / bare loop (median step, best round of each)",
            best_text(best_over_bare, over_bare_step),
            f"<= {TWINRUN_TARGET}x",
            best_over_bare <= TWINRUN_TARGET,
            cmd,
        ),
        Row(
            "course / twinrun speed-up (epoch totals)",
            ratio_text(speedup),
            f">= {COURSE_TARGET}x",
            median(speedup) >= COURSE_TARGET,
            cmd,
        ),
        Row(
            "course / twinrun speed-up (median step, best round of each)",
            best_text(best_speedup, speedup_step),
            f">= {COURSE_TARGET}x",
            best_speedup >= COURSE_TARGET,
            cmd,
        ),
        Row(
            "data path alone, per batch of 100 (no model step)",
            f"course {1000 * course_batch:.2f} ms vs twinrun loader {1000 * twin_batch:.3f} ms "
            f"({course_batch / twin_batch:.0f}x)",
            command=cmd,
        ),
        Row(
            "VAE train() wall, epochs=1 (setup+epoch+eval+artifacts)",
            f"{seconds(walls)}; of which outside the epoch {median(rest):.2f} s",
            command=cli,
        ),
    ]
    missed = max(median(over_bare), best_over_bare) > TWINRUN_TARGET
    if ctx.profile or missed:
        from benchmarks import profile_epoch

        rows += profile_epoch.run(ctx, overrides, missed=missed)
    return rows
