"""Reading a run directory's artifacts (the reader side of :mod:`twinrun.record.runs`).

Every problem with the input surfaces as :class:`UnusableRunError` carrying one line of the form
``<what is wrong>; <what to do>``, so that the CLI can print it without a traceback. Import-light:
no torch here (weights are read by :mod:`twinrun.compare.read.weights_reader`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinrun.compare.read.limits import DuplicateKeyError, LimitError, duplicate_line, load_yaml, loads_json
from twinrun.config import canonicalize, is_volatile
from twinrun.errors import TwinrunError
from twinrun.record import runs

HYDRA_DIR = ".hydra"
HYDRA_CONFIG = f"{HYDRA_DIR}/config.yaml"
HYDRA_OVERRIDES = f"{HYDRA_DIR}/overrides.yaml"


class UnusableRunError(TwinrunError):
    """A run directory (or one of its files) that cannot be compared; the message is one line."""

    def __init__(self, msg: str) -> None:
        super().__init__(" ".join(str(msg).split()))  # one line, whatever the cause said


@dataclass(frozen=True)
class RunDir:
    """A run directory: ``path`` resolved, ``shown`` as the user spelled it (for messages)."""

    path: Path
    shown: str

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return self.file(name).is_file()

    def show(self, name: str) -> str:
        """How a file of this run is named in messages: the user's spelling of the run plus the name."""
        return str(Path(self.shown) / name)


def open_run(path: str | Path) -> RunDir:
    """Check that ``path`` is an existing directory and return it as a :class:`RunDir`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UnusableRunError(f"{path} does not exist; give the path of a run directory")
    if not p.is_dir():
        raise UnusableRunError(f"{path} is not a directory; give the run directory, not a file in it")
    return RunDir(path=p.resolve(), shown=str(path))


def _read_text(run: RunDir, name: str) -> str:
    try:
        return run.file(name).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UnusableRunError(
            f"{run.show(name)} is not UTF-8 text (byte {exc.start}); regenerate the file"
        ) from None
    except OSError as exc:
        raise UnusableRunError(f"cannot read {run.show(name)} ({unreadable_reason(exc)})") from None


def unreadable_reason(exc: OSError) -> str:
    """``permission denied; check its permissions`` and the like: why a file could not be read."""
    reason = (exc.strerror or type(exc).__name__).lower()
    if isinstance(exc, PermissionError):
        return f"{reason}; check its permissions"
    if isinstance(exc, IsADirectoryError):
        return f"{reason}: a directory where a file is expected; regenerate the run"
    return f"{reason}; regenerate the run"


def read_yaml(run: RunDir, name: str) -> Any:
    """Parse a YAML file (bounded: aliases, depth, size); a syntax error names the file and line."""
    import yaml

    text = _read_text(run, name)
    try:
        return load_yaml(text)
    except LimitError as exc:
        raise UnusableRunError(f"{run.show(name)}: {exc}; this is not a config a run writes") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise UnusableRunError(
            f"{run.show(name)}{where}: malformed YAML ({problem}); fix or regenerate the file"
        ) from None


def parse_json(shown: str, text: str, line: int | None = None) -> Any:
    """Parse JSON text from ``shown`` (``line``: its line in a JSONL file); bad input is one line."""
    where = f"{shown} line {line}" if line is not None else shown
    try:
        return loads_json(text)
    except json.JSONDecodeError as exc:
        where = f"{shown} line {line if line is not None else exc.lineno}"
        raise UnusableRunError(f"{where}: malformed JSON ({exc.msg}); fix or regenerate the file") from None
    except DuplicateKeyError as exc:
        found = line if line is not None else duplicate_line(text, exc.key)
        where = f"{shown} line {found}" if found is not None else shown
        raise UnusableRunError(
            f"{where}: duplicate key {exc.key!r} (which value counts is undefined); regenerate the file"
        ) from None
    except LimitError as exc:
        raise UnusableRunError(f"{where}: {exc}; this is not a file a run writes") from None


def read_json(run: RunDir, name: str) -> Any:
    """Parse a JSON file; a syntax error names the file and line."""
    return parse_json(run.show(name), _read_text(run, name))


def read_jsonl(run: RunDir, name: str) -> list[dict[str, Any]]:
    """One JSON object per line (blank lines skipped); a bad line is named by its number."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(_read_text(run, name).splitlines(), start=1):
        if not line.strip():
            continue
        row = parse_json(run.show(name), line, number)
        if not isinstance(row, dict):
            raise UnusableRunError(
                f"{run.show(name)} line {number}: expected a JSON object, found {type(row).__name__}; "
                "regenerate the file"
            )
        rows.append(row)
    return rows


# --- configuration ---------------------------------------------------------------------------------


@dataclass
class CanonicalConfig:
    """A run's comparable config: where it came from and the keys that had to be dropped."""

    tree: dict[str, Any]
    source: str
    unresolvable: list[str]


def read_config(run: RunDir) -> CanonicalConfig | None:
    """``resolved_config.yaml`` if present, else ``.hydra/config.yaml``, canonicalized; None if neither.

    Hydra's saved config is compared as written: an interpolation such as ``${oc.env:HOME}`` is text
    that both runs wrote, not a value to resolve in the environment of whoever runs the comparison.
    """
    for name in (runs.RESOLVED_CONFIG, HYDRA_CONFIG):
        if run.has(name):
            tree = read_yaml(run, name)
            _require_mapping(run, name, tree)
            return CanonicalConfig(canonicalize(tree or {}), name, [])
    return None


def _require_mapping(run: RunDir, name: str, tree: Any) -> None:
    if tree is not None and not isinstance(tree, dict):
        raise UnusableRunError(
            f"{run.show(name)}: expected a mapping of config keys, found {type(tree).__name__}; "
            "regenerate the file"
        )


def read_overrides(run: RunDir) -> list[str] | None:
    """``.hydra/overrides.yaml`` (a YAML list of strings), or None when the run has none."""
    if not run.has(HYDRA_OVERRIDES):
        return None
    items = read_yaml(run, HYDRA_OVERRIDES) or []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise UnusableRunError(
            f"{run.show(HYDRA_OVERRIDES)}: expected a list of strings; regenerate the file"
        )
    return items


def comparable_overrides(overrides: list[str]) -> list[str]:
    """Overrides minus those of volatile keys (``hydra.run.dir=...``, ``data.root=...``), sorted.

    Sorted because the command-line order of overrides of different keys does not change the job.
    """
    kept = []
    for item in overrides:
        key = item.split("=")[0].lstrip("+~").replace("/", ".")
        if not is_volatile(key):
            kept.append(item)
    return sorted(kept)


# --- logs ---------------------------------------------------------------------------------------------

_TIMESTAMP_PREFIX = re.compile(r"^\[\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\]")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?")
_NUMBER = r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_RATE = re.compile(_NUMBER + r"\s?(?:it/s|s/it|samples/s|img/s|images/s|batches/s|steps/s|/s)(?!\w)")
_PAREN_DURATION = re.compile(r"\(\s*" + _NUMBER + r"\s?(?:ns|us|µs|ms|s|sec|secs|seconds|min)\s*\)")
_DURATION = re.compile(_NUMBER + r"\s?(?:ns|us|µs|ms|s|sec|secs|seconds)\b")
_CLOCK = re.compile(r"(?<![\w.:])\d+:\d{2}:\d{2}(?:\.\d+)?\b")
# What normalize_log_line replaces, in its order (the byte rule counts them as wall-clock fields).
LOG_PATTERNS = (_TIMESTAMP_PREFIX, _TIMESTAMP, _RATE, _PAREN_DURATION, _DURATION, _CLOCK)
# Longer lines are compared as written: the normalizer's cost stays bounded (a 300 MB one-line log).
MAX_NORMALIZED_LINE = 1 << 16


RUN_PLACEHOLDER = "<run>"
CWD_PLACEHOLDER = "<cwd>"


def absolute_spellings(run: RunDir) -> tuple[str, ...]:
    """The absolute ways a run's own files name its directory (resolved, and as the user spelled it).

    A relative spelling such as ``a`` would also hit words, so only absolute spellings count.
    """
    spellings = {str(run.path), str(Path(run.shown).expanduser().absolute()).rstrip("/")}
    return tuple(p for p in spellings if Path(p).is_absolute() and p != "/")


class PathMask:
    """Replace run directories by ``<run>`` (and the working directory by ``<cwd>``) in text.

    A path matches only as a whole path: ``/runs/a`` is masked in ``/runs/a/x`` and ``/runs/a``, not in
    ``/runs/ab``. Longer paths first, so a run directory inside the working directory stays ``<run>``.
    """

    def __init__(self, run_paths: Sequence[str] = (), cwd: str | None = None) -> None:
        self.names = {p.rstrip("/") or p: RUN_PLACEHOLDER for p in run_paths if p}
        if cwd and cwd != "/" and cwd not in self.names:
            self.names[cwd.rstrip("/")] = CWD_PLACEHOLDER
        alternatives = sorted(self.names, key=len, reverse=True)
        self._pattern = (
            re.compile("(" + "|".join(map(re.escape, alternatives)) + r")(?![\w.-])")
            if alternatives
            else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None or not isinstance(text, str):
            return text
        return self._pattern.sub(lambda m: self.names[m.group(1)], text)


def path_mask(*runs_: RunDir, cwd: bool = True) -> PathMask:
    """The mask of both runs' directories (and the working directory) for comparing their files."""
    paths = [p for run in runs_ for p in absolute_spellings(run)]
    return PathMask(paths, os.getcwd() if cwd else None)


def find_logs(run: RunDir) -> dict[str, Path]:
    """The job logs: every ``*.log`` file at the top level of the run directory, by name."""
    return {p.name: p for p in sorted(run.path.glob("*.log")) if p.is_file()}


def normalize_log_line(line: str, run_paths: Sequence[str] | PathMask = ()) -> str:
    """A log line with what legitimately differs between twin runs replaced.

    Timestamps, durations (``(1.23s)``, ``1.2s``, ``12 ms``), rates (``it/s``) and the run
    directories' own paths (``run_paths``, or a :class:`PathMask` that also masks the working
    directory) vary from run to run without saying anything about reproducibility.
    """
    if len(line) > MAX_NORMALIZED_LINE:
        return line
    mask = run_paths if isinstance(run_paths, PathMask) else PathMask(run_paths)
    line = mask(line)
    line = _TIMESTAMP_PREFIX.sub("", line)
    line = _TIMESTAMP.sub("<time>", line)
    line = _RATE.sub("<rate>", line)
    line = _PAREN_DURATION.sub("(<duration>)", line)
    line = _DURATION.sub("<duration>", line)
    return _CLOCK.sub("<duration>", line)


def read_log(run: RunDir, name: str, mask: PathMask | None = None) -> list[str]:
    """The normalized lines of one log file of ``run`` (``mask``: default, this run's own paths)."""
    text = _read_text(run, name)
    mask = mask if mask is not None else PathMask(absolute_spellings(run))
    return [normalize_log_line(line, mask) for line in text.splitlines()]
