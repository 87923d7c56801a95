"""The HTML report of a planted divergence, rendered in a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sensitivity.broken_trainers import perturb_one_ulp
from tests.variants import APPS_BY_NAME
from twinrun.compare.html import render_html, write_html
from twinrun.compare.runs import compare_runs

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)"
)
# No network, no first-run work: a closed network refuses chromium's background connections otherwise.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r":CONSOLE[:(]")


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    app = APPS_BY_NAME["vae_mnist"]
    overrides = ("seed=3", "training.epochs=2", "training.batch_size=48")
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    app.train(app.compose(*overrides), a)
    app.train(app.compose(*overrides), b, hooks=perturb_one_ulp(2, "encoder.weight"))
    page = tmp_path_factory.mktemp("html") / "report.html"
    write_html(page, render_html(compare_runs(a, b), a, b))
    return page


def _ink(png: Path) -> float:
    """Share of pixels that are not (near) white."""
    image = PIL.open(png).convert("L")
    histogram = image.histogram()
    return 1 - sum(histogram[245:]) / max(sum(histogram), 1)


def test_report_renders_with_the_divergent_step_and_no_console_errors(report_page, tmp_path) -> None:
    dom = chromium(report_page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="divergence" data-step="2"' in dom.stdout
    assert "step 2 (epoch 1), cause: computation" in dom.stdout
    assert not CONSOLE.search(dom.stderr), dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    done = chromium(report_page, tmp_path / "profile-shot", "--window-size=1200,1600", f"--screenshot={shot}")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert _ink(shot) > 0.05  # charts, tables and pictures, not a blank page


def test_the_console_check_catches_a_script_error(tmp_path) -> None:
    """Negative control: the same check sees an error a page logs."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body>x<script>throw new Error('planted')</script></body></html>")
    done = chromium(page, tmp_path / "profile", "--dump-dom")
    assert CONSOLE.search(done.stderr)


def test_the_blank_check_catches_a_blank_page(tmp_path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<html><body></body></html>")
    shot = tmp_path / "blank.png"
    chromium(page, tmp_path / "profile", "--window-size=800,600", f"--screenshot={shot}")
    assert _ink(shot) < 0.01
