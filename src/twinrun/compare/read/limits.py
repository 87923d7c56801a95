"""Bounded parsing of YAML and JSON artifacts: what a file may expand to is limited.

A 350-byte YAML alias bomb expands to billions of nodes once anything walks it; deeply nested JSON
raises RecursionError; an integer beyond Python's digit limit raises ValueError. Each becomes one
:class:`LimitError` line naming the file, decided in well under a second.

JSON numbers keep their exact meaning: a number whose text a float cannot hold (``1e999``, a
17-significant-digit mantissa that rounds) is kept as :class:`RawNumber`, compared by its text; an
integer past the digit limit too. Duplicate object keys are bad input (:class:`DuplicateKeyError`).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_DEPTH = 200  # nesting levels of a YAML or JSON document
MAX_ALIASES = 1_000  # YAML alias references in one document
MAX_NODES = 1_000_000  # YAML nodes once every alias is expanded
MAX_INT_DIGITS = 4_000  # below Python's default int <-> str limit (4300)


class LimitError(ValueError):
    """A document beyond the bounds above, or otherwise unparseable; the message is one line."""


class DuplicateKeyError(LimitError):
    """A JSON object that names one key twice (which value counts is up to the reader: bad input)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


class RawNumber:
    """A JSON number kept as written: a float cannot hold it exactly, so its text is what compares.

    Not a dataclass: ``dataclasses.asdict`` would turn it into ``{"text": ...}`` inside reports.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("RawNumber", self.text))

    def __repr__(self) -> str:  # what reports show and same_value compares
        return self.text


def _parse_float(text: str) -> float | RawNumber:
    value = float(text)
    if repr(value) == text:
        return value
    try:
        exact = math.isfinite(value) and Decimal(repr(value)) == Decimal(text)
    except InvalidOperation:  # pragma: no cover - json only passes valid number text
        exact = False
    return value if exact else RawNumber(text)


def _parse_int(text: str) -> int | RawNumber:
    return RawNumber(text) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def loads_json(text: str) -> Any:
    """``json.loads`` with duplicate keys refused, exact numbers kept, and depth bounded."""
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_float=_parse_float, parse_int=_parse_int)
    except RecursionError:
        raise LimitError("nested deeper than Python's parser allows") from None
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    """Refuse a document nested deeper than ``MAX_DEPTH``: whatever walks it later recurses."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise LimitError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def duplicate_line(text: str, key: str) -> int | None:
    """The line (1-based) of the second occurrence of ``"key"``: where a duplicate key is written."""
    found = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]
    return text.count("\n", 0, found[1]) + 1 if len(found) > 1 else None


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with aliases, depth and expanded size bounded."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        depth = 0
        aliases = 0

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # A key written twice: which value counts is up to the reader (PyYAML keeps the last),
            # so, as for JSON, it is bad input. Merge keys (<<) may be overridden: not counted.
            seen: list[Any] = []
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # pragma: no cover - unhashable keys are refused by PyYAML itself
                    duplicate = False
                if duplicate:
                    raise DuplicateKeyError(str(key))
                seen.append(key)
            return super().construct_mapping(node, deep=deep)

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise LimitError(f"more than {MAX_ALIASES} YAML aliases")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise LimitError(f"nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    _check_flow_depth(text)
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return loader.construct_document(node)
    except RecursionError:
        raise LimitError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        if isinstance(exc, LimitError):
            raise
        raise LimitError(" ".join(str(exc).split())) from None
    finally:
        loader.dispose()


def _check_flow_depth(text: str) -> None:
    """Refuse ``[[[[...`` beyond ``MAX_DEPTH`` before PyYAML's scanner spends seconds on it.

    Brackets inside quoted strings count too: a bound, not a parse (config files never come close).
    """
    depth = 0
    for match in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        if depth > MAX_DEPTH:
            raise LimitError(f"nested deeper than {MAX_DEPTH} levels")


def _check_expanded_size(root: Any) -> None:
    """Count the nodes an alias-expanding walk would visit, without expanding (memo per node)."""
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again is a recursive alias
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not children_done and id(node) in open_nodes:
            raise LimitError("a YAML alias refers to its own ancestor (a recursive structure)")
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        if children_done or not children:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > MAX_NODES:
                raise LimitError(f"expands to more than {MAX_NODES} nodes (YAML aliases)")
            sizes[id(node)] = total
            open_nodes.discard(id(node))
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
