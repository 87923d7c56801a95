"""Bitwise comparison of two runs' weights, tensor by tensor and chunk by chunk.

Memory stays at two read buffers (``CHUNK_BYTES`` each) plus statistics over at most
``STATS_ELEMENTS`` elements at a time, whatever the size of the files. Equal chunks cost one read and
one vectorized comparison; only chunks that differ are looked at element by element. The byte work
is done in numpy: on CPU, ``torch.equal``/``ne`` over integer tensors run at about 0.5 GB/s, numpy's
comparisons at 4-9 GB/s. torch is imported only for the dtypes numpy lacks (bfloat16, float8).
"""

from __future__ import annotations

import numpy as np

from twinrun.compare.judge.object_leaves import compare_leaves
from twinrun.compare.read.weights_reader import TensorMeta, WeightsSource
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    Mismatch,
    TensorDiff,
    WeightsSection,
    describe_tensor_diff,
)

CHUNK_BYTES = 8 << 20  # a multiple of every element size (1..16 bytes)
STATS_ELEMENTS = 1 << 16  # 512 KiB of float64 per temporary: stays in cache
_INT_VIEW = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}
_NUMPY_DTYPE: dict[str, type] = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,  # np.bool is numpy >= 2 only
}
_TORCH_ONLY = ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
_FLOATS = ("float16", "float32", "float64", *_TORCH_ONLY)


def _bytes_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Byte equality of two uint8 chunks, compared as 8-byte words where the length allows."""
    if a.size % 8 == 0:
        a, b = a.view(np.int64), b.view(np.int64)
    return bool(np.array_equal(a, b))


def ulp_keys(bits: np.ndarray) -> np.ndarray:
    """Map IEEE bit patterns (as signed ints of the float's width) to int64 keys in value order.

    Follows IEEE 754 totalOrder: -0.0 and +0.0 are one step apart, so every bitwise difference
    of non-NaN values is at least 1 ULP; NaNs sort beyond the infinities by payload.
    """
    keys = np.empty(bits.size, np.int64)
    _keys_into(bits, keys, np.empty(bits.size, np.int64))
    return keys


def _keys_into(bits: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    # A negative float (sign bit set, magnitude m) must map to -m - 1: flipping the magnitude bits of
    # its sign-extended two's complement pattern does exactly that, with no overflow at any width.
    out[...] = bits  # sign-extends narrower widths
    np.right_shift(out, 63, out=tmp)
    np.bitwise_and(tmp, (1 << (bits.itemsize * 8 - 1)) - 1, out=tmp)
    np.bitwise_xor(out, tmp, out=out)


def max_ulp_distance(bits_a: np.ndarray, bits_b: np.ndarray, work: _Workspace | None = None) -> int:
    """Largest |key(a) - key(b)|; exact for every width (float64 keys can overflow int64 differences)."""
    n = bits_a.size
    work = work or _Workspace(n)
    ka, kb, tmp = work.ka[:n], work.kb[:n], work.tmp[:n]
    _keys_into(bits_a, ka, tmp)
    _keys_into(bits_b, kb, tmp)
    if bits_a.itemsize < 8:
        np.subtract(ka, kb, out=tmp)
        return int(np.abs(tmp, out=tmp).max())
    # 64-bit keys: locate the largest distance in float64, then measure it exactly in python ints.
    fd, fe = work.fd[:n], work.fa[:n]
    fd[...], fe[...] = ka, kb
    j = int(np.abs(np.subtract(fd, fe, out=fd), out=fd).argmax())
    return abs(int(ka[j]) - int(kb[j]))


def _as_float64(bits: np.ndarray, dtype: str, out: np.ndarray) -> np.ndarray:
    """The values whose bit patterns are ``bits``, as float64 in ``out`` (exact but for big int64s)."""
    if dtype in _NUMPY_DTYPE:
        out[...] = bits.view(_NUMPY_DTYPE[dtype])
    else:
        import torch

        out[...] = torch.from_numpy(np.ascontiguousarray(bits)).view(getattr(torch, dtype)).double().numpy()
    return out


def _python_value(bits: np.ndarray, dtype: str) -> object:
    """The first element of ``bits`` as a python number (bool, int or float)."""
    if dtype in _NUMPY_DTYPE:
        return bits.view(_NUMPY_DTYPE[dtype])[0].item()
    return float(_as_float64(bits[:1], dtype, np.empty(1))[0])


class _Workspace:
    """Preallocated temporaries: fresh large arrays per sub-chunk would each be mmap'ed, page-faulted
    and zeroed by the allocator, which made the first comparison in a process several times slower."""

    def __init__(self, n: int) -> None:
        self.fa, self.fb, self.fd = (np.empty(n, np.float64) for _ in range(3))
        self.ka, self.kb, self.tmp = (np.empty(n, np.int64) for _ in range(3))
        self.m1, self.m2 = np.empty(n, np.bool_), np.empty(n, np.bool_)


class _TensorStats:
    """Accumulates how one tensor differs, chunk after chunk."""

    def __init__(self, name: str, meta: TensorMeta, tol: tuple[float, float] | None) -> None:
        numel = meta.numel
        self.itemsize = meta.nbytes // numel if numel else 1
        # Element by element where the dtype is known; else (complex, exotic) byte by byte.
        known = meta.dtype in _NUMPY_DTYPE or meta.dtype in _TORCH_ONLY
        self.dtype = meta.dtype if known and self.itemsize in _INT_VIEW else None
        self.unit = "elements" if self.dtype else "bytes"
        self.diff = TensorDiff(
            name, meta.dtype, list(meta.shape), numel, 0, unit=self.unit, close=None if tol is None else True
        )
        self.tol = tol
        self.work = _Workspace(min(STATS_ELEMENTS, max(numel, meta.nbytes)))

    def add(self, a: np.ndarray, b: np.ndarray, byte_offset: int) -> None:
        """Fold in the differing chunk ``a``/``b`` (uint8) that starts ``byte_offset`` into the tensor."""
        if self.dtype is None:  # byte by byte
            ia, ib, base = a, b, byte_offset
        else:
            ia, ib = a.view(_INT_VIEW[self.itemsize]), b.view(_INT_VIEW[self.itemsize])
            base = byte_offset // self.itemsize
        for start in range(0, ia.size, STATS_ELEMENTS):
            stop = start + STATS_ELEMENTS
            self._add_bits(ia[start:stop], ib[start:stop], base + start, self.dtype)

    def _add_bits(self, ia: np.ndarray, ib: np.ndarray, base: int, dtype: str | None) -> None:
        n, w = ia.size, self.work
        differs = np.not_equal(ia, ib, out=w.m1[:n])
        count = int(np.count_nonzero(differs))
        if count == 0:
            return
        d = self.diff
        d.differing += count
        if d.first_index is None:
            j = int(differs.argmax())
            d.first_index = base + j
            if dtype is None:
                d.first_a, d.first_b = int(ia[j]), int(ib[j])
            else:
                d.first_a = _python_value(ia[j : j + 1], dtype)
                d.first_b = _python_value(ib[j : j + 1], dtype)
        if dtype is None or dtype == "bool":
            d.max_abs_diff = None if dtype is None else 1.0
            if d.close is not None:
                d.close = False
            return
        if count < n // 4:  # sparse: look at the differing elements only
            ia, ib, n = ia[differs], ib[differs], count
        # Dense: equal elements stay in and contribute 0 to every maximum below.
        fa, fb = _as_float64(ia, dtype, w.fa[:n]), _as_float64(ib, dtype, w.fb[:n])
        with np.errstate(invalid="ignore", over="ignore"):
            np.isnan(fa, out=w.m1[:n])
            np.isnan(fb, out=w.m2[:n])
            d.nan_mismatches += int(np.count_nonzero(np.not_equal(w.m1[:n], w.m2[:n], out=w.m1[:n])))
            delta = np.abs(np.subtract(fa, fb, out=w.fd[:n]), out=w.fd[:n])
            # fmax skips NaNs: a NaN on either side (counted above) or equal infinities add nothing.
            local = float(np.fmax.reduce(delta))
            local = 0.0 if local != local else local
            d.max_abs_diff = local if d.max_abs_diff is None else max(d.max_abs_diff, local)
            if d.close and self.tol is not None:
                # torch.isclose semantics (|a-b| <= atol + rtol*|b|, NaN == NaN), evaluated in float64.
                atol, rtol = self.tol
                d.close = bool(np.isclose(fa, fb, rtol=rtol, atol=atol, equal_nan=True).all())
            if dtype in _FLOATS:  # last: it reuses the float buffers
                local_ulp = max_ulp_distance(ia, ib, w)
                d.max_ulp = local_ulp if d.max_ulp is None else max(d.max_ulp, local_ulp)


def compare_tensor(
    a: WeightsSource,
    b: WeightsSource,
    name: str,
    buffers: tuple[np.ndarray, np.ndarray],
    tol: tuple[float, float] | None = None,
) -> TensorDiff | None:
    """None when tensor ``name`` is bitwise identical in ``a`` and ``b`` (same dtype and shape assumed)."""
    meta = a.metas[name]
    stats: _TensorStats | None = None
    for offset in range(0, meta.nbytes, CHUNK_BYTES):
        n = min(CHUNK_BYTES, meta.nbytes - offset)
        chunk_a = a.read(name, offset, buffers[0][:n])
        chunk_b = b.read(name, offset, buffers[1][:n])
        if _bytes_equal(chunk_a, chunk_b):
            continue
        stats = stats or _TensorStats(name, meta, tol)
        stats.add(chunk_a, chunk_b, offset)
    return None if stats is None else stats.diff


def compare_weights(
    a: WeightsSource,
    b: WeightsSource,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    label: str | None = None,
) -> WeightsSection:
    """The weights section: key sets, dtypes, shapes, then bytes of every tensor both runs have, and
    the sources' other values (leaves) exactly. With ``label``, names read ``label: path``."""
    tol = None if atol is None and rtol is None else (float(atol or 0.0), float(rtol or 0.0))

    def named(path: str) -> str:
        return path if label is None else (f"{label}: {path}" if path else label)

    sec = WeightsSection(
        source_a=a.shown,
        source_b=b.shown,
        tensors_a=len(a.metas),
        tensors_b=len(b.metas),
        atol=atol,
        rtol=rtol,
    )
    sec.only_in_a = [named(n) for n in a.metas if n not in b.metas]
    sec.only_in_b = [named(n) for n in b.metas if n not in a.metas]
    buffers = (np.empty(CHUNK_BYTES, dtype=np.uint8), np.empty(CHUNK_BYTES, dtype=np.uint8))
    for name, meta_a in a.metas.items():
        meta_b = b.metas.get(name)
        if meta_b is None:
            continue
        if meta_a.shape != meta_b.shape:
            sec.shape_mismatches.append(Mismatch(named(name), list(meta_a.shape), list(meta_b.shape)))
            continue
        # Equal bytes under different dtypes (float32 vs int32) are different weights.
        if meta_a.dtype != meta_b.dtype or meta_a.nbytes != meta_b.nbytes:
            sec.dtype_mismatches.append(Mismatch(named(name), meta_a.dtype, meta_b.dtype))
            continue
        diff = compare_tensor(a, b, name, buffers, tol)
        sec.compared += 1
        sec.bytes_compared += meta_a.nbytes
        if diff is not None:
            diff.name = named(name)
            sec.differing.append(diff)
    compare_leaves(a.leaves, b.leaves, named, sec)
    leaves_differ = sec.leaf_mismatches or sec.leaves_only_in_a or sec.leaves_only_in_b
    differs = sec.architecture_differs or sec.dtype_mismatches or sec.differing or leaves_differ
    sec.status = DIFFERENT if differs else IDENTICAL
    if tol is not None:
        sec.close = not (sec.architecture_differs or sec.dtype_mismatches or leaves_differ) and all(
            d.close for d in sec.differing
        )
    sec.summary = _summary(sec)
    return sec


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _summary(sec: WeightsSection) -> str:
    parts: list[str] = []
    if sec.architecture_differs:
        arch = []
        if sec.only_in_a:
            arch.append(f"only in RUN_A: {_names(sec.only_in_a)}")
        if sec.only_in_b:
            arch.append(f"only in RUN_B: {_names(sec.only_in_b)}")
        if sec.shape_mismatches:
            m = sec.shape_mismatches[0]
            arch.append(
                f"shape of {m.name} {m.a} vs {m.b}" + (" and more" if len(sec.shape_mismatches) > 1 else "")
            )
        parts.append("different architectures: " + "; ".join(arch))
    if sec.dtype_mismatches:
        m = sec.dtype_mismatches[0]
        parts.append(
            f"dtypes differ: {m.name} {m.a} vs {m.b}" + (" and more" if len(sec.dtype_mismatches) > 1 else "")
        )
    if sec.differing:
        first = describe_tensor_diff(sec.differing[0])
        lead = "first " if len(sec.differing) > 1 else ""
        parts.append(f"{len(sec.differing)} of {sec.compared} tensors differ: {lead}{first}")
    leaves_only = sec.leaves_only_in_a + sec.leaves_only_in_b
    if leaves_only:
        parts.append(f"values in one run only: {_names(leaves_only)}")
    if sec.leaf_mismatches:
        m = sec.leaf_mismatches[0]
        lead = "first " if len(sec.leaf_mismatches) > 1 else ""
        parts.append(
            f"{len(sec.leaf_mismatches)} of {sec.leaves_compared} other values differ: {lead}{m.name} "
            f"{m.a!r} vs {m.b!r}"
        )
    if not parts:
        parts.append(f"{sec.compared} tensors, {_size(sec.bytes_compared)}, bitwise identical")
        if sec.leaves_compared:
            parts[-1] += f"; {sec.leaves_compared} other values identical"
    if sec.close is not None:
        verdict = "all within" if sec.close else "not within"
        parts.append(f"{verdict} atol={sec.atol or 0} rtol={sec.rtol or 0}")
    return "; ".join(parts)


def _size(nbytes: int) -> str:
    """``1023 B``, ``1.5 KiB``, ``2.0 MiB``; GiB beyond (``1024.0 GiB``)."""
    if nbytes < 1024:
        return f"{nbytes} B"
    size = nbytes / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
