"""Pictures of two runs drawn with matplotlib (Agg backend) as inline SVG text for the HTML report.

matplotlib is imported lazily: the terminal, JSON and markdown reports never pay for it. Names come
from the runs (metric keys, CSV columns, parameter names, file paths): every text object that shows one
is drawn with ``parse_math=False``, so ``$...$`` is plain text, never mathtext or TeX.
"""

from __future__ import annotations

import io
import math
from typing import Any

from twinrun.compare.report.curves import Curve, Drift

COLOR_A, COLOR_B, COLOR_MARK = "#1f77b4", "#ff7f0e", "#d62728"
PLAIN = {"parse_math": False}  # a run's names are text, not math markup


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display, same pixels everywhere
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "twinrun"  # stable element ids: the same report twice is the same file
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: selectable, searchable, small
    plt.rcParams["text.usetex"] = False  # a matplotlibrc's TeX would parse the runs' names
    return plt


def _svg(fig: Any) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML


def _pairs(steps: list[float], values: list[float | None]) -> tuple[list[float], list[float]]:
    kept = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None and math.isfinite(v)]
    return [s for s, _ in kept], [v for _, v in kept]


def curve_svg(curve: Curve, diverged_at: float | None) -> str:
    """Both runs' curve overlaid (top) and their per-step difference on a log scale (bottom)."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10.0, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for values, color, label, style in ((curve.a, COLOR_A, "run A", "-"), (curve.b, COLOR_B, "run B", "--")):
        xs, ys = _pairs(curve.steps, values)
        top.plot(xs, ys, style, color=color, label=label, linewidth=1.4)
    top.set_ylabel(curve.name, **PLAIN)
    top.set_title(f"{curve.name} ({curve.source})", fontsize=10, **PLAIN)
    diffs = [
        (s, abs(a - b))
        for s, a, b in zip(curve.steps, curve.a, curve.b, strict=True)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a != b
    ]
    if diffs:
        bottom.semilogy([s for s, _ in diffs], [d for _, d in diffs], ".", color=COLOR_MARK, markersize=3)
    else:
        bottom.text(0.5, 0.5, "no step differs", ha="center", va="center", transform=bottom.transAxes)
        bottom.set_yticks([])
    bottom.set_ylabel("|A - B|")
    bottom.set_xlabel("step")
    if diverged_at is not None:
        for axis in (top, bottom):
            axis.axvline(diverged_at, color=COLOR_MARK, linestyle=":", linewidth=1.2)
        top.annotate(
            f"first divergent step {diverged_at:g}",
            xy=(diverged_at, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            color=COLOR_MARK,
            fontsize=9,
        )
    top.legend(loc="upper right", fontsize=9)
    return _svg(fig)


def drift_svg(drift: Drift) -> str:
    """Heat map: which parameter fingerprints differ (rows) at which step (columns)."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    rows = len(drift.params)
    height = 1.4 + 0.26 * rows
    fig, axis = plt.subplots(figsize=(10.0, min(max(height, 2.6), 18.0)))
    colors = ListedColormap(["#dddddd", "#2ca02c", COLOR_MARK])  # unknown, same, differs
    image = axis.imshow(
        [[c + 1 for c in row] for row in drift.cells],
        aspect="auto",
        interpolation="nearest",
        cmap=colors,
        vmin=0,
        vmax=2,
    )
    axis.set_yticks(range(rows), drift.params, fontsize=10 if rows <= 40 else 8, **PLAIN)
    ticks = step_ticks(len(drift.steps))
    axis.set_xticks(ticks, [str(drift.steps[i]) for i in ticks], fontsize=9)
    axis.set_xlabel("step")
    axis.set_title("parameter fingerprints that differ, from the first divergent step on", fontsize=11)
    bar = fig.colorbar(image, ax=axis, ticks=[1 / 3, 1, 5 / 3], fraction=0.04)
    bar.ax.set_yticklabels(["not recorded", "same", "differs"], fontsize=9)
    return _svg(fig)


def step_ticks(columns: int, most: int = 8) -> list[int]:
    """At most ``most`` evenly spaced column indices, the first and last included, none crowding another:
    the last regular tick is dropped when it sits within half a spacing of to the last column."""
    if columns <= most:
        return list(range(columns))
    spacing = math.ceil((columns - 1) / (most - 1))
    ticks = list(range(0, columns - 1, spacing))
    if len(ticks) > 1 and columns - 1 - ticks[-1] <= spacing / 2:
        ticks.pop()
    return [*ticks, columns - 1]
