"""apps/help.py: during ``--help`` Hydra lists the app's config groups exactly as it would itself,
and skips its own groups; outside ``--help`` (and after it) Hydra's code is untouched."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra

from twinrun.config import config_dir
from twinrun.trainers.apps.help import _format_app_groups, quick_help


def is_hydra_group(group: str) -> bool:  # Hydra's own split (hydra/_internal/hydra.py get_help)
    return group.startswith("hydra/") or group == "hydra"


@contextlib.contextmanager
def hydra_for(directory: Path | str, name: str) -> Iterator[Hydra]:
    """A Hydra over ``directory``; the global instance it registers is cleared afterwards."""
    assert not GlobalHydra.instance().is_initialized()
    try:
        yield Hydra.create_main_hydra2(name, create_config_search_path(str(directory)))
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture
def nested_conf(tmp_path: Path) -> Path:
    (tmp_path / "size").mkdir()
    (tmp_path / "opt" / "adam").mkdir(parents=True)
    (tmp_path / "config.yaml").write_text("defaults:\n  - size: small\n  - _self_\nx: 1\n")
    (tmp_path / "size" / "small.yaml").write_text("n: 1\n")
    (tmp_path / "size" / "large.yaml").write_text("n: 9\n")
    (tmp_path / "opt" / "sgd.yaml").write_text("lr: 0.1\n")
    (tmp_path / "opt" / "adam" / "fast.yaml").write_text("lr: 0.01\n")
    return tmp_path


@pytest.mark.parametrize("compact", [True, False])
@pytest.mark.parametrize("source", ["twinrun", "nested"])
def test_app_groups_are_listed_as_hydra_lists_them(source: str, compact: bool, nested_conf: Path) -> None:
    directory, name = (config_dir(), "vae_mnist") if source == "twinrun" else (nested_conf, "app")
    with hydra_for(directory, name) as hydra:
        check_app_groups(hydra, source, compact)


def check_app_groups(hydra: Hydra, source: str, compact: bool) -> None:
    ours = _format_app_groups(hydra, lambda g: not is_hydra_group(g), compact)
    assert ours == Hydra.format_config_groups(hydra, lambda g: not is_hydra_group(g), compact)
    if source == "nested":
        assert "opt/adam: fast" in ours.splitlines() or "opt/adam:\n  fast" in ours  # nested groups too
    # control: Hydra's own groups exist and differ from the app's; the quick page leaves them out
    assert Hydra.format_config_groups(hydra, is_hydra_group) not in ("", ours)
    assert _format_app_groups(hydra, is_hydra_group) == ""


def test_hydra_is_patched_only_during_help() -> None:
    original = Hydra.format_config_groups
    with quick_help(["data=synthetic", "--cfg", "job"]):
        assert Hydra.format_config_groups is original
    with quick_help(["--hydra-help"]):
        assert Hydra.format_config_groups is original
    with quick_help(["--help"]):
        assert Hydra.format_config_groups is _format_app_groups
    assert Hydra.format_config_groups is original
    with pytest.raises(RuntimeError), quick_help(["-h"]):
        assert Hydra.format_config_groups is _format_app_groups
        raise RuntimeError("the app failed")
    assert Hydra.format_config_groups is original  # restored after an error too


@pytest.mark.parametrize(
    ("app", "models", "trainings"),
    [
        ("vae_mnist", ["vae", "vae_small"], ["large_batch", "vae"]),
        ("mnist_classifier", ["cnn_small", "model_conf"], ["large_batch", "training_conf"]),
    ],
)
def test_each_apps_help_lists_only_the_options_it_can_use(app, models, trainings) -> None:
    from twinrun.trainers.apps.help import usable_options

    every_model = ["cnn_small", "model_conf", "vae", "vae_small"]
    every_training = ["large_batch", "training_conf", "vae"]
    assert usable_options(app, "model", every_model) == models
    assert usable_options(app, "training", every_training) == trainings
    assert usable_options(app, "data", ["mnist", "synthetic"]) == ["mnist", "synthetic"]
    with hydra_for(config_dir(), app) as hydra, quick_help(["--help"], app=app):
        page = _format_app_groups(hydra, lambda g: not is_hydra_group(g))
    assert f"model: {', '.join(models)}\n" in page and f"training: {', '.join(trainings)}\n" in page
    # Control: without an app (Hydra's own listing) every option of the shared conf/ shows.
    with hydra_for(config_dir(), app) as hydra, quick_help(["--help"]):
        page = _format_app_groups(hydra, lambda g: not is_hydra_group(g))
    assert f"model: {', '.join(every_model)}\n" in page


def test_options_are_judged_by_the_apps_defaults_and_targets(tmp_path: Path) -> None:
    from twinrun.trainers.apps.help import usable_options

    (tmp_path / "net").mkdir()
    (tmp_path / "a.yaml").write_text("defaults:\n  - net: small\n  - override hydra/help: x\n")
    (tmp_path / "b.yaml").write_text("defaults:\n  - net: other\n")
    (tmp_path / "net" / "small.yaml").write_text("_target_: m.A\n")
    (tmp_path / "net" / "big.yaml").write_text("_target_: m.A\nwidth: 9\n")
    (tmp_path / "net" / "other.yaml").write_text("_target_: m.A\n")  # b's default: not a's to use
    (tmp_path / "net" / "tree.yaml").write_text("_target_: m.Tree\n")  # another class
    (tmp_path / "net" / "plain.yaml").write_text("width: 3\n")  # no target: kept
    options = ["big", "other", "plain", "small", "tree"]
    assert usable_options("a", "net", options, tmp_path) == ["big", "plain", "small"]
    assert usable_options("b", "net", options, tmp_path) == ["big", "other", "plain"]  # b's own default
