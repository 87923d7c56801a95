"""The ``twinrun_golden`` fixture: check a run against a committed golden file, record it when missing.

Like the regression-fixture libraries: a missing golden is written from this run and the test fails,
saying so (commit the file; the next run checks against it); ``--twinrun-update-golden`` rewrites every
golden a test touches (and fails those tests, so a regeneration is never silent). Import-light: the
golden package loads when the fixture is called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

UPDATE_OPTION = "--twinrun-update-golden"


def add_options(group: Any) -> None:
    group.addoption(
        UPDATE_OPTION,
        action="store_true",
        default=False,
        help="twinrun_golden: rewrite the golden files from this run instead of checking against them",
    )


class GoldenFixture:
    """``twinrun_golden(path, run_dir=None, *, train=None, cfg=None, app=None, overrides=())``.

    Give the run to check one of three ways: ``run_dir`` (a finished run directory), ``train`` and
    ``cfg`` (``train(cfg, run_dir)`` or a Hydra task function, run here into a fresh directory), or
    ``app`` and ``overrides`` (the command-line form: a fresh process, the case recorded so that
    ``twinrun golden check`` can re-run it). A relative ``path`` is relative to the test file.
    Returns the :class:`~twinrun.golden.check.GoldenReport`; fails the test when the run changed.
    """

    def __init__(self, test_dir: Path, workdir: Callable[[], Path], update: bool) -> None:
        self.test_dir, self.workdir, self.update = test_dir, workdir, update

    def __call__(
        self,
        path: str | Path,
        run_dir: str | Path | None = None,
        *,
        train: Callable[..., Any] | None = None,
        cfg: Any = None,
        app: str | None = None,
        overrides: Sequence[str] = (),
    ) -> Any:
        from twinrun.golden.check import check_golden
        from twinrun.golden.layout import load_golden, write_golden
        from twinrun.golden.record import golden_from_run
        from twinrun.golden.report import render_text

        given = [run_dir is not None, train is not None, app is not None]
        if sum(given) != 1:
            raise TypeError("twinrun_golden needs exactly one of run_dir, train (with cfg) or app")
        golden_path = Path(path) if Path(path).is_absolute() else self.test_dir / path
        run = Path(run_dir) if run_dir is not None else self._run(train, cfg, app, overrides)
        current = golden_from_run(run, app, overrides)
        if self.update or not golden_path.is_file():
            if golden_path.is_file():  # keep calibrated bands: only the values are regenerated
                current["bands"] = load_golden(golden_path).get("bands", current["bands"])
            write_golden(golden_path, current)
            what = "rewrote" if self.update else "did not exist; wrote"
            pytest.fail(f"golden {golden_path} {what} it from this run: review and commit it", pytrace=False)
        report = check_golden(load_golden(golden_path), current, name=str(golden_path))
        if not report.passed:
            pytest.fail(render_text(report), pytrace=False)
        return report

    def _run(self, train: Any, cfg: Any, app: str | None, overrides: Sequence[str]) -> Path:
        if app is not None:
            from twinrun.golden.runner import run_app

            return run_app(app, overrides, self.workdir(), progress=None)
        if cfg is None:
            raise TypeError("twinrun_golden(train=...) needs cfg= too")
        from twinrun.testing.hydra_task import as_train
        from twinrun.testing.twins import preserved_global_state

        run_dir = self.workdir() / "run"
        run_dir.mkdir()
        with preserved_global_state():
            as_train(train)(cfg, run_dir)
        return run_dir


@pytest.fixture
def twinrun_golden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GoldenFixture:
    """Check a run against a golden file (see :class:`GoldenFixture`)."""
    update = bool(request.config.getoption("twinrun_update_golden"))
    return GoldenFixture(
        Path(str(request.path)).parent, lambda: tmp_path_factory.mktemp("twinrun-golden"), update
    )
