"""Twin runs on the GPU, and what a CPU-vs-GPU comparison says. Skipped without a CUDA device."""

from __future__ import annotations

import pytest

from tests.variants import APPS_BY_NAME

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_gpu_twins_are_identical(app_name: str, twinrun_twins) -> None:
    app = APPS_BY_NAME[app_name]
    result = twinrun_twins(app.train, app.compose("device=cuda", "seed=3"))
    result.assert_identical()
    assert result.report.sections["environment"].bit_identity_expected is True
