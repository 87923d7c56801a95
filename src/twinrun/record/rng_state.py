"""Every global RNG state: captured and restored for checkpoints, snapshotted and digested for traces.

Checkpoints need states that ``torch.load(weights_only=True)`` accepts (:func:`capture_rng_state`);
the per-step trace needs them cheaply (:func:`rng_snapshot`, hashed later by :func:`snapshot_digests`).
"""

from __future__ import annotations

import array
import ctypes
import hashlib
import random
import sys
from typing import Any

import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """Every global RNG state, in types that ``torch.load(weights_only=True)`` accepts."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_initialized():  # cheap, unlike is_available(); no CUDA RNG before init
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


RngSnapshot = tuple[bytes, bytes, torch.Tensor, list[torch.Tensor] | None]
"""Copies of the python, numpy, torch CPU and CUDA RNG states."""


def rng_snapshot() -> RngSnapshot:
    """Copies of every global RNG state, without hashing them: the cheap half of :func:`rng_digests`."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # no CUDA RNG before init
    return _python_view.state_bytes(), _numpy_view.state_bytes(), torch.get_rng_state(), cuda


def snapshot_digests(snapshot: RngSnapshot) -> dict[str, str]:
    """Short digests of the states in an :func:`rng_snapshot`."""
    python, numpy_state, torch_state, cuda = snapshot
    digests = {
        "python": short_digest(python),
        "numpy": short_digest(numpy_state),
        "torch": short_digest(torch_state.numpy().tobytes()),
    }
    if cuda is not None:
        digests["cuda"] = short_digest(b"".join(s.numpy().tobytes() for s in cuda))
    return digests


def rng_digests() -> dict[str, str]:
    """Short digests of every global RNG state."""
    return snapshot_digests(rng_snapshot())


class _PythonStateView:
    """The global python RNG's MT19937 state read straight from its object: the index, then 624 words.

    ``random.getstate()`` builds a tuple of 625 ints (24-34 us right after a training step, measured);
    copying the bytes through a numpy view of the object's memory costs a few. CPython lays a
    ``_random.Random`` out as the object header, ``int index``, ``uint32_t state[624]``; the layout is
    checked against ``getstate()`` whenever the global instance changes, and where it does not
    match (another Python, another layout) ``getstate()`` gives the same bytes.
    """

    SIZE = 4 + 624 * 4

    def __init__(self) -> None:
        self.instance: object | None = None
        self.memory: np.ndarray | None = None  # uint8[SIZE] over the C fields; None: use getstate()

    def state_bytes(self) -> bytes:
        instance = getattr(random.random, "__self__", None)  # the hidden global Random instance
        if instance is not self.instance:
            self.instance, self.memory = instance, self._checked_memory(instance)
        if self.memory is None:
            return _python_state_from_getstate()
        return self.memory.tobytes()

    def _checked_memory(self, instance: object) -> np.ndarray | None:
        offset = object.__basicsize__  # the object header: where the C fields start
        if sys.implementation.name != "cpython" or not isinstance(instance, random.Random):
            return None
        if type(instance).__basicsize__ < offset + self.SIZE:
            return None
        # CPython: id() is the object's address; the instance outlives the view (self.instance).
        memory = np.ctypeslib.as_array((ctypes.c_uint8 * self.SIZE).from_address(id(instance) + offset))
        return memory if memory.tobytes() == _python_state_from_getstate() else None


def _python_state_from_getstate() -> bytes:
    state = random.getstate()[1]  # 624 words, then the index
    return array.array("I", (state[624], *state[:624])).tobytes()


_python_view = _PythonStateView()


class _NumpyStateView:
    """A zero-copy view of the legacy global numpy RNG's MT19937 state: 624 keys, then the position.

    ``np.random.get_state()`` builds a tuple and copies the keys (measured 33 us a call, half of all
    RNG digests); reading the state through the bit generator's documented ``ctypes.state_address``
    costs a few microseconds. The layout is checked against ``get_state()`` whenever the global bit
    generator object changes; where it does not match, ``get_state()`` is used.
    """

    def __init__(self) -> None:
        self.generator: object | None = None
        self.words: np.ndarray | None = None  # uint32[625] over the C struct; None: use get_state()

    def state_bytes(self) -> bytes:
        """The 624 keys and the position as 625 little-endian uint32 words."""
        generator = _global_bit_generator()
        if generator is not self.generator:
            self.generator, self.words = generator, _state_words(generator)
        if self.words is None:
            _, keys, pos, *_ = np.random.get_state()
            return np.append(keys, pos).astype("<u4").tobytes()
        return self.words.tobytes()


def _global_bit_generator() -> object | None:
    getter = getattr(np.random, "get_bit_generator", None)  # numpy >= 1.25
    return getter() if getter is not None else None


def _state_words(generator: object | None) -> np.ndarray | None:
    try:
        address = generator.ctypes.state_address  # type: ignore[union-attr]
        words = np.ctypeslib.as_array((ctypes.c_uint32 * 625).from_address(address))
    except (AttributeError, TypeError, ValueError):
        return None
    kind, keys, pos, *_ = np.random.get_state()
    layout_matches = kind == "MT19937" and np.array_equal(words[:624], keys) and int(words[624]) == pos
    little_endian = words.dtype.byteorder in "<=" and np.little_endian
    return words if layout_matches and little_endian else None


_numpy_view = _NumpyStateView()


def short_digest(data: bytes | memoryview | np.ndarray) -> str:
    """16 hex digits of SHA-256: a locator, not a security measure.

    SHA-256 has CPU instructions on current x86 and ARM: 3.4 us for a 5 KB RNG state here, where
    blake2b took 5.7 us; a trace hashes about 12 KB of RNG state every step.
    """
    return hashlib.sha256(data).hexdigest()[:16]
