"""Comparing one tensor file of two runs: the per-file entry point of the artifact walk.

Every tensor anywhere in the file is compared bit for bit (:mod:`twinrun.compare.judge.weights`), named
``<label>: <path in the saved object>``; every other value the file holds (``epoch``, ``global_step``,
loop counters, hyperparameters, the class names and state of pickled objects) is compared exactly.
Torch files are read without running pickled code (:mod:`twinrun.compare.read.torch_pickle`); ``.npy`` and
``.npz`` as ``numpy.load(allow_pickle=False)`` would; ``.safetensors`` by its header.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twinrun.compare.read.object_tree import RESOLVER_CACHE, Global, MemTensor, TooManyPartsError, flatten
from twinrun.compare.read.run_reader import RunDir, UnusableRunError
from twinrun.compare.read.torch_file import NotATensorFileError, open_torch_file, unreadable
from twinrun.compare.read.torch_pickle import Placeholder, RefusedPickleError, placeholder_type
from twinrun.compare.read.weights_reader import LEGACY_WEIGHTS, SafetensorsWeights, TreeWeights, WeightsSource
from twinrun.compare.report.model import IDENTICAL, WeightsSection, plural
from twinrun.record import runs

__all__ = ["TENSOR_SUFFIXES", "NotATensorFileError", "compare_tensor_files", "open_tensor_file"]

TENSOR_SUFFIXES: tuple[str, ...] = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz")


def compare_tensor_files(
    a: Path,
    b: Path,
    *,
    label: str,
    atol: float | None = None,
    rtol: float | None = None,
    trust_pickle: bool = False,
    normalize: Callable[[str, str], str] | None = None,
    account_bytes: bool = False,
) -> WeightsSection:
    """Compare file ``a`` of run A with file ``b`` of run B (``label``: their relative path).

    ``normalize(text, side)`` (side ``"a"`` or ``"b"``) is applied to every string and string key first.
    ``account_bytes`` (files whose bytes differ): when every value reads the same, the byte rule's
    accounting (:mod:`twinrun.compare.judge.tensor_bytes`) fills ``masked`` or ``unaccounted``.
    Raises UnusableRunError (one line naming the file) for a file that cannot be read or is refused;
    NotATensorFileError, a subclass, when the file is not of a tensor format at all.
    """
    from twinrun.compare.judge.weights import compare_weights

    with contextlib.ExitStack() as stack:
        sources = []
        for path, side in ((a, "a"), (b, "b")):
            norm = None if normalize is None else _side(normalize, side)
            sources.append(
                stack.enter_context(
                    open_tensor_file(path, str(path), trust_pickle=trust_pickle, normalize=norm)
                )
            )
        if sources[0].records != sources[1].records:  # the zips' other records differ: shown as values
            for source in sources:
                for name, value in source.records.items():
                    source.leaves[f"<zip record {name}>"] = value  # "<": no name of the saved object
        sec = compare_weights(sources[0], sources[1], atol=atol, rtol=rtol, label=label)
        masked = sorted({*sources[0].masked, *sources[1].masked})
        if masked:  # excused, and said so: the one volatile field a saved object may carry
            shown = ", ".join(f"{label}: {m}" for m in masked[:3]) + (" ..." if len(masked) > 3 else "")
            what = plural(len(masked), RESOLVER_CACHE)
            sec.notes.append(f"masked: {what} (OmegaConf's, not the config): {shown}")
        if account_bytes and sec.status == IDENTICAL:
            _account(a, b, sec, normalize, sources[0].volatile_strings, sources[1].volatile_strings)
        return sec


def _account(
    a: Path,
    b: Path,
    sec: WeightsSection,
    normalize: Callable[[str, str], str] | None,
    cache_a: frozenset[str],
    cache_b: frozenset[str],
) -> None:
    from twinrun.compare.judge.tensor_bytes import account_tensor_bytes

    def same(x: str, y: str) -> bool:
        return x == y if normalize is None else normalize(x, "a") == normalize(y, "b")

    found = account_tensor_bytes(a, b, same, cache_a, cache_b)
    if isinstance(found, str):
        sec.unaccounted = found
    else:
        sec.masked = dict(found)


def _side(normalize: Callable[[str, str], str], side: str) -> Callable[[str], str]:
    return lambda text: normalize(text, side)


def open_tensor_file(
    path: Path, shown: str, *, trust_pickle: bool = False, normalize: Callable[[str], str] | None = None
) -> WeightsSource:
    """The tensors and other values of one tensor file, by the format its suffix names."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        source: WeightsSource = SafetensorsWeights(path, shown)
        if normalize is not None:
            source.leaves = {k: normalize(v) if isinstance(v, str) else v for k, v in source.leaves.items()}
        return source
    if suffix in (".npy", ".npz"):
        from twinrun.compare.read.numpy_file import open_npy, open_npz

        return open_npy(path, shown) if suffix == ".npy" else open_npz(path, shown)
    return _open_torch(path, shown, trust_pickle, normalize)


def _open_torch(
    path: Path, shown: str, trust_pickle: bool, normalize: Callable[[str], str] | None
) -> WeightsSource:
    try:
        torch_file = open_torch_file(path, shown)
    except RefusedPickleError as exc:
        if trust_pickle:
            return _open_trusted(path, shown, normalize)
        raise UnusableRunError(
            f"{shown}: {exc}; twinrun reads data only and never runs code from a file "
            "(--trust-pickle loads it with full pickle: only for a file you made yourself)"
        ) from None
    try:
        tree = flatten(torch_file.obj, normalize)
    except TooManyPartsError as exc:
        torch_file.close()
        raise UnusableRunError(
            f"{shown} holds {exc}; it is not a file of weights twinrun can compare"
        ) from None
    except BaseException:
        torch_file.close()
        raise
    source = TreeWeights(tree, torch_file.regions, shown, close=torch_file.close)
    source.records = torch_file.records
    return source


def _open_trusted(path: Path, shown: str, normalize: Callable[[str], str] | None) -> WeightsSource:
    """``--trust-pickle``: full ``torch.load`` of a file the inert reader refused."""
    import torch

    try:
        obj = torch.load(path, weights_only=False, map_location="cpu")
    except ModuleNotFoundError as exc:
        raise UnusableRunError(
            f"{shown} needs the module {exc.name!r}, which is not installed here; install the package that "
            "wrote it, or compare without --trust-pickle"
        ) from None
    except AttributeError as exc:  # "Can't get attribute 'Net' on <module 'app'>"
        raise UnusableRunError(
            f"{shown} needs a class its module no longer has ({exc}); compare where the app's code matches"
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... for damaged files
        raise unreadable(shown, exc) from None
    return TreeWeights(flatten(obj, normalize, coerce=_coerce), {}, shown)


def _coerce(value: Any) -> Any:
    """Real objects of a trusted load, as the inert reader would have given them."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        try:
            data = t.reshape(-1).view(torch.uint8).numpy()
        except RuntimeError:  # sparse, quantized ... tensors have no plain bytes: their dense values
            t = t.to_dense() if t.is_sparse else t.dequantize()
            data = t.contiguous().reshape(-1).view(torch.uint8).numpy()
        flags = {"requires_grad": value.requires_grad, "parameter": isinstance(value, torch.nn.Parameter)}
        return MemTensor(str(t.dtype).removeprefix("torch."), tuple(t.shape), data, **flags)
    if isinstance(value, np.ndarray | np.generic) and not value.dtype.hasobject:
        from twinrun.compare.read.numpy_file import dtype_name

        array = np.ascontiguousarray(value)
        return MemTensor(dtype_name(array.dtype), array.shape, array.reshape(-1).view(np.uint8))
    kind = type(value)
    qualname = f"{kind.__module__}.{kind.__qualname__}"
    if hasattr(value, "__dict__"):
        placeholder: Placeholder = placeholder_type(qualname)()
        placeholder.state = dict(vars(value))
        return placeholder
    text = repr(value)
    return Global(qualname) if " at 0x" in text else f"{qualname}: {text}"


def open_weights(run: RunDir, *, trust_pickle: bool = False) -> WeightsSource:
    """The run's weights: ``weights.safetensors``, else a legacy ``trained_model.pt`` (every tensor in it,
    named by its path in the saved object, read without running pickled code)."""
    if run.has(runs.WEIGHTS):
        return SafetensorsWeights(run.file(runs.WEIGHTS), run.show(runs.WEIGHTS))
    if run.has(LEGACY_WEIGHTS):
        path, shown = run.file(LEGACY_WEIGHTS), run.show(LEGACY_WEIGHTS)
        source = open_tensor_file(path, shown, trust_pickle=trust_pickle)
        # The weights are named tensors, as in weights.safetensors, which has no container: the type of
        # the state dict itself (OrderedDict, dict) is not compared here, so the two formats compare.
        root = source.leaves.get("")
        if getattr(root, "kind", None) in ("dict", "OrderedDict", "collections.OrderedDict"):
            del source.leaves[""]
        return source
    raise UnusableRunError(
        f"{run.shown} has no weights (neither {runs.WEIGHTS} nor {LEGACY_WEIGHTS}); "
        "point at the directory of a finished run"
    )
