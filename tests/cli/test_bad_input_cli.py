"""Bad input to the trainers' console scripts: one line on stderr, exit 2, no traceback; one run per dir."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from tests.cli.conftest import console_script
from twinrun.record import runs
from twinrun.record.checkpoint import CHECKPOINT_FORMAT
from twinrun.record.lock import run_dir_lock

TINY = ["data=synthetic", "data.train_samples=128", "data.test_samples=32", "training.epochs=1", "device=cpu"]
# A Hydra app written the way the apps' shell is meant to be used: app_main + the lock callback.
SHELL_APP = textwrap.dedent(
    """
    from twinrun.trainers.apps import vae_mnist
    from twinrun.trainers.apps.shell import app_main, run_under_hydra

    @app_main(vae_mnist.APP_NAME)
    def main(cfg):
        run_under_hydra(vae_mnist.train, cfg)

    main()
    """
)
LOCK_CALLBACK = "+hydra.callbacks.lock._target_=twinrun.trainers.apps.shell.RunDirLockCallback"


def assert_one_line_error(done: subprocess.CompletedProcess[str], app: str, *said: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{app}: error: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for text in said:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(twinrun_data_root) -> dict[str, str]:
    return {**os.environ, "TWINRUN_DATA_ROOT": str(twinrun_data_root)}


@pytest.fixture
def shell_app(tmp_path, env):
    path = tmp_path / "shell_app.py"
    path.write_text(SHELL_APP)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(path), *args], capture_output=True, text=True, env=env, timeout=300
        )

    return run


@pytest.mark.parametrize(
    ("override", "said"),
    [
        # One value check and one object check through the console script; every other value is checked
        # in process where its rule lives (tests/unit/test_config.py, tests/unit/trainers/test_building.py).
        ("training.batch_size=0", "training.batch_size=0 is not usable"),
        ("optimizer._target_=torch.nn.Linear", "optimizer._target_=torch.nn.Linear is not a torch optimizer"),
    ],
)
def test_bad_training_values_are_one_line_on_stderr(run_script, tmp_path, override, said) -> None:
    done = run_script("vae-mnist", *TINY, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(done, "vae-mnist", said)
    assert not (tmp_path / "run" / runs.RESOLVED_CONFIG).exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("override", "said"),
    [
        # One error raised inside the job (shell.py's one path for all of them); the model checks
        # themselves (hidden_dim=-1, nonexistent.Mod, ...) are tests/unit/trainers/test_building.py's.
        ("scheduler=nope", "scheduler='nope' is not usable: give _target_"),
    ],
)
def test_errors_inside_the_job_are_our_line_alone(run_script, tmp_path, override, said) -> None:
    # Raised inside the job, Hydra printed "Error executing job with overrides: [...]" before our line.
    done = run_script("vae-mnist", *TINY, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(done, "vae-mnist", said)
    assert not (tmp_path / "run" / runs.RESOLVED_CONFIG).exists()


def test_overrides_split_by_an_option_are_one_usage_line(run_script, tmp_path) -> None:
    # argparse printed 8 lines of usage: overrides after -m, when some came before it, are unrecognized
    done = run_script("vae-mnist", *TINY, "-m", "seed=1,", f"hydra.sweep.dir={tmp_path / 's'}")
    assert_one_line_error(done, "vae-mnist", "unrecognized arguments: seed=1,", "give the options first")
    assert not (tmp_path / "s").exists()


def test_a_crafted_checkpoint_is_one_line(run_script, tmp_path) -> None:
    position = {"epoch": "a", "batch": -5, "step": 0, "epoch_loss_sum": 0.0, "epoch_samples": 0}
    torch.save({"format": CHECKPOINT_FORMAT, "position": position, "metrics": []}, tmp_path / "crafted.pt")
    done = run_script(
        "vae-mnist",
        *TINY,
        f"training.resume_from={tmp_path / 'crafted.pt'}",
        f"hydra.run.dir={tmp_path / 'r'}",
    )
    assert_one_line_error(done, "vae-mnist", "crafted.pt is not usable: position.epoch='a'")


def test_a_file_size_limit_is_one_line_not_a_signal(tmp_path, env) -> None:
    def limit() -> None:  # ulimit -f 4000: 4000 KiB, less than one checkpoint of the VAE
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000 * 1024, 4000 * 1024))

    done = subprocess.run(
        [console_script("vae-mnist"), *TINY, f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
        timeout=300,
    )
    assert_one_line_error(done, "vae-mnist", "cannot write ", "File too large; raise the file-size limit")
    assert not list((tmp_path / "run").rglob("*.tmp"))  # the half-written temporary is gone


def test_a_busy_run_dir_is_refused_naming_the_holder(run_script, tmp_path) -> None:
    with run_dir_lock(tmp_path / "run"):
        done = run_script("vae-mnist", *TINY, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(done, "vae-mnist", f"{tmp_path / 'run'} is in use", f"(pid {os.getpid()})")
    assert not (tmp_path / "run" / runs.RESOLVED_CONFIG).exists()


# Nightly (slow): four trainings in real processes. The PR gate keeps the lock's own checks across
# processes (tests/unit/record/test_lock.py: a second process refused naming the holder, a killed holder)
# and test_a_busy_run_dir_is_refused_naming_the_holder below.
@pytest.mark.slow
def test_two_trainings_started_together_into_one_dir_do_not_mix(tmp_path, env, shell_app) -> None:
    shared = tmp_path / "CC"

    def start(seed: int, where) -> subprocess.Popen[str]:
        args = [*TINY, f"seed={seed}", f"hydra.run.dir={where}"]
        return subprocess.Popen(
            [console_script("vae-mnist"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    racers = {7: start(7, shared), 8: start(8, shared)}
    done = {seed: (p.wait(timeout=300), *p.communicate()) for seed, p in racers.items()}
    assert sorted(rc for rc, _, _ in done.values()) == [0, 2], done
    winner = next(seed for seed, (rc, _, _) in done.items() if rc == 0)
    loser = 15 - winner
    _, _, stderr = done[loser]
    assert len(stderr.splitlines()) == 1 and str(shared) in stderr, stderr
    assert f"in use by another training (pid {racers[winner].pid})" in stderr or "finished run" in stderr
    assert yaml.safe_load((shared / runs.RESOLVED_CONFIG).read_text())["seed"] == winner
    # The weights are the winner's: equal to a lone run of its seed, unlike a lone run of the loser's.
    twins = {seed: start(seed, tmp_path / f"alone-{seed}") for seed in (winner, loser)}
    assert all(p.wait(timeout=300) == 0 for p in twins.values())
    weights = (shared / runs.WEIGHTS).read_bytes()
    assert weights == (tmp_path / f"alone-{winner}" / runs.WEIGHTS).read_bytes()
    assert weights != (tmp_path / f"alone-{loser}" / runs.WEIGHTS).read_bytes()

    # Trained into again (finished): refused before Hydra's record of the run is overwritten.
    hydra_config = (shared / ".hydra" / "config.yaml").read_text()
    again = shell_app(*TINY, f"seed={loser}", f"hydra.run.dir={shared}", LOCK_CALLBACK)
    assert_one_line_error(again, "shell_app.py", f"{shared} already holds a finished run", "resume_from=")
    assert (shared / ".hydra" / "config.yaml").read_text() == hydra_config


def test_hydra_errors_before_the_job_are_one_line(tmp_path, shell_app) -> None:
    missing = shell_app(*TINY, "data=nonexistent", f"hydra.run.dir={tmp_path / 'r'}")
    assert_one_line_error(
        missing, "shell_app.py", "data=nonexistent is not an option", "fashion_mnist, mnist, synthetic"
    )
    (tmp_path / "file").write_text("x")
    unwritable = shell_app(*TINY, f"hydra.run.dir={tmp_path / 'file' / 'run'}")
    assert_one_line_error(unwritable, "shell_app.py", "file/run", "Not a directory", "writable hydra.run.dir")


@pytest.mark.parametrize("app", ["vae-mnist", "mnist-classifier"])
def test_the_console_scripts_turn_hydra_errors_into_one_line(run_script, tmp_path, app) -> None:
    done = run_script(app, "data=nonexistent", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(
        done, app, "data=nonexistent is not an option of the config group data", "synthetic"
    )
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a run directory below a file cannot be created
    done = run_script(app, "data=synthetic", f"hydra.run.dir={blocked / 'run'}")
    assert_one_line_error(done, app, "cannot create the run directory", "choose a writable hydra.run.dir")
