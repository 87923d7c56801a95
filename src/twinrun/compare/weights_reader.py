"""A run's final weights as a lazy, byte-addressable source of tensors.

``weights.safetensors`` is validated with ``safetensors.safe_open`` and then read by byte ranges with
plain file reads into a caller-provided buffer. Not through ``safe_open``'s memory map: every page of a
map that has been touched counts in the process's resident set until the map closes, so reading a 1 GiB
file through it grows RSS by 1 GiB (2 GiB for two runs), while ``readinto`` keeps memory at the size of
the buffers whatever the size of the file. A legacy ``trained_model.pt`` (the course's format) is loaded
whole with ``torch.load(weights_only=True)``. torch is imported only for that legacy format: comparing
two safetensors runs needs numpy alone, which saves the CLI more than a second of start-up.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from twinrun.compare.run_reader import RunDir, UnusableRunError
from twinrun.errors import first_line
from twinrun.record import runs

if TYPE_CHECKING:
    import torch

LEGACY_WEIGHTS = "trained_model.pt"

# safetensors dtype codes -> torch dtype names (the names the manifest and the report use).
SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
    "C64": "complex64",
}


@dataclass(frozen=True)
class TensorMeta:
    """What is known about a tensor without reading it."""

    dtype: str  # torch dtype name ("float32"), or the raw safetensors code when torch has no such dtype
    shape: tuple[int, ...]
    nbytes: int

    @property
    def numel(self) -> int:
        count = 1
        for n in self.shape:
            count *= n
        return count


class WeightsSource:
    """Named tensors readable by byte range. Subclasses: safetensors file, in-memory state dict."""

    kind = ""

    def __init__(self, shown: str) -> None:
        self.shown = shown  # the weights file as named in messages
        self.metas: dict[str, TensorMeta] = {}

    def read(self, name: str, offset: int, buffer: np.ndarray) -> np.ndarray:
        """Bytes ``[offset, offset + len(buffer))`` of tensor ``name`` (uint8), possibly in ``buffer``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle, if any."""

    def __enter__(self) -> WeightsSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SafetensorsWeights(WeightsSource):
    """``weights.safetensors`` read lazily: header parsed once, tensor bytes read on demand."""

    kind = "safetensors"

    def __init__(self, path: Path, shown: str) -> None:
        super().__init__(shown)
        _validate_safetensors(path, shown)
        self._file: IO[bytes] = path.open("rb", buffering=0)  # unbuffered: readinto goes straight in
        try:
            header_len = int.from_bytes(self._file.read(8), "little")
            header = json.loads(self._file.read(header_len))
        except (ValueError, OSError) as exc:  # safe_open accepted it, so this is a race or a bug
            self._file.close()
            raise UnusableRunError(f"{shown}: unreadable safetensors header ({exc}); regenerate it") from None
        self._data_start = 8 + header_len
        self._offsets: dict[str, int] = {}
        header.pop("__metadata__", None)
        # File order, so that reading tensor after tensor walks each file front to back.
        for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            begin, end = entry["data_offsets"]
            dtype = SAFETENSORS_DTYPES.get(entry["dtype"], entry["dtype"])
            self.metas[name] = TensorMeta(dtype, tuple(entry["shape"]), end - begin)
            self._offsets[name] = begin

    def read(self, name: str, offset: int, buffer: np.ndarray) -> np.ndarray:
        n = buffer.size
        self._file.seek(self._data_start + self._offsets[name] + offset)
        view = memoryview(buffer)
        got = 0
        while got < n:
            count = self._file.readinto(view[got:])
            if not count:
                raise UnusableRunError(f"{self.shown} ended while reading {name}; the file was truncated")
            got += count
        return buffer

    def close(self) -> None:
        self._file.close()


class TensorDictWeights(WeightsSource):
    """A state dict already in memory (legacy ``trained_model.pt``)."""

    kind = "torch.load"

    def __init__(self, tensors: Mapping[str, torch.Tensor], shown: str) -> None:
        import torch

        super().__init__(shown)
        self._flat: dict[str, np.ndarray] = {}
        for name, tensor in tensors.items():
            t = tensor.detach().to("cpu").contiguous()
            try:
                self._flat[name] = t.reshape(-1).view(torch.uint8).numpy()
            except RuntimeError as exc:  # sparse, quantized, ... tensors have no plain bytes
                raise UnusableRunError(f"{shown}: tensor {name} has no plain byte layout ({exc})") from None
            self.metas[name] = TensorMeta(str(t.dtype).removeprefix("torch."), tuple(t.shape), t.nbytes)

    def read(self, name: str, offset: int, buffer: np.ndarray) -> np.ndarray:
        return self._flat[name][offset : offset + buffer.size]


def _validate_safetensors(path: Path, shown: str) -> None:
    from safetensors import SafetensorError, safe_open

    if path.stat().st_size == 0:
        raise UnusableRunError(f"{shown} is empty; the run did not finish writing its weights, re-run it")
    try:
        # Opening validates the header against the file size (truncation, overlaps, foreign files)
        # without touching the tensor data.
        with safe_open(str(path), framework="numpy") as handle:  # numpy: validating needs no torch
            handle.keys()
    except SafetensorError as exc:
        raise UnusableRunError(
            f"{shown} is not a valid safetensors file ({exc}); it is truncated, corrupt or of another "
            "format: regenerate it"
        ) from None


def open_weights(run: RunDir, *, trust_pickle: bool = False) -> WeightsSource:
    """The run's weights: ``weights.safetensors``, else a legacy ``trained_model.pt``."""
    if run.has(runs.WEIGHTS):
        return SafetensorsWeights(run.file(runs.WEIGHTS), run.show(runs.WEIGHTS))
    if run.has(LEGACY_WEIGHTS):
        return TensorDictWeights(_load_legacy(run, trust_pickle), run.show(LEGACY_WEIGHTS))
    raise UnusableRunError(
        f"{run.shown} has no weights (neither {runs.WEIGHTS} nor {LEGACY_WEIGHTS}); "
        "point at the directory of a finished run"
    )


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _load_legacy(run: RunDir, trust_pickle: bool) -> dict[str, torch.Tensor]:
    import torch

    path, shown = run.file(LEGACY_WEIGHTS), run.show(LEGACY_WEIGHTS)
    if path.stat().st_size == 0:
        raise UnusableRunError(f"{shown} is empty; the run did not finish writing its weights, re-run it")
    try:
        obj = torch.load(path, weights_only=not trust_pickle, map_location="cpu")
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        if found and not trust_pickle:
            raise UnusableRunError(
                f"{shown} is a pickled {found.group(1)} (a whole module), not a state_dict, and loading it "
                "can run arbitrary code; pass --trust-pickle to load it with full pickle (only for files "
                "you made yourself), or save model.state_dict() instead"
            ) from None
        raise _unreadable(shown, exc) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... for damaged files
        raise _unreadable(shown, exc) from None
    tensors = _state_dict_of(obj)
    if tensors is None:
        raise UnusableRunError(
            f"{shown} holds a {type(obj).__name__}, not a state_dict; save model.state_dict() instead"
        )
    return tensors


def _state_dict_of(obj: Any) -> dict[str, torch.Tensor] | None:
    import torch

    if isinstance(obj, torch.nn.Module):
        return dict(obj.state_dict())
    if not isinstance(obj, Mapping):
        return None
    for key in ("state_dict", "model_state_dict"):  # checkpoint-style dicts wrap the state dict
        if isinstance(obj.get(key), Mapping):
            return _state_dict_of(obj[key])
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    return tensors if tensors or not obj else None


def _unreadable(shown: str, exc: BaseException) -> UnusableRunError:
    text = str(exc).strip()
    # torch's weights-only errors open with advice that does not apply; the cause is on a later line.
    _, marker, cause = text.partition("WeightsUnpickler error:")
    cause = next((ln.strip() for ln in cause.splitlines() if ln.strip()), "") if marker else ""
    detail = cause or (first_line(exc) if text else "no detail")
    return UnusableRunError(
        f"{shown} is not a readable torch.save file ({type(exc).__name__}: {detail}); it is truncated or "
        "corrupt: regenerate it"
    )
