"""Hypothesis strategies derived from a Hydra config tree: seeds, group options, typed leaf overrides.

Everything here produces Hydra override strings (``optimizer.lr=0.0005``, ``experiment=exp2``) or
plain values, so the same draws work with ``compose`` in a test and on a command line. Import-light:
hypothesis and hydra, no torch. Collections come back in sorted key order, so a failing example prints
(and replays) the same way every time.

Example::

    from hypothesis import given, settings
    from twinrun.testing.strategies import overrides, seed_edge_examples, seeds

    @seed_edge_examples("seed")
    @given(seed=seeds())
    def test_seed_is_recorded(seed): ...

    @given(ov=overrides("vae_mnist", groups=("experiment",), bounds={"optimizer.lr": (1e-4, 1e-2)}))
    def test_variants(ov): ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import hypothesis
from hypothesis import strategies as st

from twinrun.config import SEED_MAX
from twinrun.testing.compose import compose_config, group_options

SEED_MIN = 0
Bounds = Mapping[str, tuple[float, float]]
F = TypeVar("F", bound=Callable[..., Any])
_MISSING = object()


def seeds() -> st.SearchStrategy[int]:
    """Every seed a config accepts: integers in [0, 2**32 - 1], 0 included."""
    return st.integers(min_value=SEED_MIN, max_value=SEED_MAX)


def seed_edge_examples(argname: str = "seed", **fixed: Any) -> Callable[[F], F]:
    """Decorator: always try ``argname=0`` and ``argname=2**32 - 1`` (as explicit ``@example``\\ s).

    Hypothesis requires an ``@example`` to name every ``@given`` argument: pass the other ones as
    ``fixed`` keyword arguments. Put it above ``@given``.
    """

    def decorate(test: F) -> F:
        for edge in (SEED_MIN, SEED_MAX):
            test = hypothesis.example(**{argname: edge}, **fixed)(test)
        return test

    return decorate


def group_choices(group: str, config_dir: str | Path | None = None) -> st.SearchStrategy[str]:
    """The options of config group ``group`` (e.g. ``experiment`` -> ``exp1`` | ``exp2``), as the
    config loader sees them; shrinks towards the first option in sorted order."""
    options = group_options(group, config_dir)
    if not options:
        raise ValueError(f"config group {group!r} has no options in {config_dir or 'twinrun conf/'}")
    return st.sampled_from(options)


def _lookup(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        if isinstance(node, Mapping) or hasattr(node, "keys"):
            if part not in node:
                return _MISSING
            node = node[part]
        else:
            return _MISSING
    return node


def format_value(value: bool | int | float) -> str:
    """A value as a Hydra override writes it; floats use ``repr`` (shortest exact round trip)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no place in a bounded override")
        return repr(value)
    return str(int(value))


def _leaf_strategy(key: str, current: Any, bound: tuple[Any, Any] | None) -> st.SearchStrategy[Any]:
    """The strategy for one leaf; its type is the config value's type (or the bounds' for ``null``)."""
    kind: type | None = type(current) if current is not None else None
    if kind is None and bound is not None:
        kind = int if all(isinstance(b, int) and not isinstance(b, bool) for b in bound) else float
    if kind is bool:
        if bound is not None and tuple(bound) != (False, True):
            raise ValueError(f"{key} is a boolean: leave it out of bounds or give (False, True)")
        return st.booleans()
    if kind not in (int, float):
        raise ValueError(
            f"{key}={current!r} is not a numeric or boolean leaf; use group_choices or your own strategy"
        )
    if bound is None:
        raise ValueError(f"{key} is numeric: declare its bounds, e.g. bounds={{{key!r}: (low, high)}}")
    low, high = bound
    if not low <= high:
        raise ValueError(f"bounds for {key} are empty: {low!r} > {high!r}")
    if kind is int:
        # ints stay ints: a float bound narrows to the integers inside it
        int_low, int_high = math.ceil(low), math.floor(high)
        if int_low > int_high:
            raise ValueError(f"bounds {bound!r} for integer {key} hold no integer")
        return st.integers(min_value=int_low, max_value=int_high)
    return st.floats(min_value=float(low), max_value=float(high), allow_nan=False, allow_infinity=False)


def leaf_overrides(
    cfg: Any,
    keys: Iterable[str] | None = None,
    bounds: Bounds | None = None,
) -> st.SearchStrategy[list[str]]:
    """Override strings for typed leaves of ``cfg``, sorted by key.

    ``keys`` (default: the keys of ``bounds``) are dotted paths of existing leaves. Integer leaves draw
    integers and float leaves floats within ``bounds[key]`` (inclusive; numeric leaves need bounds);
    boolean leaves draw booleans and need none. A ``null`` leaf takes its type from its bounds.
    """
    bounds = dict(bounds or {})
    chosen = sorted(set(keys) if keys is not None else set(bounds))
    unknown_bounds = sorted(set(bounds) - set(chosen))
    if unknown_bounds:
        raise ValueError(f"bounds given for keys that are not varied: {', '.join(unknown_bounds)}")
    parts = []
    for key in chosen:
        current = _lookup(cfg, key)
        if current is _MISSING:
            raise ValueError(f"{key} is not a key of the config")
        value = _leaf_strategy(key, current, bounds.get(key))
        parts.append(value.map(lambda v, k=key: f"{k}={format_value(v)}"))
    return st.tuples(*parts).map(list)


def batch_sizes_not_dividing(n: int, low: int = 2, high: int | None = None) -> st.SearchStrategy[int]:
    """Batch sizes in [low, high] (default high: ``n``) that leave a partial last batch for ``n`` samples."""
    high = n if high is None else high
    if n < 1 or low < 1:
        raise ValueError(f"need n >= 1 and low >= 1, got n={n}, low={low}")
    # An explicit candidate list instead of .filter(): no rejected draws, shrinks to the smallest.
    candidates = [size for size in range(low, high + 1) if n % size]
    if not candidates:
        raise ValueError(f"every batch size in [{low}, {high}] divides {n}")
    return st.sampled_from(candidates)


def overrides(
    config_name: str,
    groups: Iterable[str] | Mapping[str, Sequence[str]] = (),
    bounds: Bounds | None = None,
    keys: Iterable[str] | None = None,
    *,
    seed_key: str | None = "seed",
    config_dir: str | Path | None = None,
    base_overrides: Sequence[str] = (),
) -> st.SearchStrategy[list[str]]:
    """Hydra override strings for ``config_name``: a seed, group choices and bounded leaves, sorted by key.

    ``groups`` names config groups to vary over all their options, or maps a group to the options
    allowed (``{"model": ["vae", "vae_small"]}``). Leaf types come from the config composed with
    ``base_overrides`` (group defaults otherwise). ``seed_key=None`` leaves the seed alone.
    """
    cfg = compose_config(config_name, base_overrides, config_dir)
    group_map = dict(groups) if isinstance(groups, Mapping) else {g: None for g in groups}
    parts: dict[str, st.SearchStrategy[str]] = {}
    for group, allowed in sorted(group_map.items()):
        if allowed is None:
            choice = group_choices(group, config_dir)
        else:
            missing = sorted(set(allowed) - set(group_options(group, config_dir)))
            if missing or not allowed:
                raise ValueError(f"config group {group!r} has no option(s) {missing or allowed}")
            choice = st.sampled_from(sorted(allowed))
        parts[group] = choice.map(lambda option, g=group: f"{g}={option}")
    if seed_key is not None:
        if _lookup(cfg, seed_key) is _MISSING:
            raise ValueError(f"{config_name} has no {seed_key!r} key: pass seed_key=None or the right key")
        parts[seed_key] = seeds().map(lambda s: f"{seed_key}={s}")
    keys = None if keys is None else list(keys)  # read twice below: an iterator would be empty again
    leaves = leaf_overrides(cfg, keys, bounds)
    clash = sorted(set(parts) & set(keys if keys is not None else (bounds or {})))
    if clash:
        raise ValueError(f"keys varied twice: {', '.join(clash)}")
    ordered = [parts[name] for name in sorted(parts)]
    return st.tuples(st.tuples(*ordered), leaves).map(lambda pair: _sorted_by_key([*pair[0], *pair[1]]))


def _sorted_by_key(items: list[str]) -> list[str]:
    return sorted(items, key=lambda item: item.split("=", 1)[0])


__all__ = [
    "SEED_MAX",
    "SEED_MIN",
    "batch_sizes_not_dividing",
    "format_value",
    "group_choices",
    "leaf_overrides",
    "overrides",
    "seed_edge_examples",
    "seeds",
]
