"""Overrides recorded in a run directory are untrusted input: they may not choose code to run.

A replay (``twinrun explain``, ``twinrun audit``) re-runs the run's own app with the overrides Hydra
recorded in ``.hydra/overrides.yaml``. The run directory may come from anyone, so those overrides may only
set plain values: not ``_target_``/``_partial_``/``_args_`` (``hydra.utils.instantiate`` would import and
call what they name), nothing under ``hydra.`` or ``hydra/`` (callbacks, launchers, search paths), and no
interpolation other than a plain ``${key.path}`` (resolvers such as ``${oc.env:...}`` run code).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from twinrun.errors import TwinrunError

_INSTANTIATE_KEYS = {"_target_", "_partial_", "_args_"}
_INTERPOLATION = re.compile(r"(?<!\\)\$\{([^{}]*)\}")
_PLAIN_KEY_PATH = re.compile(r"^[A-Za-z_][\w\-]*(\.[A-Za-z_0-9][\w\-]*|\[\d+\])*$")


class UntrustedOverrideError(TwinrunError):
    """A recorded override that would let a run directory choose code to run."""


def _why_untrusted(override: str) -> str | None:
    key, has_value, value = override.partition("=")
    key = key.strip().lstrip("~+")
    parts = re.split(r"[./@]", key)
    if parts and parts[0] == "hydra":
        return "it sets Hydra's own configuration"
    if any(part in _INSTANTIATE_KEYS for part in parts):
        return f"it sets {next(p for p in parts if p in _INSTANTIATE_KEYS)} (chooses code to instantiate)"
    if not has_value:
        return None
    if "${" in value.replace("\\${", ""):
        found = _INTERPOLATION.findall(value)
        if not found or any(not _PLAIN_KEY_PATH.match(inner.strip()) for inner in found):
            return "it holds an interpolation other than a plain ${key.path} (a resolver runs code)"
        if len(found) != value.count("${") - value.count("\\${"):
            return "it holds a nested interpolation"
    if any(k in value for k in _INSTANTIATE_KEYS):
        return "its value sets _target_/_partial_/_args_ (chooses code to instantiate)"
    return None


def refuse_untrusted_overrides(overrides: Sequence[str], *, trusted: bool, source: str) -> None:
    """Raise :class:`TwinrunError` for the first recorded override (from ``source``) that could choose
    code to run, unless ``trusted`` (the user vouches for the run directory)."""
    if trusted:
        return
    for override in overrides:
        why = _why_untrusted(str(override))
        if why is not None:
            raise UntrustedOverrideError(
                f"{source}: refusing the recorded override {override!r}: {why}; replay only run "
                "directories you trust with --trust-overrides"
            )
