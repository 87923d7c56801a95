"""The tensors section: one tensor file pair compared under the run context, then every pair merged into
one section whose summary names the first difference."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import pytest
import torch

from twinrun.compare.judge.kinds import Context
from twinrun.compare.judge.tensors import compare_tensor_pair, merge, tensors_summary
from twinrun.compare.read.run_reader import PathMask, RunDir, UnusableRunError
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    NOT_COMPARED,
    Mismatch,
    TensorDiff,
    TensorsSection,
    WeightsSection,
)


def _context(tmp_path: Path, **kwargs: Any) -> Context:
    a, b = tmp_path / "a", tmp_path / "b"
    return Context(RunDir(a, "a"), RunDir(b, "b"), PathMask([str(a), str(b)]), **kwargs)


def _save_pair(tmp_path: Path, obj_a: dict[str, Any], obj_b: dict[str, Any]) -> tuple[Path, Path]:
    paths = []
    for side, obj in (("a", obj_a), ("b", obj_b)):
        (tmp_path / side).mkdir(exist_ok=True)
        torch.save(obj, tmp_path / side / "ckpt.pt")
        paths.append(tmp_path / side / "ckpt.pt")
    return paths[0], paths[1]


def test_pair_masks_the_run_directories_in_values_and_labels_names(tmp_path: Path) -> None:
    w = torch.arange(4.0)
    pa, pb = _save_pair(
        tmp_path,
        {"w": w, "out": str(tmp_path / "a" / "x.bin")},
        {"w": w + torch.tensor([0.0, 0.0, 0.5, 0.0]), "out": str(tmp_path / "b" / "x.bin")},
    )
    sec = compare_tensor_pair(pa, pb, "sub/ckpt.pt", _context(tmp_path))
    # two values: "out" and the root dict's type
    assert sec.status == DIFFERENT and sec.leaves_compared == 2 and sec.leaf_mismatches == []
    assert [(d.name, d.first_index, d.close) for d in sec.differing] == [("sub/ckpt.pt: w", 2, None)]
    (tmp_path / "b" / "ckpt.pt").unlink()
    pa, pb = _save_pair(tmp_path, {"w": w, "out": "/elsewhere/x.bin"}, {"w": w, "out": "/other/x.bin"})
    other = compare_tensor_pair(pa, pb, "ckpt.pt", _context(tmp_path))  # control: paths outside the runs
    assert [m.name for m in other.leaf_mismatches] == ["ckpt.pt: out"]


@pytest.mark.parametrize(
    ("atol", "rtol", "close"),
    [(0.6, None, True), (0.4, None, False), (None, 0.3, True), (None, 0.19, False)],
)
def test_pair_applies_the_context_tolerances(
    tmp_path: Path, atol: float | None, rtol: float | None, close: bool
) -> None:
    pa, pb = _save_pair(tmp_path, {"w": torch.tensor([2.0])}, {"w": torch.tensor([2.5])})
    sec = compare_tensor_pair(pa, pb, "ckpt.pt", _context(tmp_path, atol=atol, rtol=rtol))
    assert (sec.atol, sec.rtol, sec.close, sec.differing[0].close) == (atol, rtol, close, close)


def test_pair_loads_pickled_code_only_when_the_context_trusts_it(tmp_path: Path) -> None:
    obj = {"get": operator.attrgetter("real"), "w": torch.ones(2)}
    pa, pb = _save_pair(tmp_path, obj, obj)
    assert compare_tensor_pair(pa, pb, "ckpt.pt", _context(tmp_path, trust_pickle=True)).status == IDENTICAL
    with pytest.raises(UnusableRunError, match=r"GLOBAL operator\.attrgetter"):
        compare_tensor_pair(pa, pb, "ckpt.pt", _context(tmp_path))


def _section(tag: str, **kwargs: Any) -> WeightsSection:
    """A section of file ``tag`` with one entry in every list and ``tag``-dependent counts."""
    n = len(tag)
    return WeightsSection(
        tensors_a=n,
        tensors_b=2 * n,
        compared=3 * n,
        bytes_compared=4 * n,
        only_in_a=[f"{tag}: oa"],
        only_in_b=[f"{tag}: ob"],
        dtype_mismatches=[Mismatch(f"{tag}: d", "float32", "int32")],
        shape_mismatches=[Mismatch(f"{tag}: s", [1], [2])],
        differing=[TensorDiff(f"{tag}: w", "float32", [2], 2, 1)],
        notes=[f"{tag} note"],
        leaves_compared=5 * n,
        leaf_mismatches=[Mismatch(f"{tag}: epoch", 0, 1)],
        leaves_only_in_a=[f"{tag}: la"],
        leaves_only_in_b=[f"{tag}: lb"],
        **kwargs,
    )


def test_merge_adds_counts_and_concatenates_lists_in_file_order() -> None:
    files = ["x.pt", "yy.pt"]
    out = merge(files, [_section("x", atol=0.1, rtol=0.2), _section("yy", atol=0.1, rtol=0.2)])
    assert isinstance(out, TensorsSection) and out.files == files and out.files is not files
    counts = (out.tensors_a, out.tensors_b, out.compared, out.bytes_compared, out.leaves_compared)
    assert counts == (3, 6, 9, 12, 15)
    assert (out.only_in_a, out.only_in_b) == (["x: oa", "yy: oa"], ["x: ob", "yy: ob"])
    assert [m.name for m in out.dtype_mismatches] == ["x: d", "yy: d"]
    assert [m.name for m in out.shape_mismatches] == ["x: s", "yy: s"]
    assert [d.name for d in out.differing] == ["x: w", "yy: w"]
    assert out.notes == ["x note", "yy note"]
    assert [m.name for m in out.leaf_mismatches] == ["x: epoch", "yy: epoch"]
    assert (out.leaves_only_in_a, out.leaves_only_in_b) == (["x: la", "yy: la"], ["x: lb", "yy: lb"])
    assert (out.atol, out.rtol) == (0.1, 0.2)


@pytest.mark.parametrize(
    ("closes", "close"),
    [
        ([None, None], None),
        ([True, True], True),
        ([True, False], False),
        ([False, True], False),
        ([True], True),
        ([False], False),
    ],
)
def test_merge_is_close_only_when_every_file_is(closes: list[bool | None], close: bool | None) -> None:
    assert merge([], [WeightsSection(close=c) for c in closes]).close is close


@pytest.mark.parametrize(
    ("statuses", "status"),
    [
        ([], NOT_COMPARED),
        ([NOT_COMPARED], NOT_COMPARED),
        ([NOT_COMPARED, IDENTICAL], IDENTICAL),
        ([IDENTICAL, IDENTICAL], IDENTICAL),
        ([IDENTICAL, DIFFERENT], DIFFERENT),
        ([DIFFERENT, IDENTICAL], DIFFERENT),
        ([DIFFERENT, NOT_COMPARED], DIFFERENT),
    ],
)
def test_merge_differs_when_any_file_differs(statuses: list[str], status: str) -> None:
    assert merge([], [WeightsSection(status=s) for s in statuses]).status == status


def _merged(status: str = DIFFERENT, files: int = 2, **kwargs: Any) -> TensorsSection:
    return TensorsSection(files=[f"f{i}.pt" for i in range(files)], status=status, **kwargs)


@pytest.mark.parametrize(
    ("files", "shown"),
    [(1, "1 file (f0.pt)"), (3, "3 files (f0.pt, f1.pt, f2.pt)"), (4, "4 files (f0.pt, f1.pt, f2.pt ...)")],
)
def test_summary_of_identical_files_lists_at_most_three(files: int, shown: str) -> None:
    sec = _merged(IDENTICAL, files, tensors_a=1, tensors_b=1)
    assert tensors_summary(sec, []) == f"{shown}, 1 tensor"
    assert (
        tensors_summary(_merged(NOT_COMPARED, files, tensors_a=2, tensors_b=5), []) == f"{shown}, 5 tensors"
    )
    assert (
        tensors_summary(_merged(NOT_COMPARED, files, tensors_a=5, tensors_b=2), []) == f"{shown}, 5 tensors"
    )


@pytest.mark.parametrize(
    ("fields", "first"),
    [
        (
            {
                "differing": [
                    TensorDiff("f0.pt: w", "int64", [3], 3, 2),
                    TensorDiff("f1.pt: v", "int64", [1], 1, 1),
                ]
            },
            "f0.pt: w (2 of 3 elements)",
        ),
        (
            {"only_in_a": ["f0.pt: a1", "f0.pt: a2"], "only_in_b": ["f0.pt: b1"]},
            "in one run only: f0.pt: a1, f0.pt: a2",
        ),
        ({"only_in_b": ["f0.pt: b1", "f1.pt: b2", "f1.pt: b3"]}, "in one run only: f0.pt: b1, f1.pt: b2"),
        (
            {
                "shape_mismatches": [Mismatch("f0.pt: s", [1], [2]), Mismatch("f1.pt: t", [3], [4])],
                "dtype_mismatches": [Mismatch("f0.pt: d", "float32", "int32")],
            },
            "f0.pt: s: [1] vs [2]",
        ),
        (
            {"dtype_mismatches": [Mismatch("f0.pt: d", "float32", "int32"), Mismatch("f1.pt: e", "a", "b")]},
            "f0.pt: d: float32 vs int32",
        ),
        (
            {"leaf_mismatches": [Mismatch("f0.pt: lr", 0.1, "x"), Mismatch("f1.pt: epoch", 1, 2)]},
            "f0.pt: lr: 0.1 vs x",
        ),
        ({"leaf_mismatches": [Mismatch("f0.pt: cfg", {"k": [1]}, None)]}, 'f0.pt: cfg: {"k": [1]} vs null'),
        (
            {"leaves_only_in_a": ["f0.pt: e1", "f0.pt: e2"], "leaves_only_in_b": ["f0.pt: e3"]},
            "value in one run only: f0.pt: e1, f0.pt: e2",
        ),
        (
            {"leaves_only_in_b": ["f0.pt: e3", "f1.pt: e4", "f1.pt: e5"]},
            "value in one run only: f0.pt: e3, f1.pt: e4",
        ),
        ({"notes": ["in one run only: f1.pt", "second note"]}, "in one run only: f1.pt"),
    ],
)
def test_summary_of_a_difference_leads_with_the_first_one(fields: dict[str, Any], first: str) -> None:
    sec = _merged(tensors_a=7, tensors_b=3, **fields)
    assert tensors_summary(sec, ["f0.pt"]) == f"{first}; 1 of 2 files differs, 7 tensors"
    assert tensors_summary(sec, ["f0.pt", "f1.pt"]) == f"{first}; 2 of 2 files differ, 7 tensors"


def test_summary_of_a_difference_prefers_tensors_to_names_to_values() -> None:
    everything = {
        "differing": [TensorDiff("f0.pt: w", "int64", [1], 1, 1)],
        "only_in_a": ["f0.pt: a"],
        "shape_mismatches": [Mismatch("f0.pt: s", [1], [2])],
        "leaf_mismatches": [Mismatch("f0.pt: lr", 1, 2)],
        "leaves_only_in_a": ["f0.pt: e"],
        "notes": ["a note"],
    }
    order = [
        "f0.pt: w (",
        "in one run only: f0.pt: a;",
        "f0.pt: s:",
        "f0.pt: lr:",
        "value in one run",
        "a note",
    ]
    for key, lead in zip(list(everything), order, strict=True):
        assert tensors_summary(_merged(files=1, tensors_a=1, tensors_b=1, **everything), []).startswith(lead)
        del everything[key]
    assert tensors_summary(_merged(files=1), ["f0.pt"]) == "; 1 of 1 file differs, 0 tensors"
