"""compare_tensor_files: every tensor and value a tensor file holds, read without running pickled code."""

from __future__ import annotations

import functools
import importlib.util
import operator
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from twinrun.compare.judge.tensor_files import (
    TENSOR_SUFFIXES,
    NotATensorFileError,
    compare_tensor_files,
    open_tensor_file,
)
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.report.model import DIFFERENT, IDENTICAL

FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


def _save(obj: Any, path: Path, legacy: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def _cmp(a: Path, b: Path, **kwargs: Any):
    return compare_tensor_files(a, b, label=kwargs.pop("label", "f.pt"), **kwargs)


def test_suffixes() -> None:
    assert set(TENSOR_SUFFIXES) == {".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz"}


@FORMATS
def test_nested_tensors_are_all_compared(tmp_path: Path, legacy: bool) -> None:
    t, t2, t3 = torch.randn(3, 2), torch.randn(2), torch.arange(5.0)
    a = _save({"fc.weight": t, "bn": {"running_mean": t2}, "extra": [t3]}, tmp_path / "a.pt", legacy)
    same = _save(
        {"fc.weight": t, "bn": {"running_mean": t2}, "extra": [t3.clone()]}, tmp_path / "s.pt", legacy
    )
    t3b = t3.clone()
    t3b[4] = 9.0
    b = _save({"fc.weight": t, "bn": {"running_mean": t2}, "extra": [t3b]}, tmp_path / "b.pt", legacy)
    ok = _cmp(a, same)
    assert ok.status == IDENTICAL and ok.compared == 3
    sec = _cmp(a, b, label="ckpt/x.pt")
    assert sec.status == DIFFERENT
    (diff,) = sec.differing
    assert (diff.name, diff.first_index, diff.first_a, diff.first_b) == ("ckpt/x.pt: extra/0", 4, 4.0, 9.0)


@FORMATS
def test_every_tensor_dict_beside_the_state_dict(tmp_path: Path, legacy: bool) -> None:
    sd = {"w": torch.randn(4)}
    a = _save({"state_dict": sd, "ema_state_dict": {"w": torch.zeros(4)}}, tmp_path / "a.pt", legacy)
    same = _save({"state_dict": sd, "ema_state_dict": {"w": torch.zeros(4)}}, tmp_path / "s.pt", legacy)
    b = _save({"state_dict": sd, "ema_state_dict": {"w": torch.ones(4)}}, tmp_path / "b.pt", legacy)
    assert _cmp(a, same).status == IDENTICAL
    sec = _cmp(a, b)
    assert [d.name for d in sec.differing] == ["f.pt: ema_state_dict/w"]


def test_a_plain_state_dict_is_named_by_its_keys(tmp_path: Path) -> None:
    a = _save({"encoder.weight": torch.ones(2)}, tmp_path / "a.pt")
    b = _save({"encoder.weight": torch.ones(2), "decoder.weight": torch.ones(1)}, tmp_path / "b.pt")
    sec = _cmp(a, b, label="model.pt")
    assert sec.only_in_b == ["model.pt: decoder.weight"] and sec.status == DIFFERENT
    assert _cmp(a, a).status == IDENTICAL  # control


@FORMATS
def test_whole_module_of_an_unimportable_app_is_read_without_its_code(tmp_path: Path, legacy: bool) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "tinyapp_models.py").write_text(
        "import torch\n\nclass Net(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(3, 2)\n"
        "        self.register_buffer('steps', torch.zeros((), dtype=torch.long))\n"
    )
    sys.path.insert(0, str(app))
    try:
        import tinyapp_models  # type: ignore[import-not-found]

        torch.manual_seed(0)
        a = _save(tinyapp_models.Net(), tmp_path / "a" / "trained_model.pt", legacy)
        torch.manual_seed(0)
        b = _save(tinyapp_models.Net(), tmp_path / "b" / "trained_model.pt", legacy)
        torch.manual_seed(1)
        c = _save(tinyapp_models.Net(), tmp_path / "c" / "trained_model.pt", legacy)
    finally:
        sys.path.remove(str(app))
        sys.modules.pop("tinyapp_models", None)
    (app / "tinyapp_models.py").unlink()
    assert importlib.util.find_spec("tinyapp_models") is None  # the app's code is gone
    sec = _cmp(a, b, label="trained_model.pt")
    assert sec.status == IDENTICAL, sec.summary
    assert sec.compared == 3 and sec.leaves_compared > 0
    assert "tinyapp_models" not in sys.modules
    diff = _cmp(a, c, label="trained_model.pt")  # negative control: another initialisation
    assert {d.name for d in diff.differing} == {"trained_model.pt: fc.weight", "trained_model.pt: fc.bias"}


def _lightning_ckpt(run: Path, *, step: int = 10, lr: float = 1e-3, exp_avg: float = 0.0) -> dict[str, Any]:
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    net = torch.nn.Linear(2, 2)
    best = f"{run}/checkpoints/epoch_000.ckpt"
    return {
        "epoch": 1,
        "global_step": step,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {f"net.model.0.{k}": v for k, v in net.state_dict().items()},
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 2, "completed": 2}}, "state_dict": {}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/loss', 'mode': 'min'}": {
                "dirpath": f"{run}/checkpoints",
                "best_model_path": best,
                "best_model_score": torch.tensor(0.5),
                "best_k_models": {best: torch.tensor(0.5)},
            }
        },
        "optimizer_states": [
            {
                "state": {
                    0: {"step": torch.tensor(2.0), "exp_avg": torch.full((2, 2), exp_avg)},
                    1: {"step": torch.tensor(2.0), "exp_avg": torch.zeros(2)},
                },
                "param_groups": [{"lr": lr, "betas": (0.9, 0.999), "params": [0, 1]}],
            }
        ],
        "lr_schedulers": [],
        "hyper_parameters": {
            "cfg": OmegaConf.create({"model": {"lr": lr, "out": str(run)}, "tags": ["dev"]}),
            "net": net,
            "optimizer": functools.partial(torch.optim.Adam, lr=lr),
        },
    }


def _write_twins(tmp_path: Path, **b_changes: Any) -> tuple[Path, Path, Callable[[str, str], str]]:
    runs = {"a": tmp_path / "run_a", "b": tmp_path / "run_b"}
    pa = _save(_lightning_ckpt(runs["a"]), runs["a"] / "checkpoints" / "last.ckpt")
    pb = _save(_lightning_ckpt(runs["b"], **b_changes), runs["b"] / "checkpoints" / "last.ckpt")

    def normalize(text: str, side: str) -> str:
        return text.replace(str(runs[side]), "<run>")

    return pa, pb, normalize


def test_lightning_checkpoint_twins_in_two_directories_are_identical(tmp_path: Path) -> None:
    pa, pb, normalize = _write_twins(tmp_path)
    before = set(sys.modules)
    sec = _cmp(pa, pb, label="checkpoints/last.ckpt", normalize=normalize)
    assert sec.status == IDENTICAL, sec.summary
    assert not {m for m in set(sys.modules) - before if m.startswith(("omegaconf", "lightning"))}
    assert sec.compared == 10 and sec.leaves_compared > 20
    with open_tensor_file(pa, "last.ckpt", normalize=lambda text: normalize(text, "a")) as source:
        # keys that hold a slash, quotes or spaces are quoted: no other key can write the same name
        callback = "callbacks/" + repr("ModelCheckpoint{'monitor': 'val/loss', 'mode': 'min'}")
        assert {
            "state_dict/net.model.0.weight",
            "optimizer_states/0/state/0/exp_avg",
            "hyper_parameters/net/weight",  # a whole module in the hyperparameters
            f"{callback}/best_k_models/'<run>/checkpoints/epoch_000.ckpt'",  # a path key, normalized
        } <= set(source.metas)
        assert source.leaves[f"{callback}/dirpath"] == "<run>/checkpoints"
        assert source.leaves["hyper_parameters/optimizer/__class__"].qualname == "functools.partial"
    # negative control: without the paths replaced, the two directories show
    raw = _cmp(pa, pb, label="checkpoints/last.ckpt")
    assert raw.status == DIFFERENT and (raw.leaf_mismatches or raw.leaves_only_in_a)
    assert any("best_k_models" in n for n in raw.only_in_a)  # a path as a dict key


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"step": 11}, "leaf:checkpoints/last.ckpt: global_step"),
        ({"exp_avg": 1e-8}, "tensor:checkpoints/last.ckpt: optimizer_states/0/state/0/exp_avg"),
        ({"lr": 2e-3}, "leaf:checkpoints/last.ckpt: optimizer_states/0/param_groups/0/lr"),
    ],
    ids=["global_step", "exp_avg", "lr-everywhere"],
)
def test_lightning_checkpoint_differences_are_named(tmp_path: Path, change: dict, where: str) -> None:
    pa, pb, normalize = _write_twins(tmp_path, **change)
    sec = _cmp(pa, pb, label="checkpoints/last.ckpt", normalize=normalize)
    assert sec.status == DIFFERENT
    kind, name = where.split(":", 1)
    found = [d.name for d in sec.differing] if kind == "tensor" else [m.name for m in sec.leaf_mismatches]
    assert name in found
    if "lr" in change:  # the placeholder state: DictConfig node and functools.partial kwargs differ too
        assert any("hyper_parameters/cfg" in n for n in found)
        assert any("hyper_parameters/optimizer" in n for n in found)


def test_pickled_code_is_refused_not_called_corrupt(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Gadget:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = _save({"w": torch.ones(1), "x": Gadget()}, tmp_path / "evil.pt")
    good = _save({"w": torch.ones(1), "x": 1}, tmp_path / "good.pt")
    assert _cmp(good, good).status == IDENTICAL  # control
    with pytest.raises(UnusableRunError) as info:
        _cmp(good, evil)
    message = str(info.value)
    assert "refused: the file needs pickled code (GLOBAL os.system)" in message and "evil.pt" in message
    assert "corrupt" not in message and "weights_only" not in message and "\n" not in message
    assert not marker.exists()


def test_trust_pickle_loads_what_the_inert_reader_refuses(tmp_path: Path) -> None:
    a = _save({"get": operator.attrgetter("real"), "w": torch.ones(2)}, tmp_path / "a.pt")
    b = _save({"get": operator.attrgetter("real"), "w": torch.ones(2)}, tmp_path / "b.pt")
    c = _save({"get": operator.attrgetter("imag"), "w": torch.ones(2)}, tmp_path / "c.pt")
    with pytest.raises(UnusableRunError, match=r"GLOBAL operator\.attrgetter"):
        _cmp(a, b)
    assert _cmp(a, b, trust_pickle=True).status == IDENTICAL
    assert _cmp(a, c, trust_pickle=True).status == DIFFERENT  # negative control


def test_trust_pickle_names_a_missing_module(tmp_path: Path) -> None:
    class NeedsModule:
        def __reduce__(self):
            return (importlib.import_module, ("twinrun_no_such_module",))

    path = _save({"x": NeedsModule()}, tmp_path / "m.pt")
    with pytest.raises(UnusableRunError, match="needs the module 'twinrun_no_such_module'") as info:
        _cmp(path, path, trust_pickle=True)
    assert "corrupt" not in str(info.value)


@pytest.mark.parametrize(
    ("da", "db"),
    [(torch.float32, torch.int32), (torch.float16, torch.bfloat16), (torch.int64, torch.float64)],
    ids=["f32-i32", "f16-bf16", "i64-f64"],
)
def test_equal_bytes_under_another_dtype_differ(tmp_path: Path, da: torch.dtype, db: torch.dtype) -> None:
    t = torch.arange(8, dtype=da)
    a = _save({"w": t}, tmp_path / "a.pt")
    b = _save({"w": t.view(db)}, tmp_path / "b.pt")
    assert _cmp(a, _save({"w": t.clone()}, tmp_path / "s.pt")).status == IDENTICAL  # control
    sec = _cmp(a, b)
    assert sec.status == DIFFERENT
    assert [(m.name, m.a, m.b) for m in sec.dtype_mismatches] == [("f.pt: w", str(da)[6:], str(db)[6:])]


def test_strided_views_compare_in_logical_order(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    a = _save({"v": base.t()}, tmp_path / "a.pt")
    changed = base.clone()
    changed[2, 1] = -1.0  # logical index of (1, 2) in the transposed view: 1 * 3 + 2 = 5
    b = _save({"v": changed.t()}, tmp_path / "b.pt")
    assert _cmp(a, _save({"v": base.clone().t()}, tmp_path / "s.pt")).status == IDENTICAL
    (diff,) = _cmp(a, b).differing
    assert (diff.first_index, diff.first_a, diff.first_b) == (5, 9.0, -1.0)


def test_numpy_files(tmp_path: Path) -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "s.npy", x.copy())
    y = x.copy()
    y[1, 2] = 7
    np.save(tmp_path / "b.npy", y)
    assert _cmp(tmp_path / "a.npy", tmp_path / "s.npy", label="x.npy").status == IDENTICAL
    (diff,) = _cmp(tmp_path / "a.npy", tmp_path / "b.npy", label="x.npy").differing
    assert (diff.name, diff.first_index) == ("x.npy", 5)
    np.save(tmp_path / "i.npy", x.view(np.int32))
    assert _cmp(tmp_path / "a.npy", tmp_path / "i.npy").dtype_mismatches  # same bytes, other dtype
    np.save(tmp_path / "f.npy", np.asfortranarray(y))  # Fortran order: same values, same verdict
    assert _cmp(tmp_path / "b.npy", tmp_path / "f.npy").status == IDENTICAL
    assert _cmp(tmp_path / "a.npy", tmp_path / "f.npy").differing[0].first_index == 5


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "compressed"])
def test_npz_archives(tmp_path: Path, save: Callable[..., None]) -> None:
    w, b = np.linspace(0, 1, 1000), np.arange(3)
    save(tmp_path / "a.npz", w=w, b=b)
    save(tmp_path / "s.npz", w=w.copy(), b=b)
    w2 = w.copy()
    w2[999] += 1e-12
    save(tmp_path / "c.npz", w=w2, b=b)
    assert _cmp(tmp_path / "a.npz", tmp_path / "s.npz", label="arrays.npz").status == IDENTICAL
    (diff,) = _cmp(tmp_path / "a.npz", tmp_path / "c.npz", label="arrays.npz").differing
    assert (diff.name, diff.first_index) == ("arrays.npz: w", 999)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnusableRunError, match="holds Python objects"):
        _cmp(tmp_path / "o.npy", tmp_path / "o.npy")


def test_safetensors_with_metadata(tmp_path: Path) -> None:
    t = {"w": torch.arange(4.0)}
    save_file(t, tmp_path / "a.safetensors", metadata={"format": "pt"})
    save_file(t, tmp_path / "s.safetensors", metadata={"format": "pt"})
    save_file(t, tmp_path / "m.safetensors", metadata={"format": "np"})
    assert _cmp(tmp_path / "a.safetensors", tmp_path / "s.safetensors").status == IDENTICAL
    sec = _cmp(tmp_path / "a.safetensors", tmp_path / "m.safetensors", label="model.safetensors")
    assert [m.name for m in sec.leaf_mismatches] == ["model.safetensors: __metadata__/format"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"", "is empty"),
        (lambda data: data[: len(data) // 2], "truncated or corrupt"),
        (lambda data: data[:-300], "truncated or corrupt"),
    ],
    ids=["empty", "half", "tail"],
)
@FORMATS
def test_damaged_torch_files(tmp_path: Path, damage, message: str, legacy: bool) -> None:
    path = _save({"w": torch.arange(100.0), "n": 1}, tmp_path / "f.pt", legacy)
    path.write_bytes(damage(path.read_bytes()))
    good = _save({"w": torch.arange(100.0), "n": 1}, tmp_path / "g.pt", legacy)
    with pytest.raises(UnusableRunError) as info:
        _cmp(good, path)
    assert "f.pt" in str(info.value) and "\n" not in str(info.value)
    assert message in str(info.value) or "truncated" in str(info.value)


def test_a_bin_of_another_format_says_so(tmp_path: Path) -> None:
    (tmp_path / "vocab.bin").write_bytes(b"\x00\x01 not a torch file at all")
    with pytest.raises(NotATensorFileError, match=r"not a torch\.save file"):
        _cmp(tmp_path / "vocab.bin", tmp_path / "vocab.bin")


def test_a_file_with_too_many_values_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from twinrun.compare.read import object_tree

    path = _save({"values": list(range(100))}, tmp_path / "many.pt")
    assert _cmp(path, path).status == IDENTICAL  # control
    monkeypatch.setattr(object_tree, "MAX_PARTS", 50)
    with pytest.raises(UnusableRunError, match=r"many\.pt holds more than 50 values"):
        _cmp(path, path)


def test_a_damaged_small_record_of_a_torch_zip_is_unusable(tmp_path: Path) -> None:
    path = _save({"w": torch.ones(3)}, tmp_path / "f.pt")
    good = _save({"w": torch.ones(3)}, tmp_path / "g.pt")
    data = bytearray(path.read_bytes())
    at = data.index(b"ZZZZ", data.index(b"serialization_id"))  # torch pads records to 64 bytes with Z
    while data[at] == ord("Z"):
        at += 1  # the record's own bytes (digits) start here
    assert _cmp(good, path).status == IDENTICAL  # control: undamaged
    data[at] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(UnusableRunError, match="truncated or corrupt"):
        _cmp(good, path)


@pytest.mark.parametrize("command", ["compare", "verify"])
def test_trust_pickle_help_says_what_it_loads_and_that_it_runs_code(command: str) -> None:
    from twinrun.cli import build_parser

    text = " ".join(build_parser().subcommands[command].format_help().split())
    start = text.rindex("--trust-pickle")  # the option's entry, after the usage line
    help_text = text[start : text.index(" --", start + 5)]
    assert "legacy trained_model.pt" not in help_text  # it loads more than that file
    assert "every torch file of either run that the inert reader refuses" in help_text
    assert "runs whatever code those files name" in help_text


def test_other_zip_records_are_compared_by_their_bytes(tmp_path: Path) -> None:
    import zipfile

    def saved(name: str, note: bytes) -> Path:
        path = _save({"w": torch.ones(3)}, tmp_path / name / "f.pt")
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("f/notes/run.txt", note)  # a record no tensor names
        return path

    a, same, b = saved("a", b"seed 1"), saved("s", b"seed 1"), saved("b", b"seed 2")
    assert _cmp(a, same).status == IDENTICAL  # control
    sec = _cmp(a, b)
    assert sec.status == DIFFERENT and sec.leaf_mismatches[0].name == "f.pt: <zip record notes/run.txt>"
