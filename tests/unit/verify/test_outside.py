"""Rule 3: files a twin writes outside its run directory (``verify/outside.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinrun.verify import outside
from twinrun.verify.outside import OutsideWatch
from twinrun.verify.outside_names import describe


def _no_link(*args: object) -> None:
    raise OSError(18, "Invalid cross-device link")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    cwd = tmp_path / "proj"
    (cwd / "src").mkdir(parents=True)
    (cwd / "src" / "app.py").write_text("print('hi')\n")
    (cwd / "results.csv").write_text("a\n1\n")
    for skipped in (".git", ".venv", "__pycache__", ".pytest_cache", ".cache"):
        (cwd / skipped).mkdir()
        (cwd / skipped / "x.bin").write_bytes(b"0")
    return cwd


def _watch(tmp_path: Path, cwd: Path, app_dir: Path | None = None) -> OutsideWatch:
    work = tmp_path / "work"
    return OutsideWatch(cwd, app_dir, [work], work / ".twinrun-outside-backup")


def test_created_files_move_into_the_run_directory_and_the_tree_is_left_as_it_was(
    tmp_path: Path, tree: Path
) -> None:
    watch = _watch(tmp_path, tree)
    run_dir = tmp_path / "work" / "run-1"
    run_dir.mkdir(parents=True)
    watch.before()
    (tree / "model.pt").write_bytes(b"weights-1")
    (tree / "ckpt" / "deep").mkdir(parents=True)
    (tree / "ckpt" / "deep" / "last.pt").write_bytes(b"x")
    for skipped in (".git", ".venv", "__pycache__", ".pytest_cache", ".cache"):
        (tree / skipped / "new.bin").write_bytes(b"1")  # negative control: never captured
    twin = watch.after(1, run_dir)
    assert {(w.rel, w.action, w.captured) for w in twin.written} == {
        ("model.pt", "created", True),
        ("ckpt/deep/last.pt", "created", True),
    }
    assert (run_dir / "outside" / "model.pt").read_bytes() == b"weights-1"
    assert not (tree / "model.pt").exists() and not (tree / "ckpt").exists()
    (line,) = describe([twin], 1, 2)
    assert line.startswith("run 1 wrote ckpt/deep/last.pt, model.pt outside its run directory")


def test_a_modified_file_is_captured_and_its_earlier_bytes_restored(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outside.os, "link", _no_link)  # another file system: a copy is kept
    watch = _watch(tmp_path, tree)
    run_dir = tmp_path / "work" / "run-1"
    watch.before()
    (tree / "results.csv").write_text("a\n1\n2\n")
    twin = watch.after(1, run_dir)
    assert [(w.rel, w.action, w.captured) for w in twin.written] == [("results.csv", "modified", True)]
    assert (run_dir / "outside" / "results.csv").read_text() == "a\n1\n2\n"
    assert (tree / "results.csv").read_text() == "a\n1\n"
    watch.close()
    assert not (tmp_path / "work" / ".twinrun-outside-backup").exists()


def test_the_app_folder_outside_the_working_directory_is_watched_too(tmp_path: Path, tree: Path) -> None:
    app_dir = tmp_path / "elsewhere"
    app_dir.mkdir()
    watch = _watch(tmp_path, tree, app_dir)
    watch.before()
    (app_dir / "saved.pt").write_bytes(b"1")
    twin = watch.after(1, tmp_path / "work" / "run-1")
    assert [w.rel for w in twin.written] == ["@app/saved.pt"]
    assert (tmp_path / "work" / "run-1" / "outside" / "@app" / "saved.pt").is_file()


def test_verifys_own_work_directory_is_not_watched(tmp_path: Path) -> None:
    work = tmp_path / "work"
    watch = OutsideWatch(tmp_path, None, [work], work / ".twinrun-outside-backup")
    watch.before()
    (work / "run-1").mkdir(parents=True)
    (work / "run-1" / "weights.pt").write_bytes(b"1")
    (tmp_path / "stray.pt").write_bytes(b"1")  # negative control
    assert [w.rel for w in watch.after(1, work / "run-1").written] == ["stray.pt"]


def test_over_the_bound_files_stay_and_the_next_twin_finding_one_is_named(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outside, "MAX_CAPTURED_BYTES", 4)
    watch = _watch(tmp_path, tree)
    watch.before()
    (tree / "cache.bin").write_bytes(b"a large cache")
    first = watch.after(1, tmp_path / "work" / "run-1")
    assert [(w.rel, w.captured) for w in first.written] == [("cache.bin", False)]
    assert any("left in place" in note and "cache.bin" in note for note in first.notes)
    watch.before()  # run 2 reads the cache and writes nothing
    second = watch.after(2, tmp_path / "work" / "run-2")
    assert second.found == ["cache.bin"]
    lines = describe([first, second], 1, 2)
    assert any("run 2 found cache.bin already there" in line and "classic cause" in line for line in lines)


def test_the_scan_is_bounded_and_says_so(tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outside, "MAX_SCANNED", 1)
    watch = _watch(tmp_path, tree)
    watch.before()
    assert any("stopped looking" in note for note in watch.after(1, tmp_path / "work" / "run-1").notes)


def test_a_file_replaced_atomically_gets_its_earlier_bytes_back_through_the_hard_link(
    tmp_path: Path, tree: Path
) -> None:
    watch = _watch(tmp_path, tree)
    watch.before()
    (tree / "new.csv").write_text("b\n")
    (tree / "new.csv").replace(tree / "results.csv")  # an atomic write: a new inode
    twin = watch.after(1, tmp_path / "work" / "run-1")
    assert [(w.rel, w.captured) for w in twin.written] == [("results.csv", True)]
    assert (tree / "results.csv").read_text() == "a\n1\n"
    assert (tmp_path / "work" / "run-1" / "outside" / "results.csv").read_text() == "b\n"
    watch.before()  # twin 2 starts from the same tree and writes the same way
    (tree / "results.csv").unlink()
    twin = watch.after(2, tmp_path / "work" / "run-2")
    assert (tree / "results.csv").read_text() == "a\n1\n" and twin.written[0].action == "deleted"


def test_a_file_written_in_place_is_copied_and_said_to_be_left(tmp_path: Path, tree: Path) -> None:
    watch = _watch(tmp_path, tree)
    watch.before()
    with (tree / "results.csv").open("a") as handle:  # in place: the hard link sees it too
        handle.write("2\n")
    twin = watch.after(1, tmp_path / "work" / "run-1")
    assert [(w.rel, w.captured) for w in twin.written] == [("results.csv", True)]
    assert (tmp_path / "work" / "run-1" / "outside" / "results.csv").read_text() == "a\n1\n2\n"
    assert any("in place" in note for note in twin.notes)


def test_another_verifys_work_directory_appearing_meanwhile_is_not_taken(tmp_path: Path, tree: Path) -> None:
    watch = _watch(tmp_path, tree)
    watch.before()
    OutsideWatch(tree, None, [tree / "other-verify"], tree / "other-verify" / "b")  # starts beside this one
    (tree / "other-verify" / "run-1").mkdir()
    (tree / "other-verify" / "run-1.out").write_text("log")
    (tree / "mine.pt").write_bytes(b"1")  # control
    assert [w.rel for w in watch.after(1, tmp_path / "work" / "run-1").written] == ["mine.pt"]
    assert (tree / "other-verify" / "run-1.out").is_file()
