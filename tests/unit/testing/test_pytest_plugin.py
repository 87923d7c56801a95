"""The pytest plugin, seen from a user's project (pytester) and from this suite (fixtures directly)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# The user projects run in a subprocess each (runpytest_subprocess): in-process, pytester would drop
# the torch modules they import lazily, and torch refuses to register its operators twice.
pytest_plugins = ["pytester"]

CONFIG = """\
defaults:
  - size: small
  - _self_
seed: 0
lr: 0.1
steps: 3
"""

# A user's own app: a pure train(cfg, run_dir) plus its @hydra.main shell. SEEDED is replaced below.
APP = """\
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig

from twinrun.record import runs


def train(cfg, run_dir):
    torch.use_deterministic_algorithms(True)
    SEEDED
    model = torch.nn.Linear(cfg.features, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    x = torch.randn(32, cfg.features)
    y = x.sum(dim=1, keepdim=True)
    rows = []
    for step in range(1, cfg.steps + 1):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        rows.append({"step": step, "loss": runs.exact(loss.item())})
    runs.write_weights(Path(run_dir), model.state_dict())
    runs.write_jsonl(Path(run_dir) / runs.METRICS, rows)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    train(cfg, Path(HydraConfig.get().runtime.output_dir))
"""

USER_TESTS = """\
import random
from pathlib import Path

import numpy as np
import torch
from hypothesis import given, settings

from twinrun.testing.pytest_plugin import overrides, seed_edge_examples, seeds
from MODULE import train

CONF = Path(__file__).parent / "conf"
SEEN = []


@settings(max_examples=3, deadline=None, database=None)
@seed_edge_examples("seed")
@given(seed=seeds())
def test_twins_identical(seed, twinrun_compose, twinrun_twins):
    cfg = twinrun_compose("config", [f"seed={seed}"])
    result = twinrun_twins(train, cfg)
    result.assert_identical()
    assert result.identical and result.report.verdict == "identical"
    SEEN.extend(result.run_dirs)


def test_run_dirs_are_fresh_for_every_example():
    assert len(SEEN) == len(set(SEEN)) >= 3 * 5  # --twinrun-runs=3; 2 edge seeds + 3 examples


@settings(max_examples=2, deadline=None, database=None)
@given(ov=overrides("config", groups=("size",), bounds={"lr": (0.01, 0.5)}, config_dir=CONF))
def test_variants_identical(ov, twinrun_compose, twinrun_twins):
    twinrun_twins(train, twinrun_compose("config", ov), runs=2).assert_identical()


def test_callers_rng_and_torch_switches_restored(twinrun_compose, twinrun_twins):
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    torch.use_deterministic_algorithms(False)
    before = (random.getstate(), np.random.get_state()[1].tobytes(), torch.get_rng_state())
    twinrun_twins(train, twinrun_compose("config"))
    assert random.getstate() == before[0]
    assert np.random.get_state()[1].tobytes() == before[1]
    assert torch.equal(torch.get_rng_state(), before[2])
    assert not torch.are_deterministic_algorithms_enabled()


def test_data_root(twinrun_data_root):
    assert twinrun_data_root.is_dir() and twinrun_data_root.name == "twinrun-data"
"""


def make_project(pytester: pytest.Pytester, module: str, seeded: bool) -> None:
    pytester.makeini("[pytest]\ntwinrun_config_dir = conf\n")
    conf = pytester.mkdir("conf")
    (conf / "config.yaml").write_text(CONFIG)
    (conf / "size").mkdir()
    (conf / "size" / "small.yaml").write_text("# @package _global_\nfeatures: 2\n")
    (conf / "size" / "large.yaml").write_text("# @package _global_\nfeatures: 5\n")
    seeding = "torch.manual_seed(cfg.seed)" if seeded else "pass  # forgot to seed"
    (pytester.path / f"{module}.py").write_text(APP.replace("SEEDED", seeding))
    pytester.makepyfile(**{f"test_{module}": USER_TESTS.replace("MODULE", module)})
    pytester.syspathinsert()


@pytest.mark.slow  # a pytest subprocess importing torch, a dozen twin runs
def test_users_project_with_a_seeded_app_passes(pytester: pytest.Pytester) -> None:
    make_project(pytester, "seeded_app", seeded=True)
    result = pytester.runpytest_subprocess("--twinrun-runs=3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


@pytest.mark.slow  # a pytest subprocess importing torch, a dozen twin runs
def test_users_project_with_an_unseeded_app_fails_with_the_report(pytester: pytest.Pytester) -> None:
    # The negative control of the test above: the same project, the seed forgotten.
    make_project(pytester, "unseeded_app", seeded=False)
    # Every example fails here: shrinking would only re-run the twins many times over.
    pytester.makeconftest(
        "from hypothesis import Phase, settings\n"
        "settings.register_profile('no_shrink', phases=[Phase.explicit, Phase.generate])\n"
        "settings.load_profile('no_shrink')\n"
    )
    result = pytester.runpytest_subprocess(
        "--twinrun-runs=3", "-p", "no:cacheprovider", "-k", "identical or variants"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*AssertionError: twin runs differ:*", "*twinrun compare:*different*"])
    result.stdout.fnmatch_lines(["*weights*different*tensors differ*"])


def test_data_root_is_shared_by_xdist_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_root="""
        import os

        def test_record(twinrun_data_root):
            (twinrun_data_root / os.environ["PYTEST_XDIST_WORKER"]).write_text(str(twinrun_data_root))
        """
    )
    basetemp = pytester.path / "basetemp"
    result = pytester.runpytest_subprocess("-n", "2", "--dist=each", f"--basetemp={basetemp}")
    result.assert_outcomes(passed=2)
    shared = basetemp / "twinrun-data"
    assert sorted(p.name for p in shared.iterdir()) == ["gw0", "gw1"]
    assert {p.read_text() for p in shared.iterdir()} == {str(shared)}


def test_plugin_module_is_import_light() -> None:
    code = (
        "import sys, twinrun.testing.pytest_plugin as p; "
        "heavy = {'torch', 'hydra', 'omegaconf'} & set(sys.modules); assert not heavy, heavy; "
        "assert p.seeds() is not None and 'twinrun.testing.strategies' in sys.modules"  # loaded on first use
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_compose_restores_hydra_singletons(twinrun_compose, tmp_path: Path) -> None:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from twinrun.testing.compose import hydra_initialized

    (tmp_path / "other.yaml").write_text("x: 1\n")
    marker = object()
    with hydra_initialized(tmp_path):
        outer = GlobalHydra.instance().hydra
        HydraConfig.instance().cfg = marker
        try:
            cfg = twinrun_compose("vae_mnist", ["seed=0"])
            assert GlobalHydra.instance().hydra is outer
            assert HydraConfig.instance().cfg is marker
        finally:
            HydraConfig.instance().cfg = None
    assert cfg.seed == 0 and not GlobalHydra.instance().is_initialized()


def test_twin_result_reports_the_first_difference(tmp_path: Path) -> None:
    from twinrun.compare.report.model import DIFFERENT, IDENTICAL, Report, WeightsSection
    from twinrun.testing.pytest_plugin import TwinResult

    def report(status: str) -> Report:
        return Report("a", "b", {"weights": WeightsSection(status=status, summary=status)})

    same = TwinResult([tmp_path], [report(IDENTICAL), report(IDENTICAL)])
    same.assert_identical()
    mixed = TwinResult([tmp_path], [report(IDENTICAL), report(DIFFERENT)])
    assert not mixed.identical and mixed.report is mixed.reports[1]
    with pytest.raises(AssertionError, match="twin runs differ"):
        mixed.assert_identical()
