"""A CPU run and a GPU run of the same config: reported as not expected to be bit-identical."""

from __future__ import annotations

import pytest

from tests.variants import APPS_BY_NAME
from twinrun.compare.runs import compare_runs

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("app_name", sorted(APPS_BY_NAME))
def test_cpu_versus_gpu_is_reported_as_not_expected(app_name: str, tmp_path) -> None:
    app = APPS_BY_NAME[app_name]
    app.train(app.compose("device=cpu", "seed=3"), tmp_path / "cpu")
    app.train(app.compose("device=cuda", "seed=3"), tmp_path / "gpu")
    environment = compare_runs(tmp_path / "cpu", tmp_path / "gpu").sections["environment"]
    assert environment.bit_identity_expected is False
    assert "device" in environment.decisive
