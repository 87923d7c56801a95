"""Tensor sources read by byte range: mapped windows, unaligned offsets, compressed members, truncation."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from twinrun.compare.file_regions import FileRegion
from twinrun.compare.run_reader import UnusableRunError
from twinrun.compare.tensor_files import compare_tensor_files, open_tensor_file
from twinrun.compare.weights_reader import SafetensorsWeights


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
