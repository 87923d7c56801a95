"""The inert unpickler: torch files rebuilt without importing or calling anything they name."""

from __future__ import annotations

import collections
import functools
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from twinrun.compare.read.object_tree import Global, flatten
from twinrun.compare.read.torch_file import open_torch_file
from twinrun.compare.read.torch_pickle import (
    Placeholder,
    RefusedPickleError,
    TensorRef,
    resolve_global,
    unpickle,
)


def _read(path: Path):
    tf = open_torch_file(path, path.name)
    try:
        return tf.obj
    finally:
        tf.close()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_tensors_become_references_to_their_storage(tmp_path: Path, legacy: bool) -> None:
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({"w": t, "v": t[1:].t(), "n": 3}, tmp_path / "f.pt", _use_new_zipfile_serialization=not legacy)
    obj = _read(tmp_path / "f.pt")
    w, v = obj["w"], obj["v"]
    assert isinstance(w, TensorRef) and (w.dtype, w.shape, w.contiguous) == ("float32", (3, 4), True)
    assert (v.shape, v.stride, v.offset, v.contiguous) == ((4, 2), (1, 4), 4, False)
    assert v.storage.key == w.storage.key and obj["n"] == 3


class _Gadget:
    def __init__(self, call, arg) -> None:
        self.call, self.arg = call, arg

    def __reduce__(self):
        return (self.call, (self.arg,))


@pytest.mark.parametrize(
    ("call", "named"),
    [(os.system, "os.system"), (subprocess.check_call, "subprocess.check_call"), (eval, "builtins.eval")],
    ids=["os.system", "subprocess", "eval"],
)
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_code_in_the_pickle_is_refused_and_never_run(tmp_path: Path, call, named: str, legacy: bool) -> None:
    marker = tmp_path / "pwned"
    arg = f"open({str(marker)!r}, 'w')" if call is eval else ["touch", str(marker)]
    if call is os.system:
        arg = f"touch {marker}"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2), "x": _Gadget(call, arg)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(RefusedPickleError, match=rf"refused: the file needs pickled code \(GLOBAL {named}\)"):
        _read(path)
    assert not marker.exists()
    # negative control: the same file is harmless without the gadget
    torch.save({"w": torch.ones(2), "x": 1}, path, _use_new_zipfile_serialization=not legacy)
    assert _read(path)["x"] == 1


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("commands", "getoutput"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("__builtin__", "exec"),
        ("importlib", "import_module"),
        ("runpy", "run_path"),
        ("shutil", "rmtree"),
        ("socket", "socket"),
        ("sys", "modules"),
        ("torch", "load"),
        ("numpy.testing._private.utils", "runstring"),
    ],
)
def test_refused_globals(module: str, name: str) -> None:
    shown = {"__builtin__": "builtins", "commands": "subprocess"}.get(
        module, module
    )  # Python 2 spellings are named as in Python 3
    with pytest.raises(RefusedPickleError, match=rf"GLOBAL {shown}\.{name}\)"):
        resolve_global(module, name)


def test_data_globals_are_placeholders_or_plain_types() -> None:
    assert resolve_global("builtins", "set") is set
    assert resolve_global("collections", "OrderedDict") is collections.OrderedDict
    assert issubclass(resolve_global("my_app.models", "Net"), Placeholder)
    assert issubclass(resolve_global("builtins", "ValueError"), Placeholder)  # a class, not code
    assert resolve_global("my_app.models", "Net") is resolve_global("my_app.models", "Net")


def test_a_raw_pickle_with_a_crafted_global_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "crafted.pt"
    path.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with pytest.raises(RefusedPickleError, match=r"GLOBAL os\.system"):
        _read(path)


def test_codecs_encode_only_rebuilds_bytes() -> None:
    data = pickle.dumps({"raw": b"\x00\xffab"}, protocol=2)  # protocol 2 pickles bytes via _codecs.encode
    assert b"_codecs" in data and unpickle(data, {}) == {"raw": b"\x00\xffab"}
    crafted = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(RefusedPickleError, match=r"_codecs\.encode with 'rot13'"):
        unpickle(crafted, {})


def test_placeholders_record_arguments_and_state_without_importing(tmp_path: Path) -> None:
    partial = functools.partial(torch.optim.Adam, lr=1e-3)
    torch.save({"optimizer": partial}, tmp_path / "p.pt")
    before = set(sys.modules)
    obj = _read(tmp_path / "p.pt")
    placeholder = obj["optimizer"]
    assert placeholder.qualname == "functools.partial"
    assert set(sys.modules) - before == set()  # nothing imported while reading
    leaves = flatten(obj).leaves
    assert leaves["optimizer/__class__"] == Global("functools.partial")
    assert leaves["optimizer/__args__/0"] == Global("torch.optim.adam.Adam")
    assert 1e-3 in leaves.values()


def test_nested_numpy_array_is_compared_by_its_bytes(tmp_path: Path) -> None:
    import numpy as np

    buf = io.BytesIO()
    torch.save({"a": np.arange(4, dtype=np.float32)}, buf)
    (tmp_path / "n.pt").write_bytes(buf.getvalue())
    leaves = flatten(_read(tmp_path / "n.pt")).leaves
    assert np.arange(4, dtype=np.float32).tobytes() in leaves.values()


def test_damaged_pickles_are_not_refusals(tmp_path: Path) -> None:
    from twinrun.compare.read.run_reader import UnusableRunError

    torch.save({"w": torch.ones(3)}, tmp_path / "f.pt", _use_new_zipfile_serialization=False)
    data = (tmp_path / "f.pt").read_bytes()
    (tmp_path / "f.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnusableRunError, match="truncated or corrupt") as info:
        _read(tmp_path / "f.pt")
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)


def test_memory_bombs_are_refused_cheaply() -> None:
    big_bytearray = b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x40\x85R."  # bytearray(2**30)
    with pytest.raises(pickle.UnpicklingError, match="bytearray of a int"):
        unpickle(big_bytearray, {})
    assert unpickle(pickle.dumps(bytearray(b"ab"), protocol=2), {}) == bytearray(b"ab")  # control
    big_range = b"\x80\x02c__builtin__\nlist\nc__builtin__\nrange\nJ\x00\x00\x00\x40\x85R\x85R."
    with pytest.raises(TypeError):  # range is a placeholder: list() of it builds nothing
        unpickle(big_range, {})


def test_shared_tuples_nested_deep_are_walked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from twinrun.compare.read import object_tree

    bomb: tuple = (1.5,)
    for _ in range(40):
        bomb = (bomb,) * 10  # 10 ** 40 paths, a few hundred bytes pickled
    torch.save({"w": torch.ones(1), "bomb": bomb}, tmp_path / "b.pt")
    tree = flatten(_read(tmp_path / "b.pt"))
    assert len(tree.leaves) < 500 and tree.leaves["bomb/0/1"].path == "bomb/0/0"
    monkeypatch.setattr(object_tree, "MAX_PARTS", 50)  # and a bound on what one file may hold
    with pytest.raises(object_tree.TooManyPartsError):
        flatten(_read(tmp_path / "b.pt"))
