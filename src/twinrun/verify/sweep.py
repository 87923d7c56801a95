"""``twinrun verify -m APP [sweep overrides]``: verify every point of a Hydra sweep.

The app's own multirun runs twice (or ``--runs N`` times), each time in a fresh process with
``hydra.sweep.dir=<workdir>/sweep-<i>``, so the configured Hydra launcher runs the points: the basic
launcher, ``hydra/launcher=joblib`` for local parallelism or ``submitit_slurm`` on a cluster. Points
are then matched across the sweeps by their job overrides (``.hydra/overrides.yaml``, whatever
``hydra.sweep.subdir`` is) and every pair of a point's run directories is compared with
:func:`twinrun.compare.runs.compare_runs`. :func:`verify_sweep` is the pure core;
:mod:`twinrun.verify.sweep_render` renders it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from twinrun.compare.report.model import DIFFERENT, IDENTICAL, Report, shown_report
from twinrun.verify.apps import (
    NO_OPTIONS,
    AppCommand,
    CompareOptions,
    RunRecord,
    VerifyError,
    compare_pair,
    launch_runs,
)
from twinrun.verify.outside import OUTSIDE_DIR
from twinrun.verify.outside_names import name_in

SWEEP_FORMAT = "twinrun-sweep/1"
HYDRA_DIR = ".hydra"

PointKey = tuple[tuple[str, ...], int]  # (the job's overrides, occurrence among equal overrides)


@dataclass(frozen=True)
class SweepPoint:
    """One job of one sweep: Hydra's job number, its overrides and its run directory."""

    num: int
    overrides: tuple[str, ...]
    run_dir: Path


@dataclass
class PointResult:
    """One point of the matrix: its run directory in each sweep (None: missing) and every pair compared."""

    label: str
    num: int
    overrides: tuple[str, ...]
    run_dirs: list[Path | None]
    pairs: dict[tuple[int, int], Report] = field(default_factory=dict)

    @property
    def missing_in(self) -> list[int]:
        """1-based numbers of the sweeps that have no run of this point."""
        return [i for i, d in enumerate(self.run_dirs, 1) if d is None]

    @property
    def verdict(self) -> str:
        differs = self.missing_in or any(r.exit_code for r in self.pairs.values())
        return DIFFERENT if differs else IDENTICAL

    @property
    def report(self) -> Report | None:
        """The first pair that differs, else the first pair (None when the point is missing somewhere)."""
        return shown_report(self.pairs.values())

    def differs_in(self) -> list[str]:
        """Sections that decide the verdict and differ, in the shown pair."""
        report = self.report
        return report.differing_sections if report is not None else []

    def first_divergence(self) -> str:
        """The summary column: where the point's runs part (step and cause) or what differs."""
        if self.missing_in:
            return "no run in " + ", ".join(f"sweep-{i}" for i in self.missing_in)
        report = self.report
        if report is None or not report.exit_code:
            return "-"
        if report.divergence is not None:
            return report.divergence.where
        return "differs in " + ", ".join(self.differs_in())


@dataclass
class SweepResult:
    """Every sweep run and every point compared across them."""

    app: AppCommand
    workdir: Path
    sweeps: list[RunRecord]
    points: list[PointResult]
    launcher: str | None = None

    @property
    def identical(self) -> bool:
        return all(p.verdict == IDENTICAL for p in self.points)

    @property
    def exit_code(self) -> int:
        return 0 if self.identical else 1

    @property
    def first_different(self) -> PointResult | None:
        return next((p for p in self.points if p.verdict != IDENTICAL), None)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise VerifyError(
            f"{path} cannot be read ({type(error).__name__}); the sweep left it broken"
        ) from None


def find_points(sweep_dir: Path) -> list[SweepPoint]:
    """Every job of a finished sweep, ordered by Hydra's job number (``hydra.job.num``)."""
    points = []
    for overrides_file in sorted(Path(sweep_dir).rglob(f"{HYDRA_DIR}/overrides.yaml")):
        run_dir = overrides_file.parent.parent
        overrides = _read_yaml(overrides_file)
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise VerifyError(f"{overrides_file}: expected a list of overrides")
        hydra_yaml = run_dir / HYDRA_DIR / "hydra.yaml"
        num = _job_num(_read_yaml(hydra_yaml)) if hydra_yaml.is_file() else None
        points.append(SweepPoint(-1 if num is None else num, tuple(overrides), run_dir))
    return sorted(points, key=lambda p: (p.num, str(p.run_dir)))


def _job_num(hydra_cfg: Any) -> int | None:
    """``hydra.job.num`` of a job's ``.hydra/hydra.yaml``; None where any level is missing or odd."""
    for key in ("hydra", "job", "num"):
        hydra_cfg = hydra_cfg.get(key) if isinstance(hydra_cfg, dict) else None
    return hydra_cfg if isinstance(hydra_cfg, int) else None


def _keyed(points: Sequence[SweepPoint]) -> dict[PointKey, SweepPoint]:
    """Points keyed by their overrides; a repeated point (``a=1,1``) is told apart by its occurrence."""
    seen: Counter[tuple[str, ...]] = Counter()
    keyed = {}
    for point in points:
        keyed[(point.overrides, seen[point.overrides])] = point
        seen[point.overrides] += 1
    return keyed


def match_points(sweeps: Sequence[Sequence[SweepPoint]]) -> list[list[SweepPoint | None]]:
    """Group the points of several sweeps by overrides: one list per point, one entry per sweep."""
    keyed = [_keyed(points) for points in sweeps]
    order = list(dict.fromkeys(key for points in keyed for key in points))  # first sweep's order first
    return [[points.get(key) for points in keyed] for key in order]


def point_labels(overrides: Sequence[Sequence[str]]) -> list[str]:
    """What tells each point apart: its overrides minus those every point shares."""
    common = set.intersection(*(set(o) for o in overrides)) if len(overrides) > 1 else set()
    return [" ".join(o for o in items if o not in common) or "(no overrides)" for items in overrides]


def _launcher(sweep_dir: Path) -> str | None:
    """The launcher class Hydra recorded in ``multirun.yaml`` (e.g. ``JoblibLauncher``)."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    target = ((_read_yaml(path) or {}).get("hydra", {}).get("launcher") or {}).get("_target_")
    return str(target).rsplit(".", 1)[-1] if target else None


def verify_sweep(
    app: str | AppCommand,
    overrides: Sequence[str] = (),
    runs: int = 2,
    workdir: str | Path | None = None,
    *,
    progress: TextIO | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    options: CompareOptions = NO_OPTIONS,
) -> SweepResult:
    """Run the sweep ``overrides`` describes ``runs`` times (each sweep at most ``timeout`` seconds) and
    compare every point across the runs with ``options``.

    Raises :class:`VerifyError` (unknown app, bad overrides, a failed sweep, a sweep without points)
    or :class:`twinrun.compare.read.run_reader.UnusableRunError` (a point left nothing comparable).
    """
    command, directory, records = launch_runs(
        app, overrides, runs, workdir, progress=progress, cwd=cwd, kind="sweep", timeout=timeout
    )
    found = [find_points(record.run_dir) for record in records]
    for record, points in zip(records, found, strict=True):
        if not points:
            raise VerifyError(
                f"{record.run_dir} holds no job with {HYDRA_DIR}/overrides.yaml; did {command.app} run "
                "under @hydra.main with hydra.output_subdir set?"
            )
    matched = match_points(found)
    shown = [next(p for p in group if p is not None) for group in matched]
    labels = point_labels([p.overrides for p in shown])
    result = SweepResult(command, directory, records, [], _launcher(records[0].run_dir))
    for group, first, label in zip(matched, shown, labels, strict=True):
        point = PointResult(label, first.num, first.overrides, [p.run_dir if p else None for p in group])
        for (i, a), (j, b) in itertools.combinations(enumerate(group, 1), 2):
            if a is not None and b is not None:
                point.pairs[(i, j)] = compare_pair(a.run_dir, b.run_dir, command.app, options)
        result.points.append(point)
    outside = _outside_point(records, command.app, options)
    if outside is not None:
        result.points.append(outside)
    return result


OUTSIDE_LABEL = "(files written outside the run directories)"


def _outside_point(records: Sequence[RunRecord], app: str, options: CompareOptions) -> PointResult | None:
    """Rule 3 for sweeps: what each sweep wrote outside its directory (moved into its ``outside/``),
    compared across sweeps as one more row; None when no sweep wrote anything there."""
    dirs = [r.run_dir / OUTSIDE_DIR for r in records]
    if not any(d.is_dir() for d in dirs):
        return None
    point = PointResult(OUTSIDE_LABEL, -1, (), [d if d.is_dir() else None for d in dirs])
    for (i, a), (j, b) in itertools.combinations(enumerate(point.run_dirs, 1), 2):
        if a is not None and b is not None:
            point.pairs[(i, j)] = compare_pair(a, b, app, options)
            name_in(point.pairs[(i, j)].hints, [r.outside for r in records], i, j)
    return point
