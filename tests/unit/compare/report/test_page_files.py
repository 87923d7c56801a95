"""What ``--html`` may read: the files the comparison read, regular files inside the run, bounded.

Each hostile file below once made ``compare --html`` hang, grow without bound or leak a file from
outside the run into the page (issue 23, item 5). The rendering tests run in this process under an
alarm, so that a regression fails here instead of hanging the suite.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.report.html import render_html
from twinrun.compare.report.page_files import TOO_LARGE, PageFiles, opened_inside, read_inside
from twinrun.compare.runs import compare_runs

pytest.importorskip("matplotlib")

CAPPED_RENDER = """
import resource, sys
import matplotlib.pyplot
from twinrun.compare.report.html import render_html
from twinrun.compare.runs import compare_runs
report = compare_runs(sys.argv[1], sys.argv[2])
status = open("/proc/self/status").read().split("VmSize:")[1].split()
cap = int(status[0]) * 1024 + (1 << 30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
print(len(render_html(report, sys.argv[1], sys.argv[2])))
"""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail (instead of blocking forever) when the body takes longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    return fr.make_twins(tmp_path)


def _secret_png(path: Path) -> bytes:
    """A picture outside the runs with bytes no run holds (a leak would put them in the page)."""
    fr.write_png(path, pixel=201)
    return path.read_bytes()


def test_a_fifo_in_an_ignored_folder_is_never_opened(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run in twins:
        (run / "wandb").mkdir()
        os.mkfifo(run / "wandb" / "metrics.csv")  # opening it for reading waits for a writer forever
    report = compare_runs(a, b)
    with deadline(30):
        page = render_html(report, a, b)
    assert "wandb/metrics.csv" not in PageFiles.from_report(report, a, b).paths
    assert 'class="verdict identical"' in page


def test_a_fifo_where_a_compared_file_was_is_skipped_without_waiting(twins: tuple[Path, Path]) -> None:
    """The run changed after the comparison (or raced it): opening never blocks on a FIFO."""
    a, b = twins
    (a / "logs").mkdir()
    (a / "logs" / "loss.csv").write_text("step,loss\n1,0.5\n")
    files = PageFiles.from_report(compare_runs(a, b), a, b)
    assert "logs/loss.csv" in files.paths
    (a / "logs" / "loss.csv").unlink()
    os.mkfifo(a / "logs" / "loss.csv")
    with deadline(30):
        assert files.read_bytes("a", "logs/loss.csv", 1 << 20) is None


def test_a_link_to_dev_zero_in_an_ignored_folder_is_never_read(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run in twins:
        (run / "mlruns").mkdir()
        (run / "mlruns" / "m.csv").symlink_to("/dev/zero")  # read as a CSV: gigabytes of one line
    report = compare_runs(a, b)
    files = PageFiles.from_report(report, a, b)
    # Checked before rendering: a regression here would read /dev/zero until memory runs out.
    assert "mlruns/m.csv" not in files.paths and files.paths
    assert read_inside(files.run_a, "mlruns/m.csv", 1 << 20) is None  # a device is not a regular file
    # The page itself, in a child whose address space is capped 1 GiB above what it holds once loaded.
    done = subprocess.run(
        [sys.executable, "-c", CAPPED_RENDER, str(a), str(b)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 0


def test_a_picture_linked_out_of_the_run_is_not_embedded(twins: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = twins
    secret = _secret_png(tmp_path / "outside" / "secret.png")
    for run in twins:
        (run / "wandb").mkdir()
        (run / "wandb" / "leak.png").symlink_to(tmp_path / "outside" / "secret.png")  # ignored folder
        (run / "images" / "linked.png").write_bytes(secret)  # compared as a regular file ...
    report = compare_runs(a, b)
    for run in twins:  # ... then swapped for a link out of the run before the page reads it
        (run / "images" / "linked.png").unlink()
        (run / "images" / "linked.png").symlink_to(tmp_path / "outside" / "secret.png")
    page = render_html(report, a, b)
    assert base64.b64encode(secret).decode() not in page
    assert "images/linked.png" in PageFiles.from_report(report, a, b).paths  # compared, yet not shown
    assert "run A: not shown" in page
    # A link out of the run at comparison time is refused by the comparison itself (rule 4).
    with pytest.raises(UnusableRunError, match="outside the run directory"):
        compare_runs(a, b)
    # Negative control: the same picture as a regular file inside the run is embedded, and found.
    for run in twins:
        (run / "images" / "linked.png").unlink()
        (run / "images" / "linked.png").write_bytes(secret)
    assert base64.b64encode(secret).decode() in render_html(compare_runs(a, b), a, b)


def test_read_inside_accepts_only_regular_files_within_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x.csv").write_text("step,loss\n")
    (root / "inner.csv").symlink_to(root / "sub" / "x.csv")  # a link that stays inside the run
    (tmp_path / "outside.csv").write_text("secret\n")
    (root / "out.csv").symlink_to(tmp_path / "outside.csv")
    root = root.resolve()
    assert read_inside(root, "sub/x.csv", 100) == b"step,loss\n"
    assert read_inside(root, "inner.csv", 100) == b"step,loss\n"
    assert read_inside(root, "sub/x.csv", 4) is TOO_LARGE
    assert read_inside(root, "out.csv", 100) is None
    assert read_inside(root, "../outside.csv", 100) is None
    assert read_inside(root, "missing.csv", 100) is None
    assert read_inside(root, "sub", 100) is None  # a directory


def test_only_the_paths_the_comparison_read_are_listed(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (a / "wandb").mkdir()
    (a / "wandb" / "run.csv").write_text("step,loss\n1,2\n")
    (a / "extra.csv").write_text("step,loss\n1,2\n")
    files = PageFiles.from_report(compare_runs(a, b, ignore=["extra.csv"]), a, b)
    assert "trace.jsonl" in files.paths and "images/samples.png" in files.paths
    assert not any(p.startswith("wandb") or p == "extra.csv" for p in files.paths)
    assert files.read_bytes("a", "extra.csv", 100) is None  # not read: the comparison ignored it
    assert files.named(".png") == ["images/samples.png"]


def test_a_file_over_the_limit_is_named_not_read(twins: tuple[Path, Path]) -> None:
    a, b = twins
    files = PageFiles.from_report(compare_runs(a, b), a, b)
    assert files.read_bytes("a", "trace.jsonl", 16) is None
    assert files.skipped == ["trace.jsonl: larger than 16 B, not shown"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_an_opened_file_is_checked_to_lie_inside_the_run(tmp_path: Path) -> None:
    """The check after open: a folder swapped for a link between realpath and open is caught."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "in.csv").write_text("x")
    (tmp_path / "out.csv").write_text("x")
    root = (tmp_path / "run").resolve()
    for name, inside in (("run/in.csv", True), ("out.csv", False)):
        fd = os.open(tmp_path / name, os.O_RDONLY)
        try:
            assert opened_inside(fd, root) is inside
        finally:
            os.close(fd)
