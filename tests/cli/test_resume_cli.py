"""A run killed mid-epoch (SIGKILL) resumes in its own directory from its last checkpoint, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.cli.conftest import console_script
from twinrun.compare.runs import compare_runs

ARGS = [
    "data=synthetic",
    "data.train_samples=1024",  # 32 steps an epoch: killed at its first checkpoint, 56 steps before the end
    "data.test_samples=64",
    "training.epochs=2",
    "training.batch_size=32",
    "checkpoint.every_n_steps=8",
    "device=cpu",
    "seed=4",
    "model=vae_small",
]


def test_sigkill_then_resume_in_place_matches_an_uninterrupted_run(
    run_script, tmp_path, twinrun_data_root
) -> None:
    killed, full = tmp_path / "killed", tmp_path / "full"
    env = {**os.environ, "TWINRUN_DATA_ROOT": str(twinrun_data_root)}
    process = subprocess.Popen(
        [console_script("vae-mnist"), *ARGS, f"hydra.run.dir={killed}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 240
    while not list((killed / "checkpoints").glob("step-*.pt")) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "weights.safetensors").exists()  # it really died before the end
    # What a SIGKILL in the middle of an atomic write leaves behind.
    stale = killed / "checkpoints" / ".step-00000005.pt.9wtm477f.tmp"
    stale.write_bytes(b"half a checkpoint")

    # Training into the interrupted run without resuming it would mix two runs: refused.
    fresh = run_script("vae-mnist", *ARGS, f"hydra.run.dir={killed}")
    assert fresh.returncode == 2 and len(fresh.stderr.splitlines()) == 1, fresh.stderr
    assert f"{killed} already holds an interrupted run" in fresh.stderr
    assert stale.exists()  # nothing was done to the run

    done = run_script("vae-mnist", *ARGS, f"training.resume_from={killed}", f"hydra.run.dir={killed}")
    assert done.returncode == 0, done.stderr
    assert "resumed from" in (killed / "vae_mnist.log").read_text()
    assert not list(killed.rglob("*.tmp"))  # the stale temporaries are gone
    assert run_script("vae-mnist", *ARGS, f"hydra.run.dir={full}").returncode == 0
    report = compare_runs(full, killed)
    for section in ("weights", "metrics", "trace", "config"):
        assert report.sections[section].status == "identical", section
