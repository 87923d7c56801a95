"""Rules 2 and 3 end to end: an app that saves with a relative path (Hydra >= 1.2 does not chdir).

The common app ends with ``torch.save(model.state_dict(), "model.pt")``: both twins write the same
``./model.pt``. ``verify`` must move each twin's file into its run directory and compare it (seeded:
identical; unseeded noise of 1e-6 in the loss: different, naming the file); an app that saves nothing is
unverified (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_verify_cli import verify
from twinrun.verify.apps import run_dict, verify_app

RELATIVE_SAVE_APP = """\
import hydra


@hydra.main(version_base=None, config_path=".", config_name="conf")
def main(cfg):
    if not cfg.save:
        return  # trains nothing, saves nothing: only Hydra's own files
    import os

    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2).double()  # float64: a 1e-6 change always shows in the weights
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 4, dtype=torch.float64)
    for _ in range(3):
        loss = model(x).pow(2).mean()
        if cfg.noise:  # unseeded: a fresh interpreter draws it from OS entropy
            loss = loss * (1 + 1e-6 * (1 + int.from_bytes(os.urandom(4), "little") / 2**32))
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), "model.pt")


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder: the app and its config; verify runs from there."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "conf.yaml").write_text("save: true\nnoise: false\n")
    (folder / "app.py").write_text(RELATIVE_SAVE_APP)
    return folder


# Two fresh interpreters importing torch; the same check runs in-process in unit/testing/test_twins.py.
@pytest.mark.slow
def test_seeded_app_saving_into_the_working_directory_is_identical_with_the_file_compared(
    project: Path,
) -> None:
    done = verify("app.py", "--workdir", str(project.parent / "w"), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identical" in done.stdout
    assert "run 1 wrote model.pt outside its run directory" in done.stdout
    for run in (1, 2):
        assert (project.parent / "w" / f"run-{run}" / "outside" / "model.pt").is_file()
    assert not (project / "model.pt").exists()  # the working tree is left as it was


@pytest.mark.slow  # two fresh interpreters importing torch
def test_noisy_app_saving_into_the_working_directory_is_different_naming_the_file(project: Path) -> None:
    result = verify_app(str(project / "app.py"), ["noise=true"], workdir=project.parent / "w", cwd=project)
    report = result.report
    assert result.exit_code == 1 and report.verdict == "different"
    files = {entry.path: entry.verdict for entry in report.sections["files"].files}
    assert files["outside/model.pt"] == "different"
    assert any(hint.startswith("run 1 wrote model.pt outside") for hint in report.hints)
    captured = {"path": "model.pt", "action": "created", "captured": True}
    assert run_dict(result.runs[1])["outside"] == [captured]  # --json's verify.runs[i].outside


def test_app_that_saves_nothing_is_unverified(project: Path) -> None:
    done = verify("app.py", "save=false", "--workdir", str(project.parent / "w"), cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "left nothing that training produced" in x]
    assert "output_dir" in line and "Traceback" not in done.stderr
