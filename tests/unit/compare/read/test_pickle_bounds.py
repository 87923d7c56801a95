"""pickle_bounds: a pickle's nesting is measured from its opcodes before anything is built."""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from tests.helpers import hostile_files as hf
from twinrun.compare.read.pickle_bounds import MAX_DEPTH, TooDeepError, check_depth, may_be_deep


def _nested(depth: int) -> object:
    value: object = ()
    for _ in range(depth):
        value = (value,)
    return value


def _check(data: bytes, limit: int = MAX_DEPTH) -> None:
    check_depth(io.BytesIO(data), limit)


@pytest.mark.parametrize(
    "build",
    [hf.deep_tuple_key, hf.deep_frozenset_key, hf.deep_tuple, hf.deep_list],
    ids=["tuple-key", "frozenset-key", "tuple", "lists-filled-late"],
)
def test_nesting_past_the_limit_is_refused_and_within_it_passes(build) -> None:
    _check(build(49), limit=50)  # control: within the limit
    with pytest.raises(TooDeepError, match="nested more than 50 deep"):
        _check(build(52), limit=50)


def test_a_list_filled_after_it_was_captured_cannot_hide_its_depth() -> None:
    """``tuple(lst)`` where ``lst`` was put in the call's arguments while empty, then filled through the
    memo with a deep tuple: the call's result is as deep as the list's items at the call."""
    deep = b")" + b"\x85" * 40  # a tuple 40 deep
    data = (
        b"\x80\x02c__builtin__\ntuple\n"  # the callable
        + b"]q\x00"  # an empty list, memo 0
        + b"\x85"  # args = (lst,): captured while empty
        + b"h\x00"
        + deep
        + b"a0"  # GET lst, append the deep tuple, pop lst
        + b"R"  # tuple(lst): now 41 deep
        + b"\x85" * 20  # and 20 more levels
        + b"."
    )
    assert pickle.loads(data)  # a valid pickle
    _check(data, limit=70)  # control
    with pytest.raises(TooDeepError):
        _check(data, limit=55)


def test_real_checkpoints_pass_and_the_position_is_after_the_pickle() -> None:
    inner = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 1))
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), inner)
    opt = {"state": {0: {"step": torch.tensor(1.0)}}, "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999)}]}
    buf = io.BytesIO()
    pickle.dump({"model": net.state_dict(), "opt": opt, "n": _nested(30)}, buf, protocol=2)
    buf.write(b"trailing bytes")
    buf.seek(0)
    check_depth(buf)
    assert buf.read() == b"trailing bytes"


def test_a_malformed_stream_is_an_unpickling_error() -> None:
    with pytest.raises(pickle.UnpicklingError):
        _check(b"\x80\x02h\x07.")  # GET of a memo entry never PUT
    with pytest.raises(pickle.UnpicklingError):
        _check(b"\x80\x02\xff.")  # no such opcode
    with pytest.raises(pickle.UnpicklingError):
        _check(b"\x80\x02t.")  # TUPLE without MARK


def test_may_be_deep_is_a_cheap_upper_bound() -> None:
    assert not may_be_deep(hf.memo_repeat(1 << 16, 100))  # few deepening opcodes: no walk needed
    assert may_be_deep(hf.deep_tuple(MAX_DEPTH + 1))  # never False for a pickle that is deep
    assert may_be_deep(hf.deep_list(MAX_DEPTH + 2))
