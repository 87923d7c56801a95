"""DDP twins: both trainers under torchrun with 2 CPU processes (gloo), verified by ``twinrun verify``;
a DDP run stopped mid-epoch and resumed equals an uninterrupted one.

Each negative control is a tiny app script in tmp_path that plants one real DDP bug into the real
trainer and then runs it: an unseeded sampler (twins must differ), and batch-norm buffers left
unsynchronised across ranks (ranks must differ).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twinrun.compare.runs import compare_runs

TINY = [
    "data=synthetic",
    "data.train_samples=128",
    "data.test_samples=32",
    "training.epochs=2",
    "training.batch_size=32",
    "device=cpu",
]

# The bug under test: the DistributedSampler's seed comes from OS entropy instead of cfg.seed.
UNSEEDED_SAMPLER_APP = """\
import secrets

import hydra

from twinrun.trainers.apps import vae_mnist
from twinrun.trainers.apps.shell import run_under_hydra
from twinrun.config import config_dir
from twinrun.trainers.data import make_loader
from twinrun.trainers.loop import Hooks


def unseeded_loader(split, batch_size, *, seed, **kwargs):
    return make_loader(split, batch_size, seed=secrets.randbelow(2**32), **kwargs)


def train(cfg, run_dir):
    return vae_mnist.train(cfg, run_dir, hooks=Hooks(make_loader=unseeded_loader))


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="vae_mnist")
def main(cfg):
    run_under_hydra(train, cfg)


if __name__ == "__main__":
    main()
"""

# The bug under test: each rank keeps the batch-norm statistics of its own last batch.
UNSYNCED_BUFFERS_APP = """\
from twinrun.trainers import distributed

distributed.sync_buffers = lambda world, model: None

from twinrun.trainers.apps.mnist_classifier import main

if __name__ == "__main__":
    main()
"""


def run(*args: str, cwd: Path, data_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TMPDIR": str(cwd), "TWINRUN_DATA_ROOT": str(data_root)},
    )


def verify_ddp(
    app: str, *overrides: str, tmp_path: Path, data_root: Path, fmt: tuple[str, ...] = ("--json",)
) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path / "work"
    args = ["-m", "twinrun", "verify", "--nproc-per-node", "2", app, *TINY, *overrides]
    return run(*args, "--workdir", str(workdir), *fmt, cwd=tmp_path, data_root=data_root), workdir


def write_app(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


@pytest.mark.slow  # 2 torchrun launches of 2 processes each
@pytest.mark.parametrize(("app", "model"), [("vae-mnist", "vae_small"), ("mnist-classifier", "cnn_small")])
def test_ddp_twins_are_identical_on_every_rank(
    app: str, model: str, tmp_path: Path, twinrun_data_root: Path
) -> None:
    done, workdir = verify_ddp(app, f"model={model}", tmp_path=tmp_path, data_root=twinrun_data_root)
    assert done.returncode == 0, done.stdout + done.stderr
    tree = json.loads(done.stdout)
    assert tree["verdict"] == "identical" and tree["ddp"]["nproc_per_node"] == 2
    assert [c["check"] for c in tree["ddp"]["checks"]] == [
        "rank 0: run-1 / run-2",
        "rank 1: run-1 / run-2",
        "run-1: rank 1 / rank 0",
        "run-2: rank 1 / rank 0",
    ]
    assert all(c["verdict"] == "identical" for c in tree["ddp"]["checks"])
    assert tree["sections"]["trace"]["status"] == "identical"  # the full twin comparison ran too
    run_dir = workdir / "run-1"
    assert json.loads((run_dir / "env.json").read_text())["distributed"] == {
        "world_size": 2,
        "backend": "gloo",
    }
    # Rank 1 logs into its own file: the job log holds rank 0's lines only.
    log_name = app.replace("-", "_") + ".log"
    assert "rank 1 weights digest" in (run_dir / "ranks" / "rank-1" / log_name).read_text()
    job_log = (run_dir / log_name).read_text()
    assert "distributed: rank 0 of" in job_log and "rank 1" not in job_log
    # Each rank trained on half of every epoch: 2 epochs x 2 batches of 32 samples per rank.
    trace = (run_dir / "trace.jsonl").read_text().splitlines()
    assert len(trace) == 4


@pytest.mark.slow
def test_an_unseeded_sampler_is_caught(tmp_path: Path, twinrun_data_root: Path) -> None:
    app = write_app(tmp_path, "unseeded_sampler.py", UNSEEDED_SAMPLER_APP)
    done, _ = verify_ddp(app, tmp_path=tmp_path, data_root=twinrun_data_root, fmt=("--markdown",))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "twinrun verify (DDP): different" in done.stdout
    assert "| rank 0: run-1 / run-2 | different |" in done.stdout
    assert "| rank 1: run-1 / run-2 | different |" in done.stdout
    assert "step 1 (epoch 1): data order" in done.stdout  # the divergence names the batch order


@pytest.mark.slow
def test_ranks_that_disagree_are_caught(tmp_path: Path, twinrun_data_root: Path) -> None:
    app = write_app(tmp_path, "unsynced_buffers.py", UNSYNCED_BUFFERS_APP)
    done, _ = verify_ddp(app, "model=cnn_small", tmp_path=tmp_path, data_root=twinrun_data_root, fmt=())
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # The twins agree with each other (same bug, same seed) but rank 1 is not rank 0's model.
    assert any(line.startswith("run-1 / run-2 (rank 0 run directory)  identical") for line in lines)
    assert any(line.startswith("run-1: rank 1 / rank 0") and "different" in line for line in lines)
    assert "run-1: rank 1 / rank 0: weights" in done.stdout
    assert "running_mean" in done.stdout


@pytest.mark.slow
def test_torchrun_runs_an_app_module_directly(tmp_path: Path, twinrun_data_root: Path) -> None:
    # The documented way to train with DDP without twinrun verify.
    run_dir = tmp_path / "run"
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    done = run(
        *torchrun,
        "-m",
        "twinrun.trainers.apps.vae_mnist",
        *TINY,
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        data_root=twinrun_data_root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    digests = [
        json.loads((d / "manifest.json").read_text())["digest"]
        for d in (run_dir, run_dir / "ranks" / "rank-0", run_dir / "ranks" / "rank-1")
    ]
    assert len(set(digests)) == 1  # every rank holds exactly the run's final weights


@pytest.mark.slow  # 3 torchrun launches of 2 processes each
def test_ddp_stop_and_resume_matches_an_uninterrupted_run(tmp_path: Path, twinrun_data_root: Path) -> None:
    # The classifier: its batch-norm buffers are synchronised across ranks, and must be restored too.
    # TINY gives each rank 2 batches per epoch: step 3 is the first batch of epoch 2, mid-epoch.
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    common = [*torchrun, "-m", "twinrun.trainers.apps.mnist_classifier", *TINY, "model=cnn_small"]
    full, first, resumed = tmp_path / "full", tmp_path / "first", tmp_path / "resumed"
    for extra in (
        [f"hydra.run.dir={full}"],
        ["training.max_steps=3", f"hydra.run.dir={first}"],
        [f"training.resume_from={first}", f"hydra.run.dir={resumed}"],
    ):
        done = run(*common, *extra, cwd=tmp_path, data_root=twinrun_data_root)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed from" in (resumed / "mnist_classifier.log").read_text()
    report = compare_runs(full, resumed)
    for section in ("weights", "metrics", "trace", "config"):
        assert report.sections[section].status == "identical", (section, report.sections[section].summary)
    digests = {
        json.loads((d / "manifest.json").read_text())["digest"]
        for run_dir in (full, resumed)
        for d in (run_dir, run_dir / "ranks" / "rank-0", run_dir / "ranks" / "rank-1")
    }
    assert len(digests) == 1  # every rank of both runs holds the same final weights
    stopped = json.loads((first / "manifest.json").read_text())["digest"]
    assert stopped not in digests  # negative control: the stopped run's weights are not the final ones
