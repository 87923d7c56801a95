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

import io
import pickle
import pickletools
from collections.abc import Iterator
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


_OPS = {op.code.encode("latin1")[0]: op for op in pickletools.opcodes}
_VALUES = frozenset(  # opcodes that only push one value (numbers, strings, None, globals by name ...)
    op.name for op in pickletools.opcodes if not op.stack_before and len(op.stack_after) == 1
) - {"MARK", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE", *_GETS}
_NEWLINE, _LEN1, _LEN4, _LEN4U, _LEN8U = (
    pickletools.UP_TO_NEWLINE,
    pickletools.TAKEN_FROM_ARGUMENT1,
    pickletools.TAKEN_FROM_ARGUMENT4,
    pickletools.TAKEN_FROM_ARGUMENT4U,
    pickletools.TAKEN_FROM_ARGUMENT8U,
)


def _ops(data: bytes, pos: int) -> Iterator[tuple[str, Any, Any, int]]:
    """``(name, memo key or None, opcode, position after it)`` of each opcode of ``data`` from ``pos``:
    arguments are skipped, not decoded (only memo keys are read); several times faster than
    :func:`pickletools.genops`, which decodes every argument."""
    end = len(data)
    while pos < end:
        op = _OPS.get(data[pos])
        if op is None:
            raise pickle.UnpicklingError(f"unknown opcode {data[pos]:#x} at {pos}")
        pos += 1
        arg = op.arg
        key: Any = None
        if arg is not None:
            n = arg.n
            if n >= 0:
                if op.name in _PUTS or op.name in _GETS:
                    key = int.from_bytes(data[pos : pos + n], "little")
                pos += n
            elif n == _NEWLINE:
                lines = 2 if op.name in ("GLOBAL", "INST") else 1
                for _ in range(lines):
                    stop = data.find(b"\n", pos)
                    if stop < 0:
                        raise pickle.UnpicklingError("pickle data was truncated")
                    if op.name in _PUTS or op.name in _GETS:
                        key = int(data[pos:stop])
                    pos = stop + 1
            else:
                width = {_LEN1: 1, _LEN4: 4, _LEN4U: 4, _LEN8U: 8}[n]
                pos += width + int.from_bytes(data[pos : pos + width], "little", signed=n == _LEN4)
        if pos > end:
            raise pickle.UnpicklingError("pickle data was truncated")
        yield op.name, key, op, pos
        if op.name == "STOP":
            return
    raise pickle.UnpicklingError("pickle data was truncated (no STOP)")


def _genops(file: IO[bytes]) -> Iterator[tuple[str, Any, Any, int]]:
    for op, arg, _ in pickletools.genops(file):
        yield op.name, arg, op, -1  # the file's own position is after the opcode


def check_depth(file: IO[bytes], limit: int = MAX_DEPTH) -> None:
    """Walk one pickle from ``file``'s position to its STOP; raise TooDeepError (or UnpicklingError for a
    malformed stream) when it would nest deeper than ``limit``. The position is left after the pickle."""
    # The whole pickle in memory is walked without decoding arguments (BytesIO of bytes shares them: no copy).
    ops = _ops(file.getvalue(), file.tell()) if isinstance(file, io.BytesIO) else _genops(file)
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
        for name, arg, op, after in ops:
            if name in _VALUES:
                stack.append(0)
            elif name == "MARK":
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
            elif name == "EMPTY_TUPLE":
                stack.append(_Built(0, []))
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
                if after >= 0:
                    file.seek(after)
                return
            elif name in ("PROTO", "FRAME"):
                continue
            else:  # other values (persistent ids, stack globals ...): what they pop, then one value
                if pickletools.markobject in op.stack_before:
                    from_mark()
                else:
                    for _ in op.stack_before:
                        pop()
                stack.extend(0 for _ in op.stack_after)
    except ValueError as exc:  # genops: an unknown opcode, a bad argument, the stream ended early
        raise pickle.UnpicklingError(str(exc)) from None
    raise pickle.UnpicklingError("pickle data was truncated (no STOP)")


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
