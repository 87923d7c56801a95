"""Per-op record of one training step: every aten op's outputs digested in order (``ops/step-<s>.jsonl``).

Used by ``--explain`` to name the first op whose output differs between two replays of the step where
two runs parted. A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every aten op below
autograd (forward, backward and the optimizer's); forward hooks say which module runs it, the Python stack
which source line, and ``torch._C._current_autograd_node()`` which autograd node a backward op belongs to.
Ops inside a compiled graph are seen as the graph's ops; ops on another device are digested after a copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

OPS_DIR = "ops"
_TORCH_DIR = os.path.dirname(torch.__file__)
_THIS_FILE = os.path.abspath(__file__)
_MODULE_KEY = "twinrun_module"  # autograd node metadata: the module whose forward made the node


def ops_path(run_dir: str | Path, step: int) -> Path:
    """``<run_dir>/ops/step-<s>.jsonl``."""
    return Path(run_dir) / OPS_DIR / f"step-{step}.jsonl"


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 prefix of a tensor's bytes (C order), after a copy to the host when it lives elsewhere."""
    data = tensor.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    # Bytes through a uint8 view: numpy has no bfloat16 or float8, and bits (NaN payloads, -0.0) count.
    raw = data.contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()[:16]


def _caller(cwd: str) -> str | None:
    """``path:line`` of the innermost frame outside torch and this module (the user's source line)."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(_TORCH_DIR) and name != _THIS_FILE and not name.startswith("<"):
            shown = os.path.relpath(name, cwd) if name.startswith(cwd + os.sep) else name
            return f"{shown}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class OpRecorder(TorchDispatchMode):
    """Records every aten op run inside ``with OpRecorder(model) as ops:``; ``ops.rows`` in op order.

    ``with ops.phase("optimizer"):`` labels the ops of a part of the step; backward ops are labelled
    "backward" by themselves (they run under an autograd node).
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self._model = model
        self._stack: list[str] = []
        self._handles: list[Any] = []
        self._phase = "forward"
        self._cwd = os.getcwd()

    # module attribution -------------------------------------------------------------------------
    def _hook_modules(self) -> None:
        if self._model is None:
            return
        for path, module in self._model.named_modules():
            label = path or type(module).__name__

            def pre(_module: nn.Module, _args: Any, label: str = label) -> None:
                self._stack.append(label)

            def post(_module: nn.Module, _args: Any, output: Any, label: str = label) -> None:
                if self._stack and self._stack[-1] == label:
                    self._stack.pop()
                for leaf in tree_leaves(output):
                    node = getattr(leaf, "grad_fn", None)
                    if node is not None and _MODULE_KEY not in node.metadata:
                        node.metadata[_MODULE_KEY] = label

            self._handles.append(module.register_forward_pre_hook(pre))
            self._handles.append(module.register_forward_hook(post))

    def __enter__(self) -> OpRecorder:
        self._hook_modules()
        self._last_backward_module: str | None = None
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        previous, self._phase = self._phase, name
        try:
            yield
        finally:
            self._phase = previous

    # the dispatch hook --------------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        node = torch._C._current_autograd_node()
        if node is not None:
            phase = "backward"
            # Backward runs a module's output node first, then its inner nodes: the nearest tagged
            # node before this one names the module (exact for leaf modules such as Linear).
            tagged = node.metadata.get(_MODULE_KEY)
            if tagged is not None:
                self._last_backward_module = tagged
            module, where = self._last_backward_module, node.name()
        else:
            phase = self._phase
            module, where = (self._stack[-1] if self._stack else None), _caller(self._cwd)
        tensors = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.rows.append(
            {
                "index": len(self.rows),
                "op": func._schema.name,
                "overload": func._overloadname,
                "phase": phase,
                "module": module,
                "source": where,
                "outputs": [tensor_digest(t) for t in tensors],
                "shapes": [list(t.shape) for t in tensors],
                "dtypes": [str(t.dtype).removeprefix("torch.") for t in tensors],
            }
        )
        return out


def write_ops(run_dir: str | Path, step: int, rows: list[dict[str, Any]]) -> Path:
    """Write one step's op record atomically; returns its path."""
    from twinrun.record.runs import write_jsonl

    path = ops_path(run_dir, step)
    write_jsonl(path, rows)
    return path
