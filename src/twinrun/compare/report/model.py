"""The comparison report as a tree of dataclasses (built by :mod:`twinrun.compare.runs`).

Plain data only, no rendering and no torch:
:mod:`twinrun.compare.report.render` turns it into text, JSON or markdown,
and ``verify`` / sweep summaries can hold many of these.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twinrun.compare.read.limits import RawNumber

IDENTICAL = "identical"
DIFFERENT = "different"
NOT_COMPARED = "not compared"
ONLY_IN_A = "only in RUN_A"
ONLY_IN_B = "only in RUN_B"
IGNORED = "ignored"
REPORT_FORMAT = "twinrun-compare/1"
# Every report has these sections; the kind sections (tensors, tables, ...) only when a run has such files.
SECTION_ORDER = ("files", "weights", "config", "logs", "metrics", "environment", "trace")
KIND_SECTIONS = ("tensors", "tables", "scalars", "images", "other")
MAX_SHOWN_CHARS = 300  # longer values are shortened in reports (their length shown)


@dataclass(kw_only=True)
class Section:
    """One aspect of two runs. ``summary`` is the one line shown in the summary table."""

    status: str = NOT_COMPARED
    summary: str = ""
    affects_verdict: bool = True  # False: shown for context only (the environment)


@dataclass
class Mismatch:
    """A named thing with a different value in each run."""

    name: str
    a: Any
    b: Any


@dataclass
class TensorDiff:
    """How one tensor differs bit for bit. ``max_ulp`` is None for non-float dtypes."""

    name: str
    dtype: str
    shape: list[int]
    numel: int
    differing: int  # elements (``unit``) whose bytes differ
    unit: str = "elements"  # "bytes" for dtypes torch cannot view element by element
    first_index: int | None = None  # flat index of the first differing element
    first_a: Any = None
    first_b: Any = None
    max_abs_diff: float | None = None  # over elements where neither side is NaN
    max_ulp: int | None = None
    nan_mismatches: int = 0  # NaN on one side only
    close: bool | None = None  # within --atol/--rtol (None: no tolerance asked)


@dataclass(kw_only=True)
class WeightsSection(Section):
    source_a: str = ""
    source_b: str = ""
    tensors_a: int = 0
    tensors_b: int = 0
    compared: int = 0
    bytes_compared: int = 0
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    dtype_mismatches: list[Mismatch] = field(default_factory=list)
    shape_mismatches: list[Mismatch] = field(default_factory=list)
    differing: list[TensorDiff] = field(default_factory=list)
    atol: float | None = None
    rtol: float | None = None
    close: bool | None = None  # every compared tensor within tolerance (None: no tolerance asked)
    notes: list[str] = field(default_factory=list)
    # Non-tensor values of tensor files (epoch, global_step, hyper_parameters, pickled objects' state),
    # compared exactly; any difference makes the section different.
    leaves_compared: int = 0
    leaf_mismatches: list[Mismatch] = field(default_factory=list)
    leaves_only_in_a: list[str] = field(default_factory=list)
    leaves_only_in_b: list[str] = field(default_factory=list)
    # The byte rule, when the files' bytes differ and every value reads the same: the volatile fields
    # that explain each differing byte (name -> count), or why none can (then the file is different).
    masked: dict[str, int] = field(default_factory=dict)
    unaccounted: str = ""

    @property
    def architecture_differs(self) -> bool:
        return bool(self.only_in_a or self.only_in_b or self.shape_mismatches)


@dataclass(kw_only=True)
class ConfigSection(Section):
    source_a: str | None = None
    source_b: str | None = None
    keys: int = 0
    changed: list[Mismatch] = field(default_factory=list)
    only_in_a: dict[str, Any] = field(default_factory=dict)
    only_in_b: dict[str, Any] = field(default_factory=dict)
    overrides_a: list[str] | None = None  # comparable overrides (volatile ones dropped)
    overrides_b: list[str] | None = None
    unresolvable_a: list[str] = field(default_factory=list)  # keys dropped: could not be resolved
    unresolvable_b: list[str] = field(default_factory=list)


@dataclass
class LineDiff:
    line: int  # 1-based
    a: str | None  # None: past the end of that file
    b: str | None


@dataclass
class LogDiff:
    name_a: str
    name_b: str
    lines_a: int
    lines_b: int
    differing_lines: int
    first: LineDiff | None = None


@dataclass(kw_only=True)
class LogsSection(Section):
    files: list[LogDiff] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)


@dataclass
class ValueDiff:
    key: str
    a: Any
    b: Any
    a_decimal: float | None = None  # float.hex strings shown as decimals too
    b_decimal: float | None = None


@dataclass
class RowDiff:
    row: int  # 1-based line in metrics.jsonl
    epoch: Any
    step: Any
    keys: list[ValueDiff] = field(default_factory=list)


@dataclass(kw_only=True)
class MetricsSection(Section):
    rows_a: int = 0
    rows_b: int = 0
    differing_rows: int = 0
    first: RowDiff | None = None


@dataclass(kw_only=True)
class EnvironmentSection(Section):
    differing: list[Mismatch] = field(default_factory=list)
    decisive: list[str] = field(default_factory=list)  # differing keys that void bit-identity
    bit_identity_expected: bool | None = None  # None: an env.json is missing


@dataclass(kw_only=True)
class TraceSection(Section):
    steps_a: int = 0
    steps_b: int = 0


@dataclass
class FileEntry:
    """One file (or TensorBoard folder) of the two runs and what comparing it found."""

    path: str  # relative to the run directory, "/"-separated
    kind: str  # weights, tensors, config, log, metrics, trace, environment, manifest, table, ...
    verdict: str  # identical | different | only in RUN_A | only in RUN_B | ignored | not compared
    detail: str = ""  # the first difference, or why it was not compared
    decisive: bool = True  # False: shown for context only (env.json, wall-clock columns)
    masked: dict[str, int] = field(default_factory=dict)  # volatile fields excused: name -> count

    @property
    def differs(self) -> bool:
        """Whether this file alone makes the runs different (see :func:`decide`)."""
        return self.decisive and self.verdict in (DIFFERENT, ONLY_IN_A, ONLY_IN_B)


@dataclass(kw_only=True)
class FilesSection(Section):
    """Every file of both runs: the one place the verdict rule reads (see :func:`decide`)."""

    files: list[FileEntry] = field(default_factory=list)
    ignore_patterns: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class KindSection(Section):
    """All files of one kind (tensor files, tables, TensorBoard scalars, images, other files)."""

    files: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)  # "path: first difference"
    units: int = 0  # tensors, rows, scalar points, pixels, bytes compared
    unit: str = "files"


@dataclass(kw_only=True)
class TensorsSection(WeightsSection):
    """Every tensor file but the final weights, merged: tensor names are ``file: path/in/object``."""

    files: list[str] = field(default_factory=list)


@dataclass
class Divergence:
    """Where two traced runs part ways (see :func:`twinrun.compare.judge.divergence.find_divergence`)."""

    step: Any
    epoch: Any
    cause: str  # configuration | unseeded start | data order | rng stream | computation | length
    parameter: str | None = None
    parameter_step: Any = None
    rng_streams: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def where(self) -> str:
        """``step 12 (epoch 2): rng stream``: the one-line summary tables show."""
        return f"step {self.step} (epoch {self.epoch}): {self.cause}"


@dataclass
class Report:
    """Everything ``twinrun compare`` found about two runs."""

    run_a: str
    run_b: str
    sections: dict[str, Section]
    divergence: Divergence | None = None
    hints: list[str] = field(default_factory=list)

    @property
    def differing_sections(self) -> list[str]:
        """Names of the sections that decide the verdict and differ (the environment never does)."""
        return [n for n, s in self.sections.items() if s.affects_verdict and s.status == DIFFERENT]

    @property
    def verdict(self) -> str:
        """The one verdict rule (:func:`decide`) that compare, verify, sweeps and DDP share."""
        return decide(self.sections)

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == IDENTICAL else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable top-level keys; non-finite floats become strings."""
        return {
            "format": REPORT_FORMAT,
            "run_a": self.run_a,
            "run_b": self.run_b,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "sections": {name: _jsonable(dataclasses.asdict(s)) for name, s in self.sections.items()},
            "divergence": _jsonable(dataclasses.asdict(self.divergence)) if self.divergence else None,
            "hints": list(self.hints),
        }


def decide(sections: dict[str, Section]) -> str:
    """Identical only when every file that is not ignored is identical in both runs.

    A file only one run has is a difference; a file not compared (a trace in another format, TensorBoard
    without its package) and context (the environment) do not decide. Sections that count and differ
    decide too (the final weights of a legacy and a safetensors run are compared across names).
    """
    files = sections.get("files")
    if isinstance(files, FilesSection) and any(entry.differs for entry in files.files):
        return DIFFERENT
    differs = any(s.affects_verdict and s.status == DIFFERENT for s in sections.values())
    return DIFFERENT if differs else IDENTICAL


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters with its length shown: reports stay readable."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text)} characters)"


def lines_differ(count: int) -> str:
    """``1 line differs``, ``2 lines differ``."""
    return "1 line differs" if count == 1 else f"{count} lines differ"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows`` (``many``: the plural when it is not ``noun + "s"``)."""
    return f"{count} {noun}" if count == 1 else f"{count} {many or noun + 's'}"


def describe_tensor_diff(d: TensorDiff) -> str:
    """``fc.weight (1 of 50 elements, max |a-b| 5.96e-08, max 1 ULP)``."""
    if d.unit == "elements":
        parts = [f"{d.differing} of {d.numel} element{'s' if d.numel != 1 else ''}"]
    else:
        parts = [f"{d.differing} differing bytes"]
    if d.max_abs_diff is not None and d.dtype != "bool":
        parts.append(f"max |a-b| {d.max_abs_diff:.3g}")
    if d.max_ulp is not None:
        parts.append(f"max {d.max_ulp} ULP")
    if d.nan_mismatches:
        parts.append(f"{d.nan_mismatches} NaN on one side only")
    return f"{d.name} ({', '.join(parts)})"


def shown_report(reports: Iterable[Report]) -> Report | None:
    """The report shown in full among several: the first that differs, else the first (None: none)."""
    listed = list(reports)
    return next((r for r in listed if r.exit_code), listed[0] if listed else None)


def show_value(value: Any) -> str:
    """A config or env value as a person writes it on the command line (long values shortened)."""
    if isinstance(value, RawNumber):
        return value.text
    return shorten(value if isinstance(value, str) else json.dumps(value, default=repr))


def _jsonable(value: Any) -> Any:
    """Strict JSON has no NaN/Infinity: write those as strings ("nan", "inf", "-inf"); values JSON has
    no type for (a YAML date in a config) as :func:`show_value` shows them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, RawNumber):
        return value.text
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return show_value(value)
