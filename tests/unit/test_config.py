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
