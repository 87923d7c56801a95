"""The byte rule for tensor files: differing bytes are excused only as named volatile fields.

Each case has its control: the same files with one byte, string or member that no field explains.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from twinrun.compare.judge.accounting import ARCHIVE_NAME, METADATA_ORDER, PATH, RESOLVER_CACHE, ZIP_TIME
from twinrun.compare.judge.tensor_bytes import account_tensor_bytes
from twinrun.compare.read.run_reader import PathMask
from twinrun.compare.report.model import DIFFERENT, IDENTICAL
from twinrun.compare.report.render import render_text
from twinrun.compare.runs import compare_runs

NONE: frozenset[str] = frozenset()


def _twins(tmp_path: Path, name: str) -> tuple[Path, Path]:
    a, b = tmp_path / "run-a" / name, tmp_path / "run-b" / name
    a.parent.mkdir(parents=True, exist_ok=True)
    b.parent.mkdir(parents=True, exist_ok=True)
    return a, b


def _same_path(tmp_path: Path):
    mask = PathMask([str(tmp_path / "run-a"), str(tmp_path / "run-b")])
    return lambda x, y: mask(x) == mask(y)


def _account(a: Path, b: Path, tmp_path: Path, cache_a=NONE, cache_b=NONE) -> Counter[str] | str:
    return account_tensor_bytes(a, b, _same_path(tmp_path), cache_a, cache_b)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_run_directory_in_a_pickled_string_is_a_path_and_another_string_is_not(
    tmp_path: Path, legacy: bool
) -> None:
    state = torch.nn.Linear(3, 2).state_dict()
    a, b = _twins(tmp_path, "ckpt.pt")
    for path, where in ((a, "run-a"), (b, "run-b")):
        obj = {"model": state, "dirpath": str(tmp_path / where / "checkpoints"), "step": 3}
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    assert a.read_bytes() != b.read_bytes()
    assert _account(a, b, tmp_path) == Counter({PATH: 1})
    # control: a string that is no run's directory
    elsewhere = {"model": state, "dirpath": "elsewhere", "step": 3}
    torch.save(elsewhere, b, _use_new_zipfile_serialization=not legacy)
    found = _account(a, b, tmp_path)
    assert isinstance(found, str) and "argument" in found


def test_the_strings_of_a_resolver_cache_and_no_others(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, "cfg.pt")
    torch.save({"cfg": {"cache": {"now": "12-00-01"}}, "w": torch.ones(2)}, a)
    torch.save({"cfg": {"cache": {"now": "12-00-07"}}, "w": torch.ones(2)}, b)
    cache_a, cache_b = frozenset({"now", "12-00-01"}), frozenset({"now", "12-00-07"})
    assert _account(a, b, tmp_path, cache_a, cache_b) == Counter({RESOLVER_CACHE: 1})
    found = _account(a, b, tmp_path)  # control: the reader found no cache holding them
    assert isinstance(found, str) and "argument" in found


def test_a_storage_that_differs_outside_every_tensor_view_is_not_excused(tmp_path: Path) -> None:
    """torch.save writes a view's whole storage: bytes no tensor shows still differ."""
    a, b = _twins(tmp_path, "view.pt")
    base_a, base_b = torch.arange(10.0), torch.arange(10.0)
    base_b[7] = -1.0
    torch.save({"t": base_a[:5]}, a)
    torch.save({"t": base_b[:5]}, b)
    found = _account(a, b, tmp_path)
    assert isinstance(found, str) and "data/0 differs" in found


def _zip(path: Path, members: dict[str, bytes], when: tuple[int, ...], comment: bytes = b"") -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=when), data)
        archive.comment = comment


def _npy(values: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, values)
    return out.getvalue()


def test_zip_timestamps_are_named_and_a_comment_or_a_member_is_not(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, "arrays.npz")
    members = {"x.npy": _npy(np.arange(4)), "y.npy": _npy(np.ones(3))}
    _zip(a, members, (2026, 12, 7, 10, 0, 0))
    _zip(b, members, (2026, 12, 7, 10, 0, 42))
    assert _account(a, b, tmp_path) == Counter({ZIP_TIME: 2})
    _zip(b, members, (2026, 12, 7, 10, 0, 42), comment=b"run 2")  # control: a comment
    assert "comments differ" in str(_account(a, b, tmp_path))
    _zip(b, {**members, "y.npy": _npy(np.ones(3, dtype=np.float32))}, (2026, 12, 7, 10, 0, 0))
    assert "member y.npy differs" in str(_account(a, b, tmp_path))


def test_a_zip_with_the_same_members_written_otherwise_is_not_excused(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, "arrays.npz")
    members = {"x.npy": _npy(np.arange(4))}
    _zip(a, members, (2026, 12, 7, 10, 0, 0))
    with zipfile.ZipFile(b, "w") as archive:  # the same member, an extra field in its header
        info = zipfile.ZipInfo("x.npy", date_time=(2026, 12, 7, 10, 0, 2))
        info.extra = b"\xca\xfe\x02\x00hi"
        archive.writestr(info, members["x.npy"])
    assert "laid out differently" in str(_account(a, b, tmp_path))
    # the same layout, one byte of the central directory no member field names ("version made by")
    raw = bytearray(a.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 4] ^= 1
    b.write_bytes(bytes(raw))
    assert "outside their members" in str(_account(a, b, tmp_path))
    assert _account(a, a, tmp_path) == "the bytes differ outside any volatile field"  # nothing to name


def test_a_plain_pickle_framed_strings_and_what_follows_it(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, "state.pt")
    obj: dict[str, Any] = {"t": np.zeros(2), "out": ""}
    for path, where in ((a, "run-a"), (b, "run-b/longer")):  # another length: the frame's size follows
        obj["out"] = str(tmp_path / where)
        path.write_bytes(pickle.dumps(obj, protocol=4))
    mask = PathMask([str(tmp_path / "run-a"), str(tmp_path / "run-b/longer")])
    assert account_tensor_bytes(a, b, lambda x, y: mask(x) == mask(y), NONE, NONE) == Counter({PATH: 1})
    b.write_bytes(b.read_bytes() + b"junk")  # control: bytes after the pickle
    found = account_tensor_bytes(a, b, lambda x, y: mask(x) == mask(y), NONE, NONE)
    assert isinstance(found, str) and "after the pickle" in found


def _with_metadata(path: Path, metadata: dict[str, str], separators: tuple[str, str] = (",", ":")) -> None:
    """``path`` rewritten with ``metadata`` in exactly this order (the library picks its own each time)."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    header.pop("__metadata__", None)
    text = json.dumps({"__metadata__": metadata, **header}, separators=separators).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size :])


def test_safetensors_metadata_order_and_paths_are_named_other_metadata_is_not(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, "w.safetensors")
    for path in (a, b):
        save_file({"w": torch.ones(2), "b": torch.zeros(3)}, str(path))
    _with_metadata(a, {"x": "1", "y": "2", "out": str(a.parent)})
    _with_metadata(b, {"y": "2", "x": "1", "out": str(b.parent)})
    assert _account(a, b, tmp_path) == Counter({METADATA_ORDER: 1, PATH: 1})
    _with_metadata(b, {"x": "1", "y": "3", "out": str(b.parent)})  # control: a value
    assert "metadata differ at 'y'" in str(_account(a, b, tmp_path))
    _with_metadata(b, {"x": "1", "y": "2", "out": str(b.parent)}, (", ", ": "))  # control: the spacing
    assert "not written as safetensors writes it" in str(_account(a, b, tmp_path))
    save_file({"w": torch.ones(2), "b": torch.zeros(3, dtype=torch.float64)}, str(b))  # control: a dtype
    assert "other tensors" in str(_account(a, b, tmp_path))


def test_formats_without_volatile_fields_decide_by_their_bytes(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, "w.npy")
    np.save(a, np.arange(4))
    np.save(b, np.asfortranarray(np.arange(4)))
    b.write_bytes(b.read_bytes().replace(b"'fortran_order': False", b"'fortran_order': True "))
    assert "holds no volatile field" in str(_account(a, b, tmp_path))


def _run(root: Path, obj_of_run) -> Path:
    root.mkdir(parents=True)
    (root / ".hydra").mkdir()
    (root / ".hydra" / "config.yaml").write_text("seed: 0\n")
    torch.save(obj_of_run(root), root / "ckpt.pt")
    return root


def test_compare_runs_names_the_excused_paths_and_refuses_unexplained_bytes(tmp_path: Path) -> None:
    state = torch.nn.Linear(3, 2).state_dict()
    a = _run(tmp_path / "a", lambda run: {"model": state, "dirpath": str(run / "checkpoints")})
    b = _run(tmp_path / "b", lambda run: {"model": state, "dirpath": str(run / "checkpoints")})
    report = compare_runs(a, b)
    assert report.verdict == IDENTICAL
    (entry,) = [e for e in report.sections["files"].files if e.path == "ckpt.pt"]
    assert entry.masked == {PATH: 1} and "masked: 1 path" in render_text(report)
    # control: a storage whose bytes differ beyond the saved view; every value the reader sees is equal
    base = torch.arange(10.0)
    c = _run(tmp_path / "c", lambda run: {"t": base[:5]})
    base[8] = 0.5
    d = _run(tmp_path / "d", lambda run: {"t": base[:5]})
    report = compare_runs(c, d)
    assert report.verdict == DIFFERENT
    assert report.sections["tensors"].status == DIFFERENT
    (entry,) = [e for e in report.sections["files"].files if e.path == "ckpt.pt"]
    assert "the bytes decide" in entry.detail and "data/0 differs" in entry.detail


def test_torchs_serialization_id_is_excused_only_beside_a_member_it_is_derived_from(tmp_path: Path) -> None:
    src = tmp_path / "src.pt"
    torch.save({"w": torch.ones(2)}, src)
    a, b = _twins(tmp_path, "src.pt")
    with zipfile.ZipFile(src) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    for path, flip in ((a, False), (b, True)):
        with zipfile.ZipFile(path, "w") as out:
            for info, data in members:
                if flip and info.filename.endswith(".data/serialization_id"):
                    data = data[::-1]
                out.writestr(info, data)
    found = _account(a, b, tmp_path)
    assert isinstance(found, str) and "serialization id" in found


def test_the_folder_torch_names_after_a_temporary_file_is_an_archive_name(tmp_path: Path) -> None:
    """``torch.save(obj, tmp); os.replace(tmp, final)``: the folder inside is the temporary's name."""
    a, b = _twins(tmp_path, "model.pt")
    for path, temporary in ((a, "tmp3kx9q2.pt"), (b, "tmpz81mwe.pt")):
        torch.save({"w": torch.ones(3)}, path.parent / temporary)
        (path.parent / temporary).replace(path)
    assert a.read_bytes() != b.read_bytes()
    assert _account(a, b, tmp_path) == Counter({ARCHIVE_NAME: 1})
    raw = bytearray(b.read_bytes())  # control: one byte of a record's header no field names
    raw[raw.index(b"PK\x03\x04") + 4] ^= 1
    b.write_bytes(bytes(raw))
    assert "outside their members" in str(_account(a, b, tmp_path))


def test_the_contract_weights_are_held_to_the_byte_rule_too(tmp_path: Path) -> None:
    """``weights.safetensors``: the same tensors under a header written otherwise (JSON with spaces,
    which every reader parses alike) are different; the same file is identical."""
    runs = []
    for name in "abc":
        run = tmp_path / name
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
        save_file({"w": torch.ones(2)}, str(run / "weights.safetensors"))
        runs.append(run)
    _with_metadata(runs[2] / "weights.safetensors", {}, (", ", ": "))
    assert compare_runs(runs[0], runs[1]).verdict == IDENTICAL
    report = compare_runs(runs[0], runs[2])
    assert report.verdict == DIFFERENT and report.sections["weights"].status == DIFFERENT
    (entry,) = [e for e in report.sections["files"].files if e.path == "weights.safetensors"]
    assert "not written as safetensors writes it" in entry.detail and "the bytes decide" in entry.detail


def test_a_bin_file_that_only_starts_like_a_pickle_is_compared_by_its_bytes(tmp_path: Path) -> None:
    """Random bytes in ``.bin`` (1 in 256 start with a pickle's PROTO byte): different, never a crash."""
    a, b = (
        _run(tmp_path / "a", lambda run: {"w": torch.ones(1)}),
        _run(tmp_path / "b", lambda run: {"w": torch.ones(1)}),
    )
    (a / "saved.bin").write_bytes(b"\x80\x07random")
    (b / "saved.bin").write_bytes(b"plainbytes")
    report = compare_runs(a, b)
    assert report.verdict == DIFFERENT
    (b / "saved.bin").write_bytes(b"\x80\x07random")  # control: the same bytes
    assert compare_runs(a, b).verdict == IDENTICAL
