"""A faster ``--help`` for the apps: Hydra lists only the app's own config groups.

Hydra's help fills in both ``$APP_CONFIG_GROUPS`` and ``$HYDRA_CONFIG_GROUPS`` whatever the template
shows, and each group it lists costs three config-repository copies: with the launcher plugins
installed, Hydra's ~20 groups took two thirds of ``vae-mnist --help``. twinrun's page
(``conf/hydra/help/twinrun.yaml``) shows the app's groups only, so during ``--help`` (and only then;
``--hydra-help`` is untouched) the Hydra groups are skipped. Hydra internals (hydra-core 1.3): where
they are not there, Hydra's own code runs unchanged.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any


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
        lines.append(
            f"{group}: {', '.join(options)}"
            if compact
            else f"{group}:\n" + "\n".join(f"  {o}" for o in options)
        )
    return "".join(line + "\n" for line in lines)


@contextlib.contextmanager
def quick_help(argv: Sequence[str] | None = None) -> Iterator[None]:
    """While the block runs, a ``--help`` in ``argv`` (default ``sys.argv``) lists the app's groups only."""
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
    try:
        yield
    finally:
        Hydra.format_config_groups = original  # type: ignore[method-assign]
