import json
import re

import pytest
import torch
import yaml
from safetensors.torch import load_file

from twinrun.config import ConfigError
from twinrun.record import runs
from twinrun.testing.compose import compose_config
from twinrun.trainers.apps import mnist_classifier, vae_mnist
from twinrun.trainers.loop import Hooks

TINY = [
    "data=synthetic",
    "data.train_samples=96",
    "data.test_samples=32",
    "training.epochs=2",
    "training.batch_size=40",
    "device=cpu",
]


def test_vae_run_writes_the_whole_contract(tmp_path) -> None:
    result = vae_mnist.train(compose_config("vae_mnist", [*TINY, "seed=0"]), tmp_path)
    for name in [
        *runs.CONTRACT_FILES,
        "vae_mnist.log",
        "images/originals.png",
        "images/reconstructions.png",
        "images/samples.png",
    ]:
        assert (tmp_path / name).is_file(), name
    assert result.steps == 6  # 96 samples in batches of 40 -> 3 steps per epoch, partial last batch kept
    assert sorted((tmp_path / "checkpoints").iterdir())
    resolved = yaml.safe_load((tmp_path / runs.RESOLVED_CONFIG).read_text())
    assert resolved["seed"] == 0 and "root" not in resolved["data"]
    assert "${" not in (tmp_path / runs.RESOLVED_CONFIG).read_text()
    metrics = [json.loads(line) for line in (tmp_path / runs.METRICS).read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and float.fromhex(metrics[-1]["train_loss"]) > 0
    trace = [json.loads(line) for line in (tmp_path / runs.TRACE).read_text().splitlines()]
    assert [row["step"] for row in trace] == list(range(1, 7))
    log_text = (tmp_path / "vae_mnist.log").read_text()
    assert "epoch 1/2" in log_text and "epoch 2/2" in log_text


def test_classifier_saves_batch_norm_buffers_and_accuracy(tmp_path) -> None:
    mnist_classifier.train(compose_config("mnist_classifier", [*TINY, "model=cnn_small"]), tmp_path)
    weights = load_file(tmp_path / runs.WEIGHTS)
    assert any(name.endswith("running_var") for name in weights)
    assert int(weights["features.1.num_batches_tracked"]) == 6
    metrics = json.loads((tmp_path / runs.METRICS).read_text().splitlines()[-1])
    assert 0 <= float.fromhex(metrics["test_accuracy"]) <= 1
    assert (tmp_path / "images" / "confusion_matrix.png").is_file()
    assert (tmp_path / "images" / "misclassified.png").is_file()


def test_seed_null_is_drawn_logged_and_recorded(tmp_path) -> None:
    result = vae_mnist.train(compose_config("vae_mnist", [*TINY, "seed=null", "training.epochs=1"]), tmp_path)
    resolved = yaml.safe_load((tmp_path / runs.RESOLVED_CONFIG).read_text())
    assert resolved["seed"] == result.seed and isinstance(result.seed, int)
    assert f"drew seed={result.seed}" in (tmp_path / "vae_mnist.log").read_text()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=-1", "seed=null"),
        ("device=tpu", "device=cpu"),
        ("model=model_conf", "is not a VAE class"),
        ("model.input_dim=10", "model.input_dim=10 does not fit the data"),
        ("model.latent_dim=0", "latent_dim=0 is not usable"),
        ("deterministic=maybe", "deterministic='maybe' is not usable: give true or false"),
        ("checkpoint.keep_last=-1", "checkpoint.keep_last=-1 is not usable"),
        ("trace.params_every=0", "trace.params_every=0 is not usable"),
    ],
)
def test_bad_config_is_a_one_line_error(tmp_path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        vae_mnist.train(compose_config("vae_mnist", [*TINY, override]), tmp_path)
    assert "\n" not in str(error.value)
    assert not (tmp_path / runs.RESOLVED_CONFIG).exists()  # refused before the run's first file


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_without_a_device_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        vae_mnist.train(compose_config("vae_mnist", [*TINY, "device=cuda"]), tmp_path)


def test_max_steps_stops_and_checkpoints(tmp_path) -> None:
    result = vae_mnist.train(compose_config("vae_mnist", [*TINY, "training.max_steps=4"]), tmp_path)
    assert result.steps == 4
    assert (tmp_path / "checkpoints" / "step-00000004.pt").is_file()


def test_hooks_run_around_every_step(tmp_path) -> None:
    seen: list[tuple[str, int, int]] = []
    hooks = Hooks(
        before_step=[lambda ctx: seen.append(("before", ctx.step, ctx.epoch))],
        after_step=[lambda ctx: seen.append(("after", ctx.step, ctx.epoch))],
    )
    vae_mnist.train(compose_config("vae_mnist", [*TINY, "training.epochs=1"]), tmp_path, hooks=hooks)
    assert seen == [
        ("before", 1, 1),
        ("after", 1, 1),
        ("before", 2, 1),
        ("after", 2, 1),
        ("before", 3, 1),
        ("after", 3, 1),
    ]


def test_resuming_another_models_checkpoint_is_a_one_line_error(tmp_path) -> None:
    from twinrun.record.checkpoint import CheckpointError

    vae_mnist.train(compose_config("vae_mnist", [*TINY, "training.epochs=1"]), tmp_path / "small")
    overrides = [*TINY, "model=vae_small", f"training.resume_from={tmp_path / 'small'}"]
    with pytest.raises(CheckpointError, match="does not fit") as error:
        vae_mnist.train(compose_config("vae_mnist", overrides), tmp_path / "other")
    assert "\n" not in str(error.value)


def test_a_checkpoint_missing_an_entry_is_a_one_line_error(tmp_path) -> None:
    from twinrun.record.checkpoint import CheckpointError

    vae_mnist.train(compose_config("vae_mnist", [*TINY, "training.epochs=1"]), tmp_path / "first")
    path = next((tmp_path / "first" / runs.CHECKPOINTS).glob("step-*.pt"))
    state = torch.load(path, weights_only=True)
    del state["rng"]
    torch.save(state, path)
    overrides = [*TINY, f"training.resume_from={path}"]
    with pytest.raises(CheckpointError, match=r"does not fit .*'rng'") as error:
        vae_mnist.train(compose_config("vae_mnist", overrides), tmp_path / "second")
    assert "\n" not in str(error.value)


def test_a_step_checkpoint_is_not_written_twice(tmp_path, monkeypatch) -> None:
    import twinrun.trainers.loop

    saved: list[int] = []
    original = twinrun.trainers.loop.save_checkpoint
    monkeypatch.setattr(
        twinrun.trainers.loop,
        "save_checkpoint",
        lambda d, step, *a: (saved.append(step), original(d, step, *a)),
    )
    # 96 samples in batches of 48: 2 steps an epoch. Steps 2 and 4 end an epoch (its checkpoint has
    # the same step) and max_steps stops at 5 (the final checkpoint): each step is saved exactly once.
    overrides = [*TINY, "training.batch_size=48", "training.epochs=3", "checkpoint.every_n_steps=1"]
    vae_mnist.train(compose_config("vae_mnist", [*overrides, "training.max_steps=5"]), tmp_path / "run")
    assert saved == [1, 2, 3, 4, 5]  # before the fix: [1, 2, 2, 3, 4, 4, 5, 5]
