"""The run-directory contract: the one place that writes a run's artifacts.

Every file is written to a temporary sibling and renamed into place, so an interrupted run never
leaves a half-written artifact behind. See README "What a run directory holds".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from twinrun.errors import TwinrunError

WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"
TRACE = "trace.jsonl"
RESOLVED_CONFIG = "resolved_config.yaml"
ENV = "env.json"
CHECKPOINTS = "checkpoints"
IMAGES = "images"
RANKS = "ranks"  # DDP: ranks/rank-<r>/ holds rank r's own final weights and log
# What every run writes (besides its log and images/), whoever launched it.
CONTRACT_FILES = (WEIGHTS, MANIFEST, METRICS, TRACE, RESOLVED_CONFIG, ENV)
MANIFEST_FORMAT = "twinrun-manifest/1"
_UMASK = os.umask(0)  # read once at import: os.umask can only be read by setting it
os.umask(_UMASK)
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"  # atomic_path's temporaries: .<name>.<random>.tmp
# What to do about a failed write, by errno; anything else is shown as the system's reason.
_WRITE_ADVICE = {
    errno.ENOSPC: "free some space or choose another hydra.run.dir",
    errno.EDQUOT: "free some space or choose another hydra.run.dir",
    errno.EFBIG: "raise the file-size limit (ulimit -f)",
    errno.EACCES: "choose a writable hydra.run.dir",
    errno.EPERM: "choose a writable hydra.run.dir",
    errno.EROFS: "choose a writable hydra.run.dir",
}
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # the same as Hydra's job log


def rank_dir(run_dir: str | Path, rank: int) -> Path:
    """``<run_dir>/ranks/rank-<r>``: where rank ``r`` writes its own final weights (and log)."""
    return Path(run_dir) / RANKS / f"rank-{rank}"


class RunDirError(TwinrunError, RuntimeError):
    """A run directory that cannot be written or trained into (busy, finished, full, read-only)."""


def write_error(path: Path, exc: OSError) -> RunDirError:
    """One line for a failed write: the file, the system's reason and what to do."""
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    advice = _WRITE_ADVICE.get(exc.errno or 0)
    return RunDirError(f"cannot write {path}: {reason}" + (f"; {advice}" if advice else ""))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the permissions the umask gives any new file (mkstemp's are 0600); an ``OSError``
    while writing (disk full, file-size limit, read-only directory) becomes a one-line :class:`RunDirError`.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        # After the block: a writer may have replaced the temporary file with one of its own mode.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete temporaries an interrupted writer (SIGKILL) left in ``run_dir``; only call under its lock."""
    removed = []
    for tmp in Path(run_dir).rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        if tmp.is_file() and not tmp.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    # Insertion order is kept (deterministic): trace parameters stay in model order, so "the first
    # differing parameter" is the first in the network, not the first alphabetically.
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


NAN_PREFIX = "nan:0x"


def exact(value: float) -> str:
    """A float written exactly: ``float.hex`` keeps every bit and -0.0; a NaN, which ``float.hex``
    writes as a bare ``nan``, keeps its sign and payload as ``nan:0x`` and its 64 bits."""
    value = float(value)
    if math.isnan(value):
        (bits,) = struct.unpack("<Q", struct.pack("<d", value))
        return f"{NAN_PREFIX}{bits:016x}"
    return value.hex()


def from_exact(text: str) -> float:
    """The float :func:`exact` wrote, bit for bit (older files' bare ``nan`` reads as Python's NaN)."""
    if text.lower().startswith(NAN_PREFIX):
        digits = text[len(NAN_PREFIX) :]
        bits = int(digits, 16) if len(digits) == 16 else -1
        if not 0 <= bits < 1 << 64:
            raise ValueError(f"not an exact NaN: {text!r}")
        (value,) = struct.unpack("<d", struct.pack("<Q", bits))
        if not math.isnan(value):
            raise ValueError(f"not an exact NaN: {text!r}")
        return float(value)
    return float.fromhex(text)


def tensor_sha256(tensor: Any) -> str:
    """sha256 of a tensor's raw bytes (C order), any dtype."""
    import torch

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest()


def manifest_for(tensors: Mapping[str, Any]) -> dict[str, Any]:
    """Per tensor dtype/shape/sha256, and one digest over all of them (names sorted)."""
    entries = {
        name: {
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "sha256": tensor_sha256(t),
        }
        for name, t in sorted(tensors.items())
    }
    overall = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
    return {"format": MANIFEST_FORMAT, "tensors": entries, "digest": overall}


def write_weights(run_dir: Path, state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Write the final ``state_dict`` (parameters and buffers) as safetensors plus its manifest."""
    from safetensors.torch import save

    # safetensors refuses tensors that share storage; a contiguous CPU clone of each is always safe.
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state_dict.items()}
    # No metadata: safetensors serialises it in hash-map order, which would make twin files differ.
    # Serialised in memory and written by Python: a failed write is then an OSError with its errno.
    write_bytes(Path(run_dir) / WEIGHTS, save(tensors))
    manifest = manifest_for(tensors)
    write_json(Path(run_dir) / MANIFEST, manifest)
    return manifest


def write_resolved_config(run_dir: Path, canonical: Mapping[str, Any]) -> None:
    """Write an already canonical config (see :func:`twinrun.config.canonical_config`)."""
    import yaml

    write_text(Path(run_dir) / RESOLVED_CONFIG, yaml.safe_dump(dict(canonical), sort_keys=True))


@contextlib.contextmanager
def job_log(run_dir: Path, log_name: str) -> Iterator[Path]:
    """Make sure every record logged during the block lands in ``run_dir/<log_name>.log``.

    Under ``@hydra.main`` Hydra's job logging already writes that file and nothing is added; when
    ``train`` is called directly (a test after ``compose``) a file handler is attached for the block.
    """
    path = (Path(run_dir) / f"{log_name}.log").resolve()
    root = logging.getLogger()
    already = any(
        isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == path for h in root.handlers
    )
    handler: logging.Handler | None = None
    previous_level = root.level
    if not already:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
            root.setLevel(previous_level)
