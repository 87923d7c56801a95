"""``twinrun.verify.processes``: runs in their own session, stopped as a whole, signals forwarded."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from twinrun.verify import processes


def alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie nobody reaps counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def start(code: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start ``python -c code`` the way verify does; return it and the lines it printed once it printed
    ``ready`` (its handlers are installed then)."""
    out = (tmp_path / "out").open("wb")
    proc = processes.start([sys.executable, "-c", code], out, os.environ, None)
    out.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = (tmp_path / "out").read_text().split()
        if "ready" in lines:
            return proc, lines
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the child never got ready")


@pytest.mark.parametrize(("handles_term", "exit_code"), [(True, 7), (False, -9)])
def test_a_stopped_run_gets_sigterm_first_then_sigkill(
    handles_term: bool, exit_code: int, tmp_path: Path
) -> None:
    # A child that exits 7 on SIGTERM (as torchrun does after stopping its workers), or ignores it.
    handler = "lambda *_: sys.exit(7)" if handles_term else "signal.SIG_IGN"
    code = (
        f"import signal, sys, time; signal.signal(signal.SIGTERM, {handler}); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc, _ = start(code, tmp_path)
    started = time.monotonic()
    processes.stop(proc, grace=1.0)
    assert proc.returncode == exit_code
    assert time.monotonic() - started < (5 if handles_term else 10)


def test_stop_reaches_what_the_run_started_in_its_group(tmp_path: Path) -> None:
    # The run starts a helper that ignores SIGTERM (a DataLoader worker, a launcher's job), then waits.
    grandchild = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}], stdout=subprocess.PIPE); "
        "p.stdout.readline(); print(p.pid, 'ready', flush=True); time.sleep(60)"
    )
    proc, lines = start(code, tmp_path)
    helper = int(lines[0])
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)  # a group of its own, not verify's
    assert os.getpgid(helper) == proc.pid and alive(helper)
    processes.stop(proc, grace=5.0)
    deadline = time.monotonic() + 5
    while alive(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.returncode == -signal.SIGTERM and not alive(helper)


def test_wait_gives_up_after_the_timeout(tmp_path: Path) -> None:
    proc, _ = start("import time; print('ready', flush=True); time.sleep(60)", tmp_path)
    started = time.monotonic()
    assert processes.wait(proc, "run 1/2", None, timeout=0.5) is False
    assert 0.4 < time.monotonic() - started < 5 and proc.poll() is None
    processes.stop(proc, grace=1.0)
    # The control: a process that ends within the limit is reported finished.
    quick, _ = start("print('ready', flush=True)", tmp_path)
    assert processes.wait(quick, "run 2/2", None, timeout=30) is True and quick.returncode == 0


def test_wait_spins_on_a_terminal_only_until_the_limit(tmp_path: Path) -> None:
    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    proc, _ = start("import time; print('ready', flush=True); time.sleep(60)", tmp_path)
    progress = FakeTTY()
    assert processes.wait(proc, "run 1/2", progress, timeout=0.35) is False
    processes.stop(proc, grace=1.0)
    assert progress.getvalue().startswith("\rrun 1/2 | 0s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_forwarded_signals_raise_terminated_and_restore_the_handlers(signum: int) -> None:
    before = signal.getsignal(signum)
    with pytest.raises(processes.Terminated) as caught, processes.forwarded_signals():
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises before this ends
    assert caught.value.signum == signum and caught.value.exit_code == 128 + signum
    assert caught.value.name == signal.Signals(signum).name
    assert signal.getsignal(signum) == before


def test_an_ignored_signal_stays_ignored() -> None:
    # As under `nohup`: SIGHUP ignored before verify starts stays ignored while runs go.
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with processes.forwarded_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is processes._raise_terminated
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_second_signal_during_the_grace_period_kills_at_once(tmp_path: Path) -> None:
    # The run ignores SIGTERM; a SIGTERM to verify meanwhile ends the 30 s grace period with SIGKILL.
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc, _ = start(code, tmp_path)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    with pytest.raises(processes.Terminated), processes.forwarded_signals():
        timer.start()
        processes.stop(proc, grace=30.0)
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - started < 10
