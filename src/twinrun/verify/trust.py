"""Which recorded overrides a replay may apply without the user's trust.

A run directory is untrusted input, and ``.hydra/overrides.yaml`` is data in it. Replaying a run with its
recorded overrides must not let the run directory choose code: a ``_target_`` (``torch.load`` of a pickle,
``os.system``), a Hydra launcher, callback or ``job.env_set``, or a resolver (``${oc.env:..}``, custom
ones). :func:`refuse_untrusted_overrides` refuses those unless the user said the run directories are
trusted. Values are judged as Hydra parses them and OmegaConf would resolve them, not as raw text, so an
escape (``\\${..}``) is read the way the app would read it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from twinrun.errors import TwinrunError

# Keys that make hydra.utils.instantiate call something, or change how it calls it.
INSTANTIATE_KEYS = frozenset({"_target_", "_partial_", "_args_", "_recursive_", "_convert_"})
TRUST_FLAG = "--trust-run-dirs"
_PLAIN_REFERENCE = re.compile(r"\$\{[\w.\-\[\]]+\}")  # ${a.b}, ${.a}, ${a[0]}: no resolver, no nesting
_MAX_SHOWN = 120


def refuse_untrusted_overrides(overrides: Sequence[str], *, trusted: bool, source: str) -> None:
    """Raise :class:`TwinrunError` for the first override that would run code the run directory names.

    Refused unless ``trusted``: setting, adding or deleting an instantiate key (``_target_``, ...) at any
    depth (in the key or inside a dict value), anything under ``hydra.`` / ``hydra/`` or packaged into
    ``hydra``, and any interpolation other than a plain ``${key.path}`` reference. ``source`` (the run
    directory or its overrides file) is named in the one-line message.
    """
    if trusted:
        return
    for override in overrides:
        reason = untrusted_reason(override)
        if reason is not None:
            shown = str(override)
            shown = shown if len(shown) <= _MAX_SHOWN else shown[:_MAX_SHOWN] + "..."
            raise TwinrunError(
                f"{source}: refusing recorded override {shown!r}: {reason}; pass {TRUST_FLAG} "
                "if the run directories are trusted (it runs code they name)"
            )


def untrusted_reason(override: str) -> str | None:
    """Why ``override`` may run code the run directory chose, or None when it is plain data."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if not isinstance(override, str):
        return "it is not an override string"
    if override.lstrip().startswith("-"):  # --config-dir=..., -cd: the app would load configs from there
        return "it is a command-line option, not an override"
    try:
        parsed = OverridesParser.create().parse_override(override)
    except (HydraException, ValueError, TypeError):
        return "Hydra cannot parse it, so it cannot be judged"
    key_parts = re.split(r"[./]", parsed.key_or_group)
    package_parts = (parsed.package or "").split(".")
    special = INSTANTIATE_KEYS.intersection(key_parts + package_parts)
    if special:
        return f"it sets {sorted(special)[0]} (a callable the run directory chooses)"
    if key_parts[0] == "hydra" or "hydra" in package_parts:
        return "it changes Hydra's own config (launcher, callbacks, env_set)"
    return _value_reason(parsed.value())


def _value_reason(value: Any) -> str | None:
    """Why a parsed override value is not plain data (instantiate keys inside it, a resolver)."""
    if value is None or isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, str):
        return _interpolation_reason(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key) in INSTANTIATE_KEYS:
                return f"its value sets {key} (a callable the run directory chooses)"
            if str(key) == "hydra":
                return "its value sets a 'hydra' node"
            reason = _interpolation_reason(str(key)) or _value_reason(item)
            if reason:
                return reason
        return None
    if isinstance(value, (list, tuple)):
        return next((r for r in map(_value_reason, value) if r), None)
    # Sweeps: choice(...) holds a list; range/interval hold numbers; glob holds option names.
    items = [getattr(value, name) for name in ("list", "include", "exclude") if hasattr(value, name)]
    numbers = [getattr(value, name) for name in ("start", "stop", "step") if hasattr(value, name)]
    if items or numbers:
        return _value_reason([*items, *numbers])
    return f"its value is a {type(value).__name__}, which cannot be judged"


def _interpolation_reason(text: str) -> str | None:
    """None when every interpolation OmegaConf would resolve in ``text`` is a plain ``${key}`` reference."""
    if "$" not in text:
        return None
    from omegaconf import grammar_parser
    from omegaconf.errors import GrammarParseError
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser as Grammar

    try:
        tree = grammar_parser.parse(text)
    except GrammarParseError:
        return "its value is not a valid OmegaConf string, so it cannot be judged"
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Grammar.InterpolationResolverContext):
            return f"its value calls a resolver ({node.getText()[:60]})"
        plain = _PLAIN_REFERENCE.fullmatch(node.getText())
        if isinstance(node, Grammar.InterpolationNodeContext) and not plain:
            return f"its value holds a computed interpolation ({node.getText()[:60]})"
        stack.extend(child for child in (node.children or []) if hasattr(child, "children"))
    return None
