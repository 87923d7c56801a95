"""The HTML report: self-contained, curves and heat map around the divergent step, light for long runs."""

from __future__ import annotations

import html
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.helpers import fake_runs as fr
from tests.sensitivity.broken_trainers import perturb_one_ulp
from tests.variants import APPS_BY_NAME
from twinrun.compare.report import curves
from twinrun.compare.report import html as html_page
from twinrun.compare.report.html import render_html, write_html
from twinrun.compare.report.model import DIFFERENT, Divergence, FileEntry, FilesSection, Report
from twinrun.compare.report.page_files import PageFiles
from twinrun.compare.runs import compare_runs

pytest.importorskip("matplotlib")

OVERRIDES = ("seed=9", "training.epochs=2", "training.batch_size=48")
PLANTED_STEP = 3


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two VAE runs that part at PLANTED_STEP (one ULP of encoder.weight), and a clean twin of A."""
    app = APPS_BY_NAME["vae_mnist"]
    a, b, twin = (tmp_path_factory.mktemp(n) for n in ("a", "b", "twin"))
    app.train(app.compose(*OVERRIDES), a)
    app.train(app.compose(*OVERRIDES), b, hooks=perturb_one_ulp(PLANTED_STEP, "encoder.weight"))
    app.train(app.compose(*OVERRIDES), twin)
    return a, b, twin


def _self_contained(page: str) -> None:
    # no network and no file references: every src/href is a data URI or an in-page anchor
    for ref in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert ref.startswith(("data:", "#")), ref
    assert "<script" not in page


def test_planted_divergence_is_marked_in_curves_and_heat_map(planted) -> None:
    a, b, _ = planted
    report = compare_runs(a, b)
    page = render_html(report, a, b)
    _self_contained(page)
    assert 'id="divergence" data-step="3"' in page
    assert f"first divergent step {PLANTED_STEP}" in page  # the marker on the per-step loss curve
    assert "parameter fingerprints that differ" in page  # the heat map
    assert page.count("<svg") >= 2
    assert 'alt="images/reconstructions.png run A"' in page  # pictures side by side
    assert "encoder.weight" in page


def test_identical_twins_have_no_divergence_marks(planted) -> None:
    a, _, twin = planted
    page = render_html(compare_runs(a, twin), a, twin)
    _self_contained(page)
    assert 'class="verdict identical"' in page
    assert 'id="divergence"' not in page and "first divergent step" not in page
    assert "parameter fingerprints that differ" not in page  # no heat map without a divergence


def _trace_only(a: Path, b: Path) -> PageFiles:
    return PageFiles(a.resolve(), b.resolve(), ["trace.jsonl"])


def test_the_heat_map_starts_at_the_divergent_step(planted) -> None:
    a, b, twin = planted
    drift = curves.parameter_drift(_trace_only(a, b), PLANTED_STEP)
    assert drift is not None and drift.steps[0] == PLANTED_STEP
    assert drift.cells[drift.params.index("encoder.weight")][0] == 1
    same = curves.parameter_drift(_trace_only(a, twin), 1)
    assert same is not None and all(c == 0 for row in same.cells for c in row)


def _long_run(run: Path, steps: int, bump: int | None) -> None:
    run.mkdir()
    with (run / "trace.jsonl").open("w") as out:
        for step in range(1, steps + 1):
            loss = 1.0 / step + (1e-6 if bump is not None and step >= bump else 0.0)
            params = {
                f"layer{i}.weight": f"{(step * (i + 1) + (bump is not None and step >= bump)):016x}"
                for i in range(40)
            }
            out.write(json.dumps({"step": step, "epoch": 1, "loss": loss.hex(), "params": params}) + "\n")


def test_a_10000_step_report_stays_under_2_mb(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _long_run(a, 10_000, None)
    _long_run(b, 10_000, 4_321)
    files = FilesSection(files=[FileEntry("trace.jsonl", "trace", DIFFERENT)])
    report = Report(str(a), str(b), {"files": files}, Divergence(step=4_321, epoch=1, cause="computation"))
    page = render_html(report, a, b)
    size = len(page.encode())
    assert size < 2_000_000, size
    assert "first divergent step 4321" in page  # the marked step survives downsampling
    curve = curves.loss_curves(_trace_only(a, b))[0]
    shown = curves.downsample(curve, keep=[4_321])
    assert len(shown.steps) <= curves.MAX_POINTS + 2 and 4_321 in shown.steps


def test_write_html_is_atomic(tmp_path) -> None:
    target = tmp_path / "report.html"
    write_html(target, "<html></html>")
    assert target.read_text() == "<html></html>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left


MARKER = '<x-planted x-attr="1">&amp;'  # a tag, an attribute and an entity, if it reached the page raw


class _Markup(HTMLParser):
    """Every tag and attribute name the page holds, and its text as a browser reads it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.names: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names |= {tag, *(name for name, _ in attrs)}

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _planted(page: str) -> tuple[bool, bool]:
    """(the marker became markup, the marker is shown as text)."""
    parser = _Markup()
    parser.feed(page)
    raw = any("x-planted" in n or "x-attr" in n for n in parser.names)
    return raw, MARKER in "".join(parser.text)


@pytest.fixture
def hostile_names(tmp_path: Path) -> tuple[Path, Path]:
    """Twins whose config value, log line, metric, CSV column and picture name hold ``<``, ``&``, ``"``."""
    runs = []
    for name, jitter in (("a", 1), ("b", 2)):
        config = fr.default_config()
        config["model"]["note"] = f"{name} {MARKER}"  # differs: shown in the config details
        run = fr.make_run(tmp_path / name, jitter=jitter, config=config)
        fr.edit_jsonl(run, "metrics.jsonl", lambda rows: [r.update({f"loss {MARKER}": 1.5}) for r in rows])
        (run / "loss.csv").write_text(f'step,"val_loss {MARKER.replace(chr(34), 2 * chr(34))}"\n1,0.5\n')
        fr.write_png(run / "images" / f"{MARKER}.png")
        runs.append(run)
    with (runs[1] / f"{fr.LOG_NAME}.log").open("a") as log:
        log.write(f"[2026-11-27 23:59:59,000][train][INFO] - only in B {MARKER}\n")
    return runs[0], runs[1]


def test_names_values_and_log_lines_are_escaped_flags_say_yes_no(hostile_names: tuple[Path, Path]) -> None:
    a, b = hostile_names
    report = compare_runs(a, b)
    page = render_html(report, a, b)
    raw, shown = _planted(page)
    assert not raw and shown
    assert f"only in B {html.escape(MARKER)}" in page  # the log line, escaped in the details
    assert f'alt="images/{html.escape(MARKER)}.png run A"' in page  # inside an attribute too
    # The files table's decisive column in words (env.json is context: not decisive).
    files = page[page.index("<h2>Files</h2>") : page.index("</table>", page.index("<h2>Files</h2>"))]
    assert "<th>decisive</th>" in files and "<td>yes</td>" in files and "<td>no</td>" in files
    assert "True" not in files and "False" not in files


def test_the_escaping_check_catches_an_unescaped_name(
    hostile_names: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control: the same page with escaping switched off fails the check."""
    a, b = hostile_names
    monkeypatch.setattr(html_page, "_esc", str)
    raw, _ = _planted(render_html(compare_runs(a, b), a, b))
    assert raw


def test_names_that_are_not_utf8_are_shown_escaped(tmp_path: Path) -> None:
    """A file name with undecodable bytes and a lone surrogate in JSON draw and write (issue 23 item 8)."""
    a, b = fr.make_twins(tmp_path)
    for run in (a, b):
        with open(os.path.join(os.fsencode(run), b"loss\xff.csv"), "wb") as out:
            out.write(b"step,loss\n1,0.5\n")
        fr.write_png(Path(os.fsdecode(os.path.join(os.fsencode(run), b"images/pic\xfe.png"))))
        fr.edit_jsonl(run, "metrics.jsonl", lambda rows: [r.update({"loss \ud800": 1.0}) for r in rows])
    page = render_html(compare_runs(a, b), a, b)
    write_html(tmp_path / "report.html", page)
    assert "loss\\xff.csv" in page and "pic\\xfe.png" in page and "loss \\ud800 per epoch" in page


def test_a_file_name_that_is_not_utf8_is_written_escaped(tmp_path) -> None:
    from twinrun.compare.report.html import write_html

    write_html(tmp_path / "r.html", "<p>bad\udcffname.txt</p>")  # os.listdir's form of b"bad\xffname"
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == "<p>bad\\udcffname.txt</p>"
