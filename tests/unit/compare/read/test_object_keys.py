"""object_keys: no two keys of a saved object write the same path component."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from twinrun.compare.read.object_keys import MAX_KEY_DEPTH, is_plain, join, key_component

SCALARS = st.one_of(
    st.text(max_size=6),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, width=32),
    st.binary(max_size=3),
    st.sampled_from(["0", "1", "True", "None", "nan", "inf", "1e3", "2j", "a/b", "a, b", "'x'", "fc.weight"]),
)
KEYS = st.recursive(
    SCALARS, lambda inner: st.tuples(inner) | st.tuples(inner, inner) | st.frozensets(inner, max_size=2)
)


def _typed(key: object) -> object:
    """The key with its types spelled out (True == 1 == 1.0 as Python values, not as keys of a file)."""
    if isinstance(key, tuple):
        return ("tuple", tuple(_typed(k) for k in key))
    if isinstance(key, frozenset):
        return ("frozenset", frozenset(_typed(k) for k in key))
    if isinstance(key, float):
        return ("float", repr(key))
    return (type(key).__name__, key)


@settings(max_examples=150, deadline=None)  # a pure function: many pairs in under a second
@given(KEYS, KEYS)
def test_different_keys_write_different_components(a: object, b: object) -> None:
    ca, cb = key_component(a, str), key_component(b, str)
    if _typed(a) != _typed(b):
        assert ca != cb, (a, b)
    else:
        assert ca == cb  # control: the same key, the same name


def test_plain_strings_stand_for_themselves_and_others_are_quoted() -> None:
    assert [is_plain(t) for t in ("fc.weight", "0.bias", "state_dict", "encoder-1")] == [True] * 4
    quoted = ("", "0", "-1", "1.5", "nan", "inf", "True", "None", "a/b", "a b", "<x>")
    assert not any(is_plain(t) for t in quoted)
    assert key_component("a/b", str) == "'a/b'" and key_component(0, str) == "0"
    assert key_component("0", str) == "'0'" and key_component(True, str) == "True"
    assert key_component(("a",), str) == "(a,)" and key_component(("a", 1), str) == "(a, 1)"
    assert join("", "x") == "x" and join("a", "x") == "a/x"


def test_normalize_applies_to_string_keys_and_objects_have_no_name() -> None:
    assert key_component("/runs/a/x", lambda s: s.replace("/runs/a", "<run>")) == "'<run>/x'"
    assert key_component(object(), str) is None
    deep: object = "k"
    for _ in range(MAX_KEY_DEPTH + 1):
        deep = (deep,)
    assert key_component(deep, str) is None  # named by position, like an object: no deep recursion
