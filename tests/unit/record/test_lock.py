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
    # Control: once the holder ends the directory can be taken, and the lock file is left empty.
    holder.stdin.close()
    holder.wait(timeout=30)
    with run_dir_lock(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert (tmp_path / "run" / LOCK_FILE).read_text() == ""


def test_a_killed_holder_releases_the_lock(tmp_path, holder) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with run_dir_lock(tmp_path / "run") as run_dir:  # the kernel dropped the dead holder's lock
        assert run_dir == tmp_path / "run"


def test_nested_locks_in_one_process_are_allowed(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    with run_dir_lock(tmp_path), run_dir_lock(tmp_path / "sub" / ".."):  # one directory, two spellings
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released only by the outer block


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
