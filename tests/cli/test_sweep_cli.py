"""``twinrun verify -m``: real Hydra sweeps of the real trainers through Hydra's launchers (tiny, CPU)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_verify_cli import verify

TINY = [
    "data=synthetic",
    "data.train_samples=128",
    "data.test_samples=32",
    "training.epochs=1",
    "device=cpu",
]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def verify_sweep(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``twinrun verify vae-mnist -m ARGS`` with the sweeps' runs under tmp_path/work."""
    return verify("vae-mnist", "-m", *args, "--workdir", str(tmp_path / "work"), cwd=tmp_path, timeout=600)


@pytest.mark.slow  # 2 sweeps x 6 points, each point a short training in a joblib (loky) worker
def test_a_six_point_joblib_sweep_verifies_identical(tmp_path: Path) -> None:
    sweep = ["optimizer.lr=0.001,0.002,0.003", "model=vae,vae_small", *TINY, *JOBLIB]
    done = verify_sweep(tmp_path, *sweep, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    tree = json.loads(done.stdout)
    assert tree["format"] == "twinrun-sweep/1" and tree["verdict"] == "identical"
    assert tree["launcher"] == "JoblibLauncher"
    assert [p["point"] for p in tree["points"]] == [
        f"optimizer.lr={lr} model={m}" for lr in ("0.001", "0.002", "0.003") for m in ("vae", "vae_small")
    ]
    assert all(p["verdict"] == "identical" and p["first_divergence"] is None for p in tree["points"])
    # The points really differ from each other: the matrix is not six copies of one run.
    digests = {
        json.loads(Path(p["run_dirs"][0], "manifest.json").read_text())["digest"] for p in tree["points"]
    }
    assert len(digests) == 6
    # loky workers get their own thread count; it is recorded, and the same in both sweeps.
    threads = {
        json.dumps(json.loads(Path(d, "env.json").read_text())["threads"])
        for p in tree["points"]
        for d in p["run_dirs"]
    }
    assert len(threads) == 1, threads


@pytest.mark.slow  # 2 sweeps x 2 points through the joblib launcher
def test_a_sweep_point_that_differs_is_caught(tmp_path: Path) -> None:
    # Negative control: seed=null draws a fresh seed per run, seed=7 does not.
    done = verify_sweep(tmp_path, "seed=null,7", *TINY, *JOBLIB)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "twinrun verify: different (2 points x 2 sweeps of vae-mnist; launcher JoblibLauncher)"
    assert any(
        line.split() == ["#0", "seed=null", "different", "step", "1", "(epoch", "1):", "configuration"]
        for line in lines
    )
    assert any(line.split() == ["#1", "seed=7", "identical", "-"] for line in lines)
    assert "first point that differs: #0 seed=null" in done.stdout
    assert "seed: " in done.stdout  # the full report names the config key that differs


@pytest.mark.slow  # submitit's local executor polls its jobs: about 25 s per sweep
@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="hydra-submitit-launcher is not installed (pip install 'twinrun[launchers]')",
)
def test_a_submitit_local_sweep_verifies(tmp_path: Path) -> None:
    # The same launcher code path as submitit_slurm, with a local executor instead of sbatch.
    submitit = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]
    done = verify_sweep(
        tmp_path, "optimizer.lr=0.001,0.002", "model=vae_small", *TINY, *submitit, "--markdown"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(
        "## ✅ twinrun verify: identical (2 points x 2 sweeps of vae-mnist; launcher LocalLauncher)"
    )
    assert "| #1 optimizer.lr=0.002 | identical | - |" in done.stdout
    assert (tmp_path / "work" / "sweep-1" / ".submitit").is_dir()
