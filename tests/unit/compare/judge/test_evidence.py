"""Rule 2: no verdict without evidence (``compare/judge/evidence.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.runs import compare_runs


def _hydra_only(run: Path, log: str = "") -> Path:
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 1\nlr: 0.1\n")
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    (run / "resolved_config.yaml").write_text("seed: 1\nlr: 0.1\n")
    (run / "app.log").write_text(log)
    return run


def test_runs_that_left_only_hydras_files_are_unverified(tmp_path: Path) -> None:
    a, b = _hydra_only(tmp_path / "a"), _hydra_only(tmp_path / "b")
    with pytest.raises(UnusableRunError, match=r"left nothing that training produced.*output_dir") as info:
        compare_runs(a, b)
    assert "\n" not in str(info.value)


def test_hydras_own_log_lines_are_no_evidence(tmp_path: Path) -> None:
    line = "[2024-01-01 10:00:00,000][HYDRA] Launching 1 jobs locally\n"
    a, b = _hydra_only(tmp_path / "a", line), _hydra_only(tmp_path / "b", line)
    with pytest.raises(UnusableRunError, match="left nothing that training produced"):
        compare_runs(a, b)


def test_a_line_the_app_logged_is_evidence(tmp_path: Path) -> None:
    line = "[2024-01-01 10:00:00,000][__main__][INFO] - loss 0.25\n"
    a, b = _hydra_only(tmp_path / "a", line), _hydra_only(tmp_path / "b", line)
    assert compare_runs(a, b).verdict == "identical"


def test_a_file_training_wrote_is_evidence_and_its_difference_decides(tmp_path: Path) -> None:
    a, b = _hydra_only(tmp_path / "a"), _hydra_only(tmp_path / "b")
    (a / "result.bin").write_bytes(b"\x01\x02")
    (b / "result.bin").write_bytes(b"\x01\x02")
    assert compare_runs(a, b).verdict == "identical"
    (b / "result.bin").write_bytes(b"\x01\x03")  # negative control
    assert compare_runs(a, b).verdict == "different"


def test_a_difference_in_hydras_files_alone_is_still_a_verdict(tmp_path: Path) -> None:
    a, b = _hydra_only(tmp_path / "a"), _hydra_only(tmp_path / "b")
    (b / ".hydra" / "config.yaml").write_text("seed: 2\nlr: 0.1\n")
    (b / "resolved_config.yaml").write_text("seed: 2\nlr: 0.1\n")
    assert compare_runs(a, b).verdict == "different"
