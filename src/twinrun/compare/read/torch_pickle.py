"""Reading a ``torch.save`` file without running any pickled code.

A torch file is a pickle whose tensors point at storages kept next to it: records ``<archive>/data/<key>``
of a zip (the format since torch 1.6) or raw blocks after the pickle (the legacy format). The pickle names
globals for everything it rebuilds. :class:`InertUnpickler` answers every such name itself and never
imports or calls anything from the file:

* tensors become :class:`TensorRef` (storage key, dtype, offset, shape, stride): their bytes stay in the
  file and are read later, by byte range (:mod:`twinrun.compare.read.weights_reader`);
* plain containers and builtin value types stay what they are (``dict``, ``OrderedDict``, ``set`` ...);
* every other global (the app's ``nn.Module`` classes, ``torch.optim.Adam``, omegaconf nodes, Hydra's
  ``functools.partial`` targets, numpy arrays ...) becomes a :class:`Placeholder` type: calling it records
  the arguments, ``BUILD`` records the state. Nothing of the named class runs;
* a global that is code rather than data (``os.system``, ``builtins.eval``, ``subprocess.*`` ...) is
  refused (:class:`RefusedPickleError`): a file that needs it is not a file of weights.

No torch is imported here: reading a torch file needs the standard library only.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import io
import pickle
from dataclasses import dataclass, replace
from typing import IO, Any

from twinrun.compare.read.pickle_bounds import check_depth, may_be_deep
from twinrun.compare.read.torch_dtypes import ELEMENT_SIZES, STORAGE_DTYPES

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # first pickle of a legacy torch file
PROTOCOL_VERSION = 1001

# Modules whose every name is code, never data (first component of the module path).
# fmt: off
_REFUSED_MODULES = frozenset((
    "asyncio", "bdb", "code", "codeop", "cProfile", "_ctypes", "ctypes", "fcntl", "fileinput",
    "ftplib", "gc", "glob", "http", "importlib", "inspect", "io", "_io", "marshal", "mmap",
    "multiprocessing", "nt", "ntpath", "os", "pdb", "_pickle", "pickle", "pkgutil", "posix",
    "posixpath", "_posixsubprocess", "profile", "pty", "resource", "runpy", "select", "shutil",
    "signal", "site", "smtplib", "_socket", "socket", "ssl", "subprocess", "sys", "sysconfig",
    "telnetlib", "tempfile", "_thread", "threading", "timeit", "trace", "urllib", "webbrowser",
    "_winapi", "winreg", "zipimport",
))
_REFUSED_NAMES = frozenset((
    "functools.reduce", "numpy.fromfile", "numpy.load", "numpy.loadtxt", "operator.attrgetter",
    "operator.methodcaller", "torch.hub.load", "torch.jit.load", "torch.load",
    "torch.serialization.load", "torch.storage._load_from_bytes", "types.BuiltinFunctionType",
    "types.CodeType", "types.FunctionType", "types.LambdaType", "types.MethodType", "types.ModuleType",
))
# fmt: on
_REFUSED_PREFIXES = ("torch.hub.", "torch.package.", "numpy.testing.", "numpy.f2py.", "numpy.distutils.")
# Builtins that are plain value types: rebuilt as themselves.
_BUILTIN_TYPES: dict[str, Any] = {t.__name__: t for t in (set, frozenset, complex, slice, bool, int, float)}
_BUILTIN_TYPES.update({"str": str, "tuple": tuple, "list": list, "dict": dict})


class RefusedPickleError(Exception):
    """The pickle names a global that is code, not data; ``global_name`` is its qualified name."""

    def __init__(self, global_name: str) -> None:
        super().__init__(f"refused: the file needs pickled code (GLOBAL {global_name})")
        self.global_name = global_name


class Placeholder:
    """An object the pickle describes, never built: its class's qualified name, the arguments it was
    constructed with, and the state, items and entries the pickle then gave it."""

    qualname = "?"  # set on each subclass: one subclass per global the file names

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        obj = object.__new__(cls)
        obj.args, obj.kwargs = args, kwargs
        obj.state, obj.items, obj.entries = None, [], {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # __new__ recorded everything
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.entries[key] = value

    def __repr__(self) -> str:  # no id(): reprs end up in reports and must match between twins
        return f"<{self.qualname}>"


@dataclass(frozen=True)
class StorageRef:
    """A storage of the file: record ``key``, ``nbytes`` long, from ``offset`` (legacy views)."""

    key: str
    dtype: str
    nbytes: int
    offset: int = 0


@dataclass(frozen=True)
class TensorRef:
    """A tensor whose bytes are still in the file: ``shape``/``stride``/``offset`` in elements."""

    storage: StorageRef
    dtype: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    requires_grad: bool = False
    parameter: bool = False  # an nn.Parameter, not a plain tensor

    @property
    def itemsize(self) -> int:
        return ELEMENT_SIZES[self.dtype]

    @property
    def numel(self) -> int:
        count = 1
        for n in self.shape:
            count *= n
        return count

    @property
    def contiguous(self) -> bool:
        expected = 1
        for size, stride in zip(reversed(self.shape), reversed(self.stride), strict=True):
            if size != 1 and stride != expected:
                return self.numel == 0
            expected *= size
        return True

    def span(self) -> tuple[int, int]:
        """Byte range ``[begin, end)`` of the storage this tensor's elements lie in."""
        if self.numel == 0:
            return 0, 0
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        return self.offset * self.itemsize, (last + 1) * self.itemsize


def storage_tensor(storage: StorageRef) -> TensorRef:
    """A storage met as a value of its own (not under a tensor): its elements as a 1-d tensor."""
    n = storage.nbytes // ELEMENT_SIZES[storage.dtype]
    return TensorRef(storage, storage.dtype, 0, (n,), (1,))


def _check_tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: str) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise pickle.UnpicklingError(f"a tensor's storage is a {type(storage).__name__}")
    if dtype not in ELEMENT_SIZES:
        raise pickle.UnpicklingError(f"unknown tensor dtype {dtype}")
    shape, strides = tuple(size), tuple(stride)
    numbers = (offset, *shape, *strides)
    if not all(type(n) is int and n >= 0 for n in numbers) or len(shape) != len(strides):
        raise pickle.UnpicklingError(f"bad tensor geometry {offset} {shape} {strides}")
    tensor = TensorRef(storage, dtype, offset, shape, strides)
    if tensor.span()[1] > storage.nbytes:
        raise pickle.UnpicklingError(
            f"a tensor reaches past its storage ({tensor.span()[1]} > {storage.nbytes})"
        )
    return tensor


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False, *_: Any
) -> TensorRef:
    tensor = _check_tensor(storage, offset, size, stride, getattr(storage, "dtype", "?"))
    return replace(tensor, requires_grad=requires_grad is True)


def _rebuild_tensor_v3(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, dtype: Any, *_: Any
) -> TensorRef:
    name = getattr(dtype, "qualname", "").removeprefix("torch.")
    return replace(_check_tensor(storage, offset, size, stride, name), requires_grad=requires_grad is True)


def _rebuild_parameter(data: Any, requires_grad: Any = True, *rest: Any) -> Any:
    """An ``nn.Parameter``: its tensor, marked as a parameter with its ``requires_grad`` (a frozen layer
    differs from a trained one)."""
    if not isinstance(data, TensorRef):
        return placeholder_type("torch._utils._rebuild_parameter")(data, requires_grad, *rest)
    return replace(data, parameter=True, requires_grad=requires_grad is True)


def _rebuild_parameter_with_state(data: Any, requires_grad: Any, hooks: Any, state: Any = None) -> Any:
    """A parameter with attributes of its own (``state``): those are compared too, beside the tensor."""
    if not state:
        return _rebuild_parameter(data, requires_grad, hooks)
    wrapper = placeholder_type("torch._utils._rebuild_parameter_with_state")
    return wrapper(_rebuild_parameter(data, requires_grad, hooks), state)


def _first_arg(data: Any, *_: Any) -> Any:  # device moves: the data tensor itself
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    built = func(*args)  # func is one of this module's rebuilders or a Placeholder type
    if isinstance(built, TensorRef) and not state:
        return built
    wrapper = placeholder_type("torch._tensor._rebuild_from_type_v2")
    return wrapper(built, new_type, state)


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocol 2 pickles bytes as _codecs.encode(str, "latin1"); nothing else is needed for data.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise RefusedPickleError(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _byte_string(kind: type) -> Any:
    """``bytes``/``bytearray`` from text or bytes only: ``bytearray(10**10)`` would be a memory bomb."""

    def build(source: Any = b"", *encoding: Any) -> Any:
        if not isinstance(source, str | bytes | bytearray):
            raise pickle.UnpicklingError(f"{kind.__name__} of a {type(source).__name__}")
        return kind(source, *encoding) if isinstance(source, str) else kind(source)

    return build


_BUILTIN_TYPES.update(bytes=_byte_string(bytes), bytearray=_byte_string(bytearray))

_REBUILDERS: dict[str, Any] = {
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": _first_arg,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch.Size": tuple,
    "collections.OrderedDict": collections.OrderedDict,
    "_codecs.encode": _codecs_encode,
}
_PLACEHOLDER_TYPES: dict[str, type[Placeholder]] = {}


def placeholder_type(qualname: str) -> type[Placeholder]:
    """One Placeholder subclass per qualified name: ``NEWOBJ`` needs a class, and twins get the same one."""
    cls = _PLACEHOLDER_TYPES.get(qualname)
    if cls is None:
        name = qualname.rpartition(".")[2] or "Placeholder"
        cls = type(name, (Placeholder,), {"qualname": qualname, "__slots__": ()})
        _PLACEHOLDER_TYPES[qualname] = cls
    return cls


def resolve_global(module: str, name: str) -> Any:
    """What the inert reader gives for ``GLOBAL module name``; refuses code (RefusedPickleError)."""
    # Protocol <= 2 pickles spell Python 2 names (``__builtin__``, ``commands`` for subprocess, ...).
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if module in ("posix", "nt"):  # os.system pickles as posix.system: name it as its users write it
        module = "os"
    qualname = f"{module}.{name}"
    if module == "builtins":
        if name in _BUILTIN_TYPES:
            return _BUILTIN_TYPES[name]
        if isinstance(getattr(builtins, name, None), type) and name != "type":  # exception classes ...
            return placeholder_type(qualname)
        raise RefusedPickleError(qualname)
    if (
        module.split(".")[0] in _REFUSED_MODULES
        or qualname in _REFUSED_NAMES
        or qualname.startswith(_REFUSED_PREFIXES)
    ):
        raise RefusedPickleError(qualname)
    if qualname in _REBUILDERS:
        return _REBUILDERS[qualname]
    if module in ("torch", "torch.cuda", "torch.storage") and name in STORAGE_DTYPES:
        cls = placeholder_type(qualname)
        cls.storage_dtype = STORAGE_DTYPES[name]  # type: ignore[attr-defined]
        return cls
    return placeholder_type(qualname)


class InertUnpickler(pickle.Unpickler):
    """Unpickles one pickle of a torch file: tensors as :class:`TensorRef`, classes as placeholders."""

    def __init__(self, file: IO[bytes], storages: dict[str, StorageRef]) -> None:
        super().__init__(file)
        self.storages = storages  # every storage the pickle named, by key

    def find_class(self, module: str, name: str) -> Any:
        return resolve_global(str(module), str(name))

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module" and len(pid) >= 2:  # legacy: an nn.Module class and its source text
            return pid[1]
        if kind != "storage" or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"unknown persistent id {pid[:1]!r}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        dtype = getattr(storage_type, "storage_dtype", None)
        if dtype is None or type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError(f"storage {key} of unknown type {storage_type!r}")
        storage = StorageRef(key, dtype, numel * ELEMENT_SIZES[dtype])
        if self.storages.setdefault(key, storage).nbytes != storage.nbytes:
            raise pickle.UnpicklingError(f"storage {key} named with two sizes")
        view = pid[5] if len(pid) == 6 else None
        if view is not None:  # legacy storage views: (view key, offset, size) in elements
            _, offset, size = view
            size_of = ELEMENT_SIZES[dtype]
            return StorageRef(key, dtype, size * size_of, offset * size_of)
        return storage


def unpickle(data: IO[bytes] | bytes, storages: dict[str, StorageRef]) -> Any:
    """One pickle from ``data`` (a file positioned at it, or its bytes); its nesting is bounded first
    (:mod:`twinrun.compare.read.pickle_bounds`)."""
    file = io.BytesIO(data) if isinstance(data, bytes) else data
    if not isinstance(data, bytes) or may_be_deep(data):
        start = file.tell()
        check_depth(file)  # before anything is built or hashed: a deep key crashes the C hash
        file.seek(start)
    return InertUnpickler(file, storages).load()
