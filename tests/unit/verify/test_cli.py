"""``twinrun verify``'s own work directory: removed after identical runs unless kept (issue 24 item 6)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from twinrun import cli
from twinrun.verify import cli as verify_cli


@dataclass
class FakeResult:
    workdir: Path
    exit_code: int


@pytest.fixture
def fake_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"exit_code": 0}

    def verify_app(app: str, overrides: list[str], **kwargs: Any) -> FakeResult:
        workdir = Path(kwargs["workdir"]) if kwargs["workdir"] else tmp_path / "twinrun-verify-x"
        (workdir / "run-1").mkdir(parents=True)
        state["workdir"] = workdir
        return FakeResult(workdir, state["exit_code"])

    monkeypatch.setattr(verify_cli, "verify_app", verify_app)
    monkeypatch.setattr(verify_cli, "render", lambda result, fmt: "report\n")
    return state


def test_identical_runs_leave_no_temp_work_directory(fake_verify: dict[str, Any], capsys: Any) -> None:
    assert cli.main(["verify", "app.py"]) == 0
    assert not fake_verify["workdir"].exists()
    assert "run directories removed" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--keep"], ["x=1", "--keep"]])
def test_keep_keeps_it_and_says_where(fake_verify: dict[str, Any], capsys: Any, args: list[str]) -> None:
    assert cli.main(["verify", "app.py", *args]) == 0
    assert fake_verify["workdir"].is_dir()
    assert f"run directories kept in {fake_verify['workdir']}" in capsys.readouterr().err


def test_a_named_workdir_is_kept(fake_verify: dict[str, Any], tmp_path: Path) -> None:
    assert cli.main(["verify", "app.py", "--workdir", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "run-1").is_dir()


def test_runs_that_differ_are_kept(fake_verify: dict[str, Any], capsys: Any) -> None:
    fake_verify["exit_code"] = 1
    assert cli.main(["verify", "app.py"]) == 1
    assert fake_verify["workdir"].is_dir() and "kept in" in capsys.readouterr().err
