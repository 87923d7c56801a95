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
