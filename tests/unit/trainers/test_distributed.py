"""``twinrun.trainers.distributed``: the torchrun environment, a world of 1,
rank logs, real gloo collectives."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from twinrun.trainers import distributed
from twinrun.trainers.distributed import DistributedError, World, world_from_env

# Two gloo ranks exercising the collectives fit uses; each rank writes what it saw.
COLLECTIVES = """\
import json, os, sys
import torch
from torch import nn
import torch.distributed as dist
from twinrun.trainers import distributed

world = distributed.world_from_env()
device = torch.device("cpu")
with distributed.process_group(world, device):
    values = [0.1 + world.rank, 1e16 if world.rank == 0 else 1.0, 3.0]
    sums = distributed.rank_sums(world, values, device)
    seed = distributed.from_rank0(world, 1000 + world.rank, device)
    model = nn.BatchNorm1d(2)
    model.running_mean.fill_(float(world.rank + 1))
    distributed.sync_buffers(world, model)
    wrapped = distributed.wrap(world, nn.Linear(2, 2), device)
    out = {"sums": [v.hex() for v in sums], "seed": seed, "mean": model.running_mean.tolist(),
           "wrapped": type(wrapped).__name__, "initialized": dist.is_initialized()}
out["after"] = dist.is_initialized()
with open(os.path.join(sys.argv[1], f"rank-{world.rank}.json"), "w") as f:
    json.dump(out, f)
"""


def test_a_plain_process_is_rank_0_of_1() -> None:
    assert world_from_env({}) == World(0, 1, 0)
    world = world_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert world == World(3, 4, 1) and world.distributed and not world.is_main


@pytest.mark.parametrize(
    "env",
    [
        {"RANK": "2", "WORLD_SIZE": "2"},
        {"RANK": "0", "WORLD_SIZE": "0"},
        {"RANK": "x", "WORLD_SIZE": "2"},
        {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "-1"},
    ],
)
def test_an_inconsistent_rank_layout_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(DistributedError):
        world_from_env(env)


def test_a_world_of_one_changes_nothing() -> None:
    world, cpu = World(), torch.device("cpu")
    model = nn.BatchNorm1d(2)
    assert distributed.wrap(world, model, cpu) is model
    assert distributed.rank_sums(world, [0.1, 3], cpu) == [0.1, 3]  # no float64 round trip
    assert distributed.from_rank0(world, 7, cpu) == 7
    model.running_mean.fill_(0.25)
    distributed.sync_buffers(world, model)
    assert model.running_mean.tolist() == [0.25, 0.25]  # nothing to broadcast from: left as it was
    assert distributed.rank_device(world, cpu) == cpu
    assert distributed.backend_for(cpu) == "gloo" and distributed.backend_for(torch.device("cuda")) == "nccl"
    assert distributed.rank_dir("run", 1) == Path("run/ranks/rank-1")


def test_other_ranks_log_into_their_own_file(tmp_path: Path) -> None:
    # What Hydra sets up on every rank: a file handler on the shared job log.
    shared = logging.FileHandler(tmp_path / "app.log")
    root = logging.getLogger()
    root.addHandler(shared)
    log = logging.getLogger("twinrun.test")
    try:
        with distributed.rank_log(tmp_path, "app", World(1, 2, 1)) as path:
            log.warning("from rank 1")
        assert path == (tmp_path / "ranks" / "rank-1" / "app.log").resolve()
        assert shared in root.handlers  # put back afterwards
        with distributed.rank_log(tmp_path, "app", World(0, 2, 0)):
            log.warning("from rank 0")
    finally:
        root.removeHandler(shared)
        shared.close()
    assert "from rank 1" in path.read_text() and "from rank 0" not in path.read_text()
    assert "from rank 0" in (tmp_path / "app.log").read_text()
    assert "from rank 1" not in (tmp_path / "app.log").read_text()  # negative: no duplicate lines


def test_collectives_on_two_gloo_ranks(tmp_path: Path) -> None:
    script = tmp_path / "collectives.py"
    script.write_text(COLLECTIVES)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    done = subprocess.run(
        [*command, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    # Added in rank order, in float64: (1e16 + 1.0) rounds the same on every rank.
    expected = [0.1 + 1.1, 1e16 + 1.0, 6.0]
    assert ranks[0]["sums"] == ranks[1]["sums"] == [v.hex() for v in expected]
    assert ranks[0]["seed"] == ranks[1]["seed"] == 1000  # rank 0's value everywhere
    assert ranks[0]["mean"] == ranks[1]["mean"] == [1.0, 1.0]  # rank 0's buffers everywhere
    assert {r["wrapped"] for r in ranks} == {"DistributedDataParallel"}
    assert all(r["initialized"] and not r["after"] for r in ranks)  # the group is torn down afterwards


def test_a_single_process_run_writes_no_rank_directories(tmp_path: Path, twinrun_data_root: Path) -> None:
    from twinrun.testing.compose import compose_config
    from twinrun.trainers.apps import vae_mnist

    cfg = compose_config(
        "vae_mnist",
        [
            "data=synthetic",
            f"data.root={twinrun_data_root}",
            "data.train_samples=64",
            "data.test_samples=16",
            "training.epochs=1",
            "device=cpu",
            "model=vae_small",
        ],
    )
    vae_mnist.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "ranks").exists()
    assert "distributed" not in json.loads((tmp_path / "run" / "env.json").read_text())
