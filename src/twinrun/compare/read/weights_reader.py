"""Tensor files as lazy, byte-addressable sources of named tensors (plus the file's other values).

``*.safetensors`` is validated with ``safetensors.safe_open`` and then read by byte ranges, a window of
at most one chunk at a time (:mod:`twinrun.compare.read.file_regions`). Not through ``safe_open``'s memory
map of the whole file: every page of a map that has been touched counts in the process's resident set
until the map closes, so reading a 1 GiB file through it grows RSS by 1 GiB (2 GiB for two runs), while
windows keep memory at a few chunks whatever the size of the file. Torch files are read the same way,
by the storages' byte ranges, after
:mod:`twinrun.compare.read.torch_pickle` has rebuilt the pickle without running it. Neither needs torch: the
CLI saves more than a second of start-up when it compares files that do not need it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from twinrun.compare.read.file_regions import FileRegion, Region
from twinrun.compare.read.object_tree import MemTensor, Tree
from twinrun.compare.read.run_reader import UnusableRunError, unreadable_reason
from twinrun.compare.read.torch_pickle import TensorRef

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
        self.leaves: dict[str, Any] = {}  # the file's other values (epoch, hyper_parameters ...), by path
        self.masked: list[str] = []  # volatile fields left out of the comparison (a resolver cache), by path
        self.volatile_strings: frozenset[str] = frozenset()  # the strings of those fields (the byte rule)
        self.records: dict[str, Any] = {}  # a torch zip's records besides data.pkl and storages, by name

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
        self._data = FileRegion(self._file, 8 + header_len, path.stat().st_size - 8 - header_len, shown)
        self._offsets: dict[str, int] = {}
        metadata = header.pop("__metadata__", None) or {}
        self.leaves = {f"__metadata__/{k}": v for k, v in metadata.items()}
        # File order, so that reading tensor after tensor walks each file front to back.
        for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            begin, end = entry["data_offsets"]
            dtype = SAFETENSORS_DTYPES.get(entry["dtype"], entry["dtype"])
            self.metas[name] = TensorMeta(dtype, tuple(entry["shape"]), end - begin)
            self._offsets[name] = begin

    def read(self, name: str, offset: int, buffer: np.ndarray) -> np.ndarray:
        return self._data.view(self._offsets[name] + offset, buffer)

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
            try:
                t = tensor.detach().to("cpu").contiguous()  # a sparse tensor fails here
                self._flat[name] = t.reshape(-1).view(torch.uint8).numpy()
            except RuntimeError as exc:  # sparse, quantized, ... tensors have no plain bytes
                raise UnusableRunError(f"{shown}: tensor {name} has no plain byte layout ({exc})") from None
            self.metas[name] = TensorMeta(str(t.dtype).removeprefix("torch."), tuple(t.shape), t.nbytes)

    def read(self, name: str, offset: int, buffer: np.ndarray) -> np.ndarray:
        return self._flat[name][offset : offset + buffer.size]


class TreeWeights(WeightsSource):
    """The tensors of a flattened object: byte ranges of the file's storages (or bytes in memory)."""

    kind = "torch"

    def __init__(
        self, tree: Tree, regions: Mapping[str, Region], shown: str, close: Callable[[], None] | None = None
    ) -> None:
        super().__init__(shown)
        self.leaves = tree.leaves
        self.masked = tree.masked
        self.volatile_strings = frozenset(tree.volatile_strings)
        self._close = close
        self._tensors = tree.tensors
        self._regions = regions
        self._strided: tuple[str, np.ndarray] | None = None  # the last non-contiguous tensor, gathered
        self._strided_names = {
            n for n, t in tree.tensors.items() if isinstance(t, TensorRef) and not t.contiguous
        }
        for name, t in tree.tensors.items():
            size = t.numel * t.itemsize if isinstance(t, TensorRef) else t.data.size
            self.metas[name] = TensorMeta(t.dtype, t.shape, size)

    def read(self, name: str, offset: int, buffer: np.ndarray) -> np.ndarray:
        t = self._tensors[name]
        if isinstance(t, MemTensor):
            return t.data[offset : offset + buffer.size]
        if name in self._strided_names:
            return self._gathered(name, t)[offset : offset + buffer.size]
        start = t.storage.offset + t.offset * t.itemsize + offset
        return self._regions[t.storage.key].view(start, buffer)

    def _gathered(self, name: str, t: TensorRef) -> np.ndarray:
        """A strided view's elements in order (views saved as such are small: gathered in memory)."""
        if self._strided is None or self._strided[0] != name:
            begin, end = t.span()
            raw = np.empty(end - begin, np.uint8)
            self._regions[t.storage.key].readinto(t.storage.offset + begin, memoryview(raw))
            elements = raw.view(np.dtype(f"V{t.itemsize}"))
            strides = tuple(s * t.itemsize for s in t.stride)
            view = np.lib.stride_tricks.as_strided(elements, t.shape, strides)  # only read: copied next line
            self._strided = (name, np.ascontiguousarray(view).view(np.uint8).reshape(-1))
        return self._strided[1]

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _validate_safetensors(path: Path, shown: str) -> None:
    from safetensors import SafetensorError, safe_open

    if path.stat().st_size == 0:
        raise UnusableRunError(f"{shown} is empty; the run did not finish writing its weights, re-run it")
    try:  # safe_open reports any failure to open (permissions too) as FileNotFoundError: ask the OS
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None
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
    except OSError as exc:  # FileNotFoundError for any open failure
        raise UnusableRunError(f"cannot read {shown} ({unreadable_reason(exc)})") from None
