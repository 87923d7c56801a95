"""``TwinrunCallback``: twinrun's trace and run directory for a Lightning app.

::

    trainer = lightning.Trainer(callbacks=[TwinrunCallback()], deterministic=True, ...)

One trace row per optimizer step, recorded through :class:`twinrun.record.recorder.Recorder`:

- before the step: the RNG digests, taken when the step's first (micro-)batch starts
  (``on_train_batch_start``), and the data-order digest of every batch of the step (gradient
  accumulation) from the batch's contents, preceded by the sampler's indices where the loader
  exposes them (a ``SequentialSampler`` or ``DistributedSampler``, whose order can be read without
  drawing from any RNG);
- after it: the loss (the sum of the losses Lightning passed to backward since the previous step,
  ``on_before_backward``; NaN when none was seen, e.g. a manual ``loss.backward()``) and the
  parameters' fingerprints, taken by a step hook on every optimizer of the trainer. Several
  optimizers (manual optimization) give one row each; a step after another in the same batch starts
  its row right after the previous step.

At fit end the artifacts (``trace.jsonl``, ``weights.safetensors`` + ``manifest.json``; ``env.json`` at
fit start) go into ``run_dir``, else Hydra's run directory when ``HydraConfig`` is set, else
``trainer.default_root_dir``. Under DDP only global rank 0 records. A fit that raises writes no
trace or weights. The trace rows and every global RNG state travel in Lightning's checkpoints (the
callback's state), so a run resumed with ``ckpt_path`` continues its trace and its random streams.

``twinrun audit`` replays a few steps of a run (:mod:`twinrun.record.replay`): pass
``ckpt_path=resume_path()`` to ``trainer.fit`` (the checkpoint the audit names, else your own default);
the callback stops the fit after the audit's last step. Checkpoints the audit can use are saved at epoch
ends and named with the step (``ModelCheckpoint(filename="{step}", save_top_k=-1)``).

Lightning is imported here only: ``import twinrun`` never needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, SequentialSampler

from twinrun.record.recorder import Recorder
from twinrun.record.replay import replay_request
from twinrun.record.rng_state import capture_rng_state, restore_rng_state


def resume_path(default: str | Path | None = None) -> str | None:
    """The checkpoint ``twinrun audit`` asks this process to resume from (``$TWINRUN_RESUME_FROM``),
    else ``default``: pass it as ``trainer.fit(..., ckpt_path=resume_path())``."""
    resume = replay_request().resume_from
    return str(resume) if resume is not None else (str(default) if default is not None else None)


def hydra_output_dir() -> str | None:
    """Hydra's run directory when ``HydraConfig`` is set (a ``@hydra.main`` job), else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.output_dir or None


def sampler_batches(loader: Any) -> list[list[int]] | None:
    """Every batch's sample indices for this epoch, where reading them draws from no RNG; else None."""
    if not isinstance(loader, DataLoader) or not isinstance(loader.batch_sampler, BatchSampler):
        return None
    if type(loader.batch_sampler.sampler) not in (SequentialSampler, DistributedSampler):
        return None  # a RandomSampler would draw its permutation from a generator: not ours to touch
    return [list(batch) for batch in loader.batch_sampler]


class TwinrunCallback(pl.Callback):
    """Records a Lightning fit into a twinrun run directory (see the module docstring).

    Args:
        run_dir: where to write; default: Hydra's run directory, else ``trainer.default_root_dir``.
        params_every: fingerprint parameters every N steps (and at the last step).
        config: optional job config, written as ``resolved_config.yaml`` (compared by ``twinrun``).
    """

    def __init__(self, run_dir: str | Path | None = None, *, params_every: int = 1, config: Any = None):
        self.run_dir, self.params_every, self.config = run_dir, params_every, config
        self.recorder: Recorder | None = None
        self._hooks: list[Any] = []
        self._epoch_batches: list[list[int]] | None = None
        self._batch: tuple[Any, Any] | None = None  # (indices, batch) of the batch in progress
        self._epoch = 1
        self._loss: torch.Tensor | None = None  # losses backwarded since the last step
        self._eager = False  # the open row was started right after a step, inside a batch
        self._in_batch = False
        self._restored: list[dict[str, Any]] | None = None
        self._restored_rng: dict[str, Any] | None = None
        self._epoch_started: int | None = None  # the 0-based epoch whose batches were read

    # --- fit ---------------------------------------------------------------------------------------------

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        run_dir = self.run_dir or hydra_output_dir() or trainer.default_root_dir
        self.recorder = Recorder(
            run_dir, pl_module, params_every=self.params_every, config=self.config, device=pl_module.device
        )
        self.recorder.start()
        stop = self.recorder.replay.stop_after
        if stop is not None:  # twinrun audit: the fit ends after this step (resumed ones included)
            trainer.fit_loop.epoch_loop.max_steps = stop
        self._hooks = [opt.register_step_post_hook(self._after_optimizer_step) for opt in trainer.optimizers]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._restored_rng is not None:  # before the first epoch's loader draws its order
            restore_rng_state(self._restored_rng)
            self._restored_rng = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._remove_hooks()
        if self.recorder is not None:
            self.recorder.finish()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._remove_hooks()  # and write nothing: the trace would end in the middle of a step
        self.recorder = None

    def _remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    # --- steps -------------------------------------------------------------------------------------------

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.recorder is not None:  # Lightning has called the sampler's set_epoch already
            self._epoch_batches = sampler_batches(trainer.train_dataloader)
            self._epoch = trainer.current_epoch + 1
            self._epoch_started = trainer.current_epoch

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        rec = self.recorder
        if rec is None:
            return
        if self._restored is not None:  # Lightning restores callback states after on_fit_start
            rec.restore(self._restored)
            self._restored = None
        if self._epoch_started != trainer.current_epoch:  # resumed mid-epoch: no on_train_epoch_start
            self.on_train_epoch_start(trainer, pl_module)
        batches = self._epoch_batches
        indices = batches[batch_idx] if batches is not None and batch_idx < len(batches) else None
        self._batch, self._in_batch = (indices, batch), True
        rec.before_step(indices=indices, batch=batch, epoch=self._epoch)

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if self.recorder is not None:
            loss = loss.detach()
            self._loss = loss.clone() if self._loss is None else self._loss + loss

    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        rec = self.recorder
        if rec is None or self._batch is None:
            return
        if rec.trace.open_step is None:  # a step with no batch started since the last one
            rec.before_step(*self._batch, epoch=self._epoch)
        loss, self._loss = self._loss, None
        rec.after_step(loss if loss is not None else float("nan"))
        self._eager = False
        if self._in_batch and not rec.stop_requested:  # another optimizer may step: its row starts now
            rec.before_step(*self._batch, epoch=self._epoch)
            self._eager = True

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._in_batch = False
        if self.recorder is not None and self._eager:  # no further step came in this batch
            self.recorder.discard_step()
            self._eager = False

    # --- checkpoints -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.recorder is None:
            return {}
        return {"trace": self.recorder.rows, "rng": capture_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = list(state_dict.get("trace", [])) or None
        self._restored_rng = state_dict.get("rng")
