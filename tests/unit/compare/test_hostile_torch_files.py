"""Hostile torch and numpy files: every comparison ends with exit 0, 1 or 2, in bounded memory and time,
reading nothing outside the runs and running nothing (issue 23, items 3 and 4).

Each comparison runs in a child process (:mod:`tests.helpers.compare_child`) so that a crash (SIGSEGV)
fails the test instead of the test run, and its peak memory is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import hostile_files as hf

CHILD = Path(__file__).resolve().parents[2] / "helpers" / "compare_child.py"
FIXED_BUDGET_KIB = 200 * 1024  # what a comparison may take whatever the files (buffers, imports ...)
CPU_SECONDS = 5.0  # a few seconds each (CPU time: a loaded CI machine does not change it)


def _runs(root: Path, name: str, a: bytes, b: bytes | None = None) -> tuple[Path, Path]:
    """Run directories ``root/A`` and ``root/B`` holding ``name``.

    B's bytes default to A's with a difference the reader must get past: identical bytes are identical
    without any reader (the byte rule), so only files whose bytes differ make the reader face the bomb.
    """
    if b is None:
        # A zip's archive folder renamed (torch names it after the file: twins saved under other names),
        # or one byte after a legacy file.
        b = a.replace(b"archive/", b"archivb/") if a.startswith(b"PK") else a + b"\0"
    dirs = root / "A", root / "B"
    for d, data in zip(dirs, (a, b), strict=True):
        d.mkdir(parents=True)
        (d / name).write_bytes(data)
    return dirs


def _compare(*pairs: tuple[Path, Path]) -> list[dict]:
    """Compare each pair in one child process; fails on a crash, naming the pair that crashed it."""
    argv = [str(p) for pair in pairs for p in pair]
    proc = subprocess.run(
        [sys.executable, str(CHILD), *argv], capture_output=True, text=True, timeout=120, check=False
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    results = [r for r in lines if "code" in r]
    started = [r["start"] for r in lines if "start" in r]
    assert proc.returncode == 0, f"crashed ({proc.returncode}) on {started[-1:]}: {proc.stderr[-2000:]}"
    return results


def _check(result: dict, size: int, codes: tuple[int, ...] = (0, 1, 2)) -> None:
    assert result["code"] in codes, result
    if result["code"] == 2:  # one line, no traceback
        assert result["stderr"].count("\n") <= 1 and "Traceback" not in result["stderr"], result
    assert result["grew_kib"] < FIXED_BUDGET_KIB + 10 * size // 1024, result
    assert result["cpu_seconds"] < CPU_SECONDS, result
    assert not result["outside"] and not result["executed"], result


def _size(*pairs: tuple[Path, Path]) -> int:
    return max(sum(f.stat().st_size for d in pair for f in d.rglob("*") if f.is_file()) for pair in pairs)


BOMBS = {
    # item 3: hashing a deep key recursed in C (SIGSEGV)
    "tuple key nested 10**6 deep": hf.torch_zip(hf.deep_tuple_key(10**6)),
    "frozenset key nested 10**5 deep": hf.torch_zip(hf.deep_frozenset_key(10**5)),
    "legacy format, tuple key nested 10**6 deep": hf.legacy_torch(hf.deep_tuple_key(10**6)),
    # item 4: memory and time
    "tuple nested 60,000 deep": hf.torch_zip(hf.deep_tuple(60_000)),
    "lists nested 60,000 deep": hf.torch_zip(hf.deep_list(60_000)),
    "data.pkl of 128 MiB deflated to 128 KiB": hf.torch_zip(
        hf.Zeros(b"\x80\x04\x8e" + (128 << 20).to_bytes(8, "little"), 128, b".")
    ),
    "a 1 MiB string shared 200,000 times": hf.torch_zip(hf.memo_repeat(1 << 20, 200_000)),
}


def test_bombs_end_in_bounded_memory_and_time(tmp_path: Path) -> None:
    pairs = [_runs(tmp_path / str(i), "model.pt", data) for i, data in enumerate(BOMBS.values())]
    results = _compare(*pairs)
    assert len(results) == len(BOMBS)
    for name, pair, result in zip(BOMBS, pairs, results, strict=True):
        _check(result, _size(pair))
        if "deep" in name:
            assert result["code"] == 2 and "nested more than" in result["stderr"], (name, result)
    assert results[-1]["code"] == 0, results[-1]  # the shared string: a correct verdict, not a refusal


def test_bounded_files_have_correct_verdicts(tmp_path: Path) -> None:
    """Negative controls of the bombs: the same shapes within the bounds, equal and then changed."""
    same = _runs(tmp_path / "same", "model.pt", hf.torch_zip(hf.deep_tuple_key(500)))
    deep_b = hf.torch_zip(hf.memo_repeat(10_000, 1000, b"y"))
    changed = _runs(tmp_path / "changed", "model.pt", hf.torch_zip(hf.memo_repeat(10_000, 1000)), deep_b)
    r_same, r_changed = _compare(same, changed)
    assert r_same["code"] == 0 and r_changed["code"] == 1, (r_same, r_changed)


def _npz(members: list[tuple[str, bytes | hf.Zeros, bool]]) -> bytes:
    return hf.zip_bytes(members)


def test_numpy_bombs_and_lies(tmp_path: Path) -> None:
    fortran = hf.npy_header((4096, 4096), fortran=True)  # 128 MiB of float64
    overflow = hf.npy_header((1 << 32, 1 << 32, 1 << 32))  # the element count overflows int64
    pairs = {
        "Fortran-ordered member of 128 MiB": _runs(  # B has one more member: the reader must read a.npy
            tmp_path / "f",
            "a.npz",
            _npz([("a.npy", hf.Zeros(fortran, 128), True)]),
            _npz([("a.npy", hf.Zeros(fortran, 128), True), ("notes.txt", b"run 2", False)]),
        ),
        "shape overflows int64": _runs(tmp_path / "o", "a.npy", overflow + bytes(8), overflow + b"\x01" * 8),
        "member that is not .npy": _runs(
            tmp_path / "n",
            "a.npz",
            _npz([("a.npy", hf.npy_header((1,)) + bytes(8), False), ("notes.txt", b"run 1", False)]),
            _npz([("a.npy", hf.npy_header((1,)) + bytes(8), False), ("notes.txt", b"run 2", False)]),
        ),
        "bytes after the array": _runs(
            tmp_path / "t", "a.npy", hf.npy_header((1,)) + bytes(9), hf.npy_header((1,)) + bytes(8) + b"b"
        ),
    }
    results = dict(zip(pairs, _compare(*pairs.values()), strict=True))
    for name, result in results.items():
        _check(result, _size(pairs[name]))
    assert results["Fortran-ordered member of 128 MiB"]["code"] == 2
    assert results["shape overflows int64"]["code"] == 2
    assert results["member that is not .npy"]["code"] == 1
    assert results["bytes after the array"]["code"] == 1


def test_a_zip_with_two_archives_is_refused(tmp_path: Path) -> None:
    import pickle

    first = hf.torch_zip(pickle.dumps({"w": 1}, protocol=2), prefix="a")
    members = [("a/data.pkl", pickle.dumps({"w": 1}, protocol=2), False)]
    members += [("b/data.pkl", pickle.dumps({"w": 2}, protocol=2), False)]
    (result,) = _compare(_runs(tmp_path, "model.pt", first, hf.zip_bytes(members)))
    assert result["code"] == 2 and "2 archives" in result["stderr"], result


def _bytes_pickle(mib: int) -> hf.Zeros:
    """A pickle of ``mib`` MiB of zero bytes (BINBYTES8), deflated: a zip bomb of that ratio."""
    return hf.Zeros(b"\x80\x04\x8e" + (mib << 20).to_bytes(8, "little"), mib, b".")


# What a fuzzed file is made of: a shape (nesting, repetition, compression, lies) and its size.
HOSTILE = st.one_of(
    st.builds(hf.deep_tuple_key, st.integers(1, 3000)),
    st.builds(hf.deep_frozenset_key, st.integers(1, 3000)),
    st.builds(hf.deep_tuple, st.integers(1, 3000)),
    st.builds(hf.deep_list, st.integers(2, 3000)),
    st.builds(hf.memo_repeat, st.integers(1, 1 << 16), st.integers(1, 5000)),
    st.builds(hf.leaves, st.integers(1, 20_000)),
    st.builds(_bytes_pickle, st.integers(1, 64)),
)


@st.composite
def _lying_npz(draw: st.DrawFn) -> bytes:
    """An .npz whose member declares a shape its bytes may not hold, maybe Fortran-ordered, maybe deflated."""
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 3, 1 << 12, 1 << 31, 1 << 62]), max_size=3)))
    header = hf.npy_header(shape, fortran=draw(st.booleans()))
    body: bytes | hf.Zeros = header + bytes(draw(st.integers(0, 64)))
    if draw(st.booleans()):
        body = hf.Zeros(header, draw(st.integers(1, 16)))
    return hf.zip_bytes([("x.npy", body, draw(st.booleans())), ("y.txt", b"note", False)])


class _Server:
    """One child comparing pair after pair (imports paid once); restarted after a crash."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def compare(self, a: Path, b: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{a}\t{b}\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith('{"code"'):
                return json.loads(line)
        raise AssertionError(f"the comparison of {a} and {b} crashed the process ({self.proc.wait()})")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def server():
    child = _Server()
    yield child
    child.close()


@settings(max_examples=max(10, settings.default.max_examples), deadline=None)  # deep: 60
@given(
    pickle=st.one_of(HOSTILE, _lying_npz()),
    flip=st.one_of(st.none(), st.integers(0, 10**6)),
    code=st.booleans(),
)
def test_fuzzed_hostile_torch_files(
    tmp_path_factory: pytest.TempPathFactory, server: _Server, pickle, flip, code
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    marker = root / "MARKER"
    name = "model.pt"
    if isinstance(pickle, bytes) and pickle.startswith(b"PK"):  # an .npz already
        data, name = pickle, "arrays.npz"
    else:
        data = hf.torch_zip(pickle, extra={"code.pkl": hf.calls_code(str(marker))} if code else None)
        if code and flip is None:  # the code as the object itself
            data = hf.torch_zip(hf.calls_code(str(marker)))
    b = data
    if flip is not None:
        damaged = bytearray(data)
        damaged[flip % len(damaged)] ^= 0x01
        b = bytes(damaged)
    pair = _runs(root, name, data, b)
    result = server.compare(*pair)
    _check(result, _size(pair))
    assert not marker.exists()


@pytest.mark.parametrize("where", ["before the first record", "as a zip comment"])
def test_bytes_outside_every_zip_member_are_compared(tmp_path: Path, where: str) -> None:
    """The byte rule for torch zips: data zipfile skips (a prefix, a comment) is not excused."""
    import io

    import torch

    from twinrun.compare.read.run_reader import UnusableRunError
    from twinrun.compare.runs import compare_runs

    buffer = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, buffer)
    a = buffer.getvalue()
    if where == "as a zip comment":
        assert a[-2:] == b"\0\0"  # torch.save writes no comment
        b = a[:-2] + (5).to_bytes(2, "little") + b"run B"
    else:
        b = b"run B\n" + a
    run_a, run_b = _runs(tmp_path, "model.pt", a, b)
    if where == "as a zip comment":
        assert compare_runs(run_a, run_b).exit_code == 1
        # the reader sees it itself, before the byte accounting (judge/tensor_bytes.py) looks again
        from twinrun.compare.judge.tensor_files import compare_tensor_files

        read = compare_tensor_files(run_a / "model.pt", run_b / "model.pt", label="model.pt")
        assert read.status == "different" and "zip comment" in read.summary
    else:  # torch.load refuses it too: not a torch file beside one that is, unusable
        with pytest.raises(UnusableRunError, match=r"not a torch\.save file"):
            compare_runs(run_a, run_b)
    same_a, same_b = _runs(tmp_path / "same", "model.pt", b, b)  # negative control: the same bytes
    assert compare_runs(same_a, same_b).exit_code == 0
