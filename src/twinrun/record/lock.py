"""One training per run directory: an exclusive lock held for the run's whole life.

Two trainings writing into one directory would leave a run whose config is one's and whose weights
are the other's. ``run_dir_lock`` takes ``fcntl.flock`` on ``<run_dir>/.twinrun.lock`` (the kernel drops
it when the holder dies, SIGKILL included) and records the holder's pid in it while held, and removes
the file when the run ends (a finished run leaves no clutter; a killed one leaves an empty or stale
file, which the next holder simply takes). The file is opened without following links and must be a
regular file: a planted ``.twinrun.lock -> elsewhere`` is refused, never truncated.
``claim_run_dir`` refuses a directory that already holds a finished or interrupted run unless the
run resumes from it, and removes what an interrupted writer left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from twinrun.record import runs
from twinrun.record.runs import RunDirError

__all__ = ["LOCK_FILE", "RunDirError", "claim_run_dir", "run_dir_lock"]

LOCK_FILE = ".twinrun.lock"
_held: dict[Path, int] = {}  # run dirs this process holds, with a nesting count (flock is per open file)


def os_reason(exc: OSError) -> str:
    """``Permission denied``, ``No space left on device``: the reason without the errno noise."""
    return exc.strerror or type(exc).__name__


@contextlib.contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``run_dir`` exclusively for the block; fail at once when another process holds it.

    Nested use in one process (a Hydra shell and ``fit`` both locking) is allowed. Call
    :func:`claim_run_dir` under the lock once the config says whether the run resumes.
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        key = run_dir.resolve()
    except OSError as exc:
        raise RunDirError(
            f"cannot create the run directory {run_dir} ({os_reason(exc)}); choose a writable hydra.run.dir"
        ) from None
    if key in _held:
        _held[key] += 1
        try:
            yield run_dir
        finally:
            _held[key] -= 1
        return
    fd = _acquire(run_dir)
    try:
        with contextlib.suppress(OSError):  # the pid only makes a message clearer (a full disk refuses it)
            _write_pid(fd, f"{os.getpid()}\n")
        _held[key] = 1
        try:
            yield run_dir
        finally:
            del _held[key]
            # Unlink while still holding the lock: whoever opened the old file meanwhile finds, once it
            # gets the lock, that the path no longer names its file, and starts over (see _acquire).
            with contextlib.suppress(OSError):
                os.unlink(run_dir / LOCK_FILE)
    finally:
        os.close(fd)  # releases the lock


def _acquire(run_dir: Path) -> int:
    """The locked descriptor of ``run_dir/.twinrun.lock``, the file that the path names right now."""
    while True:
        fd = _open_lock_file(run_dir)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirError(
                f"the run directory {run_dir} is in use by another training (pid {holder}); "
                "wait for it to end or choose another hydra.run.dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, run_dir / LOCK_FILE):
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, now = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def claim_run_dir(run_dir: Path, resume_from: str | Path | None) -> None:
    """Refuse a directory holding a finished or interrupted run unless the run resumes from it; then
    delete the temporaries a killed writer left (call under :func:`run_dir_lock`: nobody else writes)."""
    if not (resume_from and _inside(Path(str(resume_from)).expanduser(), run_dir)):
        _refuse_used(run_dir)
    runs.remove_stale_temporaries(run_dir)


def _refuse_used(run_dir: Path) -> None:
    if (run_dir / runs.WEIGHTS).exists():
        what = f"a finished run ({runs.WEIGHTS})"
    elif any((run_dir / runs.CHECKPOINTS).glob("step-*.pt")):
        what = f"an interrupted run ({runs.CHECKPOINTS}/step-*.pt)"
    else:
        return
    raise RunDirError(
        f"the run directory {run_dir} already holds {what}; choose another hydra.run.dir, or continue it "
        f"with training.resume_from={run_dir}"
    )


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _open_lock_file(run_dir: Path) -> int:
    """Open (creating) the lock file without following a link or blocking on a FIFO; only a regular file."""
    path = run_dir / LOCK_FILE
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
            raise _not_a_lock_file(path) from None
        raise RunDirError(
            f"cannot write in the run directory {run_dir} ({os_reason(exc)}); choose a writable hydra.run.dir"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_a_lock_file(path)
    return fd


def _not_a_lock_file(path: Path) -> RunDirError:
    return RunDirError(
        f"{path} is not a regular file (a link or something else twinrun did not write); "
        "remove it or choose another hydra.run.dir"
    )


def _write_pid(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode().strip()))
    return "unknown"
