"""Twin runs of every config variant of both trainers: bit-identical weights, identical normalized
logs, metrics, traces and canonical resolved configs, judged by ``twinrun.compare.runs``.

Each test here fails if the trainer is made nondeterministic (the plugin's twins start from different
global RNG states); the negative controls live in ``tests/sensitivity``.
"""

from __future__ import annotations

import pytest

from tests.variants import APPS_BY_NAME, config_variants


@pytest.mark.parametrize(("app_name", "variant"), config_variants())
def test_variant_twins_are_identical(app_name: str, variant: str, twinrun_twins) -> None:
    app = APPS_BY_NAME[app_name]
    result = twinrun_twins(app.train, app.compose(variant, "seed=3"))
    result.assert_identical()
    sections = result.report.sections
    for name in ("weights", "config", "logs", "metrics", "trace"):
        assert sections[name].status == "identical", name
    assert result.report.divergence is None


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_twins_with_dataloader_workers(app_name: str, twinrun_twins) -> None:
    app = APPS_BY_NAME[app_name]
    twinrun_twins(
        app.train, app.compose("seed=0", "training.num_workers=2", "training.epochs=1")
    ).assert_identical()
