"""compare_weights: dtypes, chunked statistics, tolerance and non-tensor values (each check with a
negative control; the three tests marked 'mutant' each fail on a known wrong variant of weights.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from twinrun.compare import weights as weights_compare
from twinrun.compare.object_tree import shown_leaf
from twinrun.compare.report_model import DIFFERENT, IDENTICAL
from twinrun.compare.weights import compare_weights
from twinrun.compare.weights_reader import TensorDictWeights


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
