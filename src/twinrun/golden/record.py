"""A golden from a run directory: what the run computed, small enough to commit and review.

Nothing is rounded: losses stay IEEE-754 hex (trailing zero digits of the mantissa dropped, which keeps
every bit), digests stay digests. Long runs are thinned: every step keeps a compact row (loss, batch
digest, one digest over the RNG states, one over the parameter fingerprints); whole trace rows (each RNG
stream, each parameter) are kept for about ``FULL_ROWS`` steps, the first and the last among them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twinrun.compare.judge.kinds import comparable_yaml
from twinrun.compare.judge.sections import METRICS_VOLATILE
from twinrun.compare.read import artifacts as kinds
from twinrun.compare.read.artifacts import DEFAULT_IGNORE, walk
from twinrun.compare.read.run_reader import (
    HYDRA_DIR,
    PathMask,
    RunDir,
    absolute_spellings,
    open_run,
    read_config,
    read_json,
    read_jsonl,
    read_log,
)
from twinrun.config import flatten, is_volatile
from twinrun.golden.bands import default_bands
from twinrun.golden.layout import FORMAT
from twinrun.record import runs

FULL_ROWS = 16  # whole trace rows kept besides the first and the last
MAX_METRIC_ROWS = 200  # metrics rows kept (every k-th and the last) beyond this
DIGEST = 8  # hex digits of the compact rows' digests: 32 bits, a change goes unseen 1 time in 4e9
# Files the golden holds otherwise (weights per tensor, metrics, trace and environment as values) or
# that only restate them (the manifest) or the launch (Hydra's own record: the config digest and the
# case's overrides say what matters, and a run composed in a test has no .hydra/ at all).
COVERED = {kinds.WEIGHTS, kinds.METRICS, kinds.TRACE, kinds.ENVIRONMENT, kinds.MANIFEST}


def short(value: Any) -> str:
    """A short digest of a JSON value (key order ignored)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST]


def exact_loss(value: Any) -> Any:
    """``float.hex`` text without the mantissa's trailing zeros (``0x1.8p+1``), exact; others as they are."""
    if isinstance(value, str) and value.startswith(("0x", "-0x")) and "p" in value:
        mantissa, exponent = value.split("p")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}p{exponent}"
    return value


def compact_row(row: dict[str, Any]) -> dict[str, Any]:
    """One step of the trace in about 100 bytes: every change of its inputs or outputs changes it."""
    out = {
        "step": row.get("step"),
        "epoch": row.get("epoch"),
        "loss": exact_loss(row.get("loss")),
        "batch": str(row.get("batch"))[:DIGEST],
        "rng": short(row.get("rng")),
    }
    if row.get("params") is not None:
        out["params"] = short(row["params"])
    return out


def full_every(count: int) -> int:
    return max(1, math.ceil(count / FULL_ROWS))


def thin_trace(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The golden's trace: a compact row per step, whole rows at every ``full_every``-th step."""
    every = full_every(len(rows))
    full = [row for i, row in enumerate(rows) if i % every == 0 or i == len(rows) - 1]
    compact = [compact_row(r) for r in rows]
    current: Any = object()
    for row in compact:  # only the first row of an epoch names it: 12 bytes a step fewer
        if row["epoch"] == current:
            del row["epoch"]
        else:
            current = row["epoch"]
    return {"steps": len(rows), "full_every": every, "rows": compact, "full": full}


def epochs(rows: Sequence[dict[str, Any]]) -> list[Any]:
    """Each compact row's epoch: its own, else that of the nearest row before it that names one."""
    out, current = [], None
    for row in rows:
        current = row.get("epoch", current)
        out.append(current)
    return out


def comparable_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics row without time-like keys and the decimal ``approx`` copies (exact values stay)."""
    return {
        k: exact_loss(v)
        for k, v in flatten(row).items()
        if not is_volatile(k, METRICS_VOLATILE) and not k.startswith("approx.")
    }


def thin_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    every = max(1, math.ceil(len(rows) / MAX_METRIC_ROWS))
    kept = [comparable_metrics(r) for i, r in enumerate(rows) if i % every == 0 or i == len(rows) - 1]
    return {"rows": len(rows), "every": every, "kept": kept}


def weight_digests(run: RunDir) -> dict[str, Any] | None:
    """Per tensor of the final weights: dtype, shape and sha256 of its bytes (read in 1 MiB chunks)."""
    from twinrun.compare.judge.tensor_files import open_weights
    from twinrun.compare.read.weights_reader import LEGACY_WEIGHTS

    name = next((n for n in (runs.WEIGHTS, LEGACY_WEIGHTS) if run.has(n)), None)
    if name is None:
        return None
    import numpy as np

    tensors: dict[str, Any] = {}
    buffer = np.empty(1 << 20, dtype=np.uint8)
    with open_weights(run) as source:
        for tensor, meta in source.metas.items():
            digest = hashlib.sha256()
            for offset in range(0, meta.nbytes, len(buffer)):
                size = min(len(buffer), meta.nbytes - offset)
                digest.update(source.read(tensor, offset, buffer[:size]).tobytes())
            tensors[tensor] = {"dtype": meta.dtype, "shape": list(meta.shape), "sha256": digest.hexdigest()}
    return {"file": name, "tensors": tensors}


def _file_digest(run: RunDir, rel: str, kind: str, mask: PathMask) -> str:
    """sha256 of what the verdict compares: logs normalized, YAML by value, pictures by pixels, else bytes."""
    if kind == kinds.LOG:
        text = "\n".join(read_log(run, rel, mask))
        return hashlib.sha256(text.encode()).hexdigest()
    if kind == kinds.IMAGE:  # by decoded pixels, as compare judges pictures: PNG settings do not count
        from twinrun.compare.judge.images import decode

        pixels = decode(run.file(rel), run.show(rel))
        return hashlib.sha256(f"{pixels.dtype}{pixels.shape}".encode() + pixels.tobytes()).hexdigest()
    if kind == kinds.CONFIG:
        value = comparable_yaml(run, rel, mask)
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
    digest = hashlib.sha256()
    with run.file(rel).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_digests(run: RunDir) -> dict[str, dict[str, str]]:
    """Every other file the verdict compares, by relative path: its kind and digest."""
    found = walk(run, list(DEFAULT_IGNORE))
    mask = PathMask(absolute_spellings(run))
    out: dict[str, dict[str, str]] = {}
    for rel in sorted(found.files):
        kind = kinds.classify(rel)
        if kind in COVERED or rel.startswith(f"{HYDRA_DIR}/") or rel == runs.RESOLVED_CONFIG:
            continue
        out[rel] = {"kind": kind, "sha256": _file_digest(run, rel, kind, mask)}
    return out


def config_digest(run: RunDir) -> str | None:
    """sha256 of the canonical resolved config (volatile keys dropped, the run's own path masked)."""
    config = read_config(run)
    if config is None:
        return None
    mask = PathMask(absolute_spellings(run))
    text = mask(json.dumps(config.tree, sort_keys=True, default=str))
    return hashlib.sha256(text.encode()).hexdigest()


def golden_from_run(
    run_dir: str | Path, app: str | None = None, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """The golden dict of the run in ``run_dir`` (``app``/``overrides``: how to run the case again)."""
    run = open_run(run_dir)
    trace = thin_trace(read_jsonl(run, runs.TRACE)) if run.has(runs.TRACE) else None
    metrics = thin_metrics(read_jsonl(run, runs.METRICS)) if run.has(runs.METRICS) else None
    return {
        "format": FORMAT,
        "case": {"app": app, "overrides": list(overrides)},
        "config_digest": config_digest(run),
        "environment": read_json(run, runs.ENV) if run.has(runs.ENV) else None,
        "trace": trace,
        "metrics": metrics,
        "weights": weight_digests(run),
        "artifacts": artifact_digests(run),
        "bands": default_bands(),
    }
