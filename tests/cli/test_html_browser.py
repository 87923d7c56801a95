"""The HTML report of a planted divergence, rendered in a real browser (headless Chromium).

At 1400 and 800 px wide the page must fit its window: no horizontal scrolling, no line cut off in the
details or a table, charts across the page's width, tick labels that do not overlap. A probe script,
added to a copy of the page (the report itself has none), measures the laid-out DOM and writes what
it found into the DOM that ``--dump-dom`` prints. Set ``TWINRUN_HTML_SHOTS=DIR`` to keep the
screenshots for a look.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.sensitivity.broken_trainers import perturb_one_ulp
from tests.variants import APPS_BY_NAME
from twinrun.compare.report.html import render_html, write_html
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
    with (b / "vae_mnist.log").open("a") as log:  # a long line without spaces: details and tables
        log.write(f"[2026-11-27 23:59:59,000][train][INFO] - {'long-token/' * 60}\n")
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


# Measures the laid-out page; the report has no script of its own, so this runs only in the probe copy.
PROBE = """<script>
addEventListener("load", () => {
  const root = document.documentElement, body = document.body;
  const name = (e) => e.tagName.toLowerCase() + (e.className ? "." + e.className : "");
  const clipped = [...document.querySelectorAll("pre, .scroll")]
    .filter((e) => e.scrollWidth > e.clientWidth + 1).map(name);
  const wide = [...body.querySelectorAll("*")]
    .filter((e) => e.getBoundingClientRect().right > innerWidth + 1).slice(0, 5).map(name);
  const charts = [...document.querySelectorAll(".chart svg")]
    .map((e) => e.getBoundingClientRect().width / body.clientWidth);
  let overlaps = 0, smallest = 1e9;
  for (const svg of document.querySelectorAll(".chart svg")) {
    const boxes = [...svg.querySelectorAll("g[id^=xtick_] text")].map((t) => t.getBoundingClientRect());
    boxes.sort((p, q) => p.left - q.left);
    for (let i = 1; i < boxes.length; i++) if (boxes[i].left < boxes[i - 1].right) overlaps++;
    for (const t of svg.querySelectorAll("g[id^=ytick_] text")) {
      smallest = Math.min(smallest, t.getBoundingClientRect().height);
    }
  }
  body.dataset.fit = JSON.stringify({scroll: root.scrollWidth, inner: innerWidth, clipped, wide,
    charts, overlaps, smallest});
});
</script>"""


def fit(page: Path, tmp_path: Path, width: int) -> dict[str, Any]:
    """What the probe measured of ``page`` laid out ``width`` px wide."""
    probe = tmp_path / f"probe-{width}.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = chromium(probe, tmp_path / f"profile-{width}", f"--window-size={width},900", "--dump-dom")
    found = re.search(r'data-fit="([^"]*)"', done.stdout)
    assert found, done.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("width", [1400, 800])
def test_the_page_fits_the_window(report_page, tmp_path, width: int) -> None:
    measured = fit(report_page, tmp_path, width)
    assert measured["inner"] == width, measured  # the window size reached the layout
    assert measured["scroll"] <= measured["inner"], measured  # no horizontal scrolling
    assert measured["clipped"] == [] and measured["wide"] == [], measured  # no line cut off
    assert len(measured["charts"]) >= 2 and min(measured["charts"]) > 0.9, measured  # full width
    assert measured["overlaps"] == 0, measured
    assert measured["smallest"] >= 8, measured  # tick and row labels readable (px)
    shot = tmp_path / f"shot-{width}.png"
    size = f"--window-size={width},1600"
    done = chromium(report_page, tmp_path / "profile-shot", size, f"--screenshot={shot}")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert _ink(shot) > 0.05
    keep = os.environ.get("TWINRUN_HTML_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def test_the_fit_check_catches_a_wide_page(tmp_path) -> None:
    """Negative control: a table that cannot wrap and an unwrapped line overflow, and the probe says so."""
    page = tmp_path / "wide.html"
    cell = "x" * 400
    page.write_text(
        f'<html><body><div class="scroll" style="overflow-x:auto"><table><tr><td>{cell}</td></tr></table>'
        f'</div><pre>{cell}</pre><div style="width:1600px">wide</div></body></html>'
    )
    measured = fit(page, tmp_path, 800)
    assert measured["scroll"] > measured["inner"]
    assert "pre" in measured["clipped"] or "div.scroll" in measured["clipped"]
