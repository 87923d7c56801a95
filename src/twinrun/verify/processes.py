"""One app process of ``twinrun verify``: started in its own session, stopped as a whole, never orphaned.

Each run starts in a session (and process group) of its own, so that stopping it reaches whatever it
started in that group (DataLoader workers, a launcher's jobs). While runs go, SIGTERM and SIGHUP raise
:class:`Terminated` in verify's main thread, as SIGINT raises ``KeyboardInterrupt``; either way the run
is stopped (:func:`stop`) before verify exits, so no run keeps training with ppid 1.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL: torchrun needs them to stop its workers
FORWARDED = (signal.SIGTERM, signal.SIGHUP)
_SPINNER = "|/-\\"


class Terminated(BaseException):
    """verify got SIGTERM or SIGHUP while a run was going (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal (143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + self.signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def forwarded_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` (main thread only; a signal that
    was ignored, as under ``nohup``, stays ignored); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {}
    for signum in FORWARDED:
        current = signal.getsignal(signum)
        if current is not signal.SIG_IGN:
            previous[signum] = current
            signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python; the default is the closest we can restore.
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def start(
    argv: Sequence[str], output: IO[bytes], env: Mapping[str, str], cwd: str | Path | None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, output (stdout and stderr) into ``output``, no stdin."""
    return subprocess.Popen(
        list(argv),
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the run's process group (its pgid is its pid: it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def stop(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """Stop a run: SIGTERM to its process group, so that torchrun (and Hydra's launchers) can stop the
    workers they started in sessions of their own; SIGKILL after ``grace`` seconds, or at once when a
    second interrupt comes meanwhile; then SIGKILL to whatever of the group outlived its leader."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    except BaseException:  # a second Ctrl-C or SIGTERM: no more grace
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        # The leader is reaped; a pid stays unused while it names a live group, so this reaches only
        # the leader's own leftovers (ProcessLookupError when there are none).
        _signal_group(proc, signal.SIGKILL)


def wait(
    proc: subprocess.Popen[bytes], label: str, progress: TextIO | None, timeout: float | None = None
) -> bool:
    """Wait for ``proc``, at most ``timeout`` seconds; False when it is still running then. On a
    terminal, animate a spinner with the elapsed time."""
    spin = progress is not None and progress.isatty()
    started = time.monotonic()
    for tick in itertools.count():
        step = 0.1 if spin else None
        if timeout is not None:
            left = started + timeout - time.monotonic()
            if left <= 0:
                return proc.poll() is not None
            step = left if step is None else min(step, left)
        try:
            proc.wait(timeout=step)
            return True
        except subprocess.TimeoutExpired:
            if spin:
                assert progress is not None
                elapsed = time.monotonic() - started
                progress.write(f"\r{label} {_SPINNER[tick % len(_SPINNER)]} {elapsed:.0f}s")
                progress.flush()
    raise AssertionError("unreachable")
