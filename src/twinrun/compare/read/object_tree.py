"""A saved object as flat, comparable parts: tensors and other leaves, each named by its path.

``{"state_dict": {"net.0.weight": t}, "optimizer_states": [{"state": {3: {"exp_avg": t2}}}], "epoch": 3}``
becomes the tensors ``state_dict/net.0.weight`` and ``optimizer_states/0/state/3/exp_avg`` and the leaf
``epoch = 3``. Names never lose a type: each key is written so that no key of another type writes the
same text (:mod:`twinrun.compare.read.object_keys`: ``'0'`` for the string, ``0`` for the number, ``'a/b'``
for a key holding a slash); each container leaves a leaf at its own path saying what it is
(``<list of 2>``, ``<OrderedDict of 3>``: a tuple is not a list, a dict not an OrderedDict); a set is one
leaf of its members' typed texts; a parameter or a tensor that requires grad leaves a ``@flags`` leaf. A
dict key or set member that is itself an object (a tensor, a pickled instance) is compared as a part of its
own, by position (``{key #0}``, ``{#0}``), never by its repr.

A whole pickled ``nn.Module`` (a placeholder whose state has ``_parameters``, ``_buffers`` and
``_modules``) is named as its ``state_dict`` would be (``encoder.weight``); any other placeholder gives its
class (``__class__``), constructor arguments (``__args__``) and state. An object met a second time (a
DictConfig node's ``_parent``, a shared list) is a leaf naming where it was first met, which also ends
cycles. Strings and string keys go through ``normalize`` (a run's own directory -> placeholder), once per
string object. OmegaConf's ``resolver_cache`` (the values ``${now:...}`` gave in this process) is not the
config: it is skipped and named in ``Tree.masked``, the one volatile field this reader excuses.

Bounds (a run directory is untrusted input): at most ``MAX_PARTS`` parts, ``MAX_DEPTH`` levels of
nesting and ``MAX_NAME_CHARS`` characters of names; beyond them :class:`TooManyPartsError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twinrun.compare.read.object_keys import NOT_PLAIN, is_plain, join, key_component
from twinrun.compare.read.pickle_bounds import MAX_DEPTH
from twinrun.compare.read.torch_pickle import Placeholder, StorageRef, TensorRef, storage_tensor

_MODULE_KEYS = frozenset({"_parameters", "_buffers", "_modules"})
MAX_PARTS = 5_000_000  # tensors and values one file may hold: a pickle of shared tuples nested 30 deep
# (10 ** 30 paths, a few hundred bytes of file) must end with a message, not exhaust memory
MAX_NAME_CHARS = 1 << 26  # characters of part names: deep paths times many leaves stay a few 100 MB

RESOLVER_CACHE = "resolver cache"  # the name of the volatile field this reader excuses
_OMEGACONF_METADATA = frozenset({"omegaconf.base.Metadata", "omegaconf.base.ContainerMetadata"})


class TooManyPartsError(ValueError):
    """The object holds more than MAX_PARTS tensors and values (or is nested or named beyond bounds)."""


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
class Container:
    """A non-empty container at this path: its type and length (its items are parts of their own)."""

    kind: str
    size: int

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.size}>"


@dataclass(frozen=True)
class Members:
    """A set or frozenset of plain values: its members' typed texts, sorted."""

    kind: str
    members: tuple[str, ...]

    def __repr__(self) -> str:
        return f"{self.kind}({{{', '.join(self.members)}}})"


@dataclass(frozen=True)
class TensorFlags:
    """What a tensor is beside its bytes: a ``Parameter`` or a plain tensor, and its ``requires_grad``."""

    kind: str
    requires_grad: bool

    def __repr__(self) -> str:
        return f"<{self.kind} requires_grad={self.requires_grad}>"


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
    requires_grad: bool = False
    parameter: bool = False


@dataclass
class Tree:
    tensors: dict[str, TensorRef | MemTensor] = field(default_factory=dict)
    leaves: dict[str, Any] = field(default_factory=dict)
    masked: list[str] = field(default_factory=list)  # volatile fields excused, by path
    # The strings the resolver caches hold: the byte rule's accounting of the pickle may excuse only these.
    volatile_strings: set[str] = field(default_factory=set)
    name_chars: int = 0

    def put(self, path: str, value: Any, tensor: bool = False) -> None:
        name, n = path, 1
        while name in self.tensors or name in self.leaves:  # two parts naming one path: keep both
            n += 1
            name = f"{path}#{n}"
        (self.tensors if tensor else self.leaves)[name] = value
        if tensor and (value.parameter or value.requires_grad):
            kind = "Parameter" if value.parameter else "tensor"
            self.leaves[f"{name}@flags"] = TensorFlags(kind, bool(value.requires_grad))


Child = tuple[str, Any, "str | None", int]  # path, object, module prefix, depth
_SCALARS = frozenset({str, int, float, bool, type(None), complex, bytes, bytearray})


def _is_module(obj: Any) -> bool:
    return isinstance(obj, Placeholder) and isinstance(obj.state, dict) and obj.state.keys() >= _MODULE_KEYS


def flatten(
    obj: Any, normalize: Callable[[str], str] | None = None, coerce: Callable[[Any], Any] | None = None
) -> Tree:
    """Every tensor and leaf of ``obj``. ``coerce`` maps foreign objects (real torch objects after a
    trusted load) to the kinds handled here; without it they are leaves shown by type."""
    norm = _cached(normalize) if normalize is not None else (lambda s: s)
    tree = Tree()
    seen: dict[int, str] = {}
    # (path, object, module prefix, depth): a prefix (str) marks a module whose children are named with dots.
    stack: list[Child] = [("", obj, None, 0)]
    visited = 0
    while stack:
        path, value, prefix, depth = stack.pop()
        visited += 1
        if visited > MAX_PARTS:
            raise TooManyPartsError(f"more than {MAX_PARTS} values")
        if depth > MAX_DEPTH:
            raise TooManyPartsError(f"values nested more than {MAX_DEPTH} deep")
        tree.name_chars += len(path)
        if tree.name_chars > MAX_NAME_CHARS:
            raise TooManyPartsError(f"more than {MAX_NAME_CHARS} characters of value names")
        children: list[Child] = []
        if prefix is not None:  # a pickled nn.Module
            if prefix and id(value) in seen:
                tree.put(join(path, prefix[:-1]), Ref(seen[id(value)]))
                continue
            seen.setdefault(id(value), join(path, prefix[:-1]))
            _module_children(path, prefix, value, children, norm)
        elif isinstance(value, TensorRef | MemTensor):
            tree.put(path, value, tensor=True)
        elif isinstance(value, StorageRef):
            tree.put(path, storage_tensor(value), tensor=True)
        elif isinstance(value, str):
            tree.put(path, norm(value))
        elif value is None or isinstance(value, bool | int | float | complex | bytes | bytearray):
            tree.put(path, value)
        elif isinstance(value, type):
            tree.put(path, Global(getattr(value, "qualname", f"{value.__module__}.{value.__qualname__}")))
        elif isinstance(value, tuple | dict | list | set | frozenset | Placeholder):
            if id(value) in seen:
                tree.put(path, Ref(seen[id(value)]))
                continue
            seen[id(value)] = path
            _container_children(path, value, norm, tree, children)
        elif callable(value) and hasattr(value, "__qualname__"):  # a rebuild function met as a value
            tree.put(path, Global(f"{value.__module__}.{value.__qualname__}"))
        elif coerce is not None:
            stack.append((path, coerce(value), None, depth))
        else:
            tree.put(path, Global(f"{type(value).__module__}.{type(value).__qualname__}"))
        if children and all(pre is None and type(v) in _SCALARS for _, v, pre, _ in children):
            # a container of plain values (a list of a million ints): put at once, in order, not stacked
            visited += len(children)
            if visited > MAX_PARTS:
                raise TooManyPartsError(f"more than {MAX_PARTS} values")
            for p, v, _, _ in children:
                tree.name_chars += len(p)
                tree.put(p, norm(v) if type(v) is str else v)
            if tree.name_chars > MAX_NAME_CHARS:
                raise TooManyPartsError(f"more than {MAX_NAME_CHARS} characters of value names")
        else:
            stack.extend((p, v, pre, depth + 1) for p, v, pre, _ in reversed(children))
    return tree


def _cached(normalize: Callable[[str], str]) -> Callable[[str], str]:
    """``normalize`` once per string object: a 1 MiB string the pickle memo shares 200,000 times is masked
    once, not 200,000 times (the objects stay alive while the tree is built, so ids are stable)."""
    done: dict[int, str] = {}

    def norm(text: str) -> str:
        key = id(text)
        if key not in done:
            done[key] = normalize(text)
        return done[key]

    return norm


def _kind(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, Placeholder) else value.qualname


def _container_children(
    path: str, value: Any, norm: Callable[[str], str], tree: Tree, out: list[Child]
) -> None:
    if isinstance(value, set | frozenset):
        texts = [key_component(v, norm) for v in value]
        if all(t is not None for t in texts):
            tree.put(path, Members(_kind(value), tuple(sorted(texts))))  # type: ignore[arg-type]
        else:  # members that are objects (tensors ...): each a part, in the pickle's order
            tree.put(path, Container(_kind(value), len(value)))
            out += [(join(path, f"{{#{i}}}"), v, None, 0) for i, v in enumerate(value)]
    elif isinstance(value, list | tuple):
        tree.put(path, Container(_kind(value), len(value)) if value else Empty(_kind(value)))
        out += [(join(path, str(i)), v, None, 0) for i, v in enumerate(value)]
    elif isinstance(value, dict):
        tree.put(path, Container(_kind(value), len(value)) if value else Empty(_kind(value)))
        _entries(path, value, norm, out)
    elif _is_module(value):
        out.append((path, value, "", 0))
    else:  # any other placeholder: class, arguments, state, appended items, set entries
        tree.put(join(path, "__class__"), Global(value.qualname))
        if value.args:
            out.append((join(path, "__args__"), value.args, None, 0))
        if value.kwargs:
            out.append((join(path, "__kwargs__"), value.kwargs, None, 0))
        state = value.state
        if isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, dict | None) for s in state):
            state = {**(state[0] or {}), **(state[1] or {})}  # (__dict__, __slots__ values)
        if isinstance(state, dict) and value.qualname in _OMEGACONF_METADATA and "resolver_cache" in state:
            cache = state["resolver_cache"]
            state = {k: v for k, v in state.items() if k != "resolver_cache"}
            if not (isinstance(cache, Placeholder) and not cache.entries and not cache.items):
                tree.masked.append(join(path, "resolver_cache"))
                _strings_in(cache, tree.volatile_strings)
        if isinstance(state, dict) and state:
            _entries(path, state, norm, out)
        elif state is not None:
            out.append((join(path, "__state__"), state, None, 0))
        if value.items:
            out.append((join(path, "__items__"), value.items, None, 0))
        if value.entries:
            out.append((join(path, "__entries__"), value.entries, None, 0))


MAX_CACHE_STRINGS = 100_000  # strings of one resolver cache kept for the byte rule (a cache is small)


def _strings_in(value: Any, out: set[str]) -> None:
    """Every string (keys too) inside ``value``; iterative, bounded, each object visited once."""
    stack, seen = [value], set()
    while stack and len(out) < MAX_CACHE_STRINGS:
        item = stack.pop()
        if isinstance(item, str):
            out.add(item)
        elif id(item) in seen:
            continue
        elif isinstance(item, dict):
            seen.add(id(item))
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            seen.add(id(item))
            stack += list(item)
        elif isinstance(item, Placeholder):
            seen.add(id(item))
            stack += [item.args, item.kwargs, item.state, item.items, item.entries]


def _entries(path: str, mapping: dict[Any, Any], norm: Callable[[str], str], out: list[Child]) -> None:
    """A dict's values by their keys' texts; a key that is an object is a part of its own, by position."""
    for i, (key, value) in enumerate(mapping.items()):
        if type(key) is str:  # the common case, inline: key_component would say the same
            text: str | None = norm(key)
            text = text if is_plain(text) else repr(text)  # type: ignore[arg-type]
        else:
            text = key_component(key, norm)
        if text is None:
            out.append((join(path, f"{{key #{i}}}"), key, None, 0))
            text = f"{{value #{i}}}"
        out.append((join(path, text), value, None, 0))


def _module_children(
    path: str, prefix: str, module: Placeholder, out: list[Child], norm: Callable[[str], str]
) -> None:
    """A pickled nn.Module: parameters and buffers named as in its state_dict, other attributes beside."""
    out.append((join(path, prefix + "__class__"), type(module), None, 0))
    if module.args:
        out.append((join(path, prefix + "__args__"), module.args, None, 0))
    for attr, value in module.state.items():
        if attr in ("_parameters", "_buffers") and isinstance(value, dict):
            out += [(join(path, prefix + _attribute(k, norm)), v, None, 0) for k, v in value.items()]
        elif attr == "_modules" and isinstance(value, dict):
            for name, child in value.items():
                if _is_module(child):
                    out.append((path, child, f"{prefix}{_attribute(name, norm)}.", 0))
                else:
                    out.append((join(path, prefix + _attribute(name, norm)), child, None, 0))
        elif not (str(attr).startswith("_") and isinstance(value, dict | set | frozenset) and not value):
            # (empty hook dicts and sets: every module has a dozen; one that is not empty is compared)
            out.append((join(path, prefix + _name(attr, norm)), value, None, 0))


def _attribute(key: Any, norm: Callable[[str], str]) -> str:
    """A module's child or parameter name as its ``state_dict`` writes it (``encoder.0.weight``).

    nn.Module names them with strings only, so a string without separators stands for itself even when it
    spells a number; any other key (a hostile pickle's ``0``) is marked with its type, never the same text.
    """
    if isinstance(key, str):
        text = norm(key)
        if text and text.isprintable() and NOT_PLAIN.isdisjoint(text) and "." not in text:
            return text
        return repr(text)
    return f"<{type(key).__name__} {_name(key, norm)}>"


def _name(key: Any, norm: Callable[[str], str]) -> str:
    text = key_component(key, norm)
    return text if text is not None else f"<{_kind(key)}>"
