import re

import pytest
from omegaconf import OmegaConf

from twinrun import config


def test_config_dir_holds_both_apps_and_the_contract_files() -> None:
    root = config.config_dir()
    for name in (
        "vae_mnist.yaml",
        "mnist_classifier.yaml",
        "model/model_conf.yaml",
        "training/training_conf.yaml",
    ):
        assert (root / name).is_file(), name
    for group in ("data", "model", "training", "experiment"):
        assert (root / group).is_dir()
    assert {p.stem for p in (root / "data").glob("*.yaml")} == {"mnist", "fashion_mnist", "synthetic"}


@pytest.mark.parametrize(
    ("key", "volatile"),
    [
        ("data.root", True),
        ("training.resume_from", True),
        ("hydra.run.dir", True),
        ("output_dir", True),
        ("paths.log_dir", True),
        ("start_timestamp", True),
        ("optimizer.lr", False),
        ("seed", False),
        ("training.epochs", False),
    ],
)
def test_is_volatile(key: str, volatile: bool) -> None:
    assert config.is_volatile(key) is volatile


def test_canonicalize_drops_volatile_keys_and_sorts() -> None:
    tree = {"z": 1, "data": {"root": "/tmp/a", "name": "synthetic"}, "a": [{"run_dir": "x", "k": 2}]}
    assert config.canonicalize(tree) == {"a": [{"k": 2}], "data": {"name": "synthetic"}, "z": 1}
    assert list(config.canonicalize(tree)) == ["a", "data", "z"]


def test_canonical_config_resolves_interpolations() -> None:
    cfg = OmegaConf.create({"lr": 0.1, "opt": {"lr": "${lr}"}, "hydra": {"x": 1}})
    assert config.canonical_config(cfg) == {"lr": 0.1, "opt": {"lr": 0.1}}


def test_flatten() -> None:
    assert config.flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {"a.b": 1, "a.c": [1, 2], "d": {}}


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1, None])
def test_check_seed_accepts(seed) -> None:
    assert config.check_seed(seed) == seed


@pytest.mark.parametrize("seed", [-1, 2**32, 1.0, True, "1"])
def test_check_seed_rejects_with_a_hint(seed) -> None:
    with pytest.raises(config.ConfigError, match="seed=null"):
        config.check_seed(seed)


def test_check_device() -> None:
    assert config.check_device("cuda:1") == "cuda:1"
    with pytest.raises(config.ConfigError, match="device=cpu"):
        config.check_device("tpu")


TRAINING = {"epochs": 1, "batch_size": 8, "num_workers": 0, "max_steps": None}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"batch_size": 0}, "training.batch_size=0 is not usable: give an integer >= 1"),
        ({"batch_size": -3}, "training.batch_size=-3 is not usable"),
        ({"batch_size": 2.5}, "training.batch_size=2.5 is not usable"),
        ({"num_workers": -1}, "training.num_workers=-1 is not usable: give an integer >= 0"),
        ({"epochs": 0}, "training.epochs=0 is not usable"),
        ({"max_steps": 0}, "training.max_steps=0 is not usable: give an integer >= 1 or null"),
    ],
)
def test_unusable_training_counts_are_one_line_errors(change, said) -> None:
    config.check_training(TRAINING)  # control: the unchanged node is fine
    with pytest.raises(config.ConfigError, match=re.escape(said)):
        config.check_training({**TRAINING, **change})


@pytest.mark.parametrize(
    ("node", "said"),
    [
        ({"_target_": "torch.optim.Adam", "lr": float("nan")}, "optimizer.lr=nan is not usable"),
        ({"_target_": "torch.optim.Adam", "lr": float("-inf")}, "optimizer.lr=-inf is not usable"),
        ({"_target_": "torch.optim.Adam", "lr": -1.0}, "optimizer.lr=-1.0 is not usable"),
        ({"_target_": "torch.optim.Adam", "lr": "fast"}, "optimizer.lr='fast' is not usable"),
        (
            {"_target_": "torch.nn.Linear", "lr": 0.1},
            "optimizer._target_=torch.nn.Linear is not a torch optimizer",
        ),
        ({"_target_": "os.system", "lr": 0.1}, "optimizer._target_=os.system is not a torch optimizer"),
        (
            {"_target_": "no_such_module.Opt"},
            "optimizer._target_=no_such_module.Opt is not a torch optimizer",
        ),
        ({"lr": 0.1}, "is not usable: give _target_"),
    ],
)
def test_unusable_optimizers_are_refused_before_anything_is_called(node, said) -> None:
    import torch

    with pytest.raises(config.ConfigError, match=re.escape(said)) as error:
        config.build_optimizer(OmegaConf.create(node), torch.nn.Linear(1, 1).parameters())
    assert "\n" not in str(error.value)


def test_torch_optimizers_are_built_and_their_own_errors_are_one_line() -> None:
    import torch

    params = list(torch.nn.Linear(1, 1).parameters())
    for target in ("torch.optim.Adam", "torch.optim.adam.Adam", "torch.optim.SGD"):
        assert isinstance(
            config.build_optimizer(OmegaConf.create({"_target_": target, "lr": 0.1}), params),
            torch.optim.Optimizer,
        )
    bad_betas = OmegaConf.create({"_target_": "torch.optim.Adam", "lr": 0.1, "betas": [2, 3]})
    with pytest.raises(
        config.ConfigError, match=r"optimizer=torch.optim.Adam cannot be built: .*beta"
    ) as error:
        config.build_optimizer(bad_betas, params)
    assert "\n" not in str(error.value)
