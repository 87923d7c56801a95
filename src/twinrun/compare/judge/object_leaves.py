"""Non-tensor values of a saved object (its leaves), compared exactly and shown shortly.

Two leaves are equal when their types and values are: ``True`` is not ``1``, ``2.0`` is not ``2``,
``bytes`` is not ``bytearray``; floats by their bits (NaN equals NaN, -0.0 differs from 0.0). A long text
or byte string is compared by its length and sha256, computed once per object: one string that the
pickle memo shares 200,000 times is hashed once.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

from twinrun.compare.report.model import Mismatch, WeightsSection

_DIGEST_FROM = 4096  # longer texts and byte strings are compared by digest, once per object


def leaf_key(value: Any) -> tuple[Any, ...]:
    """What two leaves must share to be equal: the type and the exact value (floats by their bits, so
    that NaN equals NaN and -0.0 differs from 0.0; long texts and bytes by length and sha256)."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, complex):
        return ("complex", struct.pack("<dd", value.real, value.imag))
    if isinstance(value, str | bytes | bytearray) and len(value) >= _DIGEST_FROM:
        data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        return (type(value).__name__, len(value), hashlib.sha256(data).digest())
    return (type(value).__name__, value)


def _keys(leaves: dict[str, object]) -> Callable[[object], tuple[Any, ...]]:
    """leaf_key once per object: one long string shared by many leaves is digested once."""
    done: dict[int, tuple[Any, ...]] = {}

    def key(value: object) -> tuple[Any, ...]:
        if not isinstance(value, str | bytes | bytearray) or len(value) < _DIGEST_FROM:
            return leaf_key(value)
        if id(value) not in done:
            done[id(value)] = leaf_key(value)
        return done[id(value)]

    return key


def compare_leaves(
    la: dict[str, object], lb: dict[str, object], named: Callable[[str], str], sec: WeightsSection
) -> None:
    """Non-tensor values compared exactly (floats by their bits)."""
    sec.leaves_only_in_a = [named(k) for k in la if k not in lb]
    sec.leaves_only_in_b = [named(k) for k in lb if k not in la]
    key_a, key_b = _keys(la), _keys(lb)
    for key, va in la.items():
        if key not in lb:
            continue
        sec.leaves_compared += 1
        vb = lb[key]
        if key_a(va) != key_b(vb):
            sec.leaf_mismatches.append(Mismatch(named(key), shown_leaf(va), shown_leaf(vb)))


def shown_leaf(value: object, limit: int = 200) -> object:
    """A leaf as a report shows it: numbers as they are, long text shortened (its length shown)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        kind = type(value).__name__
        if len(value) <= 32:
            return f"{kind} {value.hex()}"
        return f"{len(value)} {kind}, sha256 {hashlib.sha256(value).hexdigest()[:16]}"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
