"""Tensor sources read by byte range: mapped windows, unaligned offsets, compressed members, truncation."""

from __future__ import annotations

import json
import operator
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from twinrun.compare.judge.tensor_files import compare_tensor_files, open_tensor_file
from twinrun.compare.read import weights_reader
from twinrun.compare.read.file_regions import FileRegion
from twinrun.compare.read.object_tree import Tree
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.read.weights_reader import (
    SafetensorsWeights,
    TensorDictWeights,
    TensorMeta,
    TreeWeights,
    WeightsSource,
)


def _bytes(t: torch.Tensor) -> np.ndarray:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy()


@pytest.mark.parametrize("start", [0, 3, 4096 + 5])
def test_file_region_windows_are_the_files_bytes(tmp_path: Path, start: int) -> None:
    data = np.random.default_rng(0).integers(0, 256, 3 * 65536, dtype=np.uint8)
    path = tmp_path / "blob"
    path.write_bytes(b"x" * start + data.tobytes())
    with path.open("rb", buffering=0) as f:
        region = FileRegion(f, start, data.size, "blob")
        for pos, n in ((0, 65536), (12345, 70000), (data.size - 9000, 9000), (7, 10)):
            got = region.view(pos, np.empty(n, np.uint8))
            assert np.array_equal(got, data[pos : pos + n])
        path.write_bytes(b"x" * start + data[:1000].tobytes())  # the file shrinks under the reader
        with pytest.raises(UnusableRunError, match="truncated"):
            region.view(50000, np.empty(65536, np.uint8))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_file_tensors_read_exactly_across_windows(tmp_path: Path, legacy: bool) -> None:
    t = {"a": torch.randn(3), "big": torch.randn(300_000), "h": torch.arange(7, dtype=torch.float16)}
    torch.save(t, tmp_path / "f.pt", _use_new_zipfile_serialization=not legacy)
    with open_tensor_file(tmp_path / "f.pt", "f.pt") as src:
        for name, tensor in t.items():
            meta = src.metas[name]
            assert (meta.dtype, meta.shape, meta.nbytes) == (
                str(tensor.dtype)[6:],
                tuple(tensor.shape),
                tensor.nbytes,
            )
            whole = src.read(name, 0, np.empty(meta.nbytes, np.uint8))
            assert np.array_equal(whole, _bytes(tensor))
        part = src.read("big", 400_000, np.empty(300_000, np.uint8))
        assert np.array_equal(part, _bytes(t["big"])[400_000:700_000])


def test_a_recompressed_torch_zip_is_read_through_zipfile(tmp_path: Path) -> None:
    t = {"w": torch.randn(50_000), "n": torch.arange(10)}
    torch.save(t, tmp_path / "stored.pt")
    with (
        zipfile.ZipFile(tmp_path / "stored.pt") as src,
        zipfile.ZipFile(tmp_path / "deflated.pt", "w") as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    assert (
        compare_tensor_files(tmp_path / "stored.pt", tmp_path / "deflated.pt", label="x").status
        == "identical"
    )
    t["w"][49_999] += 1
    torch.save(t, tmp_path / "changed.pt")
    (diff,) = compare_tensor_files(tmp_path / "deflated.pt", tmp_path / "changed.pt", label="x").differing
    assert diff.first_index == 49_999


def test_safetensors_read_through_windows(tmp_path: Path) -> None:
    t = {"a": torch.randn(5), "b": torch.randn(100_000)}
    save_file(t, tmp_path / "w.safetensors")
    with SafetensorsWeights(tmp_path / "w.safetensors", "w") as src:
        got = src.read("b", 4, np.empty(399_996, np.uint8))
        assert np.array_equal(got, _bytes(t["b"])[4:])
        assert np.array_equal(src.read("a", 0, np.empty(20, np.uint8)), _bytes(t["a"]))


def _write_safetensors(path: Path, header: dict, data: bytes) -> Path:
    """A safetensors file written by hand: 8-byte header length, JSON header, then the data bytes."""
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


def test_tensor_meta_numel() -> None:
    assert [TensorMeta("float32", shape, 0).numel for shape in [(), (5,), (2, 3, 4), (3, 0)]] == [1, 5, 24, 0]


def test_base_source_has_nothing_and_reads_nothing() -> None:
    with WeightsSource("w") as src:
        assert (src.shown, src.metas, src.leaves) == ("w", {}, {})
        with pytest.raises(NotImplementedError):
            src.read("x", 0, np.empty(1, np.uint8))


def test_safetensors_header_metadata_file_order_and_unknown_dtypes(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"epoch": "3", "format": "pt"},
        "z": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "a": {"dtype": "F8_E8M0", "shape": [2, 2], "data_offsets": [8, 12]},  # torch has no such dtype
        "m": {"dtype": "BF16", "shape": [], "data_offsets": [12, 14]},
    }
    data = bytes(range(14))
    path = _write_safetensors(tmp_path / "w.safetensors", header, data)
    with SafetensorsWeights(path, "w") as src:
        assert src.kind == "safetensors" and src.shown == "w"
        assert src.leaves == {"__metadata__/epoch": "3", "__metadata__/format": "pt"}
        assert list(src.metas) == ["z", "a", "m"]  # file order, not name order
        assert src.metas == {
            "z": TensorMeta("float32", (2,), 8),
            "a": TensorMeta("F8_E8M0", (2, 2), 4),
            "m": TensorMeta("bfloat16", (), 2),
        }
        assert bytes(src.read("a", 1, np.empty(3, np.uint8))) == data[9:12]
        assert bytes(src.read("m", 0, np.empty(2, np.uint8))) == data[12:]  # the last bytes of the file
    with pytest.raises(ValueError, match="closed file"):  # closed on leaving the block
        src.read("z", 0, np.empty(8, np.uint8))


def test_safetensors_without_metadata_has_no_leaves(tmp_path: Path) -> None:
    save_file({"w": torch.ones(3)}, tmp_path / "w.safetensors")
    with SafetensorsWeights(tmp_path / "w.safetensors", "w") as src:
        assert (src.leaves, list(src.metas)) == ({}, ["w"])


def test_safetensors_replaced_after_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that passed safe_open's check but changed before its header is read: one line, file closed."""
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(3)}, path)
    validate = weights_reader._validate_safetensors
    opened: list = []

    def validate_then_replace(p: Path, shown: str) -> None:
        validate(p, shown)
        p.write_bytes((5).to_bytes(8, "little") + b"{oops")

    real_open = Path.open

    def tracked_open(self: Path, *args, **kwargs):
        opened.append(real_open(self, *args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(weights_reader, "_validate_safetensors", validate_then_replace)
    monkeypatch.setattr(Path, "open", tracked_open)
    with pytest.raises(UnusableRunError) as info:
        SafetensorsWeights(path, "w")
    assert str(info.value).startswith("w: unreadable safetensors header (Expecting property name")
    assert str(info.value).endswith("); regenerate it")
    assert opened and all(f.closed for f in opened)  # the reader's handle too


def test_damaged_safetensors_messages(tmp_path: Path) -> None:
    (tmp_path / "e.safetensors").write_bytes(b"")
    with pytest.raises(UnusableRunError) as info:
        SafetensorsWeights(tmp_path / "e.safetensors", "run/e")
    assert str(info.value) == "run/e is empty; the run did not finish writing its weights, re-run it"
    (tmp_path / "t.safetensors").write_bytes(b"text, not safetensors")
    with pytest.raises(UnusableRunError) as info:
        SafetensorsWeights(tmp_path / "t.safetensors", "run/t")
    message = str(info.value)
    assert message.startswith("run/t is not a valid safetensors file (")
    assert message.endswith("); it is truncated, corrupt or of another format: regenerate it")


def test_tensor_dict_source() -> None:
    base = torch.arange(12, dtype=torch.int16).reshape(3, 4)
    tensors = {"t": base.t(), "b": torch.tensor([True, False]), "s": torch.tensor(2.5, dtype=torch.float64)}
    src = TensorDictWeights(tensors, "mem")
    assert (src.kind, src.shown, src.leaves) == ("torch.load", "mem", {})
    assert src.metas == {
        "t": TensorMeta("int16", (4, 3), 24),
        "b": TensorMeta("bool", (2,), 2),
        "s": TensorMeta("float64", (), 8),
    }
    assert np.array_equal(src.read("t", 2, np.empty(6, np.uint8)), _bytes(base.t())[2:8])  # logical order
    assert np.array_equal(src.read("s", 0, np.empty(8, np.uint8)), _bytes(tensors["s"]))


@pytest.mark.parametrize(
    "odd",
    [torch.eye(2).to_sparse(), torch.empty(2, device="meta")],
    ids=["sparse", "meta"],  # no plain bytes; a meta tensor (a model built without data) has none at all
)
def test_tensor_dict_source_refuses_tensors_without_plain_bytes(odd: torch.Tensor) -> None:
    with pytest.raises(UnusableRunError) as info:
        TensorDictWeights({"w": torch.ones(2), "odd": odd}, "mem")
    assert str(info.value).startswith("mem: tensor odd has no plain byte layout (")


class _CountingRegion:
    """A region that counts its reads (the strided gather reads its span once per tensor)."""

    def __init__(self, region) -> None:
        self.region, self.reads = region, 0

    def readinto(self, pos: int, view: memoryview) -> None:
        self.reads += 1
        self.region.readinto(pos, view)

    def view(self, pos: int, buffer: np.ndarray) -> np.ndarray:
        return self.region.view(pos, buffer)


def _deflate(path: Path) -> None:
    """Rewrite a torch zip file with every member compressed (read through zipfile, not by range)."""
    stored = path.with_suffix(".stored")
    path.rename(stored)
    with zipfile.ZipFile(stored) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)


@pytest.mark.parametrize("form", ["zip", "legacy", "deflated"])
def test_views_read_in_logical_order_strided_ones_gathered_once(tmp_path: Path, form: str) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    half = torch.arange(40, dtype=torch.float16).reshape(5, 8)
    # strided views at storage offsets 7 and 8 (elements), a contiguous one at offset 12
    t = {"c": base, "v": base[1:, 1:].t(), "h": half[1:, ::3], "r": base[2:]}
    torch.save(t, tmp_path / "f.pt", _use_new_zipfile_serialization=form != "legacy")
    if form == "deflated":
        _deflate(tmp_path / "f.pt")
    with open_tensor_file(tmp_path / "f.pt", "f.pt") as src:
        src._regions = {key: _CountingRegion(region) for key, region in src._regions.items()}
        assert src.metas["v"] == TensorMeta("float32", (5, 3), 60) and src.metas["h"].nbytes == 24
        first = src.read("v", 0, np.empty(8, np.uint8)).copy()
        v = np.concatenate([first, src.read("v", 8, np.empty(52, np.uint8))])
        h = src.read("h", 0, np.empty(24, np.uint8))
        again = src.read("v", 4, np.empty(8, np.uint8))
        assert np.array_equal(v, _bytes(t["v"])) and np.array_equal(h, _bytes(t["h"]))
        assert np.array_equal(again, _bytes(t["v"])[4:12])
        assert sum(region.reads for region in src._regions.values()) == 3  # v, h, v: not once per chunk
        assert np.array_equal(src.read("c", 4, np.empty(8, np.uint8)), _bytes(base)[4:12])
        assert np.array_equal(src.read("r", 4, np.empty(40, np.uint8)), _bytes(t["r"])[4:44])


def test_safetensors_truncated_under_the_reader_is_not_read_from_a_buffer(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.arange(64, dtype=torch.float32)}, path)
    with SafetensorsWeights(path, "w") as src:
        path.write_bytes(path.read_bytes()[:-200])  # the file shrinks after its header was read
        with pytest.raises(UnusableRunError, match="w ended early; the file was truncated"):
            src.read("w", 0, np.empty(256, np.uint8))


def test_tree_source_of_a_trusted_load_reads_memory(tmp_path: Path) -> None:
    t = {"get": operator.attrgetter("real"), "w": torch.arange(6, dtype=torch.int32), "n": 2}
    torch.save(t, tmp_path / "f.pt")
    with open_tensor_file(tmp_path / "f.pt", "f.pt", trust_pickle=True) as src:
        assert src.kind == "torch" and src.metas["w"] == TensorMeta("int32", (6,), 24)
        assert src.leaves["n"] == 2
        assert np.array_equal(src.read("w", 4, np.empty(8, np.uint8)), _bytes(t["w"])[4:12])


def test_tree_source_closes_through_its_callback() -> None:
    calls: list[str] = []
    with TreeWeights(Tree(), {}, "x", close=lambda: calls.append("closed")) as src:
        assert (src.metas, src.leaves, src.shown) == ({}, {}, "x")
    assert calls == ["closed"]
    with TreeWeights(Tree(leaves={"epoch": 1}), {}, "y") as src:  # nothing to close
        assert src.leaves == {"epoch": 1}


def test_unreadable_weights_say_why_not_file_not_found(tmp_path: Path, monkeypatch) -> None:
    # safetensors reports any failure to open as FileNotFoundError; tests run as root, where chmod 000
    # does not stop a read, so the OS's answer is simulated.
    run = tmp_path / "run"
    run.mkdir()
    save_file({"w": torch.ones(2)}, str(run / "weights.safetensors"))
    target = run / "weights.safetensors"
    weights_reader._validate_safetensors(target, "run/weights.safetensors")  # control: readable
    real_open = Path.open

    def denied(self, *args, **kwargs):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(weights_reader.UnusableRunError) as info:
        weights_reader._validate_safetensors(target, "run/weights.safetensors")
    assert str(info.value) == "cannot read run/weights.safetensors (permission denied; check its permissions)"
