"""Data-parallel training under ``torchrun``: rank layout, process group, and the collectives ``fit`` uses.

A plain process is rank 0 of a world of 1 and nothing here changes what it does. Under ``torchrun``
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) every rank trains the same config and
seed; the model is wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA) and each rank
reads its own share of every epoch from the seeded ``DistributedSampler`` (see :mod:`twinrun.trainers.data`).
Rank 0 writes the run directory; every rank writes its final weights under ``ranks/rank-<r>/`` so
that ranks can be compared with each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from twinrun.errors import TwinrunError
from twinrun.record import runs
from twinrun.record.runs import RANKS, rank_dir  # noqa: F401  (re-exported: the trainers' view of it)


class DistributedError(TwinrunError, RuntimeError):
    """The torchrun environment is unusable (inconsistent RANK/WORLD_SIZE)."""


@dataclass(frozen=True)
class World:
    """Where this process stands among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the shared artifacts (logs, metrics, trace, checkpoints, env, images)."""
        return self.rank == 0


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"{name}={value!r} is not an integer; launch with torchrun") from None


def world_from_env(environ: Mapping[str, str] | None = None) -> World:
    """The rank layout that torchrun describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``."""
    environ = os.environ if environ is None else environ
    size = _env_int(environ, "WORLD_SIZE", 1)
    rank = _env_int(environ, "RANK", 0)
    local_rank = _env_int(environ, "LOCAL_RANK", rank)
    if size < 1 or not 0 <= rank < size or local_rank < 0:
        raise DistributedError(f"RANK={rank} WORLD_SIZE={size} LOCAL_RANK={local_rank} is not a rank layout")
    return World(rank, size, local_rank)


def backend_for(device: torch.device) -> str:
    """nccl for CUDA tensors, gloo for CPU tensors."""
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(world: World, device: torch.device) -> torch.device:
    """Each rank gets its own GPU (``cuda:LOCAL_RANK``); CPU ranks share the CPU."""
    if device.type != "cuda" or not world.distributed:
        return device
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


@contextlib.contextmanager
def process_group(world: World, device: torch.device) -> Iterator[None]:
    """Join the default process group for the block (no-op for a world of 1 or one already joined)."""
    import torch.distributed as dist

    if not world.distributed or dist.is_initialized():
        yield
        return
    # torchrun exports MASTER_ADDR/MASTER_PORT: the env:// rendezvous needs nothing else.
    dist.init_process_group(backend_for(device), rank=world.rank, world_size=world.size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def from_rank0(world: World, value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank (a seed drawn from OS entropy must be the same everywhere)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return int(box[0])


def rank_sums(world: World, values: Sequence[float], device: torch.device) -> list[float]:
    """Each of ``values`` summed over all ranks, bit-identical on every rank.

    The values are gathered and added in rank order on each rank, in float64, rather than
    all-reduced: the sum then does not depend on the collective's reduction order.
    """
    if not world.distributed:
        return list(values)
    import torch.distributed as dist

    local = torch.tensor(list(values), dtype=torch.float64, device=device)
    gathered = [torch.empty_like(local) for _ in range(world.size)]
    dist.all_gather(gathered, local)
    rows = torch.stack(gathered).cpu().tolist()  # one copy to the host, rows in rank order
    return [sum((row[i] for row in rows), 0.0) for i in range(len(values))]


def wrap(world: World, model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` when there is more than one rank.

    DDP broadcasts rank 0's parameters and buffers on construction and averages gradients in
    ``backward``; the wrapped module keeps its parameter objects, so an optimizer built on
    ``model.parameters()`` keeps working.
    """
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_buffers(world: World, model: nn.Module) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics).

    DDP broadcasts buffers at the start of each forward pass, so after the last step every rank
    holds statistics updated by its own batch. Broadcasting once more before evaluating and saving
    makes every rank hold exactly what the next forward would have used, without changing training.
    """
    if not world.distributed:
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def describe(world: World, device: torch.device) -> dict[str, Any]:
    """What ``env.json`` records about a distributed run."""
    return {"world_size": world.size, "backend": backend_for(device)}


@contextlib.contextmanager
def rank_log(run_dir: Path, log_name: str, world: World) -> Iterator[Path]:
    """Rank 0 logs into the job log; any other rank into ``ranks/rank-<r>/<log_name>.log`` instead.

    Under ``@hydra.main`` every rank's Hydra opened the same job log; the other ranks' handlers are
    detached for the block so that their lines (the same ones, mostly) do not interleave with rank 0's.
    """
    if world.is_main:
        with runs.job_log(run_dir, log_name) as path:
            yield path
        return
    shared = (Path(run_dir) / f"{log_name}.log").resolve()
    root = logging.getLogger()
    detached = [
        h
        for h in root.handlers
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == shared
    ]
    for handler in detached:
        root.removeHandler(handler)
    try:
        with runs.job_log(rank_dir(run_dir, world.rank), log_name) as path:
            yield path
    finally:
        for handler in detached:
            root.addHandler(handler)
