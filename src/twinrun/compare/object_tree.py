"""A saved object as flat, comparable parts: tensors and other leaves, each named by its path.

``{"state_dict": {"net.0.weight": t}, "optimizer_states": [{"state": {3: {"exp_avg": t2}}}], "epoch": 3}``
becomes the tensors ``state_dict/net.0.weight`` and ``optimizer_states/0/state/3/exp_avg`` and the leaf
``epoch = 3``. A whole pickled ``nn.Module`` (a placeholder whose state has ``_parameters``, ``_buffers``
and ``_modules``) is named as its ``state_dict`` would be (``encoder.weight``); any other placeholder
gives its class (``__class__``), constructor arguments (``__args__``) and state. An object met a second
time (a DictConfig node's ``_parent``, a shared list) is a leaf naming where it was first met, which also
ends cycles. Strings and string keys go through ``normalize`` (a run's own directory -> placeholder).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twinrun.compare.report_model import Mismatch, WeightsSection
from twinrun.compare.torch_pickle import Placeholder, StorageRef, TensorRef, storage_tensor

_MODULE_KEYS = frozenset({"_parameters", "_buffers", "_modules"})
MAX_PARTS = 5_000_000  # tensors and values one file may hold: a pickle of shared tuples nested 30 deep
# (10 ** 30 paths, a few hundred bytes of file) must end with a message, not exhaust memory


class TooManyPartsError(ValueError):
    """The object holds more than MAX_PARTS tensors and values."""


@dataclass(frozen=True)
class Global:
    """A class or function the object refers to (never imported): compared by its qualified name."""

    qualname: str

    def __repr__(self) -> str:
        return f"<{self.qualname}>"


@dataclass(frozen=True)
class Empty:
    """An empty container: present, unlike a missing key."""

    kind: str

    def __repr__(self) -> str:
        return {"dict": "{}", "list": "[]", "tuple": "()"}.get(self.kind, f"{self.kind}()")


@dataclass(frozen=True)
class Ref:
    """The same object as the one first met at ``path``."""

    path: str

    def __repr__(self) -> str:
        return f"<same object as {self.path or '(root)'}>"


@dataclass(frozen=True)
class MemTensor:
    """A tensor already in memory (``--trust-pickle`` loads): its bytes as a flat uint8 array."""

    dtype: str
    shape: tuple[int, ...]
    data: Any  # numpy uint8 array


@dataclass
class Tree:
    tensors: dict[str, TensorRef | MemTensor] = field(default_factory=dict)
    leaves: dict[str, Any] = field(default_factory=dict)

    def put(self, path: str, value: Any, tensor: bool = False) -> None:
        name, n = path, 1
        while name in self.tensors or name in self.leaves:  # two parts naming one path: keep both
            n += 1
            name = f"{path}#{n}"
        (self.tensors if tensor else self.leaves)[name] = value


def join(path: str, key: str) -> str:
    return f"{path}/{key}" if path else key


def _is_module(obj: Any) -> bool:
    return isinstance(obj, Placeholder) and isinstance(obj.state, dict) and obj.state.keys() >= _MODULE_KEYS


def flatten(
    obj: Any, normalize: Callable[[str], str] | None = None, coerce: Callable[[Any], Any] | None = None
) -> Tree:
    """Every tensor and leaf of ``obj``. ``coerce`` maps foreign objects (real torch objects after a
    trusted load) to the kinds handled here; without it they are leaves shown by type."""
    norm = normalize or (lambda s: s)
    tree = Tree()
    seen: dict[int, str] = {}
    # (path, object, module prefix): a prefix (str) marks a module whose children are named with dots.
    stack: list[tuple[str, Any, str | None]] = [("", obj, None)]
    visited = 0
    while stack:
        path, value, prefix = stack.pop()
        visited += 1
        if visited > MAX_PARTS:
            raise TooManyPartsError(f"more than {MAX_PARTS} values")
        children: list[tuple[str, Any, str | None]] = []
        if prefix is not None:  # a pickled nn.Module
            if prefix and id(value) in seen:
                tree.put(join(path, prefix[:-1]), Ref(seen[id(value)]))
                continue
            seen.setdefault(id(value), join(path, prefix[:-1]))
            _module_children(path, prefix, value, children)
        elif isinstance(value, TensorRef | MemTensor):
            tree.put(path, value, tensor=True)
        elif isinstance(value, StorageRef):
            tree.put(path, storage_tensor(value), tensor=True)
        elif isinstance(value, str):
            tree.put(path, norm(value))
        elif value is None or isinstance(value, bool | int | float | complex | bytes):
            tree.put(path, value)
        elif isinstance(value, bytearray):
            tree.put(path, bytes(value))
        elif isinstance(value, type):
            tree.put(path, Global(getattr(value, "qualname", f"{value.__module__}.{value.__qualname__}")))
        elif isinstance(value, tuple) and not value:
            tree.put(path, Empty("tuple"))
        elif isinstance(value, tuple | dict | list | set | frozenset | Placeholder):
            if id(value) in seen:
                tree.put(path, Ref(seen[id(value)]))
                continue
            seen[id(value)] = path
            _container_children(path, value, norm, tree, children)
        elif callable(value) and hasattr(value, "__qualname__"):  # a rebuild function met as a value
            tree.put(path, Global(f"{value.__module__}.{value.__qualname__}"))
        elif coerce is not None:
            stack.append((path, coerce(value), None))
        else:
            tree.put(path, Global(f"{type(value).__module__}.{type(value).__qualname__}"))
        stack.extend(reversed(children))
    return tree


def _container_children(
    path: str, value: Any, norm: Callable[[str], str], tree: Tree, out: list[tuple[str, Any, str | None]]
) -> None:
    if isinstance(value, set | frozenset):
        tree.put(path, frozenset(norm(v) if isinstance(v, str) else repr(v) for v in value))
    elif isinstance(value, list | tuple):
        if not value:
            tree.put(path, Empty("list"))
        out += [(join(path, str(i)), v, None) for i, v in enumerate(value)]
    elif isinstance(value, dict):
        if not value:
            tree.put(path, Empty("dict"))
        out += [(join(path, key_text(k, norm)), v, None) for k, v in value.items()]
    elif _is_module(value):
        out.append((path, value, ""))
    else:  # any other placeholder: class, arguments, state, appended items, set entries
        tree.put(join(path, "__class__"), Global(value.qualname))
        if value.args:
            out.append((join(path, "__args__"), value.args, None))
        if value.kwargs:
            out.append((join(path, "__kwargs__"), value.kwargs, None))
        state = value.state
        if isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, dict | None) for s in state):
            state = {**(state[0] or {}), **(state[1] or {})}  # (__dict__, __slots__ values)
        if isinstance(state, dict) and state:
            out += [(join(path, key_text(k, norm)), v, None) for k, v in state.items()]
        elif state is not None:
            out.append((join(path, "__state__"), state, None))
        if value.items:
            out.append((join(path, "__items__"), value.items, None))
        if value.entries:
            out.append((join(path, "__entries__"), value.entries, None))


def _module_children(
    path: str, prefix: str, module: Placeholder, out: list[tuple[str, Any, str | None]]
) -> None:
    """A pickled nn.Module: parameters and buffers named as in its state_dict, other attributes beside."""
    out.append((join(path, prefix + "__class__"), type(module), None))
    if module.args:
        out.append((join(path, prefix + "__args__"), module.args, None))
    for attr, value in module.state.items():
        if attr in ("_parameters", "_buffers") and isinstance(value, dict):
            out += [(join(path, prefix + str(k)), v, None) for k, v in value.items()]
        elif attr == "_modules" and isinstance(value, dict):
            for name, child in value.items():
                if _is_module(child):
                    out.append((path, child, f"{prefix}{name}."))
                else:
                    out.append((join(path, prefix + str(name)), child, None))
        elif not (str(attr).startswith("_") and isinstance(value, dict | set | frozenset) and not value):
            # (empty hook dicts and sets: every module has a dozen; one that is not empty is compared)
            out.append((join(path, prefix + str(attr)), value, None))


def key_text(key: Any, norm: Callable[[str], str]) -> str:
    """A dict key as a path component (strings normalized)."""
    if isinstance(key, str):
        return norm(key)
    if isinstance(key, tuple):
        return "(" + ", ".join(key_text(k, norm) for k in key) + ")"
    if isinstance(key, type):
        return getattr(key, "qualname", key.__qualname__)
    return repr(key) if not isinstance(key, int) else str(key)


def leaf_key(value: Any) -> tuple[Any, ...]:
    """What two leaves must share to be equal: the type and the exact value (floats by their bits, so
    that NaN equals NaN and -0.0 differs from 0.0)."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, complex):
        return ("complex", struct.pack("<dd", value.real, value.imag))
    return (type(value).__name__, value)


def compare_leaves(
    la: dict[str, object], lb: dict[str, object], named: Callable[[str], str], sec: WeightsSection
) -> None:
    """Non-tensor values compared exactly (floats by their bits)."""
    sec.leaves_only_in_a = [named(k) for k in la if k not in lb]
    sec.leaves_only_in_b = [named(k) for k in lb if k not in la]
    for key, va in la.items():
        if key not in lb:
            continue
        sec.leaves_compared += 1
        vb = lb[key]
        if leaf_key(va) != leaf_key(vb):
            sec.leaf_mismatches.append(Mismatch(named(key), shown_leaf(va), shown_leaf(vb)))


def shown_leaf(value: object, limit: int = 200) -> object:
    """A leaf as a report shows it: numbers as they are, long text shortened (its length shown)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes):
        if len(value) <= 32:
            return f"bytes {value.hex()}"
        return f"{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
