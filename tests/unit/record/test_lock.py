import os
import signal
import subprocess
import sys
import textwrap

import pytest

from twinrun.record import runs
from twinrun.record.lock import LOCK_FILE, RunDirError, claim_run_dir, run_dir_lock

HOLD = textwrap.dedent(
    """
    import sys
    from twinrun.record.lock import run_dir_lock
    with run_dir_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin (or kills us)
    """
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding ``tmp_path / 'run'``; yields the Popen."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "run")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    yield process
    if process.poll() is None:
        process.stdin.close()
        process.wait(timeout=30)


def test_a_second_process_is_refused_at_once_naming_the_holder(tmp_path, holder) -> None:
    busy = rf"{tmp_path / 'run'} is in use .*\(pid {holder.pid}\)"
    with pytest.raises(RunDirError, match=busy) as error, run_dir_lock(tmp_path / "run"):
        pass
    assert "\n" not in str(error.value)
    # Control: once the holder ends the directory can be taken, and the lock file is gone afterwards.
    holder.stdin.close()
    holder.wait(timeout=30)
    assert not (tmp_path / "run" / LOCK_FILE).exists()  # the holder's clean exit removed it
    with run_dir_lock(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_killed_holder_releases_the_lock(tmp_path, holder) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert (tmp_path / "run" / LOCK_FILE).exists()  # a killed holder cannot clean up ...
    with run_dir_lock(tmp_path / "run") as run_dir:  # ... but the kernel dropped its lock
        assert run_dir == tmp_path / "run"
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_nested_locks_in_one_process_are_allowed(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    with run_dir_lock(tmp_path), run_dir_lock(tmp_path / "sub" / ".."):  # one directory, two spellings
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"  # the inner block kept it
    assert not (tmp_path / LOCK_FILE).exists()  # released and removed only by the outer block


def test_an_exception_in_the_block_still_removes_the_lock(tmp_path) -> None:
    with pytest.raises(KeyError), run_dir_lock(tmp_path):
        raise KeyError("boom")
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.parametrize("target", ["file", "missing"])
def test_a_planted_symlink_is_refused_and_its_target_left_alone(tmp_path, target) -> None:
    victim = tmp_path / "victim.txt"
    if target == "file":
        victim.write_text("precious\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).symlink_to(victim)
    with (
        pytest.raises(RunDirError, match=r"\.twinrun\.lock is not a regular file .*remove it") as error,
        run_dir_lock(tmp_path / "run"),
    ):
        pass
    assert "\n" not in str(error.value)
    assert victim.read_text() == "precious\n" if target == "file" else not victim.exists()
    assert (tmp_path / "run" / LOCK_FILE).is_symlink()  # refused, not removed either
    # Control: with the link gone the same directory is taken.
    (tmp_path / "run" / LOCK_FILE).unlink()
    with run_dir_lock(tmp_path / "run"):
        pass


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_lock_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind) -> None:
    path = tmp_path / LOCK_FILE
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(RunDirError, match="is not a regular file"), run_dir_lock(tmp_path):
        pass


def test_a_lock_file_removed_between_open_and_lock_is_opened_again(tmp_path, monkeypatch) -> None:
    """The race the removal opens: we opened the old holder's file, it unlinked it and let go."""
    from twinrun.record import lock

    opened = []
    real_open = lock._open_lock_file

    def open_then_lose_the_race(run_dir):
        fd = real_open(run_dir)
        opened.append(fd)
        if len(opened) == 1:
            os.unlink(run_dir / LOCK_FILE)  # the previous holder finished after our open
            (run_dir / LOCK_FILE).write_text("")  # and a third process created a fresh file
        return fd

    monkeypatch.setattr(lock, "_open_lock_file", open_then_lose_the_race)
    with run_dir_lock(tmp_path):
        assert len(opened) == 2  # the orphaned inode was dropped, the file the path names was locked
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_a_run_dir_that_cannot_be_created_is_one_line(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    unusable = r"cannot create the run directory .*file/run \(Not a directory\)"
    with pytest.raises(RunDirError, match=unusable), run_dir_lock(tmp_path / "file" / "run"):
        pass


def test_finished_and_interrupted_runs_are_refused_unless_resumed(tmp_path) -> None:
    claim_run_dir(tmp_path, None)  # empty: fine
    (tmp_path / runs.CHECKPOINTS).mkdir()
    (tmp_path / runs.CHECKPOINTS / "step-00000004.pt").write_bytes(b"")
    with pytest.raises(RunDirError, match=r"already holds an interrupted run .*training.resume_from="):
        claim_run_dir(tmp_path, None)
    (tmp_path / runs.WEIGHTS).write_bytes(b"")
    with pytest.raises(RunDirError, match=r"already holds a finished run \(weights.safetensors\)") as error:
        claim_run_dir(tmp_path, tmp_path.parent / "elsewhere")  # resuming another run: refused
    assert "\n" not in str(error.value)
    claim_run_dir(tmp_path, tmp_path)  # resuming this very run: allowed
    claim_run_dir(tmp_path, tmp_path / runs.CHECKPOINTS / "step-00000004.pt")


def test_stale_temporaries_are_removed_when_the_run_dir_is_claimed(tmp_path) -> None:
    stale = [tmp_path / runs.CHECKPOINTS / ".step-00000005.pt.9wtm477f.tmp", tmp_path / ".trace.jsonl.x1.tmp"]
    kept = [tmp_path / runs.CHECKPOINTS / "step-00000004.pt", tmp_path / "notes.tmp", tmp_path / ".keep"]
    for path in stale + kept:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / runs.WEIGHTS).write_bytes(b"")  # a finished run: refused, and left as it was
    with run_dir_lock(tmp_path), pytest.raises(RunDirError, match="finished run"):
        claim_run_dir(tmp_path, None)
    assert all(path.exists() for path in stale + kept)
    with run_dir_lock(tmp_path):
        claim_run_dir(tmp_path, tmp_path)  # resumed in place: the temporaries go
        assert not any(path.exists() for path in stale)
        assert all(path.exists() for path in kept)
