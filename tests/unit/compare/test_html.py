"""The HTML report: self-contained, curves and heat map around the divergent step, light for long runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.sensitivity.broken_trainers import perturb_one_ulp
from tests.variants import APPS_BY_NAME
from twinrun.compare import curves
from twinrun.compare.html import render_html, write_html
from twinrun.compare.report_model import Divergence, Report
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


def test_the_heat_map_starts_at_the_divergent_step(planted) -> None:
    a, b, twin = planted
    drift = curves.parameter_drift(a, b, PLANTED_STEP)
    assert drift is not None and drift.steps[0] == PLANTED_STEP
    assert drift.cells[drift.params.index("encoder.weight")][0] == 1
    same = curves.parameter_drift(a, twin, 1)
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
    report = Report(str(a), str(b), {}, Divergence(step=4_321, epoch=1, cause="computation"))
    page = render_html(report, a, b)
    size = len(page.encode())
    assert size < 2_000_000, size
    assert "first divergent step 4321" in page  # the marked step survives downsampling
    curve = curves.loss_curves(a, b)[0]
    shown = curves.downsample(curve, keep=[4_321])
    assert len(shown.steps) <= curves.MAX_POINTS + 2 and 4_321 in shown.steps


def test_write_html_is_atomic(tmp_path) -> None:
    target = tmp_path / "report.html"
    write_html(target, "<html></html>")
    assert target.read_text() == "<html></html>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left


def test_a_file_name_that_is_not_utf8_is_written_escaped(tmp_path) -> None:
    from twinrun.compare.html import write_html

    write_html(tmp_path / "r.html", "<p>bad\udcffname.txt</p>")  # os.listdir's form of b"bad\xffname"
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == "<p>bad\\udcffname.txt</p>"
