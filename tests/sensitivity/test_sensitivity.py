"""The verifier must catch nondeterminism, not only bless twins: every broken trainer is flagged,
with the divergence report naming the first step and the right cause."""

from __future__ import annotations

import pytest

from tests.sensitivity.broken_trainers import SENSITIVITY_SET, TRAINERS
from tests.variants import APPS_BY_NAME

CASES = sorted((name, app) for name, (_, apps, _, _) in SENSITIVITY_SET.items() for app in apps)


@pytest.mark.parametrize(("name", "app_name"), CASES)
def test_broken_trainer_is_flagged(name: str, app_name: str, twinrun_twins) -> None:
    mutate, _, seed, cause = SENSITIVITY_SET[name]
    cfg = APPS_BY_NAME[app_name].compose(f"seed={seed}", "training.epochs=1")
    report = twinrun_twins(mutate(TRAINERS[app_name]), cfg).report
    assert report.verdict == "different", name
    assert report.sections["weights"].status == "different"
    assert report.sections["weights"].differing, "the differing tensors are named"
    assert report.divergence is not None
    assert (report.divergence.step, report.divergence.cause) == (1, cause)


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_another_seed_gives_other_weights(app_name: str, tmp_path) -> None:
    from twinrun.compare.runs import compare_runs

    app = APPS_BY_NAME[app_name]
    for seed in (1, 2):
        app.train(app.compose(f"seed={seed}", "training.epochs=1"), tmp_path / str(seed))
    report = compare_runs(tmp_path / "1", tmp_path / "2")
    assert report.exit_code == 1
    weights = report.sections["weights"]
    assert weights.differing and all(diff.differing > 0 for diff in weights.differing)
    assert [m.name for m in report.sections["config"].changed] == ["seed"]
    assert report.divergence is not None and report.divergence.cause == "configuration"


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_resume_that_forgets_the_rng_state_is_caught(app_name: str, tmp_path) -> None:
    """Negative control for tests/repro/test_resume.py: the checkpoint's RNG state matters."""
    from unittest import mock

    from twinrun.compare.runs import compare_runs

    app = APPS_BY_NAME[app_name]
    overrides = ("seed=21", "training.epochs=2", "training.batch_size=48")
    app.train(app.compose(*overrides), tmp_path / "full")
    app.train(app.compose(*overrides, "training.max_steps=3"), tmp_path / "part")
    with mock.patch("twinrun.trainers.loop.restore_rng_state", lambda state: None):
        app.train(app.compose(*overrides, f"training.resume_from={tmp_path / 'part'}"), tmp_path / "resumed")
    report = compare_runs(tmp_path / "full", tmp_path / "resumed")
    assert report.sections["weights"].status == "different"
    assert (report.divergence.step, report.divergence.cause) == (4, "rng stream")
