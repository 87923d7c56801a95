"""compare_weights: dtypes, chunked statistics, tolerance and non-tensor values (each check with a
negative control; the three tests marked 'mutant' each fail on a known wrong variant of weights.py)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

from twinrun.compare.judge import weights as weights_compare
from twinrun.compare.judge.object_leaves import shown_leaf
from twinrun.compare.judge.weights import compare_weights
from twinrun.compare.read.weights_reader import TensorDictWeights
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, describe_tensor_diff


def _pair(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]
) -> tuple[TensorDictWeights, TensorDictWeights]:
    return TensorDictWeights(a, "a"), TensorDictWeights(b, "b")


@pytest.mark.parametrize(
    ("da", "db"),
    [(torch.float32, torch.int32), (torch.float16, torch.bfloat16), (torch.uint8, torch.bool)],
    ids=["f32-i32", "f16-bf16", "u8-bool"],
)
def test_mutant_same_bytes_other_dtype_is_a_dtype_difference(da: torch.dtype, db: torch.dtype) -> None:
    t = torch.tensor([0, 1, 1, 0], dtype=da)
    sec = compare_weights(*_pair({"w": t}, {"w": t.view(db)}))
    assert sec.status == DIFFERENT and [(m.a, m.b) for m in sec.dtype_mismatches] == [
        (str(da)[6:], str(db)[6:])
    ]
    assert sec.compared == 0  # not compared as bytes: the bytes are equal
    assert compare_weights(*_pair({"w": t}, {"w": t.clone()})).status == IDENTICAL  # control


def test_mutant_closeness_needs_every_element_within_tolerance() -> None:
    a = torch.zeros(4)
    b = torch.tensor([1e-9, 0.0, 0.5, 0.0])  # one element within atol=1e-6, one far outside
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b}), atol=1e-6).differing
    assert diff.close is False
    near = torch.tensor([1e-9, 0.0, 2e-9, 0.0])  # control: every element within
    sec = compare_weights(*_pair({"w": a}, {"w": near}), atol=1e-6)
    assert sec.differing[0].close is True and sec.close is True


def test_mutant_first_index_beyond_the_first_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_compare, "CHUNK_BYTES", 64)  # 16 floats a chunk
    a = torch.arange(100, dtype=torch.float32)
    b = a.clone()
    b[70] = -1.0  # chunk 4, element 6 of it
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b})).differing
    assert (diff.first_index, diff.first_a, diff.first_b) == (70, 70.0, -1.0)
    assert type(diff.first_index) is int  # an index, shown as 70 (not 70.0) in reports
    b[3] = -2.0  # control: a difference in the first chunk is found first
    assert compare_weights(*_pair({"w": a}, {"w": b})).differing[0].first_index == 3


def test_first_index_beyond_the_first_real_chunk() -> None:
    n = weights_compare.CHUNK_BYTES // 4 + 10  # just past the first 8 MiB
    a = torch.zeros(n)
    b = a.clone()
    b[n - 1] = 1.0
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b})).differing
    assert (diff.first_index, diff.differing) == (n - 1, 1)


def test_leaves_compared_exactly_and_named_with_the_label() -> None:
    a, b = _pair({"w": torch.ones(1)}, {"w": torch.ones(1)})
    a.leaves = {"epoch": 3, "lr": 0.1, "nan": math.nan, "zero": 0.0, "only_a": 1}
    b.leaves = {"epoch": 3, "lr": 0.1, "nan": math.nan, "zero": -0.0, "only_b": 1}
    sec = compare_weights(a, b, label="ckpt.pt")
    assert sec.status == DIFFERENT and sec.leaves_compared == 4
    assert [(m.name, m.a, m.b) for m in sec.leaf_mismatches] == [("ckpt.pt: zero", 0.0, -0.0)]
    assert (sec.leaves_only_in_a, sec.leaves_only_in_b) == (["ckpt.pt: only_a"], ["ckpt.pt: only_b"])
    assert "1 of 4 other values differ: ckpt.pt: zero 0.0 vs -0.0" in sec.summary
    b.leaves = dict(a.leaves)  # control: NaN equals NaN, everything else equal
    same = compare_weights(a, b, label="ckpt.pt")
    assert same.status == IDENTICAL and "5 other values identical" in same.summary


def test_int_and_float_leaves_of_equal_value_differ() -> None:
    a, b = _pair({}, {})
    a.leaves, b.leaves = {"step": 1}, {"step": 1.0}
    assert compare_weights(a, b).status == DIFFERENT
    b.leaves = {"step": 1}
    assert compare_weights(a, b).status == IDENTICAL


def test_long_leaves_are_shortened_for_reports() -> None:
    assert shown_leaf("x" * 1000).endswith("... (1000 characters)")
    assert shown_leaf(b"\x00" * 100).startswith("100 bytes, sha256 ")
    assert shown_leaf(b"\x01\x02") == "bytes 0102" and shown_leaf(3) == 3


def test_ulp_statistics_for_bfloat16() -> None:
    a = torch.ones(4, dtype=torch.bfloat16)
    b = a.clone()
    b.view(torch.int16)[2] += 3
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b})).differing
    assert (diff.max_ulp, diff.first_index) == (3, 2)
    assert np.isclose(diff.max_abs_diff, 3 * 2**-7)


def _ones(n: int = 1) -> torch.Tensor:
    return torch.ones(n)


def test_summary_names_the_architecture_difference() -> None:
    a = {f"a{i}": _ones() for i in range(4)} | {"s1": _ones(2), "s2": _ones(2)}
    b = {"b1": _ones(), "b2": _ones(), "b3": _ones(), "s1": _ones(3), "s2": _ones(3)}
    sec = compare_weights(*_pair(a, b))
    assert sec.summary == (
        "different architectures: only in RUN_A: a0, a1, a2 (+1 more); only in RUN_B: b1, b2, b3; "
        "shape of s1 [2] vs [3] and more"
    )
    assert (sec.only_in_a, sec.only_in_b) == (["a0", "a1", "a2", "a3"], ["b1", "b2", "b3"])
    assert [(m.name, m.a, m.b) for m in sec.shape_mismatches] == [("s1", [2], [3]), ("s2", [2], [3])]
    assert (sec.status, sec.compared, sec.tensors_a, sec.tensors_b) == (DIFFERENT, 0, 6, 5)
    one = compare_weights(*_pair({"s": _ones(2), "x": _ones()}, {"s": _ones(3), "x": _ones()}))
    assert one.summary == "different architectures: shape of s [2] vs [3]" and one.status == DIFFERENT
    only_b = compare_weights(*_pair({"x": _ones()}, {"x": _ones(), "y": _ones()}), label="f.pt")
    assert only_b.summary == "different architectures: only in RUN_B: f.pt: y" and only_b.status == DIFFERENT


def test_summary_names_the_first_dtype_difference() -> None:
    a = {"d": torch.zeros(2), "e": torch.zeros(2, dtype=torch.int64)}
    b = {"d": torch.zeros(2, dtype=torch.int32), "e": torch.zeros(2)}
    sec = compare_weights(*_pair(a, b))
    assert sec.summary == "dtypes differ: d float32 vs int32 and more"
    assert [(m.name, m.a, m.b) for m in sec.dtype_mismatches] == [
        ("d", "float32", "int32"),
        ("e", "int64", "float32"),
    ]
    one = compare_weights(*_pair({"d": torch.zeros(2)}, {"d": torch.zeros(2, dtype=torch.int32)}))
    assert one.summary == "dtypes differ: d float32 vs int32" and one.status == DIFFERENT


def test_summary_counts_the_differing_tensors_and_shows_the_first() -> None:
    a = {"w": torch.zeros(4), "v": torch.zeros(2, dtype=torch.int32), "u": torch.zeros(3)}
    b = {"w": torch.tensor([0.0, 0.0, 0.5, 0.0]), "v": torch.ones(2, dtype=torch.int32), "u": torch.zeros(3)}
    sec = compare_weights(*_pair(a, b), rtol=0.1)
    assert sec.summary == (
        "2 of 3 tensors differ: first w (1 of 4 elements, max |a-b| 0.5, max 1056964608 ULP); "
        "not within atol=0 rtol=0.1"
    )
    assert (sec.compared, sec.bytes_compared, [d.name for d in sec.differing]) == (3, 36, ["w", "v"])
    one = compare_weights(*_pair({"v": a["v"]}, {"v": b["v"]}), label="x.pt")
    assert one.summary == "1 of 1 tensors differ: x.pt: v (2 of 2 elements, max |a-b| 1)"


def test_summary_of_identical_weights_gives_count_and_size() -> None:
    def summary(nbytes: int, **kwargs: float) -> str:
        t = torch.zeros(nbytes, dtype=torch.uint8)
        return compare_weights(*_pair({"t": t, "u": t[:1]}, {"t": t.clone(), "u": t[:1]}), **kwargs).summary

    assert summary(1022) == "2 tensors, 1023 B, bitwise identical"
    assert summary(1023) == "2 tensors, 1.0 KiB, bitwise identical"
    assert summary(1535, atol=0.5) == "2 tensors, 1.5 KiB, bitwise identical; all within atol=0.5 rtol=0"
    assert summary((1 << 20) - 1) == "2 tensors, 1.0 MiB, bitwise identical"
    assert weights_compare._size(1 << 30) == "1.0 GiB" and weights_compare._size(3 << 29) == "1.5 GiB"
    assert weights_compare._size(1 << 40) == "1024.0 GiB"  # no larger unit


def _ulp_key(value: float, dtype: torch.dtype) -> int:
    """Reference totalOrder key: the bit pattern for a positive float, -magnitude - 1 for a negative one."""
    bits = torch.tensor([value], dtype=torch.float64).to(dtype)
    width = bits.element_size() * 8
    raw = int(bits.view({8: torch.uint8, 16: torch.int16, 32: torch.int32, 64: torch.int64}[width])[0])
    raw %= 1 << width  # unsigned
    sign = 1 << (width - 1)
    return raw if raw < sign else -(raw - sign) - 1


@pytest.mark.parametrize(
    "dtype",
    [torch.float8_e4m3fn, torch.float8_e5m2, torch.float16, torch.bfloat16, torch.float32, torch.float64],
    ids=str,
)
def test_first_values_and_distances_for_every_float_width(dtype: torch.dtype) -> None:
    a = torch.arange(8.0).to(dtype)
    b = a.clone()
    b[3] = -2.0
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b})).differing
    assert (diff.first_index, diff.first_a, diff.first_b, diff.max_abs_diff) == (3, 3.0, -2.0, 5.0)
    assert type(diff.first_a) is float
    assert diff.max_ulp == _ulp_key(3.0, dtype) - _ulp_key(-2.0, dtype)
    assert diff.max_ulp > 5  # not a value difference: many representable values lie between


@pytest.mark.parametrize("far_first", [True, False], ids=["far-first", "far-last"])
def test_statistics_accumulate_over_chunks_and_sub_chunks(
    monkeypatch: pytest.MonkeyPatch, far_first: bool
) -> None:
    monkeypatch.setattr(weights_compare, "CHUNK_BYTES", 64)  # 16 floats a chunk
    monkeypatch.setattr(weights_compare, "STATS_ELEMENTS", 8)  # 2 statistics passes a chunk
    a = torch.arange(64.0)
    b = a.clone()
    near, far = (5, 44) if not far_first else (44, 5)
    b[near] += 0.5  # within atol=1
    b[far] += 8.0  # far outside it
    b[50] += 0.25  # another chunk, within
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b}), atol=1.0).differing
    first = min(near, far)
    assert (diff.differing, diff.first_index, diff.first_a, diff.first_b) == (
        3,
        first,
        float(a[first]),
        float(b[first]),
    )
    assert diff.max_abs_diff == 8.0 and diff.close is False
    assert diff.max_ulp == _ulp_key(float(b[far]), torch.float32) - _ulp_key(float(a[far]), torch.float32)
    b[far] = a[far]  # control: the rest is within tolerance, in whatever chunk
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b}), atol=1.0).differing
    assert (diff.differing, diff.max_abs_diff, diff.close) == (2, 0.5, True)


def test_bool_tensors_differ_by_one_and_are_never_close() -> None:
    a, b = torch.tensor([True, False, True]), torch.tensor([True, True, False])
    sec = compare_weights(*_pair({"m": a}, {"m": b}), atol=1.0)
    (diff,) = sec.differing
    assert (diff.differing, diff.first_index, diff.first_a, diff.first_b) == (2, 1, False, True)
    assert (diff.max_abs_diff, diff.max_ulp, diff.close, sec.close) == (1.0, None, False, False)
    assert sec.summary == "1 of 1 tensors differ: m (2 of 3 elements); not within atol=1.0 rtol=0"
    assert compare_weights(*_pair({"m": a}, {"m": b})).differing[0].close is None  # no tolerance asked


@pytest.mark.parametrize("chunk", [8 << 20, 8], ids=["one-chunk", "8-byte-chunks"])
def test_complex_tensors_are_compared_byte_by_byte(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(weights_compare, "CHUNK_BYTES", chunk)
    a = torch.zeros(4, dtype=torch.complex64)
    b = a.clone()
    b[2] = 1j  # imaginary part of element 2: bytes 20..23 of the tensor, 0x3f800000 little-endian
    sec = compare_weights(*_pair({"c": a}, {"c": b}), atol=10.0)
    (diff,) = sec.differing
    assert (diff.unit, diff.differing, diff.first_index, diff.first_a, diff.first_b) == (
        "bytes",
        2,
        22,
        0,
        128,
    )
    assert (diff.max_abs_diff, diff.max_ulp, diff.close, sec.close) == (None, None, False, False)
    assert sec.summary == "1 of 1 tensors differ: c (2 differing bytes); not within atol=10.0 rtol=0"


def test_integer_first_values_are_exact_python_ints() -> None:
    big = 2**62 + 1  # not a float64
    a = torch.tensor([0, big], dtype=torch.int64)
    (diff,) = compare_weights(*_pair({"i": a}, {"i": a - 2})).differing
    assert (diff.first_a, diff.first_b, type(diff.first_a)) == (0, -2, int)
    assert (diff.differing, diff.max_abs_diff, diff.max_ulp) == (2, 2.0, None)
    u = torch.tensor([200, 7, 9], dtype=torch.uint8)  # 3 bytes: not a whole 8-byte word
    (diff,) = compare_weights(*_pair({"u": u}, {"u": u.flip(0)})).differing
    assert (diff.first_index, diff.first_a, diff.first_b, diff.max_abs_diff) == (0, 200, 9, 191.0)
    assert compare_weights(*_pair({"u": u}, {"u": u.clone()})).status == IDENTICAL
    for n in (9, 16):  # byte counts that are not / are whole 8-byte words
        v = torch.arange(n, dtype=torch.uint8)
        assert compare_weights(*_pair({"v": v}, {"v": v.clone()})).status == IDENTICAL
        (diff,) = compare_weights(*_pair({"v": v}, {"v": v.roll(1)})).differing
        assert (diff.differing, diff.first_index, diff.first_a, diff.first_b) == (n, 0, 0, n - 1)


@pytest.mark.parametrize(
    "change",
    ["architecture", "dtype", "leaf", "leaf-only"],
)
def test_tolerance_does_not_excuse_other_differences(change: str) -> None:
    a, b = _pair(
        {"w": torch.zeros(2), "x": torch.zeros(2)}, {"w": torch.full((2,), 1e-9), "x": torch.zeros(2)}
    )
    a.leaves, b.leaves = {"lr": 0.1}, {"lr": 0.1}
    assert compare_weights(a, b, atol=1e-6).close is True  # control: only a difference within atol
    if change == "architecture":
        b.metas["y"] = b.metas["x"]
    elif change == "dtype":
        b.metas["x"] = dataclasses.replace(b.metas["x"], dtype="int32")
    elif change == "leaf":
        b.leaves["lr"] = 0.2
    else:
        b.leaves["epoch"] = 1
    sec = compare_weights(a, b, atol=1e-6)
    assert (sec.status, sec.close) == (DIFFERENT, False) and sec.summary.endswith(
        "not within atol=1e-06 rtol=0"
    )


def test_the_whole_object_as_one_value_is_named_by_the_label() -> None:
    a, b = _pair({}, {})
    a.leaves, b.leaves = {"": 1}, {"": 2}
    sec = compare_weights(a, b, label="n.pt")
    assert [(m.name, m.a, m.b) for m in sec.leaf_mismatches] == [("n.pt", 1, 2)]
    assert sec.summary == "1 of 1 other values differ: n.pt 1 vs 2"
    assert (sec.source_a, sec.source_b, sec.atol, sec.rtol, sec.close) == ("a", "b", None, None, None)


def test_compare_tensor_describes_one_tensor_or_returns_none() -> None:
    a, b = _pair({"w": torch.zeros(2, 3)}, {"w": torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])})
    buffers = (np.empty(64, np.uint8), np.empty(64, np.uint8))
    diff = weights_compare.compare_tensor(a, b, "w", buffers, tol=(1.0, 0.0))
    assert diff is not None
    assert (diff.name, diff.dtype, diff.shape, diff.numel, diff.unit) == (
        "w",
        "float32",
        [2, 3],
        6,
        "elements",
    )
    assert (diff.differing, diff.first_index, diff.max_abs_diff, diff.close) == (1, 4, 2.0, False)
    assert weights_compare.compare_tensor(a, a, "w", buffers) is None


def _floats(bits: list[int]) -> torch.Tensor:
    """float64s from raw (unsigned) bit patterns: NaN payloads survive."""
    return torch.from_numpy(np.array(bits, dtype=np.uint64).view(np.float64))


NAN64, NAN64_PAYLOAD = 0x7FF8000000000000, 0x7FF8000000000001
ONE64, INF64, BIG64 = 0x3FF0000000000000, 0x7FF0000000000000, 0x7FEFFFFFFFFFFFFF  # 1.0, inf, max float64


def test_nans_infinities_and_overflow_are_counted_without_numpy_warnings() -> None:
    a = _floats([NAN64, ONE64, INF64, BIG64, ONE64])
    b = _floats([NAN64_PAYLOAD, NAN64, INF64, BIG64 | 1 << 63, ONE64])  # payload, NaN vs 1, same inf, -max
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf and max - (-max) stay silent
        (diff,) = compare_weights(*_pair({"w": a}, {"w": b}), atol=1e-3).differing
    assert (diff.differing, diff.first_index, diff.nan_mismatches) == (3, 0, 1)
    assert diff.max_abs_diff == math.inf and diff.close is False


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16], ids=str)
def test_signed_zero_and_nan_payload_are_different_bits(dtype: torch.dtype) -> None:
    a = torch.zeros(4, dtype=dtype)  # 8 bytes or more: compared as words, the fast path
    b = a.clone()
    b[1] = -0.0  # == 0.0 as a number, other bits
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b})).differing
    assert (diff.differing, diff.first_index) == (1, 1)
    nan = _floats([NAN64]).to(torch.float64)
    c, d = torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    c[0], d[0] = nan[0], nan[0]
    d.view(torch.int64)[0] = NAN64_PAYLOAD
    assert compare_weights(*_pair({"w": c}, {"w": d})).status == DIFFERENT
    assert compare_weights(*_pair({"w": c}, {"w": c.clone()})).status == IDENTICAL  # control: same NaN
    assert compare_weights(*_pair({"w": a}, {"w": a.clone()})).status == IDENTICAL  # control


@pytest.mark.parametrize("size", [2, 16], ids=["dense", "sparse"])
def test_nan_payloads_are_close_and_a_one_sided_nan_is_not(size: int) -> None:
    a = torch.ones(size, dtype=torch.float64)
    a[1] = _floats([NAN64])[0]
    b = a.clone()
    b.view(torch.int64)[1] = NAN64_PAYLOAD  # another NaN: bits differ, values do not
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b}), atol=1e-3).differing
    assert (diff.differing, diff.nan_mismatches, diff.max_abs_diff, diff.close) == (1, 0, 0.0, True)
    b[1] = 1.0  # a number against the NaN: no |a-b| to measure, never close
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b}), atol=1e-3).differing
    assert (diff.differing, diff.nan_mismatches, diff.max_abs_diff, diff.close) == (1, 1, 0.0, False)


def test_one_sided_nans_add_up_over_chunks_and_sub_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_compare, "CHUNK_BYTES", 64)  # 16 floats a chunk
    monkeypatch.setattr(weights_compare, "STATS_ELEMENTS", 8)
    a = torch.zeros(48)
    b = a.clone()
    b[[2, 33, 45]] = math.nan  # chunk 0; chunk 2, both of its statistics passes
    (diff,) = compare_weights(*_pair({"w": a}, {"w": b})).differing
    assert (diff.differing, diff.nan_mismatches, diff.first_index) == (3, 3, 2)
    assert "3 NaN on one side only" in describe_tensor_diff(diff)


def test_summary_of_other_values() -> None:
    a, b = _pair({"w": torch.ones(1)}, {"w": torch.ones(1)})
    a.leaves = {"x": 1, "y": 2, "k": 0, "oa1": 1, "oa2": 1, "oa3": 1}
    b.leaves = {"x": 9, "y": 8, "k": 0, "ob": 1}
    assert compare_weights(a, b).summary == (
        "values in one run only: oa1, oa2, oa3 (+1 more); 2 of 3 other values differ: first x 1 vs 9"
    )
    b.leaves = {"x": 1, "y": 2, "k": 0, "oa1": 1, "oa2": 1, "oa3": 7}
    assert compare_weights(a, b).summary == "1 of 6 other values differ: oa3 1 vs 7"
    b.leaves = dict(a.leaves)
    assert compare_weights(a, b).summary == "1 tensors, 4 B, bitwise identical; 6 other values identical"
