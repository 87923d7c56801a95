"""object_tree.flatten: a saved object as parts whose names and values keep every type the file holds."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest
import torch

from twinrun.compare.judge.tensor_files import compare_tensor_files
from twinrun.compare.report.model import DIFFERENT, IDENTICAL

T = torch.arange(4.0)


def _save(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _cmp(tmp_path: Path, a: Any, b: Any):
    pa, pb = _save(a, tmp_path / "a.pt"), _save(b, tmp_path / "b.pt")
    return compare_tensor_files(pa, pb, label="f.pt")


def _frozen_linear(frozen: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    layer = torch.nn.Linear(2, 2)
    layer.weight.requires_grad_(not frozen)
    return layer


def _tagged(tag: str) -> dict[str, Any]:
    param = torch.nn.Parameter(T.clone())
    param.tag = tag  # an attribute of the parameter: torch pickles it as the parameter's state
    return {"p": param}


# Pairs that differ in a type, a key's type, a container or a flag only: each was "identical".
PAIRS = {
    "optimizer state keyed '0' vs 0": ({"state": {0: {"step": T}}}, {"state": {"0": {"step": T}}}),
    "tuple vs list": ({"x": (1, 2)}, {"x": [1, 2]}),
    "list vs dict": ({"x": [T]}, {"x": {0: T}}),
    "OrderedDict vs dict": (collections.OrderedDict(w=T), {"w": T}),
    "set of ints vs set of strings": ({"x": {1, 2}}, {"x": {"1", "2"}}),
    "True vs 'True'": ({"x": True}, {"x": "True"}),
    "key True vs key 'True'": ({True: T}, {"True": T}),
    "tuple key (True,) vs ('True',)": ({(True,): 1}, {("True",): 1}),
    "key 1 vs key True": ({"d": {1: 1}}, {"d": {True: 1}}),
    "key 'a/b' vs nested a, b": ({"a/b": T}, {"a": {"b": T}}),
    "bytes vs bytearray": ({"x": b"ab"}, {"x": bytearray(b"ab")}),
    "Parameter vs tensor": ({"w": torch.nn.Parameter(T.clone())}, {"w": T.clone()}),
    "plain tensor requires_grad vs not": ({"w": T.clone().requires_grad_()}, {"w": T.clone()}),
    "frozen layer": (_frozen_linear(True), _frozen_linear(False)),
    "tensor as dict key": ({"k": {T.clone(): 1}}, {"k": {T.clone() + 1: 1}}),
    "tensor in a set": ({"s": {T.clone()}}, {"s": {T.clone() + 1}}),
    "set member 1 vs '1'": ({"s": frozenset({1})}, {"s": frozenset({"1"})}),
    "a parameter's own attribute": (_tagged("x"), _tagged("y")),
}


@pytest.mark.parametrize(("a", "b"), list(PAIRS.values()), ids=list(PAIRS))
def test_a_changed_type_key_or_flag_is_different(tmp_path: Path, a: Any, b: Any) -> None:
    assert _cmp(tmp_path, a, a).status == IDENTICAL  # control: the same object
    sec = _cmp(tmp_path, a, b)
    assert sec.status == DIFFERENT, sec.summary


def test_a_value_type_is_kept(tmp_path: Path) -> None:
    assert _cmp(tmp_path, {"x": True}, {"x": 1}).status == DIFFERENT
    assert _cmp(tmp_path, {"x": 2.0}, {"x": 2}).status == DIFFERENT
    assert _cmp(tmp_path, {"x": 1}, {"x": 1}).status == IDENTICAL


def test_names_stay_readable(tmp_path: Path) -> None:
    a = {"state_dict": {"net.0.weight": T}, "opt": [{"state": {3: {"exp_avg": T}}}], "a/b": T, "0": T}
    b = {"state_dict": {"net.0.weight": T + 1}, "opt": [{"state": {3: {"exp_avg": T + 1}}}], "a/b": T + 1}
    b["0"] = T + 1
    sec = _cmp(tmp_path, a, b)
    assert {d.name for d in sec.differing} == {
        "f.pt: state_dict/net.0.weight",
        "f.pt: opt/0/state/3/exp_avg",
        "f.pt: 'a/b'",
        "f.pt: '0'",
    }


def test_the_resolver_cache_of_a_config_is_a_named_volatile_field(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    counter = iter(range(10**6))
    OmegaConf.register_new_resolver("twinrun_test_now", lambda: next(counter), use_cache=True, replace=True)

    def saved(x: int) -> dict[str, Any]:
        cfg = OmegaConf.create({"time": "${twinrun_test_now:}", "x": x})
        _ = cfg.time  # resolved once: the cache now holds this run's value
        return {"cfg": cfg, "model": {"w": T}}

    first, second = saved(1), saved(1)
    assert first["cfg"]._metadata.resolver_cache != second["cfg"]._metadata.resolver_cache
    sec = _cmp(tmp_path, first, second)
    assert sec.status == IDENTICAL, sec.summary
    assert any("masked" in n and "resolver cache" in n for n in sec.notes), sec.notes
    assert _cmp(tmp_path, first, saved(2)).status == DIFFERENT  # control: the config itself changed
