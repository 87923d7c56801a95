"""Path components of a saved object's parts: one text per key, never the same text for two keys.

A part's name is its path of keys joined with ``/``. The join is unambiguous because every component is:
a string key as it is when it is *plain* (``fc.weight``, ``state_dict``, ``0.bias``), quoted as Python
quotes it otherwise (``'a/b'``, ``'0'``, ``'True'``, ``''``); a number, ``None`` or a bool as Python
writes it (``3``, ``True``); bytes as ``b'..'``; a tuple or frozenset of such keys in brackets; a class
as ``<qualname>``. A plain string contains no separator, quote, bracket, comma or space and is not the
spelling of a number or a constant, so no key of another type (or a pair of keys) writes the same text.
Keys that are none of these (a tensor, a pickled object) have no text: the caller names them by position.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

NOT_PLAIN = frozenset("/'\"()[]{}<>#,\\@ \t\r\n")
_CONSTANTS = frozenset({"True", "False", "None", "Ellipsis", "NotImplemented"})


_NUMBER_STARTS = frozenset("0123456789+-.iInN")  # how the spelling of a number (or inf, nan) starts


@functools.lru_cache(maxsize=1 << 16)  # keys repeat: every entry of a list of dicts has the same ones
def is_plain(text: str) -> bool:
    """Whether ``text`` can stand for itself as a path component (see the module docstring)."""
    if not text or text in _CONSTANTS or not text.isprintable() or not NOT_PLAIN.isdisjoint(text):
        return False
    if text[0] not in _NUMBER_STARTS:
        return True
    try:
        complex(text)  # "1", "1.5", "1e3", "inf", "nan", "2j": the spellings of numbers
    except ValueError:
        return True
    return False


MAX_KEY_DEPTH = 32  # a tuple key nested deeper is named by position, like an object (no deep recursion)


def key_component(key: Any, norm: Callable[[str], str], depth: int = 0) -> str | None:
    """``key`` as a path component, or None for a key that is not a plain value (a tensor, an object, a
    tuple nested more than MAX_KEY_DEPTH deep)."""
    if isinstance(key, str):
        text = norm(key)
        return text if is_plain(text) else repr(text)
    if key is None or isinstance(key, bool | int | float | complex | bytes):
        return repr(key)
    if isinstance(key, type):
        return f"<{getattr(key, 'qualname', f'{key.__module__}.{key.__qualname__}')}>"
    if isinstance(key, tuple | frozenset) and depth < MAX_KEY_DEPTH:
        parts = []
        for k in key:
            part = key_component(k, norm, depth + 1)
            if part is None:
                return None
            parts.append(part)
        if isinstance(key, frozenset):
            return "frozenset({" + ", ".join(sorted(parts)) + "})"  # type: ignore[arg-type]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"  # type: ignore[arg-type]
    return None


def join(path: str, component: str) -> str:
    return f"{path}/{component}" if path else component
