"""Reading a run directory's artifacts (the reader side of :mod:`twinrun.record.runs`).

Every problem with the input surfaces as :class:`UnusableRunError` carrying one line of the form
``<what is wrong>; <what to do>``, so that the CLI can print it without a traceback. Import-light:
no torch here (weights are read by :mod:`twinrun.compare.weights_reader`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        raise UnusableRunError(
            f"cannot read {run.show(name)} ({exc.strerror}); check its permissions"
        ) from None


def read_yaml(run: RunDir, name: str) -> Any:
    """Parse a YAML file; a syntax error names the file and line."""
    import yaml

    text = _read_text(run, name)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise UnusableRunError(
            f"{run.show(name)}{where}: malformed YAML ({problem}); fix or regenerate the file"
        ) from None


def read_json(run: RunDir, name: str) -> Any:
    """Parse a JSON file; a syntax error names the file and line."""
    try:
        return json.loads(_read_text(run, name))
    except json.JSONDecodeError as exc:
        raise UnusableRunError(
            f"{run.show(name)} line {exc.lineno}: malformed JSON ({exc.msg}); fix or regenerate the file"
        ) from None


def read_jsonl(run: RunDir, name: str) -> list[dict[str, Any]]:
    """One JSON object per line (blank lines skipped); a bad line is named by its number."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(_read_text(run, name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UnusableRunError(
                f"{run.show(name)} line {number}: malformed JSON ({exc.msg}); the file is damaged, "
                "regenerate it by re-running the training"
            ) from None
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
    """``resolved_config.yaml`` if present, else ``.hydra/config.yaml`` canonicalized; None if neither."""
    if run.has(runs.RESOLVED_CONFIG):
        tree = read_yaml(run, runs.RESOLVED_CONFIG)
        _require_mapping(run, runs.RESOLVED_CONFIG, tree)
        # Already canonical when twinrun wrote it; canonicalizing again is idempotent and guards
        # against a hand-made file that kept a path.
        return CanonicalConfig(canonicalize(tree or {}), runs.RESOLVED_CONFIG, [])
    if run.has(HYDRA_CONFIG):
        raw = read_yaml(run, HYDRA_CONFIG)
        _require_mapping(run, HYDRA_CONFIG, raw)
        tree, dropped = resolve_foreign(raw or {})
        return CanonicalConfig(canonicalize(tree), HYDRA_CONFIG, dropped)
    return None


def _require_mapping(run: RunDir, name: str, tree: Any) -> None:
    if tree is not None and not isinstance(tree, dict):
        raise UnusableRunError(
            f"{run.show(name)}: expected a mapping of config keys, found {type(tree).__name__}; "
            "regenerate the file"
        )


def resolve_foreign(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Resolve a Hydra-saved (unresolved) config key by key.

    Outside a Hydra job ``${hydra:...}`` cannot resolve, and a foreign app may use resolvers this
    process lacks or ``???`` values: such keys are treated as volatile (dropped and listed) instead of
    failing the whole comparison.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    dropped: list[str] = []

    def walk(node: DictConfig | ListConfig, prefix: str) -> Any:
        keys = list(node.keys()) if isinstance(node, DictConfig) else range(len(node))
        out: dict[str, Any] | list[Any] = {} if isinstance(node, DictConfig) else []
        raw_node: Any = OmegaConf.to_container(node, resolve=False)
        for key in keys:
            dotted = f"{prefix}{key}"
            raw_value = raw_node[key]
            if isinstance(raw_value, str) and "${hydra:" in raw_value.replace(" ", ""):
                dropped.append(dotted)
                continue
            try:
                value = node[key]
            except Exception:  # any resolution failure: missing value, unknown resolver, bad reference
                dropped.append(dotted)
                continue
            if isinstance(value, DictConfig | ListConfig):
                value = walk(value, dotted + ".")
            if isinstance(out, dict):
                out[str(key)] = value
            else:
                out.append(value)
        return out

    try:
        cfg = OmegaConf.create(raw)
    except Exception as exc:  # omegaconf rejects e.g. non-string keys
        raise UnusableRunError(f"{HYDRA_CONFIG} is not an OmegaConf config ({exc}); regenerate it") from None
    return walk(cfg, ""), dropped


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
        key = item.split("=", 1)[0].lstrip("+~").replace("/", ".")
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


def find_logs(run: RunDir) -> dict[str, Path]:
    """The job logs: every ``*.log`` file at the top level of the run directory, by name."""
    return {p.name: p for p in sorted(run.path.glob("*.log")) if p.is_file()}


def normalize_log_line(line: str, run_paths: tuple[str, ...] = ()) -> str:
    """A log line with what legitimately differs between twin runs replaced.

    Timestamps, durations (``(1.23s)``, ``1.2s``, ``12 ms``), rates (``it/s``) and the run
    directory's own path (any of ``run_paths``, longest first) vary from run to run without saying
    anything about reproducibility.
    """
    for path in sorted(run_paths, key=len, reverse=True):
        if path:
            line = line.replace(path, "<run>")
    line = _TIMESTAMP_PREFIX.sub("", line)
    line = _TIMESTAMP.sub("<time>", line)
    line = _RATE.sub("<rate>", line)
    line = _PAREN_DURATION.sub("(<duration>)", line)
    line = _DURATION.sub("<duration>", line)
    return _CLOCK.sub("<duration>", line)


def read_log(run: RunDir, name: str) -> list[str]:
    """The normalized lines of one log file of ``run``."""
    text = _read_text(run, name)
    paths = tuple({str(run.path), str(Path(run.shown).expanduser().absolute()), run.shown.rstrip("/")})
    # A relative spelling like "a" would also hit words; only absolute spellings are replaced.
    paths = tuple(p for p in paths if Path(p).is_absolute())
    return [normalize_log_line(line, paths) for line in text.splitlines()]
