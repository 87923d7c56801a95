"""``.npy`` and ``.npz`` files as lazy tensor sources, read the way ``numpy.load(allow_pickle=False)``
would: the header is parsed here (a Python literal, never unpickled), an array of Python objects is
refused, and the data is read by byte range like every other tensor file."""

from __future__ import annotations

import ast
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from twinrun.compare.read.file_regions import FileRegion, Region, member_region
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.read.weights_reader import TensorMeta, WeightsSource

_MAX_HEADER = 1 << 20
MAX_GATHERED = 64 << 20  # a Fortran-ordered array is reordered in memory: at most this many bytes


class _Tail(Region):
    """The bytes of ``region`` from ``start`` on."""

    def __init__(self, region: Region, start: int) -> None:
        super().__init__(region.size - start, region.shown)
        self.region, self.start = region, start

    def readinto(self, pos: int, view: memoryview) -> None:
        self.region.readinto(self.start + pos, view)

    def view(self, pos: int, buffer: np.ndarray) -> np.ndarray:
        return self.region.view(self.start + pos, buffer)


class NumpyWeights(WeightsSource):
    """Named arrays, each a region of the file (C order) or gathered in memory (Fortran order)."""

    kind = "numpy"

    def __init__(self, shown: str, files: list[IO[bytes]]) -> None:
        super().__init__(shown)
        self._regions: dict[str, Region | np.ndarray] = {}
        self._files = files

    def add(self, name: str, dtype: np.dtype, shape: tuple[int, ...], fortran: bool, region: Region) -> None:
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a shape cannot overflow into a small size
        if nbytes >= 1 << 63:
            raise UnusableRunError(
                f"{self.shown}: array {name or '(the array)'} declares shape {shape}, more bytes than any "
                "file holds; it is corrupt"
            )
        if region.size < nbytes:
            raise UnusableRunError(f"{self.shown}: array {name} is cut short; the file was truncated")
        self.metas[name] = TensorMeta(dtype_name(dtype), shape, nbytes)
        if region.size > nbytes:  # bytes after the array are part of the file: compared too
            self.add_bytes(f"{name} (bytes after the array)", _Tail(region, nbytes))
        if fortran and len(shape) > 1 and nbytes > MAX_GATHERED:
            raise UnusableRunError(
                f"{self.shown}: array {name or '(the array)'} is Fortran-ordered and {nbytes} bytes; twinrun "
                f"reorders such arrays in memory up to {MAX_GATHERED} bytes: save it C-ordered"
            )
        if fortran and len(shape) > 1:  # element order differs from C order: gather it, C-ordered
            raw = np.empty(nbytes, np.uint8)
            region.readinto(0, memoryview(raw))
            array = raw.view(dtype).reshape(shape, order="F")
            self._regions[name] = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
        else:
            self._regions[name] = region

    def add_bytes(self, name: str, region: Region) -> None:
        """A member that is not an array (or bytes after one): compared as bytes, a window at a time."""
        self.metas[name] = TensorMeta("uint8", (region.size,), region.size)
        self._regions[name] = region

    def read(self, name: str, offset: int, buffer: np.ndarray) -> np.ndarray:
        region = self._regions[name]
        if isinstance(region, np.ndarray):
            return region[offset : offset + buffer.size]
        return region.view(offset, buffer)

    def close(self) -> None:
        for f in self._files:
            f.close()


def dtype_name(dtype: np.dtype) -> str:
    """torch's name for plain little-endian numbers (``float32``), numpy's spelling otherwise (``<U3``)."""
    if dtype.kind in "biufc" and dtype.byteorder in "=<|" and dtype.fields is None:
        return dtype.name
    return dtype.str


def read_header(read: Callable[[int], bytes], shown: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """dtype, shape, Fortran order and header length of the ``.npy`` data ``read`` yields."""
    magic = read(8)
    if len(magic) < 8 or not magic.startswith(b"\x93NUMPY") or magic[6] not in (1, 2, 3):
        raise UnusableRunError(
            f"{shown} is not a .npy array (no NUMPY magic); it is corrupt or of another format"
        )
    width = 2 if magic[6] == 1 else 4
    length = int.from_bytes(read(width), "little")
    if length > _MAX_HEADER:
        raise UnusableRunError(f"{shown}: .npy header of {length} bytes; the file is corrupt")
    text = read(length)
    try:
        header = ast.literal_eval(text.decode("utf-8" if magic[6] == 3 else "latin1"))
        dtype = np.lib.format.descr_to_dtype(header["descr"])
        shape = tuple(int(n) for n in header["shape"])
        fortran = bool(header["fortran_order"])
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError) as exc:
        raise UnusableRunError(
            f"{shown}: unreadable .npy header ({type(exc).__name__}); it is corrupt"
        ) from None
    if dtype.hasobject:
        raise UnusableRunError(
            f"{shown} holds Python objects (dtype {dtype}), which only pickle can read; twinrun does not run "
            "pickled code: save numeric arrays"
        )
    if any(n < 0 for n in shape):
        raise UnusableRunError(f"{shown}: negative array shape {shape}; the file is corrupt")
    return dtype, shape, fortran, 8 + width + length


def open_npy(path: Path, shown: str) -> NumpyWeights:
    file = _open(path, shown)
    try:
        dtype, shape, fortran, start = read_header(file.read, shown)
        size = path.stat().st_size
        source = NumpyWeights(shown, [file])
        source.add("", dtype, shape, fortran, FileRegion(file, start, size - start, shown))
        return source
    except BaseException:
        file.close()
        raise


def open_npz(path: Path, shown: str) -> NumpyWeights:
    file = _open(path, shown)
    try:
        archive = zipfile.ZipFile(file)
        source = NumpyWeights(shown, [file])
        size = path.stat().st_size
        for info in archive.infolist():
            member = f"{shown}: {info.filename}"
            if not info.filename.endswith(".npy"):  # numpy.load would not list it; its bytes still count
                region = member_region(archive, file, info, size, member)
                source.add_bytes(f"{info.filename} (not .npy: bytes)", region)
                continue
            with archive.open(info) as stream:
                dtype, shape, fortran, start = read_header(stream.read, member)
            region = member_region(archive, file, info, size, member, skip=start)
            source.add(info.filename.removesuffix(".npy"), dtype, shape, fortran, region)
        return source
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        file.close()
        raise UnusableRunError(
            f"{shown} is not a readable .npz archive ({exc}); it is truncated or corrupt"
        ) from None
    except BaseException:
        file.close()
        raise


def _open(path: Path, shown: str) -> IO[bytes]:
    try:
        if path.stat().st_size == 0:
            raise UnusableRunError(f"{shown} is empty; the run did not finish writing it, re-run it")
        return path.open("rb", buffering=0)
    except OSError as exc:
        raise UnusableRunError(f"cannot read {shown} ({exc.strerror}); check its permissions") from None
