"""The ``twinrun_golden`` fixture in a user's project (pytester): record when missing and fail saying
so, pass when unchanged, fail with the report when changed, regenerate with --twinrun-update-golden."""

from __future__ import annotations

import json

import pytest

# The user's project runs in a subprocess (runpytest_subprocess): the fixture's run restores the global
# RNGs, torch included, and torch cannot be imported twice into one process by pytester's inline runs.
pytest_plugins = ["pytester"]

# A Hydra task function (it finds its run directory through HydraConfig) composed with twinrun_compose;
# test_b's numbers move with $USER_OFFSET: the planted change.
USER_TESTS = """
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from twinrun.record import runs


def task(cfg):
    out = Path(HydraConfig.get().runtime.output_dir)
    offset = float(os.environ.get("USER_OFFSET", "0")) if cfg.moves else 0.0
    rows = [{"epoch": 1, "step": s, "loss": (offset + cfg.lr / s).hex()} for s in (1, 2, 3)]
    runs.write_jsonl(out / runs.METRICS, rows)
    (out / "result.txt").write_text(str(cfg.lr))


def test_a(twinrun_compose, twinrun_golden):
    twinrun_golden("goldens/a.json", train=task, cfg=twinrun_compose("config", ["lr=0.5"]))


def test_b(twinrun_compose, twinrun_golden):
    twinrun_golden("goldens/b.json", train=task, cfg=twinrun_compose("config", ["moves=true"]))


def test_c(twinrun_golden):  # the command-line form: app.py in a fresh process
    twinrun_golden("goldens/c.json", app=str(Path(__file__).parent / "app.py"), overrides=["lr=0.25"])
"""

# The same task as a Hydra app on the command line.
APP = """
import hydra
from hydra.core.hydra_config import HydraConfig
from pathlib import Path

from twinrun.record import runs


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    out = Path(HydraConfig.get().runtime.output_dir)
    runs.write_jsonl(out / runs.METRICS, [{"epoch": 1, "step": 1, "loss": float(cfg.lr).hex()}])


if __name__ == "__main__":
    main()
"""


def test_record_check_change_and_update(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\ntwinrun_config_dir = conf\n")
    pytester.mkdir("conf")
    (pytester.path / "conf" / "config.yaml").write_text("lr: 0.1\nmoves: false\n")
    pytester.makepyfile(test_user=USER_TESTS, app=APP)
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    first.assert_outcomes(failed=3)
    first.stdout.fnmatch_lines(["*a.json did not exist; wrote it from this run*"])
    assert (pytester.path / "goldens" / "b.json").is_file()
    assert json.loads((pytester.path / "goldens" / "c.json").read_text())["case"]["overrides"] == ["lr=0.25"]
    monkeypatch.setenv("USER_OFFSET", "1e-3")
    changed = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    changed.assert_outcomes(passed=2, failed=1)  # a and c unchanged pass; b changed fails with the report
    changed.stdout.fnmatch_lines(["*b.json: CHANGED*", "*metrics differs*loss*"])
    updated = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--twinrun-update-golden", "-k", "test_b"
    )
    updated.assert_outcomes(failed=1)
    updated.stdout.fnmatch_lines(["*b.json rewrote it from this run*"])
