"""``twinrun.testing.parity`` without processes: which files a report names, and the verdict rule.

The parity runs themselves (both trainers, a planted command-line difference) are in
``tests/repro/test_parity.py``; a user's template-shaped app in ``test_plugin_template_app.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from twinrun.compare.report_model import (
    DIFFERENT,
    IDENTICAL,
    ONLY_IN_B,
    ConfigSection,
    FileEntry,
    FilesSection,
    LogDiff,
    LogsSection,
    Report,
    WeightsSection,
)
from twinrun.testing.parity import ParityResult, report_files, run_parity
from twinrun.verify.apps import VerifyError


def files_report(*entries: FileEntry) -> Report:
    status = DIFFERENT if any(e.differs for e in entries) else IDENTICAL
    return Report("a", "b", {"files": FilesSection(status=status, files=list(entries))})


def test_the_files_section_names_every_decisive_difference() -> None:
    report = files_report(
        FileEntry("weights.safetensors", "weights", IDENTICAL),
        FileEntry("checkpoints/last.ckpt", "tensors", DIFFERENT),
        FileEntry("env.json", "environment", DIFFERENT, decisive=False),  # context only
        FileEntry("extra.txt", "other", ONLY_IN_B),
    )
    assert report_files(report) == ["checkpoints/last.ckpt", f"extra.txt ({ONLY_IN_B})"]
    assert report_files(files_report(FileEntry("weights.safetensors", "weights", IDENTICAL))) == []


def test_a_report_by_sections_names_each_sections_file() -> None:
    sections = {
        "weights": WeightsSection(status=DIFFERENT),
        "config": ConfigSection(status=DIFFERENT, source_a=".hydra/config.yaml"),
        "logs": LogsSection(status=DIFFERENT, files=[LogDiff("job.log", "job.log", 3, 3, 1)]),
        "metrics": WeightsSection(status=IDENTICAL),
    }
    assert report_files(Report("a", "b", sections)) == [
        "weights.safetensors",
        ".hydra/config.yaml",
        "job.log",
    ]


def test_parity_holds_only_when_the_report_and_the_file_lists_agree(tmp_path: Path) -> None:
    same = files_report(FileEntry("weights.safetensors", "weights", IDENTICAL))
    ParityResult(tmp_path / "compose", tmp_path / "cli-1", same).assert_identical()
    extra = ParityResult(tmp_path / "compose", tmp_path / "cli-1", same, only_in_cli=["model.pt"])
    assert not extra.identical and extra.verdict == DIFFERENT
    assert extra.differing_files == ["model.pt (only in the command-line run)"]
    with pytest.raises(AssertionError, match=r"differ in model\.pt \(only in the command-line run\)"):
        extra.assert_identical()
    differing = files_report(FileEntry("metrics.jsonl", "metrics", DIFFERENT))
    with pytest.raises(AssertionError, match=r"differ in metrics\.jsonl\n"):
        ParityResult(tmp_path / "compose", tmp_path / "cli-1", differing).assert_identical()


def test_an_unknown_app_fails_before_anything_runs(tmp_path: Path) -> None:
    def train(cfg, run_dir):
        raise AssertionError("must not run")

    with pytest.raises(VerifyError, match="no such app"):
        run_parity("no-such-app-here", train, "vae_mnist", workdir=tmp_path)
    with pytest.raises(VerifyError, match="verify chooses each run's directory"):
        run_parity("vae-mnist", train, "vae_mnist", ["hydra.run.dir=/tmp/x"], workdir=tmp_path)
    assert list(tmp_path.iterdir()) == []
