"""Twin runs in the test process (``testing/twins.py``): rule 3, every run checked, RNG isolation."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.testing.twins import run_twins


def _fit(noise: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()  # float64: a 1e-6 change always shows in the weights
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    loss = model(x).pow(2).mean()
    if noise:  # drawn from python's global RNG, which every twin starts from a fresh state
        loss = loss * (1 + 1e-6 * (1 + random.random()))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return model.state_dict()


def save_relative(cfg: Any) -> None:
    """A Hydra task as users write it: Hydra >= 1.2 does not chdir, so this lands in the working dir."""
    if cfg.save:
        torch.save(_fit(cfg.noise), "model.pt")


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    return tmp_path


def test_a_task_saving_into_the_working_directory_is_captured_and_compared(in_project: Path) -> None:
    result = run_twins(save_relative, OmegaConf.create({"save": True, "noise": False}), in_project / "s")
    result.assert_identical()
    files = {e.path: e.verdict for e in result.report.sections["files"].files}
    assert files["outside/model.pt"] == "identical"
    assert any(h.startswith("run 1 wrote model.pt outside its run directory") for h in result.report.hints)
    assert not (in_project / "proj" / "model.pt").exists()


def test_unseeded_noise_in_a_file_saved_outside_is_a_difference(in_project: Path) -> None:
    result = run_twins(save_relative, OmegaConf.create({"save": True, "noise": True}), in_project / "n")
    assert result.verdict == "different"
    files = {e.path: e.verdict for e in result.report.sections["files"].files}
    assert files["outside/model.pt"] == "different"


def test_a_task_that_saves_nothing_is_unverified(in_project: Path) -> None:
    with pytest.raises(UnusableRunError, match="left nothing that training produced"):
        run_twins(save_relative, OmegaConf.create({"save": False, "noise": False}), in_project / "e")


def test_only_the_third_run_differing_is_caught(tmp_path: Path) -> None:
    calls = []

    def train(cfg: Any, run_dir: Path) -> None:
        calls.append(run_dir)
        (run_dir / "out.bin").write_bytes(b"x" if len(calls) < 3 else b"y")

    result = run_twins(train, None, tmp_path / "t", runs=3)
    assert len(calls) == 3 and not result.identical and result.verdict == "different"
    with pytest.raises(AssertionError, match="twin runs differ"):
        result.assert_identical()
    assert [r.verdict for r in result.reports] == ["identical", "different"]


def test_each_twin_starts_from_a_fresh_global_rng_state_not_the_one_the_last_left(tmp_path: Path) -> None:
    starts: list[tuple[float, float]] = []
    ends: list[tuple[float, float]] = []

    def train(cfg: Any, run_dir: Path) -> None:
        starts.append((random.random(), torch.rand(()).item()))
        # What the next twin would draw if it inherited the state this one leaves behind.
        python, gen = random.Random(), torch.Generator()
        python.setstate(random.getstate())
        gen.set_state(torch.get_rng_state())
        ends.append((python.random(), torch.rand((), generator=gen).item()))
        (run_dir / "out.bin").write_bytes(b"x")

    before = (random.getstate(), torch.get_rng_state())
    run_twins(train, None, tmp_path / "r", runs=3)
    assert len(set(starts)) == 3  # every twin its own state ...
    for previous_end, start in zip(ends, starts[1:], strict=False):
        assert start != previous_end  # ... not the one the twin before left behind
    assert random.getstate() == before[0] and torch.equal(torch.get_rng_state(), before[1])


def test_fewer_than_two_runs_are_refused_before_anything_runs(in_project: Path) -> None:
    calls: list[Path] = []

    def train(cfg: Any, run_dir: Path) -> None:
        calls.append(run_dir)
        (run_dir / "out.bin").write_bytes(b"x")

    for runs in (1, 0, True, 2.0):  # one run compared with nothing proves nothing
        with pytest.raises(ValueError, match="runs >= 2"):
            run_twins(train, None, in_project / "n", runs=runs)  # type: ignore[arg-type]
    assert calls == []
    assert run_twins(train, None, in_project / "two", runs=2).identical  # control: two runs are checked
