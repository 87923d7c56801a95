"""Per-step fingerprints written to ``trace.jsonl``: where two runs part ways.

A row is recorded for every optimizer step: the digest of the batch's sample indices (or of the batch
itself, see :class:`DataDigest`) and of every RNG state *before* the step, the exact loss, and (every
``params_every`` steps and at the last step) a fingerprint of each parameter *after* the step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from twinrun.record.rng_state import RngSnapshot, rng_snapshot, short_digest, snapshot_digests
from twinrun.record.runs import exact

# Recorded in env.json; traces are compared only within one format. /1 (twinrun 0.1): blake2b digests,
# python's RNG state as 625 uint64s. /2 (0.2): SHA-256 prefixes, python's state as index + 624 uint32s.
TRACE_FORMAT = "twinrun-trace/2"

_INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_MASK64 = 0xFFFFFFFFFFFFFFFF


def batch_digest(indices: torch.Tensor) -> str:
    """Digest of a batch's sample indices (int64, in batch order)."""
    # ``to`` returns the tensor itself when it is on the CPU and int64 already; ``tobytes`` is in C order.
    return short_digest(indices.to(device="cpu", dtype=torch.int64).numpy().tobytes())


def _index_tensor(indices: Any) -> torch.Tensor:
    """Sample indices (tensor, numpy array, sequence of ints) as a CPU int64 tensor."""
    if isinstance(indices, torch.Tensor):
        return indices.detach()
    return torch.as_tensor(np.asarray(indices, dtype=np.int64))


class DataDigest:
    """A running SHA-256 over one step's data: sample indices and batch contents, in the order given.

    Built when a step's data is more than one index tensor (batch contents, or several micro-batches
    under gradient accumulation). Indices alone give the same digest as :func:`batch_digest`. Batch
    leaves are hashed at once (a deferred copy of every batch would hold hundreds of MB): tensors and
    numpy arrays by dtype, shape and bytes, strings and numbers by ``repr``, mappings by key and value,
    sequences item by item; other objects are skipped.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add_indices(self, indices: Any) -> None:
        tensor = _index_tensor(indices).to(device="cpu", dtype=torch.int64).contiguous()
        self._hash.update(tensor.numpy().tobytes())

    def add_batch(self, batch: Any) -> None:
        if isinstance(batch, torch.Tensor):
            flat = batch.detach().to("cpu").contiguous().reshape(-1)
            self._hash.update(f"{batch.dtype}{tuple(batch.shape)}".encode())
            self._hash.update(flat.view(torch.uint8).numpy().tobytes())
        elif isinstance(batch, np.ndarray):
            self._hash.update(f"{batch.dtype}{batch.shape}".encode())
            self._hash.update(np.ascontiguousarray(batch).tobytes())
        elif isinstance(batch, Mapping):
            for key, value in batch.items():
                self._hash.update(repr(key).encode())
                self.add_batch(value)
        elif isinstance(batch, list | tuple):
            self._hash.update(b"[")  # nesting is part of the digest: ([a, b], c) is not (a, [b, c])
            for item in batch:
                self.add_batch(item)
            self._hash.update(b"]")
        elif isinstance(batch, str | bytes | int | float | bool) or batch is None:
            self._hash.update(repr(batch).encode())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()[:16]


def param_fingerprints(model: nn.Module) -> dict[str, str]:
    """A fingerprint of each parameter's exact bits, cheap enough to take after every step.

    Each tensor's bit patterns are reinterpreted as integers and summed with wraparound (modulo
    2**32, or 2**64 for 8-byte dtypes): any change of a single element's bits (one ULP included)
    changes the sum, and integer addition gives the same result whatever the reduction order or
    thread count. Accumulating in the tensor's own integer width avoids a widening copy, which made
    an int64 accumulation ten times slower. It locates a divergence; it is not a cryptographic
    digest: the final weights are compared byte for byte from ``weights.safetensors``.
    """
    return ParamFingerprints(model)()


class ParamFingerprints:
    """:func:`param_fingerprints` for one model, with the integer views built once.

    Building the views and names each call cost as much as the sums themselves (measured 103 vs
    40 us a step on the VAE). The views stay valid while every parameter keeps its storage
    (optimizer steps and ``load_state_dict`` write in place); a parameter whose storage moved
    (``param.data = ...``, ``model.to(...)``) rebuilds them. Parameters added to the model after the
    first call are not seen: training does not add parameters.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._build()

    def _build(self) -> None:
        named = list(self.model.named_parameters())
        self.names = [name for name, _ in named]
        self.params = [param for _, param in named]
        self.pointers = [param.data_ptr() for param in self.params]
        self.host: list[tuple[int, np.ndarray, type]] = []  # CPU parameters as numpy integer views
        self.device: list[tuple[int, torch.Tensor, torch.dtype]] = []  # accelerator parameters
        for position, param in enumerate(self.params):
            width = param.element_size()
            bits = param.detach().view(-1).view(_INT_VIEW[width])  # parameters are contiguous
            if self._on_host(bits):
                self.host.append((position, bits.numpy(), np.int64 if width == 8 else np.int32))
            else:
                self.device.append((position, bits, torch.int64 if width == 8 else torch.int32))

    @staticmethod
    def _on_host(bits: torch.Tensor) -> bool:
        return bits.device.type == "cpu"

    def capture(self) -> ParamSums:
        """The wraparound sums now; no device synchronisation, no text (see :class:`ParamSums`)."""
        if any(p.data_ptr() != ptr for p, ptr in zip(self.params, self.pointers, strict=True)):
            self._build()
        host = [0] * len(self.params)
        # Last parameter first: the optimizer updated it last, so it is still in the CPU's cache
        # (measured on the VAE: the last 1.25 MB weight sums in 20-40 us, the first in 80-115 us).
        for position, bits, accumulate in reversed(self.host):
            # numpy's reduction is the fastest here right after a step (measured 76 vs 104 us on the
            # classifier); both libraries wrap around, so the value is the same as torch's.
            host[position] = int(np.add.reduce(bits, dtype=accumulate))
        device = None
        if self.device:  # summed where the parameters live; copied to the host later, in one transfer
            device = torch.stack([bits.sum(dtype=acc).to(torch.int64) for _, bits, acc in self.device])
        return ParamSums(self.names, host, [position for position, _, _ in self.device], device)

    def __call__(self) -> dict[str, str]:
        return self.capture().hex()


@dataclass(slots=True)
class ParamSums:
    """One step's parameter sums: host values now, device values still on the device."""

    names: list[str]
    host: list[int]  # by parameter position; placeholders where the parameter is on a device
    device_positions: list[int]
    device: torch.Tensor | None  # int64[len(device_positions)], not yet copied to the host

    def hex(self, device_values: list[int] | None = None) -> dict[str, str]:
        """``{name: 16 hex digits}``; ``device_values`` when the caller copied ``device`` already."""
        values = list(self.host)
        if self.device is not None:
            copied = device_values if device_values is not None else self.device.cpu().tolist()
            for position, value in zip(self.device_positions, copied, strict=True):
                values[position] = value
        return {name: f"{value & _MASK64:016x}" for name, value in zip(self.names, values, strict=True)}


@dataclass(slots=True)
class _Captured:
    """What a step's row is made from, captured without hashing or formatting."""

    step: int
    epoch: int
    data: torch.Tensor | DataDigest  # the batch's sample indices, or a digest of more
    rng: RngSnapshot
    loss: float | torch.Tensor = 0.0  # a tensor still on its device until the flush
    params: ParamSums | None = None


class TraceRecorder:
    """Builds the trace rows of a run; :meth:`restore` puts back a checkpoint's rows on resume.

    The per-step calls only capture (RNG states, the batch indices, the parameter sums); digests and
    text are made in batches by :meth:`flush`: every ``FLUSH_EVERY`` steps, at the end of every
    epoch and whenever ``rows`` is read. Right after a training step the CPU caches hold the step's
    tensors, and each piece of Python code run then is several times slower than in a loop
    (measured: hashing the RNG states 156 us a step right after a VAE step, copying them 53 us);
    the rows come out the same either way.
    """

    FLUSH_EVERY = 256

    def __init__(self, params_every: int = 1, rows: list[dict[str, Any]] | None = None) -> None:
        if params_every < 1:
            raise ValueError("trace.params_every must be >= 1")
        self.params_every = params_every
        self._rows: list[dict[str, Any]] = list(rows or [])
        self._captured: list[_Captured] = []
        self._current: _Captured | None = None
        self._fingerprints: ParamFingerprints | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every recorded step's row, in step order."""
        self.flush()
        return self._rows

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Continue after ``rows`` (a checkpoint's), dropping anything recorded so far."""
        self._rows, self._captured, self._current = list(rows), [], None

    def _param_sums(self, model: nn.Module) -> ParamSums:
        if self._fingerprints is None or self._fingerprints.model is not model:
            self._fingerprints = ParamFingerprints(model)
        return self._fingerprints.capture()

    @property
    def open_step(self) -> int | None:
        """The step :meth:`before_step` opened and :meth:`after_step` has not closed yet, if any."""
        return self._current.step if self._current is not None else None

    def before_step(self, step: int, epoch: int, indices: torch.Tensor | DataDigest) -> None:
        """Open step ``step``: snapshot the RNGs now; ``indices`` (or a :class:`DataDigest`) is its data."""
        # A copy: a loader may reuse its index buffer for the next batch.
        data = indices if isinstance(indices, DataDigest) else indices.detach().clone()
        self._current = _Captured(step, epoch, data, rng_snapshot())

    def add_data(self, indices: Any = None, batch: Any = None) -> None:
        """More data for the open step (the next micro-batch under gradient accumulation)."""
        captured = self._current
        assert captured is not None, "add_data without before_step"
        if isinstance(captured.data, torch.Tensor):
            digest = DataDigest()
            digest.add_indices(captured.data)
            captured.data = digest
        if indices is not None:
            captured.data.add_indices(indices)
        if batch is not None:
            captured.data.add_batch(batch)

    def discard_step(self) -> None:
        """Forget the open step: no optimizer step followed it."""
        self._current = None

    def after_step(self, loss: float | torch.Tensor, model: nn.Module, *, final: bool = False) -> None:
        captured = self._current
        assert captured is not None, "after_step without before_step"
        captured.loss = loss
        if final or captured.step % self.params_every == 0:
            captured.params = self._param_sums(model)
        self._captured.append(captured)
        self._current = None
        if len(self._captured) >= self.FLUSH_EVERY:
            self.flush()

    def mark_final(self, model: nn.Module) -> None:
        """Make sure the last recorded step carries parameter fingerprints."""
        if self._captured:
            if self._captured[-1].params is None:
                self._captured[-1].params = self._param_sums(model)
        elif self._rows and "params" not in self._rows[-1]:
            self._rows[-1]["params"] = self._param_sums(model).hex()

    def flush(self) -> None:
        """Turn the captured steps into rows (``fit`` calls it at the end of every epoch)."""
        captured, self._captured = self._captured, []
        sums = [c.params for c in captured if c.params is not None]
        on_device = [p.device for p in sums if p.device is not None]
        if on_device and len({t.shape for t in on_device}) == 1:
            # All steps' device sums in one transfer (one synchronisation per flush, not per step).
            copied = iter(torch.stack(on_device).cpu().tolist())
        else:  # none, or sums of different models: one transfer each
            copied = iter([t.cpu().tolist() for t in on_device])
        for c in captured:
            row: dict[str, Any] = {
                "step": c.step,
                "epoch": c.epoch,
                "batch": batch_digest(c.data) if isinstance(c.data, torch.Tensor) else c.data.hexdigest(),
                "rng": snapshot_digests(c.rng),
                "loss": exact(c.loss),  # float() of a one-element tensor: copied to the host here
            }
            if c.params is not None:
                row["params"] = c.params.hex(next(copied) if c.params.device is not None else None)
            self._rows.append(row)
