"""The Hydra apps as a user runs them: console scripts in fresh processes."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from twinrun.record import runs
from twinrun.testing.compose import compose_config

SMALL = [
    "data=synthetic",
    "data.train_samples=256",
    "data.test_samples=64",
    "training.epochs=2",
    "device=cpu",
]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_in_process(app: str, overrides: list[str], run_dir) -> None:
    """A negative control's run: another seed, trained in this process, which spares a fresh interpreter
    importing torch (that another seed changes the bytes does not depend on how the run was started)."""
    from twinrun.trainers.apps import mnist_classifier, vae_mnist

    train = {"vae-mnist": vae_mnist.train, "mnist-classifier": mnist_classifier.train}[app]
    train(compose_config(app.replace("-", "_"), overrides), run_dir)


def test_vae_twins_in_fresh_processes(run_script, tmp_path) -> None:
    a, b, c = tmp_path / "A", tmp_path / "B", tmp_path / "C"
    first = run_script("vae-mnist", *SMALL, "seed=7", f"hydra.run.dir={a}", hash_seed=1)
    assert first.returncode == 0, first.stderr
    assert run_script("vae-mnist", *SMALL, "seed=7", f"hydra.run.dir={b}", hash_seed=2).returncode == 0
    train_in_process("vae-mnist", [*SMALL, "seed=8"], c)
    for run in (a, b):
        for name in [
            *runs.CONTRACT_FILES,
            "vae_mnist.log",
            ".hydra/config.yaml",
            ".hydra/hydra.yaml",
            ".hydra/overrides.yaml",
        ]:
            assert (run / name).is_file(), f"{run}/{name}"
        assert sorted(p.name for p in (run / "images").iterdir()) == [
            "originals.png",
            "reconstructions.png",
            "samples.png",
        ]
    for name in (runs.WEIGHTS, runs.METRICS, runs.TRACE, runs.RESOLVED_CONFIG):
        assert digest(a / name) == digest(b / name), name
        assert digest(a / name) != digest(c / name), name  # negative control: another seed

    # Every per-epoch line the terminal showed is in the job's log file.
    epoch_lines = [line for line in first.stdout.splitlines() if " - epoch " in line]
    assert len(epoch_lines) == 2
    log_text = (a / "vae_mnist.log").read_text()
    assert all(line in log_text for line in epoch_lines)
    overrides = yaml.safe_load((a / ".hydra" / "overrides.yaml").read_text())
    assert "seed=7" in overrides and "data=synthetic" in overrides
    resolved = (a / runs.RESOLVED_CONFIG).read_text()
    assert "${" not in resolved and yaml.safe_load(resolved)["seed"] == 7


# Nightly (slow): the PR gate has worker twins of both trainers in tests/repro/test_twins.py and the VAE's
# console-script twins above; this adds the classifier's console script with workers.
@pytest.mark.slow
def test_classifier_twins_with_dataloader_workers(run_script, tmp_path) -> None:
    args = [
        "data=synthetic",
        "data.train_samples=192",
        "data.test_samples=64",
        "training.epochs=1",
        "device=cpu",
        "training.num_workers=2",
    ]
    for name, hash_seed in (("A", 3), ("B", 4)):
        where = f"hydra.run.dir={tmp_path / name}"
        done = run_script("mnist-classifier", *args, "seed=5", where, hash_seed=hash_seed)
        assert done.returncode == 0, done.stderr
    train_in_process("mnist-classifier", [*args, "seed=6"], tmp_path / "C")
    for name in (runs.WEIGHTS, runs.METRICS, runs.TRACE):
        assert digest(tmp_path / "A" / name) == digest(tmp_path / "B" / name), name
        assert digest(tmp_path / "A" / name) != digest(tmp_path / "C" / name), name  # another seed
    assert (tmp_path / "A" / "mnist_classifier.log").is_file()


def test_experiment_selection_changes_the_job_config(run_script) -> None:
    jobs = {}
    for experiment in ("exp1", "exp2"):
        done = run_script("vae-mnist", f"experiment={experiment}", "--cfg", "job")
        assert done.returncode == 0, done.stderr
        jobs[experiment] = yaml.safe_load(done.stdout)
    assert jobs["exp1"]["optimizer"]["lr"] != jobs["exp2"]["optimizer"]["lr"]
    jobs["exp1"]["optimizer"].pop("lr"), jobs["exp2"]["optimizer"].pop("lr")
    assert jobs["exp1"] == jobs["exp2"]


def test_classifier_config_files_drive_the_job_config(run_script) -> None:
    done = run_script("mnist-classifier", "model=cnn_small", "training=large_batch", "--cfg", "job")
    job = yaml.safe_load(done.stdout)
    assert job["model"]["channels"] == [8, 16] and job["training"]["batch_size"] == 256


def test_offline_real_mnist_is_one_clear_line(run_script, tmp_path) -> None:
    # A proxy on a closed local port makes every download fail at once, network or not.
    offline = {
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    done = run_script(
        "vae-mnist",
        "data=mnist",
        f"data.root={tmp_path / 'empty'}",
        "device=cpu",
        f"hydra.run.dir={tmp_path / 'run'}",
        env=offline,
    )
    assert done.returncode == 2
    # One line on stderr (stdout holds only the job's info lines), also kept in the job's log file.
    errors = done.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("vae-mnist: error: data=mnist is not under data.root=")
    assert "data=synthetic" in errors[0]
    assert "ERROR" not in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert errors[0].removeprefix("vae-mnist: error: ") in (tmp_path / "run" / "vae_mnist.log").read_text()
