"""How deep a pickle would nest what it builds, found before anything is built.

Python's C unpickler builds nested tuples without recursion, but putting one into a dict or a set hashes
it, and hashing a tuple (or frozenset) recurses in C with no limit: a 1 MB pickle of ``{((...((),)...),): 1}``
nested a million deep kills the process (SIGSEGV, no message). So the opcodes are walked first
(:func:`pickletools.genops`, nothing built or called) with a stack of *depths* in place of objects, and a
pickle that would build anything nested more than ``MAX_DEPTH`` levels is refused.

Depths are tracked so that a deep chain cannot hide: a tuple or frozenset's depth is fixed when it is
built; a list, dict or set is a cell whose depth grows as items are appended, shared with the memo, so a
later ``GET`` sees the grown depth; a call (``REDUCE``, ``NEWOBJ`` ...) may turn its arguments' items
into a tuple or set (``tuple(lst)``), so its result is as deep as those items are *at the call*.
"""

from __future__ import annotations

import pickle
import pickletools
from typing import IO, Any

MAX_DEPTH = 1000  # levels of nesting a saved object may have: real checkpoints have a few dozen

_MAKES_ONE_TUPLE = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_FROM_MARK = frozenset({"TUPLE", "FROZENSET", "LIST", "DICT", "INST", "OBJ"})
_CALLS = {"REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3}
_FILLS_FROM_MARK = frozenset({"APPENDS", "SETITEMS", "ADDITEMS"})
_EMPTY_MUTABLE = frozenset({"EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})


class _Built:
    """A tuple-like value on the simulated stack: its depth, and its items (for calls that unpack it)."""

    __slots__ = ("depth", "items")

    def __init__(self, depth: int, items: list[Any]) -> None:
        self.depth, self.items = depth, items


def _depth(entry: Any) -> int:
    if isinstance(entry, int):
        return entry
    if isinstance(entry, list):  # a mutable container's cell: its depth now
        return entry[0]
    return entry.depth


class TooDeepError(pickle.UnpicklingError):
    """The pickle builds values nested more than MAX_DEPTH levels."""


# Every opcode that can make a value deeper (builds a tuple, list, dict, set, frozenset or object, fills
# one, or calls). Each is one byte of the stream, so a pickle holding fewer of these byte values than
# the limit (anywhere, arguments included) cannot nest deeper: no walk is needed.
_DEEPENING = [bytes([c]) for c in b"tlduaesbRoi\x85\x86\x87\x90\x91\x81\x92"]


def may_be_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """False when ``data`` cannot nest deeper than ``limit`` (counted in C: no opcode walk)."""
    count = 0
    for code in _DEEPENING:
        count += data.count(code)
        if count > limit:
            return True
    return False


def check_depth(file: IO[bytes], limit: int = MAX_DEPTH) -> None:
    """Walk one pickle from ``file``'s position to its STOP; raise TooDeepError (or UnpicklingError for a
    malformed stream) when it would nest deeper than ``limit``. The position is left after the pickle."""
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[Any, Any] = {}

    def deep(depth: int) -> int:
        if depth > limit:
            raise TooDeepError(f"values nested more than {limit} deep")
        return depth

    def from_mark() -> list[Any]:
        if not marks:
            raise pickle.UnpicklingError("MARK missing")
        at = marks.pop()
        items = stack[at:]
        del stack[at:]
        return items

    def pop() -> Any:
        if not stack:
            raise pickle.UnpicklingError("pickle stack underflow")
        return stack.pop()

    try:
        for op, arg, _ in pickletools.genops(file):
            name = op.name
            if name == "MARK":
                marks.append(len(stack))
            elif name in _MAKES_ONE_TUPLE:
                items = [pop() for _ in range(_MAKES_ONE_TUPLE[name])][::-1]
                stack.append(_Built(deep(1 + max(map(_depth, items))), items))
            elif name in _FROM_MARK:
                items = from_mark()
                depth = deep(1 + max(map(_depth, items), default=0))
                stack.append([depth] if name in ("LIST", "DICT") else _Built(depth, items))
            elif name in _CALLS:
                args = [pop() for _ in range(_CALLS[name])][::-1][1:]  # the callable is not nested
                inner = [x for a in args for x in (a.items if isinstance(a, _Built) else [a])]
                depth = 1 + max([*map(_depth, args), *(1 + _depth(x) for x in inner)], default=0)
                stack.append(_Built(deep(depth), inner))
            elif name in _EMPTY_MUTABLE:
                stack.append([0])
            elif name in _FILLS_FROM_MARK:
                _grow(stack, from_mark(), deep)
            elif name in ("APPEND", "SETITEM"):
                _grow(stack, [pop() for _ in range(1 if name == "APPEND" else 2)], deep)
            elif name == "BUILD":
                _grow(stack, [pop()], deep)
            elif name in _PUTS:
                memo[arg] = stack[-1] if stack else 0
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else 0
            elif name in _GETS:
                if arg not in memo:
                    raise pickle.UnpicklingError(f"memo key {arg!r} not found")
                stack.append(memo[arg])
            elif name == "POP":
                if marks and len(stack) == marks[-1]:
                    marks.pop()
                else:
                    pop()
            elif name == "POP_MARK":
                from_mark()
            elif name == "DUP":
                stack.append(stack[-1] if stack else 0)
            elif name == "STOP":
                return
            elif name in ("PROTO", "FRAME"):
                continue
            else:  # values (numbers, strings, globals, persistent ids ...): what they pop, then one value
                if pickletools.markobject in op.stack_before:
                    from_mark()
                else:
                    for _ in op.stack_before:
                        pop()
                stack.extend(0 for _ in op.stack_after)
    except ValueError as exc:  # genops: an unknown opcode, a bad argument, the stream ended early
        raise pickle.UnpicklingError(str(exc)) from None


def _grow(stack: list[Any], items: list[Any], deep: Any) -> None:
    """Items appended to (or set in, or given as state to) the container on top of the stack."""
    if not stack or not items:
        return
    target = stack[-1]
    depth = deep(1 + max(map(_depth, items)))
    if isinstance(target, list):
        target[0] = max(target[0], depth)
    elif isinstance(target, _Built):
        target.depth = max(target.depth, depth)
