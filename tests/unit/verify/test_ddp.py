"""``verify --nproc-per-node``'s rank checks on fake run directories: fast, no torchrun."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from twinrun.compare.report.model import Report
from twinrun.record import runs
from twinrun.verify import ddp
from twinrun.verify.apps import AppCommand, RunRecord, VerifyResult


def _fake_twins(tmp_path: Path, rank1: torch.Tensor) -> VerifyResult:
    records = []
    for index in (1, 2):
        run_dir = tmp_path / f"run-{index}"
        for rank, value in ((0, torch.ones(4)), (1, rank1)):
            folder = runs.rank_dir(run_dir, rank)
            folder.mkdir(parents=True)
            runs.write_weights(folder, {"w": value.clone()})
        records.append(RunRecord(index, run_dir, tmp_path / f"run-{index}.out", [], index, 0.0, 0))
    app = AppCommand("app.py", ("python", "app.py"), "script")
    return VerifyResult(app, tmp_path, records, {(1, 2): Report("run-1", "run-2", {})})


@pytest.fixture
def fake_verify(monkeypatch: pytest.MonkeyPatch) -> dict[str, VerifyResult]:
    made: dict[str, VerifyResult] = {}

    def verify_app(*args: Any, **kwargs: Any) -> VerifyResult:
        return made["result"]

    monkeypatch.setattr(ddp, "verify_app", verify_app)
    monkeypatch.setattr(ddp, "resolve_app", lambda app: AppCommand(app, ("python", app), "script"))
    return made


def test_ranks_that_agree_are_identical(tmp_path: Path, fake_verify: dict[str, VerifyResult]) -> None:
    fake_verify["result"] = _fake_twins(tmp_path, torch.ones(4))
    result = ddp.verify_ddp("app.py", nproc=2)
    assert result.identical and len(result.checks) == 4  # 2 ranks across runs + rank 1 / rank 0 per run


def test_a_rank_that_differs_from_rank_0_in_every_run_alike_is_caught(
    tmp_path: Path, fake_verify: dict[str, VerifyResult]
) -> None:
    # Both runs' rank 1 hold the same other model: across runs all agrees, only rank vs rank 0 differs.
    fake_verify["result"] = _fake_twins(tmp_path, torch.tensor([1.0, 1.0, 1.0, 2.0]))
    result = ddp.verify_ddp("app.py", nproc=2)
    verdicts = {c.label: c.report.verdict for c in result.checks}
    assert verdicts["rank 1: run-1 / run-2"] == "identical"
    assert verdicts["run-1: rank 1 / rank 0"] == verdicts["run-2: rank 1 / rank 0"] == "different"
    assert not result.identical and result.exit_code == 1
