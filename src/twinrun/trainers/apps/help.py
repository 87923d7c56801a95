"""A faster ``--help`` for the apps: Hydra lists only the app's own config groups.

Hydra's help fills in both ``$APP_CONFIG_GROUPS`` and ``$HYDRA_CONFIG_GROUPS`` whatever the template
shows, and each group it lists costs three config-repository copies: with the launcher plugins
installed, Hydra's ~20 groups took two thirds of ``vae-mnist --help``. twinrun's page
(``conf/hydra/help/twinrun.yaml``) shows the app's groups only, so during ``--help`` (and only then;
``--hydra-help`` is untouched) the Hydra groups are skipped. Hydra internals (hydra-core 1.3): where
they are not there, Hydra's own code runs unchanged.

Both trainers share ``conf/``, so each group also holds the other app's options. The page lists only
those the app can use (:func:`usable_options`): not another app's default option of the group, and not
an option that builds another class (``_target_``) than the app's default option of the group does.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

_page_app: list[str] = []  # the primary config (app) whose --help is being printed, if known


def _app_groups(loader: Any, parent: str = "") -> list[str]:
    """The config groups under ``parent`` (``hydra/`` left out), nested groups included."""
    from hydra.core.object_type import ObjectType

    groups: list[str] = []
    for name in loader.list_groups(parent):
        group = f"{parent}/{name}" if parent else name
        if group == "hydra":
            continue
        if loader.get_group_options(group, ObjectType.CONFIG):
            groups.append(group)
        if loader.get_group_options(group, ObjectType.GROUP):
            groups.extend(_app_groups(loader, group))
    return groups


def _format_app_groups(self: Any, predicate: Callable[[str], bool], compact: bool = True) -> str:
    if predicate("hydra"):  # $HYDRA_CONFIG_GROUPS: not on twinrun's page
        return ""
    lines = []
    for group in sorted(_app_groups(self.config_loader)):
        options = sorted(self.config_loader.get_group_options(group))
        if _page_app:
            options = usable_options(_page_app[-1], group, options)
        lines.append(
            f"{group}: {', '.join(options)}"
            if compact
            else f"{group}:\n" + "\n".join(f"  {o}" for o in options)
        )
    return "".join(line + "\n" for line in lines)


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def default_options(conf: Path) -> dict[str, dict[str, str]]:
    """Each primary config in ``conf`` (an app) -> its default option of each group."""
    apps: dict[str, dict[str, str]] = {}
    for primary in sorted(conf.glob("*.yaml")):
        data = _load_yaml(primary)
        entries = data.get("defaults", []) if isinstance(data, dict) else []
        apps[primary.stem] = {
            str(key): str(value)
            for entry in entries
            if isinstance(entry, dict)
            for key, value in entry.items()
            if not str(key).startswith("override ")
        }
    return apps


def _target(conf: Path, group: str, option: str) -> str | None:
    data = _load_yaml(conf / group / f"{option}.yaml")
    target = data.get("_target_") if isinstance(data, dict) else None
    return str(target) if target else None


def usable_options(app: str, group: str, options: Sequence[str], conf: Path | None = None) -> list[str]:
    """The ``options`` of ``group`` that ``app`` (its primary config's name) can use.

    Left out: the default option of another app (``training=training_conf`` for the VAE), and an option
    whose ``_target_`` differs from that of ``app``'s own default option (``model=cnn_small``).
    """
    if conf is None:
        from twinrun.config import config_dir

        conf = config_dir()
    defaults = default_options(conf)
    own = defaults.get(app, {}).get(group)
    others = {d[group] for name, d in defaults.items() if name != app and group in d} - {own}
    own_target = _target(conf, group, own) if own else None
    return [
        option
        for option in options
        if option not in others
        and not (own_target and _target(conf, group, option) not in (None, own_target))
    ]


@contextlib.contextmanager
def quick_help(argv: Sequence[str] | None = None, app: str | None = None) -> Iterator[None]:
    """While the block runs, a ``--help`` in ``argv`` (default ``sys.argv``) lists the app's groups only,
    and of each group only the options ``app`` (its primary config's name) can use."""
    args = sys.argv[1:] if argv is None else argv
    if "--help" not in args and "-h" not in args:
        yield
        return
    try:
        from hydra._internal.hydra import Hydra
    except ImportError:
        yield
        return
    original = getattr(Hydra, "format_config_groups", None)
    if original is None:
        yield
        return
    Hydra.format_config_groups = _format_app_groups  # type: ignore[method-assign]
    _page_app.extend([app] if app else [])
    try:
        yield
    finally:
        Hydra.format_config_groups = original  # type: ignore[method-assign]
        del _page_app[len(_page_app) - (1 if app else 0) :]
