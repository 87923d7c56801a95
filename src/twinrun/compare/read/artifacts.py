"""A run is every file it left: walk both run directories, classify each file, match them by path.

:func:`walk` lists a run's files (relative, ``/``-separated), the ignored ones apart; anything that
exists but cannot be read as a file (a FIFO, a dangling symlink, an unreadable directory) is
:class:`UnusableRunError` naming it. :func:`match` pairs two walks into :class:`Artifact` s, each with one
kind (see :func:`classify`) and the files each run has for it. TensorBoard event files are matched by
their folder: their names hold the time, host and pid of the run that wrote them.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from twinrun.compare.read.run_reader import HYDRA_DIR, RunDir, UnusableRunError, unreadable_reason
from twinrun.record import runs

# Kinds, in the order reports list them.
WEIGHTS = "weights"  # the run's final weights: weights.safetensors, legacy trained_model.pt
TENSORS = "tensors"  # every other tensor file (checkpoints, state dicts, numpy arrays)
CONFIG = "config"
LOG = "log"
METRICS = "metrics"  # twinrun's metrics.jsonl (exact floats)
TRACE = "trace"  # twinrun's trace.jsonl (divergence forensics)
ENVIRONMENT = "environment"  # twinrun's env.json (context, never decides)
MANIFEST = "manifest"  # twinrun's manifest.json (digests of the weights)
TABLE = "table"  # csv, tsv, json, jsonl
SCALARS = "scalars"  # TensorBoard event files
IMAGE = "image"
BYTES = "bytes"  # anything else, byte for byte

LEGACY_WEIGHTS = "trained_model.pt"
TENSOR_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz")
TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
YAML_SUFFIXES = (".yaml", ".yml")
EVENTS_PREFIX = "events.out.tfevents."
CONTRACT_KINDS = {
    runs.WEIGHTS: WEIGHTS,
    LEGACY_WEIGHTS: WEIGHTS,
    runs.METRICS: METRICS,
    runs.TRACE: TRACE,
    runs.ENV: ENVIRONMENT,
    runs.MANIFEST: MANIFEST,
}

# Never compared: caches, temp and lock files (a SIGKILL leaves checkpoints/.step-5.pt.9wtm477f.tmp),
# job-launcher and experiment-tracker folders (their own ids, times and hosts).
DEFAULT_IGNORE = (
    "__pycache__/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ipynb_checkpoints/",
    "*.pyc",
    "*.tmp",
    "*.temp",
    "*.swp",
    "*.lock",
    "*.pid",
    ".DS_Store",
    ".submitit/",
    "wandb/",
    "mlruns/",
)


def classify(rel: str) -> str:
    """The kind of the file at relative path ``rel``."""
    path = PurePosixPath(rel)
    name, suffix = path.name, path.suffix.lower()
    if rel in CONTRACT_KINDS:
        return CONTRACT_KINDS[rel]
    if name.startswith(EVENTS_PREFIX):
        return SCALARS
    if suffix in TENSOR_SUFFIXES:
        return TENSORS
    if suffix in YAML_SUFFIXES:
        return CONFIG
    if suffix == ".log":
        return LOG
    if suffix in TABLE_SUFFIXES:
        return TABLE
    if suffix in IMAGE_SUFFIXES:
        return IMAGE
    return BYTES


def matching_pattern(rel: str, is_dir: bool, patterns: Iterable[str]) -> str | None:
    """The first ignore pattern that matches ``rel``, or None.

    Like ``.gitignore``: a trailing ``/`` matches directories only; a pattern with another ``/``
    matches the whole relative path; any other pattern matches the file's or directory's name.
    """
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        body = pattern.rstrip("/")
        if not body or (pattern.endswith("/") and not is_dir):
            continue
        if "/" in body:
            if fnmatch.fnmatchcase(rel, body.lstrip("/")):
                return pattern
        elif fnmatch.fnmatchcase(name, body):
            return pattern
    return None


@dataclass
class Walk:
    """One run's files: relative path -> absolute path; the directories; what was ignored (and why)."""

    files: dict[str, Path] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    ignored: dict[str, str] = field(default_factory=dict)  # relative path ("dir/" for a folder) -> pattern
    linked_dirs: list[str] = field(default_factory=list)  # kept empty: links inside the run are followed


def walk(run: RunDir, patterns: Sequence[str]) -> Walk:
    """Every file of ``run`` that ``patterns`` do not ignore; unreadable entries raise."""
    out = Walk()
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(run.path / folder if folder else run.path) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            raise UnusableRunError(
                f"cannot list {run.show(folder or '.')} ({unreadable_reason(exc)})"
            ) from None
        for entry in listed:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            _add(run, out, entry, rel, patterns, pending)
    return out


def _add(
    run: RunDir, out: Walk, entry: os.DirEntry[str], rel: str, patterns: Sequence[str], pending: list[str]
) -> None:
    try:
        mode = os.stat(entry.path).st_mode  # follows symlinks: a link counts as what it points to
    except FileNotFoundError:
        if matching_pattern(rel, False, patterns) is None:
            raise UnusableRunError(
                f"{run.show(rel)} is a dangling symbolic link (to {os.readlink(entry.path)}); "
                "remove it or regenerate the run"
            ) from None
        out.ignored[rel] = matching_pattern(rel, False, patterns) or ""
        return
    except OSError as exc:
        raise UnusableRunError(f"cannot read {run.show(rel)} ({unreadable_reason(exc)})") from None
    is_dir = stat.S_ISDIR(mode)
    pattern = matching_pattern(rel, is_dir, patterns)
    if pattern is not None:
        out.ignored[rel + ("/" if is_dir else "")] = pattern
        return
    if entry.is_symlink():
        _check_link(run, entry, rel, is_dir)
    if is_dir:
        out.dirs.add(rel)
        pending.append(rel)
    elif stat.S_ISREG(mode):
        out.files[rel] = Path(entry.path)
    else:
        what = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise UnusableRunError(
            f"{run.show(rel)} is {what}, not a regular file; remove it or regenerate the run"
        )


def _check_link(run: RunDir, entry: os.DirEntry[str], rel: str, is_dir: bool) -> None:
    """Rule 4: a link is followed while it stays inside the run directory; one that leaves it (or loops
    back to a folder above it) is unusable input, never a file quietly left out."""
    target = Path(os.path.realpath(entry.path))
    if not target.is_relative_to(run.path):
        raise UnusableRunError(
            f"{run.show(rel)} is a symbolic link to {target}, outside the run directory, so it is not read; "
            f"copy what it points to into the run, or leave it out with --ignore {rel}"
        )
    if is_dir and Path(os.path.realpath(Path(entry.path).parent)).is_relative_to(target):
        raise UnusableRunError(
            f"{run.show(rel)} is a symbolic link to a folder that holds it (a loop); remove it, or leave it "
            f"out with --ignore {rel}"
        )


@dataclass
class Artifact:
    """One thing to compare: a relative path (for TensorBoard: ``folder/events.out.tfevents.*``),
    its kind, and the files each run has for it (empty: the run lacks it)."""

    key: str
    kind: str
    a: list[Path] = field(default_factory=list)
    b: list[Path] = field(default_factory=list)


def _key(rel: str) -> str:
    parent, _, name = rel.rpartition("/")
    if name.startswith(EVENTS_PREFIX):
        return f"{parent}/{EVENTS_PREFIX}*" if parent else f"{EVENTS_PREFIX}*"
    return rel


def match(a: RunDir, wa: Walk, b: RunDir, wb: Walk) -> list[Artifact]:
    """Pair the two walks by relative path, sorted; a file in one run where the other has a directory
    is unusable input."""
    for files, dirs, run, other, label in (
        (wa.files, wb.dirs, a, b, "RUN_B"),
        (wb.files, wa.dirs, b, a, "RUN_A"),
    ):
        clash = next((rel for rel in files if rel in dirs), None)
        if clash is not None:
            raise UnusableRunError(
                f"{other.show(clash)} is a directory where {run.show(clash)} is a file; regenerate {label}"
            )
    found: dict[str, Artifact] = {}
    for side, files in (("a", wa.files), ("b", wb.files)):
        for rel, path in files.items():
            key = _key(rel)
            artifact = found.setdefault(key, Artifact(key, classify(rel)))
            getattr(artifact, side).append(path)
    return [found[k] for k in sorted(found)]


def check_has_output(run: RunDir, w: Walk) -> None:
    """A run directory with no file, or nothing but Hydra's own ``.hydra/``, is not a run to compare;
    a directory where twinrun's contract names a file cannot be read."""
    for name in CONTRACT_KINDS:
        if name in w.dirs:
            raise UnusableRunError(
                f"{run.show(name)} is a directory where a file is expected; regenerate the run"
            )
    if any(not rel.startswith(HYDRA_DIR + "/") for rel in w.files):
        return
    what = "nothing but .hydra/" if w.files else "no files"
    raise UnusableRunError(
        f"{run.shown} holds {what} (after ignoring {len(w.ignored)} entries); point at the directory of "
        "a finished run, or make the app write its outputs into hydra.run.dir"
    )


def project_ignore(directory: Path | None = None) -> list[str]:
    """``[tool.twinrun] ignore = [...]`` of ``pyproject.toml`` in ``directory`` (default: the working
    directory); empty when there is none."""
    import tomllib

    path = (directory or Path.cwd()) / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UnusableRunError(f"{path} cannot be read as TOML ({exc}); fix it") from None
    tool = data.get("tool", {}).get("twinrun", {})
    ignore = tool.get("ignore", []) if isinstance(tool, dict) else None
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise UnusableRunError(f"{path}: [tool.twinrun] ignore must be a list of glob strings")
    return ignore
