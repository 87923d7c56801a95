"""Twin runs of every config variant of both trainers: bit-identical weights, identical normalized
logs, metrics, traces and canonical resolved configs, judged by ``twinrun.compare.runs``.

Each option an app can use is one test; the default config's twins are those of the DataLoader
workers test. Every run here trains two epochs (``tests.variants.TEST_SIZE``), so a fault that
starts in the second epoch shows, and with two DataLoader workers (``REPRO_WORKERS``), so a fault
that only workers show does too. Each test fails if the trainer is made nondeterministic (the
plugin's twins start from different global RNG states); the negative controls live in
``tests/sensitivity``.
"""

from __future__ import annotations

import pytest

from tests.variants import APPS_BY_NAME, REPRO_WORKERS, config_variants, train_from_scrambled_rngs
from twinrun.compare.report.model import DIFFERENT
from twinrun.compare.runs import compare_runs

RESULT_SECTIONS = ("weights", "metrics", "trace")


@pytest.mark.parametrize(("app_name", "variant"), config_variants())
def test_variant_twins_are_identical(app_name: str, variant: str, twinrun_twins) -> None:
    app = APPS_BY_NAME[app_name]
    result = twinrun_twins(app.train, app.compose(variant, "seed=3", REPRO_WORKERS))
    result.assert_identical()
    sections = result.report.sections
    for name in ("weights", "config", "logs", "metrics", "trace"):
        assert sections[name].status == "identical", name
    assert result.report.divergence is None


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_dataloader_workers_give_identical_twins_and_the_in_process_result(
    app_name: str, twinrun_twins, tmp_path
) -> None:
    """``num_workers=2`` twins match each other, and a ``num_workers=0`` run matches them too: the worker
    processes change neither the batches nor the global RNG streams the model draws from."""
    app = APPS_BY_NAME[app_name]
    twins = twinrun_twins(app.train, app.compose("seed=0", REPRO_WORKERS))
    twins.assert_identical()
    in_process = tmp_path / "workers-0"
    train_from_scrambled_rngs(app, app.compose("seed=0", "training.num_workers=0"), in_process)
    report = compare_runs(twins.run_dirs[0], in_process)
    for section in RESULT_SECTIONS:
        assert report.sections[section].status == "identical", (section, report.sections[section].summary)
    assert report.divergence is None
    # Control: the comparer saw two different configs (the runs really used 2 and 0 workers).
    assert report.sections["config"].status == DIFFERENT
    assert "training.num_workers" in repr(report.sections["config"])
