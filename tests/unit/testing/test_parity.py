"""``twinrun.testing.parity`` without processes: which files a report names, and the verdict rule.

The parity runs themselves (both trainers, a planted command-line difference) are in
``tests/repro/test_parity.py``; a user's template-shaped app in ``test_plugin_template_app.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from twinrun.compare.report.model import (
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


SCRIPT_APP = """\
import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

log = logging.getLogger(__name__)  # __main__ on the command line, the module's name in a test


def train(cfg):
    log.info("lr %s", cfg.lr)
    logging.getLogger(__name__ + ".data").info("child logger")
    Path(HydraConfig.get().runtime.output_dir, "result.txt").write_text(f"{cfg.lr * 2}\\n")


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg):
    train(cfg)


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def script_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A torch-free script app logging through ``getLogger(__name__)``, imported as ``parity_app``."""
    import importlib

    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "app.yaml").write_text("lr: 0.5\n")
    (project / "parity_app.py").write_text(SCRIPT_APP)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.delitem(__import__("sys").modules, "parity_app", raising=False)
    yield project, importlib.import_module("parity_app")
    __import__("sys").modules.pop("parity_app", None)


def test_a_script_logging_through_dunder_name_has_parity(tmp_path: Path, script_app, monkeypatch) -> None:
    from twinrun.testing import parity

    project, module = script_app
    script, conf = str(project / "parity_app.py"), project / "conf"
    assert parity.script_module(script) == "parity_app"
    result = run_parity(script, module.main, "app", ["lr=0.25"], workdir=tmp_path / "w", config_dir=conf)
    result.assert_identical()
    log = (result.compose_dir / "parity_app.log").read_text()
    assert "[__main__][INFO] - lr 0.25" in log and "[__main__.data][INFO] - child logger" in log
    # Negative control: without the renaming the same app differs, in its log only.
    monkeypatch.setattr(parity, "script_module", lambda script: None)
    plain = run_parity(script, module.main, "app", ["lr=0.25"], workdir=tmp_path / "p", config_dir=conf)
    assert not plain.identical and plain.differing_files == ["parity_app.log"]
    assert "[parity_app][INFO] - lr 0.25" in (plain.compose_dir / "parity_app.log").read_text()
