"""``twinrun explain`` on run directories whose recorded overrides name code (issue 23, item 1).

The exploit: both runs' ``.hydra/overrides.yaml`` make the model ``torch.load`` of the replay's checkpoint
with ``weights_only=false``, and the checkpoint's pickle creates a marker file. Before the trust rule (and
with ``checkpoints/`` a link out of the run, which ``compare`` then did not follow), the replay ran
``torch.load`` and the marker appeared (measured). The overrides are now refused before the runs are read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.fake_runs import make_twins
from twinrun.cli import main

EXPLOIT = [
    "data=synthetic",
    "data.train_samples=64",
    "data.test_samples=16",
    "device=cpu",
    "~model.input_dim",
    "~model.hidden_dim",
    "~model.latent_dim",
    "model._target_=torch.load",
    "+model.f=${training.resume_from}",
    "+model.weights_only=false",
]


class _Payload:
    """Unpickling it creates ``marker`` (a stand-in for a shell command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def _runs(root: Path, checkpoint: object) -> Path:
    """``root/runs/run_a`` and ``run_b`` made by "vae_mnist", the exploit in their overrides."""
    for run in make_twins(root / "runs", overrides=EXPLOIT):
        (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"name": "vae_mnist"}}}))
        (run / "checkpoints").mkdir()
        torch.save(checkpoint, run / "checkpoints" / "step-1.pt")
    (root / "noop_app.py").write_text("import sys\nsys.exit(0)\n")
    return root


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """The exploit with its payload: a checkpoint whose pickle creates ``marker``."""
    root = tmp_path_factory.mktemp("hostile")
    return _runs(root, {"model": _Payload(root / "marker")})


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> Path:
    """The exploit's overrides over a plain checkpoint (the inert reader compares it)."""
    return _runs(tmp_path_factory.mktemp("benign"), {"model": torch.zeros(2)})


def test_explain_refuses_the_recorded_target(hostile: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(hostile / "runs")
    code = main(["explain", "run_a", "run_b", "--step", "2", "--workdir", "w"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "twinrun explain: error: run_a/.hydra/overrides.yaml: refusing recorded override "
        "'model._target_=torch.load': it sets _target_ (a callable the run directory chooses); "
        "pass --trust-run-dirs if the run directories are trusted (it runs code they name)"
    ]
    assert not (hostile / "marker").exists()
    assert not (hostile / "runs" / "w" / "replay-1.out").exists()  # nothing was started


def test_trusted_run_dirs_replay_and_print_the_command_first(benign: Path, monkeypatch, capsys) -> None:
    # Negative control of the refusal: with the flag the replay proceeds. The app is a no-op script, so
    # the exploit itself does not run; the printed command shows what would have.
    monkeypatch.chdir(benign / "runs")
    args = ["explain", "run_a", "run_b", "--step", "2", "--workdir", "t", "--trust-run-dirs"]
    code = main([*args, "--app", str(benign / "noop_app.py")])
    err = capsys.readouterr().err
    assert code == 1, err  # the no-op app records no ops: the replays cannot answer
    shown = [line for line in err.splitlines() if line.startswith("replay of ")]
    assert [line.split(":")[0] for line in shown] == ["replay of run_a", "replay of run_b"]
    assert f"PYTHONHASHSEED=1 {sys.executable} " in shown[0]
    assert "model._target_=torch.load" in shown[0]
    assert "training.resume_from=run_a/checkpoints/step-1.pt" in shown[0]
    assert (benign / "runs" / "t" / "replay-2.out").exists()
    assert not (benign / "marker").exists()


def test_help_says_what_the_flag_opens(capsys) -> None:
    assert main(["explain", "--help"]) == 0
    assert "runs code the run directories name" in " ".join(capsys.readouterr().out.split())


def test_the_hydra_record_is_read_bounded_and_never_blocks(tmp_path: Path) -> None:
    import os

    from twinrun.verify.apps import VerifyError
    from twinrun.verify.explain_cli import _hydra_record

    meta = tmp_path / ".hydra"
    meta.mkdir()
    (meta / "hydra.yaml").write_text("hydra: {job: {name: vae_mnist}}\n")
    (meta / "overrides.yaml").write_text("- seed=3\n")
    assert _hydra_record(tmp_path) == ("vae_mnist", ["seed=3"])  # control
    (meta / "overrides.yaml").write_text("- seed=3\n" * 200_000)
    with pytest.raises(VerifyError, match="too large for a Hydra record"):
        _hydra_record(tmp_path)
    (meta / "overrides.yaml").unlink()
    os.mkfifo(meta / "overrides.yaml")  # an open for reading would wait for a writer forever
    with pytest.raises(VerifyError, match="cannot read"):
        _hydra_record(tmp_path)
