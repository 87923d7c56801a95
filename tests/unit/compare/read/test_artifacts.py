"""Walking, classifying and matching the files of two runs; ignore rules; entries that cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import fake_runs as fr
from twinrun.compare.read.artifacts import DEFAULT_IGNORE, classify, matching_pattern, project_ignore, walk
from twinrun.compare.read.run_reader import UnusableRunError, open_run
from twinrun.compare.report.model import DIFFERENT, IDENTICAL, IGNORED, ONLY_IN_B
from twinrun.compare.report.render import render_json, render_markdown, render_text
from twinrun.compare.runs import compare_runs
from twinrun.record import runs


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    return fr.make_twins(tmp_path)


@pytest.mark.parametrize(
    ("rel", "kind"),
    [
        ("weights.safetensors", "weights"),
        ("trained_model.pt", "weights"),
        ("ranks/rank-1/weights.safetensors", "tensors"),
        ("checkpoints/last.ckpt", "tensors"),
        ("model.pt", "tensors"),
        ("arrays/x.NPZ", "tensors"),
        ("resolved_config.yaml", "config"),
        (".hydra/hydra.yaml", "config"),
        ("csv/version_0/hparams.yml", "config"),
        ("train.log", "log"),
        ("metrics.jsonl", "metrics"),
        ("csv/metrics.jsonl", "table"),
        ("csv/version_0/metrics.csv", "table"),
        ("scores.tsv", "table"),
        ("metrics.json", "table"),
        ("env.json", "environment"),
        ("manifest.json", "manifest"),
        ("trace.jsonl", "trace"),
        ("tb/version_0/events.out.tfevents.1700000000.host.123.0", "scalars"),
        ("images/samples.png", "image"),
        ("plot.JPG", "image"),
        ("model.onnx", "bytes"),
        ("README", "bytes"),
    ],
)
def test_classify(rel: str, kind: str) -> None:
    assert classify(rel) == kind


@pytest.mark.parametrize(
    ("rel", "is_dir", "pattern"),
    [
        ("checkpoints/.step-00000005.pt.9wtm477f.tmp", False, "*.tmp"),
        ("src/__pycache__", True, "__pycache__/"),
        ("wandb", True, "wandb/"),
        (".submitit", True, ".submitit/"),
        ("mlruns", True, "mlruns/"),
        (".run.lock", False, "*.lock"),
        ("wandb", False, None),  # "wandb/" names directories only
        ("checkpoints/last.ckpt", False, None),
        ("notes.tmp.txt", False, None),
    ],
)
def test_default_ignore(rel: str, is_dir: bool, pattern: str | None) -> None:
    assert matching_pattern(rel, is_dir, DEFAULT_IGNORE) == pattern


def test_patterns_with_a_slash_match_the_whole_path() -> None:
    assert matching_pattern("csv/version_0/metrics.csv", False, ["csv/*/metrics.csv"]) == "csv/*/metrics.csv"
    assert matching_pattern("other/version_0/metrics.csv", False, ["csv/*/metrics.csv"]) is None
    assert matching_pattern("a/b/c.png", False, ["*.png"]) == "*.png"  # no slash: the name, at any depth


def test_ignored_files_are_listed_and_never_compared(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (b / "checkpoints").mkdir()
    (b / "checkpoints" / ".step-00000005.pt.9wtm477f.tmp").write_bytes(b"half a checkpoint")
    (b / "wandb" / "run-1").mkdir(parents=True)
    (b / "wandb" / "run-1" / "events").write_text("x")
    (b / "__pycache__").mkdir()
    os.mkfifo(b / "__pycache__" / "pipe")  # ignored: never opened
    report = compare_runs(a, b)
    assert report.exit_code == 0, render_text(report)
    ignored = {e.path: e.detail for e in report.sections["files"].files if e.verdict == IGNORED}
    assert ignored == {
        "__pycache__/": "matches __pycache__/",
        "checkpoints/.step-00000005.pt.9wtm477f.tmp": "matches *.tmp",
        "wandb/": "matches wandb/",
    }
    assert "3 ignored" in report.sections["files"].summary
    text = render_text(report)
    assert "wandb/  [ignored]  ignored: matches wandb/" in text
    assert "wandb/" in render_markdown(report) and '"verdict": "ignored"' in render_json(report)
    (b / "notes.txt").write_text("x")  # negative control: a file that is not ignored decides
    assert compare_runs(a, b).exit_code == 1


def test_ignore_argument_and_pyproject(twins: tuple[Path, Path], tmp_path: Path, monkeypatch) -> None:
    a, b = twins
    fr.write_png(b / runs.IMAGES / "samples.png", pixel=0)
    (b / "debug.txt").write_text("x")
    assert compare_runs(a, b).exit_code == 1
    assert compare_runs(a, b, ignore=["images/", "debug.txt"]).exit_code == 0
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.twinrun]\nignore = ["images/*.png", "*.txt"]\n')
    monkeypatch.chdir(project)
    assert project_ignore() == ["images/*.png", "*.txt"]
    assert compare_runs(a, b).exit_code == 0
    (project / "pyproject.toml").write_text("[tool.twinrun]\nignore = 3\n")
    with pytest.raises(UnusableRunError, match=r"\[tool.twinrun\] ignore must be a list"):
        compare_runs(a, b)


def test_a_file_in_one_run_and_a_directory_in_the_other(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (a / "out").write_text("x")
    (b / "out").mkdir()
    (b / "out" / "x").write_text("x")
    with pytest.raises(UnusableRunError, match=r"out is a directory where .*out is a file"):
        compare_runs(a, b)


@pytest.mark.parametrize("name", [runs.METRICS, runs.WEIGHTS, runs.ENV])
def test_a_contract_file_replaced_by_an_empty_directory(twins: tuple[Path, Path], name: str) -> None:
    a, b = twins
    (b / name).unlink()
    (b / name).mkdir()
    with pytest.raises(UnusableRunError, match=f"{name} is a directory where a file is expected"):
        compare_runs(a, b)


def test_unreadable_entries_are_named(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (b / runs.TRACE).unlink()
    (b / runs.TRACE).symlink_to(b / "nowhere")
    with pytest.raises(UnusableRunError, match=r"trace.jsonl is a dangling symbolic link"):
        compare_runs(a, b)
    (b / runs.TRACE).unlink()
    os.mkfifo(b / runs.TRACE)
    with pytest.raises(UnusableRunError, match=r"trace.jsonl is a FIFO, not a regular file"):
        compare_runs(a, b)


@pytest.mark.parametrize("name", ["notes.dat", runs.RESOLVED_CONFIG, "vae_mnist.log"])
def test_permission_denied_is_named(
    twins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    a, b = twins
    for run in twins:
        (run / "notes.dat").write_bytes(b"same")
    assert compare_runs(a, b).exit_code == 0  # control
    real_open = Path.open

    def refuse(self: Path, *args, **kwargs):  # chmod 000 does not stop root: refuse as the kernel would
        if self == b.resolve() / name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(
        UnusableRunError, match=f"cannot read .*{name} \\(permission denied; check its permissions"
    ):
        compare_runs(a, b)


def test_a_symlink_to_a_file_inside_the_run_counts_as_the_file(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run in twins:
        (run / "vae_mnist.log").rename(run / "kept.log")
        (run / "vae_mnist.log").symlink_to(run / "kept.log")
    assert compare_runs(a, b).exit_code == 0
    (b / runs.METRICS).unlink()
    (b / runs.METRICS).symlink_to(b / runs.TRACE)  # another file's content: different
    assert compare_runs(a, b).exit_code == 1


def test_a_symlink_leaving_the_run_is_unusable_never_left_out(twins: tuple[Path, Path]) -> None:
    """Rule 4: a link out of the run directory is exit 2 (it may be ignored by name), not "not compared"."""
    a, b = twins
    (b / "vae_mnist.log").rename(b.parent / "kept.log")
    (b / "vae_mnist.log").symlink_to(b.parent / "kept.log")
    with pytest.raises(UnusableRunError, match=r"vae_mnist.log is a symbolic link to .*outside the run"):
        compare_runs(a, b)
    (b.parent / "elsewhere").mkdir()
    (b / "vae_mnist.log").unlink()
    (b.parent / "kept.log").rename(b / "vae_mnist.log")
    assert compare_runs(a, b).exit_code == 0  # control
    (b / "data").symlink_to(b.parent / "elsewhere")
    with pytest.raises(UnusableRunError, match=r"data is a symbolic link .*--ignore data"):
        compare_runs(a, b)
    assert compare_runs(a, b, ignore=["data"]).exit_code == 0


def test_a_symlinked_folder_inside_the_run_is_followed_and_compared(twins: tuple[Path, Path]) -> None:
    a, b = twins
    for run in twins:
        (run / "ckpt-5").mkdir()
        (run / "ckpt-5" / "state.bin").write_bytes(b"same")
        (run / "latest").symlink_to(run / "ckpt-5")
    assert compare_runs(a, b).exit_code == 0
    (b / "ckpt-5" / "state.bin").write_bytes(b"diff")
    files = {e.path: e.verdict for e in compare_runs(a, b).sections["files"].files}
    assert files["latest/state.bin"] == files["ckpt-5/state.bin"] == "different"
    (b / "ckpt-5" / "loop").symlink_to(b)
    with pytest.raises(UnusableRunError, match="a loop"):
        compare_runs(a, b)


def test_a_run_with_nothing_but_hydra_or_nothing_at_all(twins: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = twins
    hydra_only = tmp_path / "hydra_only"
    (hydra_only / ".hydra").mkdir(parents=True)
    (hydra_only / ".hydra" / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(UnusableRunError, match=r"holds nothing but \.hydra/"):
        compare_runs(a, hydra_only)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnusableRunError, match="holds no files"):
        compare_runs(tmp_path / "empty", a)


def test_walk_lists_relative_paths(twins: tuple[Path, Path]) -> None:
    a, _ = twins
    files = walk(open_run(a), DEFAULT_IGNORE).files
    assert {"weights.safetensors", ".hydra/config.yaml", "images/samples.png"} <= set(files)


def test_files_section_kinds_and_verdicts(twins: tuple[Path, Path]) -> None:
    a, b = twins
    (b / "extra.dat").write_bytes(b"\x00\x01")
    report = compare_runs(a, b)
    verdicts = {e.path: (e.kind, e.verdict) for e in report.sections["files"].files}
    assert verdicts["extra.dat"] == ("bytes", ONLY_IN_B)
    assert verdicts["weights.safetensors"] == ("weights", IDENTICAL)
    assert verdicts[".hydra/overrides.yaml"] == ("config", IDENTICAL)  # hydra.run.dir differs: volatile
    assert verdicts["images/samples.png"] == ("image", IDENTICAL)  # other bytes, same pixels
    assert report.sections["files"].status == DIFFERENT


def test_a_checkpoint_value_that_differs_is_named_in_the_tensors_summary(twins: tuple[Path, Path]) -> None:
    """Non-tensor leaves (a Lightning checkpoint's epoch) reach the merged tensors section."""
    import torch

    a, b = twins
    state = {"state_dict": {"w": torch.ones(3)}, "epoch": 0, "global_step": 4}
    for run, epoch in ((a, 0), (b, 1)):
        (run / "checkpoints").mkdir(exist_ok=True)
        torch.save({**state, "epoch": epoch}, run / "checkpoints" / "last.ckpt")
    report = compare_runs(a, b)
    section = report.sections["tensors"]
    assert section.status == DIFFERENT and report.exit_code == 1
    assert [m.name for m in section.leaf_mismatches] == ["checkpoints/last.ckpt: epoch"]
    assert section.summary.startswith("checkpoints/last.ckpt: epoch: 0 vs 1;")
    torch.save({**state, "epoch": 0}, b / "checkpoints" / "last.ckpt")  # control: the same values
    assert compare_runs(a, b).sections["tensors"].status == IDENTICAL


def test_trained_model_pt_beside_weights_safetensors_is_compared_not_shadowed(
    twins: tuple[Path, Path],
) -> None:
    """Rule 4: every file is its own entry; the final weights section reads weights.safetensors only."""
    import torch

    a, b = twins
    for run in twins:
        torch.save({"w": torch.ones(3)}, run / "trained_model.pt")
    report = compare_runs(a, b)
    assert report.exit_code == 0  # control
    torch.save({"w": torch.tensor([1.0, 1.0, 2.0])}, b / "trained_model.pt")
    report = compare_runs(a, b)
    files = {e.path: (e.kind, e.verdict) for e in report.sections["files"].files}
    assert files["trained_model.pt"] == ("tensors", "different")
    assert files["weights.safetensors"] == ("weights", "identical")
    assert report.exit_code == 1
