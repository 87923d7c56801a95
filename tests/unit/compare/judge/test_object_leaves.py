"""object_leaves: non-tensor values equal only when their types and values are."""

from __future__ import annotations

from twinrun.compare.judge.object_leaves import compare_leaves, leaf_key, shown_leaf
from twinrun.compare.report.model import WeightsSection


def _differs(a: object, b: object) -> bool:
    sec = WeightsSection()
    compare_leaves({"x": a}, {"x": b}, str, sec)
    return bool(sec.leaf_mismatches)


def test_types_are_part_of_the_value() -> None:
    for a, b in [(True, 1), (2.0, 2), (b"ab", bytearray(b"ab")), (0.0, -0.0), ("1", 1), (None, 0)]:
        assert _differs(a, b), (a, b)
    for same in [True, 2.0, b"ab", bytearray(b"ab"), float("nan"), "x" * 10_000]:
        assert not _differs(same, same)  # control


def test_long_values_are_digested_once_per_object(monkeypatch) -> None:
    from twinrun.compare.judge import object_leaves

    calls = []
    real = object_leaves.leaf_key
    monkeypatch.setattr(object_leaves, "leaf_key", lambda v: calls.append(1) or real(v))
    text_a, text_b = "x" * 100_000, "x" * 99_999 + "y"
    sec = WeightsSection()
    compare_leaves({str(i): text_a for i in range(1000)}, {str(i): text_b for i in range(1000)}, str, sec)
    assert len(sec.leaf_mismatches) == 1000 and len(calls) == 2  # one digest per side, not 2000
    assert leaf_key(text_a)[:2] == ("str", 100_000)
    assert shown_leaf(bytearray(b"\x01")) == "bytearray 01"
