"""What ``twinrun verify`` starts: APP resolved to a command, the overrides it passes, quoted for Hydra.

:func:`resolve_app` turns a console script, ``module:function`` or ``script.py`` into an
:class:`AppCommand`; :func:`check_overrides` refuses what verify must control itself; :func:`hydra_quote`
writes a value so that Hydra's override parser reads it back unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from twinrun.errors import TwinrunError

if TYPE_CHECKING:
    from collections.abc import Sequence

# twinrun's own apps run through this interpreter even when their console scripts are not on PATH.
KNOWN_APPS = {
    "vae-mnist": "twinrun.trainers.apps.vae_mnist:main",
    "mnist-classifier": "twinrun.trainers.apps.mnist_classifier:main",
}
_MODULE_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# An absolute path of these characters reads back as the same string; anything else is quoted.
_PLAIN_OVERRIDE_VALUE = re.compile(r"^/[\w/.\-+@]*$", re.ASCII)


class VerifyError(TwinrunError):
    """Unusable verify input (no such app, bad overrides) or a run that failed; first line says why."""


@dataclass(frozen=True)
class AppCommand:
    """How to start ``app``: ``argv`` + overrides. ``kind``: module, script or console script."""

    app: str
    argv: tuple[str, ...]
    kind: str


# The first words of the line a module:function command prints when the module has no such function;
# verify then reports that line alone, not the run's output (it is the whole story).
APP_ERROR = "twinrun: APP "


def _module_command(target: str, app: str) -> tuple[str, ...]:
    module, function = target.split(":")
    missing = f"{APP_ERROR}{app}: module {module} has no function {function}; check APP"
    code = (
        f"import importlib,sys; sys.argv[0]={app!r}; "
        f"f=getattr(importlib.import_module({module!r}), {function!r}, None); "
        f"f() if callable(f) else sys.exit({missing!r})"
    )
    return (sys.executable, "-c", code)


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package raises instead of returning None
        return False


def resolve_app(app: str) -> AppCommand:
    """Turn APP (console script, ``module:function``, ``script.py``) into a command; raise if unknown."""
    if not app or app.startswith("-"):
        raise VerifyError(f"{app!r} is not an app; give a console script, module:function or script.py")
    if app in KNOWN_APPS:
        return AppCommand(app, _module_command(KNOWN_APPS[app], app), "module")
    if _MODULE_FUNCTION.match(app) and not Path(app).exists():
        module = app.split(":")[0]
        if not _module_exists(module):
            raise VerifyError(f"no module {module!r} importable by {sys.executable}; check APP ({app})")
        return AppCommand(app, _module_command(app, app), "module")
    path = Path(app).expanduser()
    if app.endswith(".py") or os.sep in app:
        if not path.is_file():
            raise VerifyError(f"{app} does not exist; give the path of a Hydra app script")
        if app.endswith(".py") or not os.access(path, os.X_OK):
            return AppCommand(app, (sys.executable, str(path.resolve())), "script")
        return AppCommand(app, (str(path.resolve()),), "script")
    # A console script of this interpreter's environment runs with this interpreter even off PATH.
    for entry in metadata.entry_points(group="console_scripts", name=app):
        if _MODULE_FUNCTION.match(entry.value.replace(" ", "")):
            return AppCommand(app, _module_command(entry.value.replace(" ", ""), app), "module")
    found = shutil.which(app, path=str(Path(sys.executable).parent)) or shutil.which(app)
    if found:
        return AppCommand(app, (found,), "console script")
    raise VerifyError(f"{app}: no such app; give a console script on PATH, module:function or a script.py")


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """Refuse what verify must control itself (the run dir, multirun) and what is not an override."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if item.startswith("-"):
            raise VerifyError(f"{item}: verify passes only key=value overrides to the app (no flags)")
        if "=" not in item and not item.startswith("~"):
            raise VerifyError(f"{item!r} is not a Hydra override; write key=value")
        if key in ("hydra.run.dir", "hydra.sweep.dir", "hydra.mode"):
            raise VerifyError(f"{item}: verify chooses each run's directory itself; use --workdir instead")
    return list(overrides)


def hydra_quote(value: str) -> str:
    """A value as Hydra's override parser reads it back unchanged (quoted when it has to be)."""
    if _PLAIN_OVERRIDE_VALUE.match(value):
        return value
    # Inside quotes Hydra treats backslashes as escapes only where they run up to a quote or to the
    # closing quote (``'a\\b'`` reads as ``a\\b``): only those runs are doubled, and quotes escaped.
    return "'" + _BACKSLASHES_BEFORE_QUOTE_OR_END.sub(_escape_run, value) + "'"


_BACKSLASHES_BEFORE_QUOTE_OR_END = re.compile(r"(\\*)('|\Z)")


def _escape_run(match: re.Match[str]) -> str:
    return match.group(1) * 2 + ("\\'" if match.group(2) else "")
