"""Re-running a case: the recorded thread settings are pinned for the run and restored afterwards."""

from __future__ import annotations

import os

import pytest

from twinrun.golden.cli import recorded_overrides
from twinrun.golden.layout import GoldenError
from twinrun.golden.runner import environment, pinned, rerun


def test_recorded_thread_settings_are_pinned_and_restored(monkeypatch) -> None:
    golden = {"environment": {"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": None, "OTHER": "x"}}}
    assert pinned(golden) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": None}
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    with environment(pinned(golden)):
        assert os.environ["OMP_NUM_THREADS"] == "1" and "MKL_NUM_THREADS" not in os.environ
    assert os.environ["OMP_NUM_THREADS"] == "7" and os.environ["MKL_NUM_THREADS"] == "7"


def test_a_golden_without_an_app_cannot_be_rerun(tmp_path) -> None:
    with pytest.raises(GoldenError, match="names no app"):
        rerun({"case": {"app": None, "overrides": []}}, tmp_path)
    with pytest.raises(GoldenError, match="list of strings"):
        rerun({"case": {"app": "vae-mnist", "overrides": "seed=1"}}, tmp_path)


def test_a_hydra_runs_own_overrides_become_the_case(tmp_path) -> None:
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- data=synthetic\n- hydra.run.dir=/tmp/x\n- data.root=/data\n- seed=3\n"
    )
    assert recorded_overrides(tmp_path) == ["data=synthetic", "seed=3"]
