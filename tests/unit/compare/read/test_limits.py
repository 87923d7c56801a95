"""Bounded YAML/JSON parsing: duplicate keys are bad input in both."""

from __future__ import annotations

import pytest

from twinrun.compare.read.limits import DuplicateKeyError, load_yaml, loads_json


@pytest.mark.parametrize(
    "text",
    ["a: 1\na: 2\n", "x:\n  b: 1\n  b: 1\n", "1: a\n1: b\n", "{a: 1, a: 2}", "- {k: 1, k: 2}\n"],
)
def test_a_yaml_key_written_twice_is_refused(text: str) -> None:
    with pytest.raises(DuplicateKeyError):
        load_yaml(text)


def test_distinct_yaml_keys_and_merge_overrides_are_not_duplicates() -> None:
    assert load_yaml("1: a\n'1': b\n") == {1: "a", "1": "b"}  # an int and a str: two keys
    assert load_yaml("base: &b {x: 1}\nd:\n  <<: *b\n  x: 2\n") == {"base": {"x": 1}, "d": {"x": 2}}


def test_a_json_key_written_twice_is_refused() -> None:
    with pytest.raises(DuplicateKeyError):
        loads_json('{"a": 1, "a": 1}')


def test_json_nested_past_the_bound_is_refused_before_anything_walks_it() -> None:
    from twinrun.compare.read.limits import MAX_DEPTH, LimitError

    assert loads_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # at the bound: fine
    for text in ("[" * 600 + "]" * 600, '{"a": ' * 600 + "1" + "}" * 600):
        with pytest.raises(LimitError, match="nested deeper than"):
            loads_json(text)
