import re
from collections.abc import Iterator
from pathlib import Path

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
        ("hydra", True),
        ("hydra.job.name", True),
        ("model.hydra", True),  # the last part
        ("a.model.hydra", True),  # the last part, however deep
        ("hydras", False),
        ("ckpt_path", True),
        ("paths.weights_path", True),
        ("path", False),
        ("start_time", True),
        ("timestamps", True),
        ("time", False),
        ("run.dir", False),
        ("data.name", False),
        ("other.root", False),
        ("resume_from", False),
        ("data.root.x", False),
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


RUN_OPTIONS = {"deterministic": True, "trace": {"params_every": 1}, "checkpoint": {"keep_last": 2}}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"deterministic": "maybe"}, "deterministic='maybe' is not usable: give true or false"),
        ({"deterministic": "off"}, "deterministic='off' is not usable"),
        ({"deterministic": 1}, "deterministic=1 is not usable"),
        ({"trace": {"params_every": 0}}, "trace.params_every=0 is not usable: give an integer >= 1"),
        ({"trace": {"params_every": -1}}, "trace.params_every=-1 is not usable"),
        ({"checkpoint": {"keep_last": -1}}, "keep_last=-1 is not usable: give an integer >= 1 or null"),
        ({"checkpoint": {"keep_last": 0}}, "checkpoint.keep_last=0 is not usable"),
        ({"checkpoint": {"every_n_steps": 0}}, "checkpoint.every_n_steps=0 is not usable"),
        ({"checkpoint": {"every_epoch": "no"}}, "checkpoint.every_epoch='no' is not usable"),
    ],
)
def test_run_options_must_have_their_types(change, said) -> None:
    config.check_run_options(RUN_OPTIONS)  # control: the defaults are fine
    config.check_run_options({"deterministic": False, "checkpoint": {"keep_last": None}})
    with pytest.raises(config.ConfigError, match=re.escape(said)):
        config.check_run_options({**RUN_OPTIONS, **change})


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


# --- where the configs are found -----------------------------------------------------------------------


def _module_at(monkeypatch: pytest.MonkeyPatch, file: Path) -> None:
    """Make ``config_dir`` believe ``twinrun/config.py`` lives at ``file``."""
    file.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(config, "__file__", str(file))


def test_config_dir_prefers_the_packaged_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module_at(monkeypatch, tmp_path / "src" / "twinrun" / "config.py")
    (tmp_path / "src" / "twinrun" / "conf").mkdir()
    (tmp_path / "conf").mkdir()
    assert config.config_dir() == (tmp_path / "src" / "twinrun" / "conf").resolve()


def test_config_dir_falls_back_to_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module_at(monkeypatch, tmp_path / "src" / "twinrun" / "config.py")
    (tmp_path / "conf").mkdir()
    (tmp_path / "src" / "conf").mkdir()  # one level too shallow: not the checkout's conf/
    assert config.config_dir() == (tmp_path / "conf").resolve()


def test_missing_configs_name_both_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module_at(monkeypatch, tmp_path / "src" / "twinrun" / "config.py")
    packaged, checkout = (tmp_path / "src" / "twinrun" / "conf").resolve(), (tmp_path / "conf").resolve()
    with pytest.raises(FileNotFoundError) as error:
        config.config_dir()
    assert str(error.value) == f"twinrun's configs are missing: looked in {packaged} and {checkout}"


# --- volatile keys and the canonical form --------------------------------------------------------------


def test_is_volatile_with_own_patterns() -> None:
    assert config.is_volatile("a.b", ["a.b"]) and config.is_volatile("x.b", ["b"])
    assert not config.is_volatile("a.b", ["a"]) and not config.is_volatile("a.b", [])
    assert not config.is_volatile("data.root", ["x"])


def test_canonicalize_with_own_patterns_given_once() -> None:
    tree = {"a": {"x": 1, "y": 2}, "x": 3, "b": [{"x": 4, "z": 5}]}
    patterns = (p for p in ["x"])  # an iterator: read once, used for every key
    assert config.canonicalize(tree, patterns) == {"a": {"y": 2}, "b": [{"z": 5}]}
    assert config.canonicalize(tree, ["a.x"]) == {"a": {"y": 2}, "b": [{"x": 4, "z": 5}], "x": 3}


def test_canonicalize_keys_become_strings_sorted_as_strings() -> None:
    tree = {2: "two", "10": "ten", 1: {3: "three"}}
    out = config.canonicalize(tree)
    assert out == {"1": {"3": "three"}, "10": "ten", "2": "two"}
    assert list(out) == ["1", "10", "2"]


def test_canonicalize_keeps_the_dotted_prefix_inside_lists_and_tuples() -> None:
    tree = {"data": ({"root": "/x", "name": "m"}, [{"root": "/y"}]), "training": [{"resume_from": "c"}]}
    assert config.canonicalize(tree) == {"data": [{"name": "m"}, [{}]], "training": [{}]}
    assert config.canonicalize(("a", 1)) == ["a", 1] and config.canonicalize(5) == 5


def test_canonical_config_of_a_plain_mapping_and_own_patterns() -> None:
    assert config.canonical_config({"b": 1, "hydra": {"run": 1}, "a_dir": "x"}) == {"b": 1}
    assert list(config.canonical_config({"b": 1, "a": 2})) == ["a", "b"]
    cfg = OmegaConf.create({"lr": 0.1, "run_dir": "/x", "hydra": {"x": 1}})
    assert config.canonical_config(cfg, ["lr"]) == {"run_dir": "/x"}


def test_a_missing_value_is_an_error_not_a_placeholder() -> None:
    from omegaconf.errors import MissingMandatoryValue

    with pytest.raises(MissingMandatoryValue):
        config.resolved_container(OmegaConf.create({"seed": "???"}))


def test_flatten_of_leaves_and_with_a_prefix() -> None:
    assert config.flatten(5) == {} and config.flatten({}) == {}
    assert config.flatten({"a": 1}, "p.") == {"p.a": 1}
    assert config.flatten({"a": {}}, "p.") == {"p.a": {}}
    assert config.flatten({"x": {"y": {"z": None}}}) == {"x.y.z": None}


# --- value checks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**32, 1.0, True, "1"])
def test_check_seed_message_is_exact(seed) -> None:
    with pytest.raises(config.ConfigError) as error:
        config.check_seed(seed)
    assert str(error.value) == (
        f"seed={seed!r} is not usable: give an integer in [0, 4294967295] or seed=null"
    )


def test_seed_max_is_numpys_largest_seed() -> None:
    assert config.SEED_MAX == 4294967295
    assert config.check_seed(config.SEED_MAX) == config.SEED_MAX


@pytest.mark.parametrize("device", ["cpu", "cuda", "auto", "cuda:0"])
def test_check_device_accepts(device: str) -> None:
    assert config.check_device(device) == device


@pytest.mark.parametrize("device", ["tpu", "CPU", "cuda0", "xcuda:0", None, 5])
def test_check_device_rejects_with_the_choices(device) -> None:
    with pytest.raises(config.ConfigError) as error:
        config.check_device(device)
    assert str(error.value) == (
        f"device={device!r} is not usable: choose device=cpu, device=cuda or device=auto"
    )


@pytest.mark.parametrize(
    "change",
    [{"epochs": 1}, {"batch_size": 1}, {"num_workers": 0}, {"max_steps": 1}, {"max_steps": None}],
)
def test_the_smallest_usable_training_counts(change) -> None:
    config.check_training({**TRAINING, **change})


def test_num_workers_may_be_left_out_but_not_null() -> None:
    config.check_training({"epochs": 1, "batch_size": 1})
    with pytest.raises(config.ConfigError, match=re.escape("training.num_workers=None is not usable")):
        config.check_training({**TRAINING, "num_workers": None})


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"epochs": True}, "training.epochs=True is not usable: give an integer >= 1"),
        ({"epochs": None}, "training.epochs=None is not usable: give an integer >= 1"),
        ({"batch_size": "8"}, "training.batch_size='8' is not usable: give an integer >= 1"),
        ({"num_workers": False}, "training.num_workers=False is not usable: give an integer >= 0"),
        ({"max_steps": 1.0}, "training.max_steps=1.0 is not usable: give an integer >= 1 or null"),
        ({"max_steps": True}, "training.max_steps=True is not usable: give an integer >= 1 or null"),
    ],
)
def test_unusable_training_counts_exact_messages(change, said) -> None:
    with pytest.raises(config.ConfigError) as error:
        config.check_training({**TRAINING, **change})
    assert str(error.value) == said


@pytest.mark.parametrize("lr", [None, 0, 0.0, 0.5, 1, 2.0])
def test_usable_learning_rates(lr) -> None:
    node = {"_target_": "torch.optim.SGD"} | ({} if lr is None else {"lr": lr})
    config.check_optimizer(node)


@pytest.mark.parametrize("lr", [True, float("inf"), -1e-9, [0.1]])
def test_unusable_learning_rates_exact_message(lr) -> None:
    with pytest.raises(config.ConfigError) as error:
        config.check_optimizer({"_target_": "torch.optim.SGD", "lr": lr})
    assert str(error.value) == f"optimizer.lr={lr!r} is not usable: give a finite number >= 0"


@pytest.mark.parametrize("node", [None, "torch.optim.SGD", {"_target_": 5}, {}])
def test_an_optimizer_without_a_target_name_exact_message(node) -> None:
    with pytest.raises(config.ConfigError) as error:
        config.check_optimizer(node)
    assert str(error.value) == (
        f"optimizer={node!r} is not usable: give _target_ (e.g. torch.optim.Adam) and lr"
    )


def test_not_an_optimizer_exact_message() -> None:
    with pytest.raises(config.ConfigError) as error:
        config.check_optimizer({"_target_": "torch.nn.Linear"})
    assert str(error.value) == (
        "optimizer._target_=torch.nn.Linear is not a torch optimizer: name a torch.optim.Optimizer "
        "class, e.g. optimizer._target_=torch.optim.SGD"
    )


OPTIMIZERS = """
import torch


class Outer:
    class Inner(torch.optim.SGD):
        pass


class Opt(torch.optim.SGD):
    pass


def make(params, lr):
    return torch.optim.SGD(params, lr=lr)
"""


@pytest.fixture
def optimizer_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh package ``<name>`` with a submodule ``sub`` not imported yet, both defining optimizers."""
    import sys

    name = f"twinrun_test_optimizers_{tmp_path.name.replace('-', '_')}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(OPTIMIZERS)
    (package / "sub.py").write_text(OPTIMIZERS)
    # a submodule named like a class of the package: a target's last part is an attribute, never a module
    (package / "Opt.py").write_text("NOT_THE_CLASS = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


@pytest.mark.parametrize(
    ("target", "is_optimizer"),
    [
        ("{}.Opt", True),  # two parts: the module is the first
        ("{}.sub.Opt", True),  # a submodule nothing imported yet
        ("{}.Outer.Inner", True),  # a nested class: the module is two parts up
        ("{}.sub.Outer.Inner", True),
        ("{}.make", False),  # a callable, not a class
        ("{}.Outer", False),  # a class, not an optimizer
        ("{}.sub", False),  # a module
        ("{}.missing", False),
        ("{}..Opt", False),  # an empty module name
        (".Opt", False),  # an empty top-level name: import_module refuses it (ValueError)
        ("{}", False),
    ],
)
def test_optimizer_targets_are_looked_up_without_importing_the_class_path(
    optimizer_package: str, target: str, is_optimizer: bool
) -> None:
    assert config._is_torch_optimizer(target.format(optimizer_package)) is is_optimizer


def test_a_custom_optimizer_is_built(optimizer_package: str) -> None:
    import torch

    node = OmegaConf.create({"_target_": f"{optimizer_package}.sub.Outer.Inner", "lr": 0.25})
    built = config.build_optimizer(node, list(torch.nn.Linear(1, 1).parameters()))
    assert type(built).__name__ == "Inner" and built.param_groups[0]["lr"] == 0.25


def test_an_unknown_keyword_is_a_one_line_error() -> None:
    import torch

    node = OmegaConf.create({"_target_": "torch.optim.SGD", "lr": 0.1, "speed": 3})
    with pytest.raises(config.ConfigError) as error:
        config.build_optimizer(node, list(torch.nn.Linear(1, 1).parameters()))
    message = str(error.value)
    assert message.startswith("optimizer=torch.optim.SGD cannot be built: ") and "speed" in message
    assert "\n" not in message and error.value.__cause__ is None
