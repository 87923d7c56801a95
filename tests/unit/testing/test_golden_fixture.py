"""The ``twinrun_golden`` fixture: in a user's project (pytester) it records when missing and fails saying
so, passes when unchanged, fails with the report when changed (task function and command-line forms);
``--twinrun-update-golden`` regenerates (tested on the fixture object, without another subprocess)."""

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


@pytest.mark.slow  # two pytest subprocesses importing torch and hydra, one app process
def test_record_then_check_in_a_users_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_update_rewrites_the_values_and_keeps_calibrated_bands(tmp_path) -> None:
    # Direct, without a pytest subprocess: the fixture object that twinrun_golden returns.
    from tests.helpers.fake_runs import edit_jsonl, make_twins
    from twinrun.golden.layout import load_golden, write_golden
    from twinrun.record import runs
    from twinrun.testing.golden_fixture import GoldenFixture

    a, b = make_twins(tmp_path / "runs")
    check = GoldenFixture(tmp_path, lambda: tmp_path, update=False)
    with pytest.raises(pytest.fail.Exception, match="did not exist; wrote it"):
        check("g.json", run_dir=a)
    golden = load_golden(tmp_path / "g.json")
    golden["bands"]["source"] = "calibrated: by hand"
    write_golden(tmp_path / "g.json", golden)
    assert check("g.json", run_dir=b).passed
    edit_jsonl(b, runs.TRACE, lambda rows: rows[2].update(loss=(2.5).hex()))
    with pytest.raises(pytest.fail.Exception, match="first divergent step 3"):
        check("g.json", run_dir=b)
    with pytest.raises(pytest.fail.Exception, match="rewrote it from this run"):
        GoldenFixture(tmp_path, lambda: tmp_path, update=True)("g.json", run_dir=b)
    rewritten = load_golden(tmp_path / "g.json")
    assert rewritten["bands"]["source"] == "calibrated: by hand"
    assert rewritten["trace"]["rows"][2]["loss"] == "0x1.4p+1"
    assert check("g.json", run_dir=b).passed
    with pytest.raises(TypeError, match="exactly one"):
        check("g.json")


def test_the_plugin_provides_the_fixture(twinrun_golden) -> None:
    from twinrun.testing.golden_fixture import GoldenFixture

    assert isinstance(twinrun_golden, GoldenFixture)
    assert twinrun_golden.test_dir.name == "testing" and twinrun_golden.update is False


def test_the_update_option_is_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.getoption("twinrun_update_golden") is False
