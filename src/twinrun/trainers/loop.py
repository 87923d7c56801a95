"""The one training loop both trainers use: ``fit(cfg, run_dir, app_name=..., objective=...)``.

config -> data + model -> this loop -> run directory. The loop owns the order of every random draw:
global RNGs are seeded once before the model is built; batches come from generators derived from
(seed, epoch); a checkpoint stores every RNG state and the data position, so a resumed run continues
bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from twinrun.config import (
    ConfigError,
    build_optimizer,
    canonical_config,
    check_device,
    check_optimizer,
    check_run_options,
    check_seed,
    check_training,
    flatten,
)
from twinrun.errors import first_line
from twinrun.record import runs
from twinrun.record.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from twinrun.record.determinism import draw_seed, enable_deterministic_mode, seed_everything
from twinrun.record.lock import claim_run_dir, run_dir_lock
from twinrun.record.ops import OpRecorder, write_ops
from twinrun.record.recorder import Recorder
from twinrun.record.rng_state import capture_rng_state, restore_rng_state
from twinrun.record.trace import TraceRecorder
from twinrun.trainers import distributed
from twinrun.trainers.building import build_model, build_scheduler, check_model_fits
from twinrun.trainers.data import Datasets, load_datasets, make_loader
from twinrun.trainers.objectives import Objective

log = logging.getLogger(__name__)
_ABSENT = object()  # a config key only one side has

StepHook = Callable[["StepContext"], None]


@dataclass
class StepContext:
    """What a hook sees: used by the sensitivity tests to break a trainer on purpose."""

    step: int
    epoch: int
    model: nn.Module
    indices: torch.Tensor


@dataclass
class Hooks:
    """Injection points. ``before_step`` runs before the step's RNG digests are taken."""

    before_step: list[StepHook] = field(default_factory=list)
    after_step: list[StepHook] = field(default_factory=list)
    make_loader: Callable[..., Any] = make_loader


@dataclass
class Position:
    """Where training stands: the next batch to run is ``batch`` (0-based) of ``epoch`` (1-based)."""

    epoch: int = 1
    batch: int = 0
    step: int = 0
    epoch_loss_sum: float = 0.0
    epoch_samples: int = 0


@dataclass
class TrainResult:
    run_dir: Path
    seed: int
    metrics: list[dict[str, Any]]
    steps: int
    manifest: dict[str, Any]


def resolve_device(requested: str) -> torch.device:
    requested = check_device(requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            "device=cuda was requested but no CUDA device is visible; use device=cpu or device=auto"
        )
    return torch.device(requested)


def prepare_config(cfg: DictConfig) -> tuple[DictConfig, int]:
    """Validate, draw a seed for ``seed: null`` and return a resolved copy that records it."""
    try:
        resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    except Exception as exc:
        raise ConfigError(f"the config does not resolve: {first_line(exc)}") from None
    resolved.pop("hydra", None)
    check_training(resolved.get("training") or {})
    check_optimizer(resolved.get("optimizer"))
    check_run_options(resolved)
    seed = check_seed(resolved.get("seed"))
    if seed is None:
        seed = draw_seed()
        log.info("seed is null: drew seed=%d from OS entropy (recorded in resolved_config.yaml)", seed)
    resolved.seed = seed
    return resolved, seed


def _exact_row(epoch: int, step: int, values: dict[str, float]) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch, "step": step}
    row.update({key: runs.exact(value) for key, value in values.items()})
    row["approx"] = {key: round(value, 6) for key, value in values.items()}
    return row


def fit(
    cfg: DictConfig,
    run_dir: str | Path,
    *,
    app_name: str,
    objective: Objective,
    hooks: Hooks | None = None,
) -> TrainResult:
    """Train as ``cfg`` says and write the complete run directory ``run_dir``.

    Under ``torchrun`` every rank calls this with the same ``cfg`` and ``run_dir`` (see
    :mod:`twinrun.trainers.distributed`): rank 0 writes the run directory, every rank its own final weights.
    """
    run_dir = Path(run_dir)
    hooks = hooks or Hooks()
    world = distributed.world_from_env()
    with contextlib.ExitStack() as stack:
        if world.is_main:  # one training per run directory, for the run's whole life
            stack.enter_context(run_dir_lock(run_dir))
        stack.enter_context(distributed.rank_log(run_dir, app_name, world))
        cfg, seed = prepare_config(cfg)
        if world.is_main:
            claim_run_dir(run_dir, cfg.training.get("resume_from"))
        device = distributed.rank_device(world, resolve_device(cfg.device))
        stack.enter_context(distributed.process_group(world, device))
        # seed: null draws from OS entropy in each process; every rank must train with rank 0's.
        cfg.seed = seed = distributed.from_rank0(world, seed, device)
        log.info("%s: seed=%d run_dir=%s", app_name, seed, run_dir)
        if world.distributed:
            log.info("distributed: rank %d of %s", world.rank, distributed.describe(world, device))
        enable_deterministic_mode(cfg.get("deterministic", True))
        data = load_datasets(cfg.data)
        log.info(
            "data=%s train=%d test=%d device=%s", data.name, len(data.train), len(data.test), device.type
        )
        seed_everything(seed)  # the same on every rank: identical init (DDP broadcasts rank 0's anyway)
        # Built and checked before the run's first file: a refused model leaves no half-written run.
        model = build_model(cfg.model, objective.model_type, app_name)
        if not isinstance(model, objective.model_type):
            raise ConfigError(
                f"model={type(model).__name__} cannot be trained by {app_name}: it needs a "
                f"{objective.model_type.__name__} (pick another model= option)"
            )
        check_model_fits(model, data.train.images)
        model = model.to(device)
        optimizer = build_optimizer(cfg.optimizer, model.parameters())
        scheduler = build_scheduler(cfg.get("scheduler"), optimizer)
        if world.is_main:
            runs.write_resolved_config(run_dir, canonical_config(cfg))
        # The same public Recorder users' loops use: env.json now; trace and final weights at exit (rank 0
        # the run directory, every rank its own weights under DDP). TraceRecorder is looked up here so
        # that benchmarks can substitute a timed one.
        recorder = Recorder(
            run_dir,
            model,
            optimizer,
            device=device,
            dataset=data.fingerprint() if world.is_main else None,
            environment={"distributed": distributed.describe(world, device)} if world.distributed else None,
            rank=world.rank if world.distributed else None,
            trace=TraceRecorder(int(cfg.get("trace", {}).get("params_every", 1))),
        )
        with recorder:
            loop = _Loop(cfg, seed, device, data, recorder, scheduler, objective, hooks, world)
            if cfg.training.get("resume_from"):
                loop.resume(cfg.training.resume_from)
            loop.run()
        if world.distributed:
            manifest = recorder.rank_manifest
            log.info("rank %d weights digest %s", world.rank, manifest["digest"][:16])
        if world.is_main:
            manifest = recorder.manifest
            if recorder.replay.stop_after is None:  # twinrun audit's replays compare traces, not pictures
                objective.render_images(model.eval(), data, run_dir / runs.IMAGES, seed, device)
            log.info("weights digest %s; run directory complete: %s", manifest["digest"][:16], run_dir)
        return TrainResult(run_dir, seed, loop.metrics, loop.position.step, manifest)


class _Loop:
    """The epoch/step loop and its resumable state; one instance per ``fit`` call."""

    def __init__(
        self,
        cfg: DictConfig,
        seed: int,
        device: torch.device,
        data: Datasets,
        recorder: Recorder,
        scheduler: Any,
        objective: Objective,
        hooks: Hooks,
        world: distributed.World,
    ) -> None:
        self.cfg, self.seed, self.device, self.data = cfg, seed, device, data
        # The recorder holds the run directory, the plain model and the optimizer it records.
        self.recorder, self.run_dir, self.model = recorder, recorder.run_dir, recorder.model
        self.optimizer, self.scheduler = recorder.optimizer, scheduler
        self.objective, self.hooks, self.world = objective, hooks, world
        # Training runs through ``net`` (the DDP wrapper when distributed); everything that names
        # parameters (trace, checkpoints, weights) uses the plain ``model``: no "module." prefixes.
        self.net = distributed.wrap(world, self.model, device)
        self.training = cfg.training
        self.position = Position()
        self.metrics: list[dict[str, Any]] = []
        ckpt = cfg.get("checkpoint") or {}
        self.ckpt_every_epoch = bool(ckpt.get("every_epoch", True))
        self.ckpt_every_steps = ckpt.get("every_n_steps")
        self.ckpt_keep_last = ckpt.get("keep_last")
        self.max_steps = self.training.get("max_steps")
        # +explain_step=s (twinrun verify --explain): record every aten op of step s (record.ops)
        self.explain_step = cfg.get("explain_step")

    def resume(self, path: str) -> None:
        state = load_checkpoint(path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            self.position = Position(**state["position"])
            self.metrics = list(state["metrics"])
            self.recorder.restore(state["trace"])
            restore_rng_state(state["rng"])
            saved_config = flatten(state["config"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise CheckpointError(
                f"training.resume_from={path} does not fit this model/optimizer ({first_line(exc)}); "
                "resume with the config the checkpoint was written with"
            ) from None
        config = flatten(canonical_config(self.cfg))
        changed = sorted(
            key
            for key in config.keys() | saved_config.keys()
            if config.get(key, _ABSENT) != saved_config.get(key, _ABSENT)
            and not key.startswith(("training.epochs", "training.max_steps"))
        )
        if changed:
            log.warning(
                "resuming with a config that differs from the checkpoint's in: %s", ", ".join(changed)
            )
        log.info(
            "resumed from %s at epoch %d, batch %d (step %d)",
            path,
            self.position.epoch,
            self.position.batch,
            self.position.step,
        )

    def checkpoint(self) -> None:
        if not self.world.is_main:  # ranks hold the same state; rank 0's copy resumes all of them
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": capture_rng_state(),
            "position": vars(self.position).copy(),
            "metrics": self.metrics,
            "trace": self.recorder.rows,
            "config": canonical_config(self.cfg),
        }
        save_checkpoint(self.run_dir, self.position.step, state, self.ckpt_keep_last)
        self.write_records()

    def write_records(self) -> None:
        runs.write_jsonl(self.run_dir / runs.METRICS, self.metrics)
        self.recorder.write_trace()

    def _step_checkpoint_due(self, *, last_batch: bool, epochs: int) -> bool:
        """Every ``every_n_steps`` steps, unless a checkpoint of this same step follows anyway."""
        if not self.ckpt_every_steps or self.position.step % int(self.ckpt_every_steps):
            return False
        epoch_checkpoint_follows = last_batch and (self.ckpt_every_epoch or self.position.epoch >= epochs)
        return not (epoch_checkpoint_follows or self._stop_requested())

    def _stop_requested(self) -> bool:
        return self.max_steps is not None and self.position.step >= self.max_steps

    def run(self) -> None:
        epochs = int(self.training.epochs)
        while self.position.epoch <= epochs and not self._stop_requested():
            self._run_epoch(epochs)
        distributed.sync_buffers(self.world, self.model)  # also when max_steps stopped mid-epoch
        self.recorder.mark_final()
        self.checkpoint()  # the final checkpoint also writes metrics.jsonl and trace.jsonl

    def _run_epoch(self, epochs: int) -> None:
        pos, started = self.position, time.perf_counter()
        loader = self.hooks.make_loader(
            self.data.train,
            int(self.training.batch_size),
            seed=self.seed,
            epoch=pos.epoch,
            num_workers=int(self.training.get("num_workers", 0)),
            start_batch=pos.batch,
            rank=self.world.rank,
            world_size=self.world.size,
        )
        self.net.train()
        batches = len(loader) if hasattr(loader, "__len__") else None
        bar = tqdm(loader, desc=f"epoch {pos.epoch}/{epochs}", leave=False, disable=not sys.stderr.isatty())
        for done, (images, labels, indices) in enumerate(bar, start=1):
            self._step(images.to(self.device), labels.to(self.device), indices)
            if not bar.disable:  # tqdm formats the postfix even for a disabled bar
                bar.set_postfix(loss=f"{pos.epoch_loss_sum / max(pos.epoch_samples, 1):.4f}", refresh=False)
            if self._step_checkpoint_due(last_batch=done == batches, epochs=epochs):
                self.checkpoint()
            if self._stop_requested():
                log.info("stopping after training.max_steps=%d steps", self.max_steps)
                return
        self.recorder.trace.flush()  # the trace's batched work counts in the epoch's time
        self._end_epoch(epochs, time.perf_counter() - started)

    def _step(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        pos = self.position
        context = StepContext(pos.step + 1, pos.epoch, self.model, indices)
        for hook in self.hooks.before_step:
            hook(context)
        self.recorder.before_step(indices, step=pos.step + 1, epoch=pos.epoch)
        explained = self.explain_step == pos.step + 1
        with OpRecorder(self.model) if explained else contextlib.nullcontext() as ops:  # --explain
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.objective.loss(self.net, images, labels)  # summed over the batch
            (loss / len(labels)).backward()
            with ops.phase("optimizer") if ops is not None else contextlib.nullcontext():
                self.optimizer.step()
        if ops is not None and self.world.is_main:
            log.info(
                "explain: %d ops of step %d recorded in %s",
                len(ops.rows),
                pos.step + 1,
                write_ops(self.run_dir, pos.step + 1, ops.rows),
            )
        pos.step, pos.batch = pos.step + 1, pos.batch + 1
        for hook in self.hooks.after_step:
            hook(context)
        # Summed over ranks, so the logged loss, metrics and trace do not depend on the rank.
        loss_value, samples = distributed.rank_sums(self.world, [loss.item(), len(labels)], self.device)
        pos.epoch_loss_sum += loss_value
        pos.epoch_samples += int(samples)
        self.recorder.after_step(loss_value)

    def _end_epoch(self, epochs: int, seconds: float) -> None:
        pos = self.position
        values = {"train_loss": pos.epoch_loss_sum / max(pos.epoch_samples, 1)}
        distributed.sync_buffers(self.world, self.model)  # every rank evaluates rank 0's statistics
        self.model.eval()  # no dropout, frozen batch-norm statistics, no VAE noise: evaluation draws no RNG
        values.update(self.objective.evaluate(self.model, self.data.test, 512, self.device))
        self.net.train()
        if self.scheduler is not None:
            self.scheduler.step()
        self.metrics.append(_exact_row(pos.epoch, pos.step, values))
        shown = " ".join(f"{key}={value:.6g}" for key, value in values.items())
        log.info("epoch %d/%d step %d %s (%.2fs)", pos.epoch, epochs, pos.step, shown, seconds)
        self.position = Position(epoch=pos.epoch + 1, batch=0, step=pos.step)
        if self.ckpt_every_epoch and pos.epoch < epochs:
            self.checkpoint()
