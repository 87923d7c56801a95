"""The report's pictures: the runs' names drawn as plain text, heat-map ticks that never crowd."""

from __future__ import annotations

import html
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.report import plots
from twinrun.compare.report.curves import Curve, Drift
from twinrun.compare.report.html import render_html
from twinrun.compare.runs import compare_runs

pytest.importorskip("matplotlib")

# Math markup that mathtext refuses (an unbalanced group) or TeX would typeset.
METRIC = r"loss $\frac{1}{$"
COLUMN = r"val_loss $x^{$"
PARAM = r"enc.$\alpha$.weight"


def _svg_texts(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", page)]


def _rename(rows: list[dict[str, Any]], diverge_from: int | None = None) -> None:
    for row in rows:
        params = row.get("params")
        if params:
            row["params"] = {(PARAM if k == "encoder.weight" else k): v for k, v in params.items()}
        if diverge_from is not None and row["step"] >= diverge_from:
            row["loss"] = (float.fromhex(row["loss"]) + 1e-3).hex()
            if params:
                row["params"][PARAM] = "f" * 16


@pytest.fixture
def marked_up(tmp_path: Path) -> tuple[Path, Path]:
    """Twins whose metric key, CSV column and parameter name carry math markup, parting at step 4."""
    a, b = fr.make_twins(tmp_path)
    for run, diverge in ((a, None), (b, 4)):
        fr.edit_jsonl(run, "metrics.jsonl", lambda rows: [r.update({METRIC: r["train_loss"]}) for r in rows])
        fr.edit_jsonl(run, "trace.jsonl", lambda rows, d=diverge: _rename(rows, d))
        (run / "logs").mkdir()
        (run / "logs" / "metrics.csv").write_text(f'step,"{COLUMN}"\n1,0.5\n2,0.25\n')
    return a, b


def test_math_markup_in_names_is_drawn_as_plain_text(marked_up: tuple[Path, Path]) -> None:
    a, b = marked_up
    report = compare_runs(a, b)
    assert report.divergence is not None and report.divergence.step == 4
    texts = _svg_texts(render_html(report, a, b))
    assert f"{METRIC} per epoch" in texts  # the metric's y label, as written
    assert COLUMN in texts  # the CSV column's y label
    assert PARAM in texts  # the heat map's row label
    # Negative control for the search itself: a plain name is found, one the runs lack is not.
    assert "train_loss per epoch" in texts and "not a name in these runs" not in texts


def test_every_text_object_with_a_name_is_plain() -> None:
    """The same names straight into each picture, usetex requested by a matplotlibrc included."""
    import matplotlib

    curve = Curve(METRIC, f"{COLUMN}.csv", [1.0, 2.0], [1.0, 2.0], [1.0, 2.5])
    drift = Drift([1, 2], [PARAM, "$$"], [[0, 1], [1, -1]])
    with matplotlib.rc_context({"text.usetex": True}):
        texts = _svg_texts(plots.curve_svg(curve, 2) + plots.drift_svg(drift))
    assert METRIC in texts and f"{METRIC} ({COLUMN}.csv)" in texts
    assert PARAM in texts and "$$" in texts


@pytest.mark.parametrize("columns", [1, 2, 7, 8, 9, 10, 17, 100, 233, 239, 240, 241])
def test_heat_map_ticks_are_spread_and_end_at_the_last_column(columns: int) -> None:
    ticks = plots.step_ticks(columns)
    assert ticks[0] == 0 and ticks[-1] == columns - 1 and len(ticks) <= 8
    gaps = [b - a for a, b in pairwise(ticks)]
    if columns > 8:  # no two labels closer than half the regular spacing: they would overlap
        assert min(gaps) > max(gaps) / 2, ticks
