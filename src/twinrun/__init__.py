"""twinrun: prove that PyTorch training configured with Hydra reproduces bit for bit.

The stable public surface is what this module exports::

    from twinrun import compare_runs, verify_app, Recorder, seed_everything

Everything else (``twinrun.record``, ``twinrun.compare``, ``twinrun.verify``, ...) is internal and may move.
Import-light on purpose: importing ``twinrun`` does not import torch; each name is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> module that defines it (imported lazily by __getattr__)
_PUBLIC = {
    "compare_runs": "twinrun.compare.runs",
    "verify_app": "twinrun.verify.apps",
    "Recorder": "twinrun.record.recorder",
    "seed_everything": "twinrun.record.determinism",
}
__all__ = ["Recorder", "__version__", "compare_runs", "seed_everything", "verify_app"]

if TYPE_CHECKING:
    from twinrun.compare.runs import compare_runs
    from twinrun.record.determinism import seed_everything
    from twinrun.record.recorder import Recorder
    from twinrun.verify.apps import verify_app


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'twinrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
