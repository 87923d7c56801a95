"""Which torch, torchvision and Hydra are installed, and whether torch and torchvision belong together.

A torch/torchvision pair from two releases (pip falling back to other wheels when the CPU index is
unreachable) imports, and then fails deep inside torchvision with ``operator torchvision::nms does not
exist``. :func:`import_torchvision` turns that into one line saying what to do; :func:`doctor_rows` is
what ``twinrun doctor`` prints. Versions come from the installed distributions' metadata, so nothing
here imports torch until :func:`import_torchvision` is called.
"""

from __future__ import annotations

import importlib
import re
from importlib import metadata
from types import ModuleType

from twinrun.errors import TwinrunError

__all__ = ["TorchvisionMismatch", "doctor_rows", "expected_torchvision", "import_torchvision", "version"]

# The distributions ``twinrun doctor`` lists, in order.
DISTRIBUTIONS = ("twinrun", "torch", "torchvision", "hydra-core", "omegaconf", "numpy")
REINSTALL = "pip install --force-reinstall torch torchvision --index-url https://download.pytorch.org/whl/cpu"


class TorchvisionMismatch(TwinrunError):
    """torch and torchvision are from different releases."""


def version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (``None`` when it is not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _release(text: str | None) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(match[1]), int(match[2])) if match else None


def expected_torchvision(torch_version: str | None) -> str | None:
    """The torchvision release (``0.29``) built for ``torch_version`` (``2.14.1``); None if unknown.

    From torch 2.0 on, torchvision ``0.(minor + 15)`` is built against torch ``2.minor``.
    """
    release = _release(torch_version)
    if release is None or release[0] != 2:
        return None
    return f"0.{release[1] + 15}"


def mismatch_message(torch_version: str | None = None, torchvision_version: str | None = None) -> str:
    """The one line: which versions, and the command that reinstalls them as a pair."""
    torch_version = torch_version or version("torch") or "?"
    torchvision_version = torchvision_version or version("torchvision") or "?"
    return (
        f"torch {torch_version} and torchvision {torchvision_version} do not match; reinstall them "
        f"together: {REINSTALL} (or without --index-url for CUDA wheels)"
    )


def _is_mismatch(exc: BaseException) -> bool:
    text = str(exc)
    return "torchvision::" in text or "undefined symbol" in text


def import_torchvision(module: str = "torchvision") -> ModuleType:
    """Import ``module`` (``torchvision.datasets``); a torch/torchvision mismatch is one line.

    Raises :class:`TorchvisionMismatch` when the import fails the way a mismatched pair fails
    (an unregistered ``torchvision::`` operator, an undefined symbol in its extension).
    """
    try:
        return importlib.import_module(module)
    except (RuntimeError, ImportError, OSError) as exc:
        if _is_mismatch(exc):
            raise TorchvisionMismatch(mismatch_message()) from None
        raise


def doctor_rows() -> tuple[list[tuple[str, str]], str | None]:
    """(name, version or 'not installed') for each distribution, and the problem found (or None).

    torchvision is imported for real: the only proof that its operators load against this torch.
    """
    import platform

    rows = [("python", platform.python_version())]
    rows += [(name, version(name) or "not installed") for name in DISTRIBUTIONS]
    torch_version, torchvision_version = version("torch"), version("torchvision")
    if torch_version is None:
        return rows, "torch is not installed; install torch and torchvision together (see the README)"
    if torchvision_version is None:
        return rows, "torchvision is not installed; install it together with torch (see the README)"
    try:
        import_torchvision("torchvision")
    except TorchvisionMismatch as exc:
        return rows, str(exc)
    expected = expected_torchvision(torch_version)
    if expected is not None and _release(torchvision_version) != _release(expected):
        return rows, mismatch_message(torch_version, torchvision_version)
    return rows, None
