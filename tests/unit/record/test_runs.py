import errno
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from twinrun.record import runs


def test_atomic_path_replaces_only_on_success(tmp_path) -> None:
    target = tmp_path / "f.txt"
    runs.write_text(target, "old")
    with pytest.raises(RuntimeError), runs.atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


def test_written_files_have_normal_permissions(tmp_path) -> None:
    runs.write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o044  # readable by others, unlike mkstemp's 0600


def test_exact_floats_round_trip() -> None:
    for value in (0.1, -0.0, 1e-310, float("inf")):
        assert float.fromhex(runs.exact(value)) == value
    assert runs.exact(-0.0) != runs.exact(0.0)


def test_nan_sign_and_payload_are_written_and_read_back_exactly() -> None:
    import struct

    def nan(bits: int) -> float:
        return struct.unpack("<d", struct.pack("<Q", bits))[0]

    def bits(value: float) -> int:
        return struct.unpack("<Q", struct.pack("<d", value))[0]

    quiet, negative, payload = nan(0x7FF8000000000000), nan(0xFFF8000000000000), nan(0x7FF8000000000123)
    written = [runs.exact(v) for v in (quiet, negative, payload)]
    assert len(set(written)) == 3 and written[1] == "nan:0xfff8000000000000"
    assert [bits(runs.from_exact(t)) for t in written] == [bits(v) for v in (quiet, negative, payload)]
    assert math.isnan(runs.from_exact("nan"))  # files written before: still readable
    assert runs.from_exact(runs.exact(0.1)) == 0.1
    with pytest.raises(ValueError):
        runs.from_exact("nan:0x3ff0000000000000")  # the bits of 1.0: no NaN


def test_write_weights_bytes_and_manifest(tmp_path) -> None:
    state = {"w": torch.arange(6, dtype=torch.float32).view(2, 3), "bn.num_batches_tracked": torch.tensor(3)}
    manifest = runs.write_weights(tmp_path / "a", state)
    runs.write_weights(tmp_path / "b", state)
    assert (tmp_path / "a" / runs.WEIGHTS).read_bytes() == (tmp_path / "b" / runs.WEIGHTS).read_bytes()
    loaded = load_file(tmp_path / "a" / runs.WEIGHTS)
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    assert manifest == json.loads((tmp_path / "a" / runs.MANIFEST).read_text())
    assert manifest["tensors"]["w"] == {
        "dtype": "float32",
        "shape": [2, 3],
        "sha256": runs.tensor_sha256(state["w"]),
    }
    # Negative control: one ULP in one element changes the file, the tensor digest and the overall digest.
    state["w"][0, 1] = torch.nextafter(state["w"][0, 1], torch.tensor(10.0))
    changed = runs.write_weights(tmp_path / "c", state)
    assert (tmp_path / "c" / runs.WEIGHTS).read_bytes() != (tmp_path / "a" / runs.WEIGHTS).read_bytes()
    assert changed["tensors"]["w"]["sha256"] != manifest["tensors"]["w"]["sha256"]
    assert changed["digest"] != manifest["digest"]


def test_tensor_sha256_sees_negative_zero() -> None:
    assert runs.tensor_sha256(torch.tensor([0.0])) != runs.tensor_sha256(torch.tensor([-0.0]))


def test_job_log_attaches_a_file_handler_only_once(tmp_path) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with runs.job_log(tmp_path, "app") as path:
        logging.getLogger("twinrun.test").info("hello %d", 1)
        with runs.job_log(tmp_path, "app"):
            assert len(root.handlers) == len(before) + 1
    assert root.handlers == before
    assert path.name == "app.log"
    assert "[twinrun.test][INFO] - hello 1" in path.read_text()


def test_write_jsonl_one_object_per_line(tmp_path) -> None:
    runs.write_jsonl(tmp_path / "m.jsonl", [{"b": 1, "a": 2}, {"c": 3}])
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"b": 1, "a": 2}, {"c": 3}]
    assert lines[0] == json.dumps({"b": 1, "a": 2})  # insertion order kept


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_every_artifact_follows_the_umask(tmp_path, monkeypatch, umask, mode) -> None:
    from twinrun.record import checkpoint

    monkeypatch.setattr(runs, "_UMASK", umask)  # what runs read from the process at import
    runs.write_weights(tmp_path, {"w": torch.ones(3)})  # safetensors' own writer made this one 0600
    runs.write_json(tmp_path / runs.ENV, {})
    checkpoint.save_checkpoint(tmp_path, 1, {"w": torch.ones(3)})
    files = [runs.WEIGHTS, runs.MANIFEST, runs.ENV, f"{runs.CHECKPOINTS}/step-00000001.pt"]
    modes = {name: oct((tmp_path / name).stat().st_mode & 0o777) for name in files}
    assert modes == dict.fromkeys(files, oct(mode))


def test_the_process_umask_is_used_and_a_file_size_limit_is_one_line(tmp_path) -> None:
    script = """
import resource, signal, sys, torch
from pathlib import Path
from twinrun.errors import TwinrunError
from twinrun.record import runs
run = Path(sys.argv[1])
runs.write_weights(run / "small", {"w": torch.ones(3)})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as the app shell does: EFBIG instead of death
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    runs.write_weights(run / "big", {"w": torch.ones(4096)})
except TwinrunError as error:
    print(type(error).__name__, error)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "small" / runs.WEIGHTS).stat().st_mode & 0o777 == 0o640
    assert done.stdout == (
        f"RunDirError cannot write {tmp_path / 'big' / runs.WEIGHTS}: File too large; "
        "raise the file-size limit (ulimit -f)\n"
    )
    assert list((tmp_path / "big").iterdir()) == []  # neither the weights nor their temporary file


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.ENOSPC, "No space left on device; free some space"),
        (errno.EROFS, "Read-only file system; choose a writable hydra.run.dir"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_write_errors_are_one_line_naming_the_file(tmp_path, monkeypatch, code, said) -> None:
    def full(self, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(runs.RunDirError) as error:
        runs.write_json(tmp_path / "env.json", {"a": 1})
    assert str(error.value).startswith(f"cannot write {tmp_path / 'env.json'}: {said}")
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    # Control: an error that is not about writing the file passes through unchanged.
    with pytest.raises(ZeroDivisionError), runs.atomic_path(tmp_path / "x"):
        raise ZeroDivisionError
