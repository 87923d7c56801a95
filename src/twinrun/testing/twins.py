"""Twin runs in the test process (``train(cfg, run_dir)`` or a Hydra task) and in fresh processes.

Import-light: torch, hydra and the comparer load inside the functions, because the pytest plugin
imports this module in every pytest session of every project that has twinrun installed.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twinrun.compare.report.model import Report


@dataclass
class TwinResult:
    """The runs of one twin check: ``reports[i]`` compares run ``i + 1`` with run 0."""

    run_dirs: list[Path]
    reports: list[Report] = field(default_factory=list)

    @property
    def report(self) -> Report:
        """The first report that differs, else the first one."""
        from twinrun.compare.report.model import shown_report

        shown = shown_report(self.reports)
        assert shown is not None, "twin runs are at least two runs"
        return shown

    @property
    def identical(self) -> bool:
        return all(r.exit_code == 0 for r in self.reports)

    @property
    def verdict(self) -> str:
        """``identical`` or ``different`` (of :attr:`report`)."""
        return self.report.verdict

    def text(self) -> str:
        """The text rendering of :attr:`report`."""
        from twinrun.compare.report.render import render_text

        return render_text(self.report)

    def assert_identical(self) -> None:
        """Raise ``AssertionError`` carrying the text report unless every run matched the first."""
        if not self.identical:
            raise AssertionError(f"twin runs differ:\n{self.text()}")


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Restore the global RNGs and torch's determinism switches that a training run changes."""
    import torch

    from twinrun.record.rng_state import capture_rng_state, restore_rng_state

    rng = capture_rng_state()
    switches = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    try:
        yield
    finally:
        restore_rng_state(rng)
        torch.use_deterministic_algorithms(switches[0], warn_only=switches[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = switches[2:4]
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches[4:6]


def scramble_global_rngs() -> None:
    """Seed python, numpy and torch from OS entropy: each twin starts from its own global state."""
    import random

    import numpy as np
    import torch

    random.seed(secrets.randbits(64))
    np.random.seed(secrets.randbits(32))
    torch.manual_seed(secrets.randbits(63))


def _check_runs(runs: int) -> None:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2:
        raise ValueError(f"twin runs need runs >= 2, got {runs!r}")


def run_twins(
    train: Callable[..., Any],
    cfg: Any,
    base_dir: Path,
    runs: int = 2,
) -> TwinResult:
    """Run ``train`` ``runs`` times into ``base_dir / "run-<i>"`` and compare each run with the first.

    ``train`` is ``train(cfg, run_dir)``, or a Hydra task ``task(cfg)`` (also ``@hydra.main``-decorated)
    that finds its output directory through ``HydraConfig``: it runs as Hydra would run it, with the
    twin's directory as output directory, and its resolved config goes to ``resolved_config.yaml``.
    """
    from twinrun.testing.hydra_task import as_train
    from twinrun.verify.outside import OutsideWatch
    from twinrun.verify.outside_names import function_folder

    _check_runs(runs)
    call = as_train(train)
    run_dirs = [base_dir / f"run-{i}" for i in range(1, runs + 1)]
    # Rule 3: what a twin writes outside its run directory moves into it before the next twin starts.
    watch = OutsideWatch(Path.cwd(), function_folder(train), [base_dir], base_dir / ".twinrun-outside-backup")
    twins = []
    try:
        with preserved_global_state():
            for index, run_dir in enumerate(run_dirs, start=1):
                run_dir.mkdir(parents=True)
                scramble_global_rngs()
                watch.before()
                call(cfg, run_dir)  # one that raises leaves what it wrote where it is
                twins.append(watch.after(index, run_dir))
    finally:
        watch.close()
    return _compared(run_dirs, twins)


def _compared(run_dirs: list[Path], twins: Sequence[Any]) -> TwinResult:
    """Every run compared with the first; the reports name what each pair wrote outside its run dir."""
    from twinrun.compare.runs import compare_runs
    from twinrun.verify.outside_names import name_in

    reports = [compare_runs(run_dirs[0], other) for other in run_dirs[1:]]
    for index, report in enumerate(reports, start=2):
        name_in(report.hints, twins, 1, index)
    return TwinResult(run_dirs, reports)


def run_cli_twins(
    app: str,
    overrides: Sequence[str] = (),
    workdir: Path | None = None,
    runs: int = 2,
    cwd: str | Path | None = None,
) -> TwinResult:
    """Start ``app`` (console script, ``module:function`` or script path) ``runs`` times in fresh
    processes, as ``twinrun verify`` does, and compare each run with the first.

    Raises :class:`twinrun.verify.apps.VerifyError` when the app is unknown or a run fails.
    """
    from twinrun.verify.apps import launch_runs

    _check_runs(runs)
    _, _, records = launch_runs(app, list(overrides), runs, workdir, cwd=cwd)
    return _compared([record.run_dir for record in records], [record.outside for record in records])
