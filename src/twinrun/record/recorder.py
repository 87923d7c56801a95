"""``Recorder``: the public recording API. Any training loop gets twinrun's run directory and trace.

::

    from twinrun import Recorder, seed_everything

    seed_everything(seed)
    with Recorder(run_dir, model, optimizer) as rec:  # env.json now; trace and weights at exit
        for epoch in range(1, epochs + 1):
            for indices, (x, y) in batches:
                rec.before_step(indices=indices, batch=(x, y), epoch=epoch)  # data and RNG digests
                loss = ...; loss.backward(); optimizer.step()
                rec.after_step(loss)  # exact loss, parameter fingerprints

twinrun's own trainers (:func:`twinrun.trainers.loop.fit`) and the Lightning callback record through
this class, so every client writes the same ``trace.jsonl``, ``weights.safetensors`` + ``manifest.json``
and ``env.json``, through :mod:`twinrun.record.runs` (atomic writes).

If the block raises, nothing more is written at exit: a trace and weights taken mid-step would not
describe one state of the model. ``env.json`` (written at the start, complete by itself) stays.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn

from twinrun.config import canonical_config
from twinrun.errors import RecorderError
from twinrun.record import runs
from twinrun.record.fingerprint import environment_fingerprint
from twinrun.record.replay import RESUME_ENV, STOP_ENV, replay_request
from twinrun.record.trace import DataDigest, TraceRecorder

log = logging.getLogger(__name__)


def _default_rank() -> int | None:
    """This process's rank when a ``torch.distributed`` process group is up, else None."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else None


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


class Recorder:
    """Records one training run into ``run_dir``: ``env.json`` at the start, trace and weights at the end.

    Args:
        run_dir: the run directory (created if missing).
        model: the trained module (under DDP the inner module, so names carry no ``module.`` prefix);
            its parameters are fingerprinted after every step and its ``state_dict`` is the final weights.
        optimizer: optional; when given, it must update parameters of ``model`` (checked once).
        params_every: fingerprint parameters every N steps (and at the last step); 1 = every step.
        config: optional job config (``DictConfig`` or dict), written as ``resolved_config.yaml``.
        device: recorded in ``env.json``; default: the device of the model's first parameter.
        dataset: a data fingerprint for ``env.json`` (any JSON-able value).
        environment: extra ``env.json`` keys.
        rank: the process's rank under DDP (default: ``torch.distributed``'s when a process group is up).
            Rank 0 writes the run directory; every rank writes its own final weights under
            ``ranks/rank-<r>/``. None: a single process.
        trace: the :class:`TraceRecorder` to record into (default: a new one).
    """

    def __init__(
        self,
        run_dir: str | Path,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        params_every: int = 1,
        config: Any = None,
        device: torch.device | str | None = None,
        dataset: Any = None,
        environment: dict[str, Any] | None = None,
        rank: int | None = None,
        trace: TraceRecorder | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise RecorderError(f"Recorder needs the trained torch.nn.Module, got {type(model).__name__}")
        if optimizer is not None:
            _check_optimizer(model, optimizer)
        if params_every < 1:
            raise RecorderError(f"params_every must be >= 1, got {params_every}")
        self.run_dir = Path(run_dir)
        self.model, self.optimizer = model, optimizer
        self.config, self.dataset, self.environment = config, dataset, dict(environment or {})
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.rank = rank if rank is not None else _default_rank()
        self.trace = trace if trace is not None else TraceRecorder(params_every)
        self.manifest: dict[str, Any] | None = None  # the run directory's weights manifest, after finish
        self.rank_manifest: dict[str, Any] | None = None  # this rank's own, under DDP
        self.last_step = 0  # the step number of the last recorded row
        self.epoch = 1  # recorded in rows whose before_step gives no epoch
        self._started = self._finished = False
        self.replay = replay_request()  # twinrun audit: resume from a checkpoint, stop after a step
        self._resumed = False

    @property
    def writes_run_dir(self) -> bool:
        """Rank 0, or a single process: the one that writes ``run_dir`` itself."""
        return self.rank is None or self.rank == 0

    # --- the run ---------------------------------------------------------------------------------------

    def start(self) -> Recorder:
        """Write ``env.json`` (and ``resolved_config.yaml`` when a config was given); ``with`` calls it."""
        if self._started:
            raise RecorderError("this Recorder was started already: use one Recorder per run")
        self._started = True
        if self.writes_run_dir:
            if self.config is not None:
                runs.write_resolved_config(self.run_dir, canonical_config(self.config))
            env = environment_fingerprint(self.device, self.dataset)
            env.update(self.environment)
            runs.write_json(self.run_dir / runs.ENV, env)
        return self

    def finish(self) -> None:
        """Write the trace and the final weights (+ manifest); ``with`` calls it when the block succeeds."""
        if self._finished:
            return
        self._finished = True
        self.trace.discard_step()  # a step opened but never closed: no optimizer step followed
        state = self.model.state_dict()
        if self.rank is not None:  # every rank's own weights, so that ranks can be compared
            self.rank_manifest = runs.write_weights(runs.rank_dir(self.run_dir, self.rank), state)
        if self.writes_run_dir:
            self.mark_final()
            self.write_trace()
            self.manifest = runs.write_weights(self.run_dir, state)

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.finish()

    # --- steps -------------------------------------------------------------------------------------------

    def before_step(
        self, indices: Any = None, batch: Any = None, *, epoch: int | None = None, step: int | None = None
    ) -> None:
        """Before a step's forward pass: digest its data and every RNG state.

        ``indices`` (the batch's sample indices) and ``batch`` (tensors, nested in tuples, lists and
        dicts) are both optional, but one is needed: together they are the data-order digest. Called
        again before :meth:`after_step` (gradient accumulation), it adds that micro-batch's data to the
        open step. ``epoch`` (default: the last one given, else 1) and ``step`` (default: the last
        step + 1) are recorded in the row.
        """
        if indices is None and batch is None:
            raise RecorderError("before_step needs indices= or batch= (the step's data-order digest)")
        self._check_replay(step if step is not None else self.last_step + 1)
        if epoch is not None:
            self.epoch = epoch
        if self.trace.open_step is not None:
            self.trace.add_data(indices, batch)
            return
        if batch is None and isinstance(indices, torch.Tensor):
            data: torch.Tensor | DataDigest = indices  # the trainers' path: digested later, in a batch
        else:
            data = DataDigest()
            if indices is not None:
                data.add_indices(indices)
            if batch is not None:
                data.add_batch(batch)
        self.trace.before_step(step if step is not None else self.last_step + 1, self.epoch, data)

    def after_step(self, loss: float | torch.Tensor) -> None:
        """After ``optimizer.step()``: the step's exact loss and the parameters' fingerprints."""
        step = self.trace.open_step
        if step is None:
            raise RecorderError("after_step without before_step: call before_step before each step")
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise RecorderError(
                    f"after_step needs a scalar loss, got a tensor of shape {list(loss.shape)}"
                )
            # Kept on its device until the trace's next flush: no synchronisation per step.
            loss = loss.detach()
            loss = loss.clone() if loss.device.type != "cpu" else float(loss)
        self.last_step = step
        self.trace.after_step(loss, self.model)

    def discard_step(self) -> None:
        """Forget the step opened by :meth:`before_step`: no optimizer step followed it."""
        self.trace.discard_step()

    # --- trace rows (checkpoints) ----------------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The trace rows so far (store them in a checkpoint; :meth:`restore` them on resume)."""
        return self.trace.rows

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Continue after a checkpoint's ``rows``: the next step is numbered after their last."""
        self.trace.restore(rows)
        self.last_step = int(rows[-1]["step"]) if rows else 0
        self._resumed = True

    # --- checkpoints and replays (twinrun audit; see twinrun.record.replay) ------------------------------

    def save_checkpoint(self, state: dict[str, Any], keep_last: int | None = None) -> Path:
        """Save ``state`` (model, optimizer, your generators: tensors and plain containers) with the
        trace rows and every global RNG state as ``checkpoints/step-<last step>.pt``; the trace is
        written too, so the run directory matches the checkpoint."""
        from twinrun.record.checkpoint import save_checkpoint
        from twinrun.record.replay import checkpoint_state

        path = save_checkpoint(self.run_dir, self.last_step, checkpoint_state(state, self.rows), keep_last)
        self.write_trace()
        return path

    def resume_point(self, path: str | Path | None = None) -> dict[str, Any] | None:
        """Resume from ``path`` (default: ``$TWINRUN_RESUME_FROM``, set by ``twinrun audit``): restore the
        trace rows and the global RNG states and return the state given to :meth:`save_checkpoint`
        (None: nothing to resume). Call it after building the model and optimizer, before the first step;
        ``last_step`` is then the checkpoint's step."""
        from twinrun.record.replay import load_recorder_checkpoint
        from twinrun.record.rng_state import restore_rng_state

        path = Path(path) if path is not None else self.replay.resume_from
        if path is None:
            return None
        state, rows, rng = load_recorder_checkpoint(path)
        self.restore(rows)
        restore_rng_state(rng)  # last: loading the user's state draws nothing
        return state

    @property
    def stop_requested(self) -> bool:
        """True once the step ``$TWINRUN_STOP_AFTER_STEP`` is done: leave the loop (the block then
        writes the trace as usual)."""
        stop = self.replay.stop_after
        return stop is not None and self.last_step >= stop

    def _check_replay(self, step: int) -> None:
        """A replay whose loop does not follow the protocol fails at once, in one line, instead of
        training the whole run again."""
        if self.replay.resume_from is not None and not self._resumed:
            raise RecorderError(
                f"{RESUME_ENV} is set but the loop did not resume (rec.resume_point()) before its first "
                "step: this app cannot resume, so twinrun audit cannot replay it; see docs/audit.md"
            )
        stop = self.replay.stop_after
        if stop is not None and step > stop and self.trace.open_step is None:
            raise RecorderError(
                f"{STOP_ENV}={stop} is set but the loop went on to step {step}: this app cannot stop "
                "after a step; leave the loop when rec.stop_requested is true (see docs/audit.md)"
            )

    def mark_final(self) -> None:
        """Make sure the last row carries parameter fingerprints (``finish`` does it too)."""
        self.trace.mark_final(self.model)

    def write_trace(self) -> None:
        """Write ``trace.jsonl`` as it stands (a checkpoint writes it so the run dir matches it)."""
        if self.writes_run_dir:
            runs.write_jsonl(self.run_dir / runs.TRACE, self.trace.rows)


def _check_optimizer(model: nn.Module, optimizer: Any) -> None:
    """The optimizer must update the recorded model's parameters, or the fingerprints show nothing."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        raise RecorderError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    own = {id(p) for p in model.parameters()}
    if any(id(p) not in own for group in groups for p in group["params"]):
        raise RecorderError(
            "the optimizer updates parameters that are not the model's: pass Recorder the model being "
            "trained (under DDP the inner module)"
        )
