"""Hints: when two runs of one config differ, the likely reasons, one line each.

Given only when the configs are identical and the runs are not: the seed is ``0`` (an app that seeds
``if cfg.seed:`` skips seeding for 0), ``null`` or absent; a log line only one run has (Lightning's
"Seed set to 7" when only one run seeded); the environments differ in a key that decides bit-identity.
"""

from __future__ import annotations

import re
from typing import Any

from twinrun.compare.judge.kinds import Outcome
from twinrun.compare.read.run_reader import HYDRA_CONFIG, CanonicalConfig, RunDir, UnusableRunError, read_yaml
from twinrun.compare.report.model import (
    DIFFERENT,
    IDENTICAL,
    ConfigSection,
    EnvironmentSection,
    Report,
    WeightsSection,
    shorten,
    show_value,
)
from twinrun.record import runs as contract

MAX_LOG_HINTS = 2


def _seeds(tree: dict[str, Any]) -> dict[str, Any]:
    """Every key named ``seed`` (``seed``, ``trainer.seed`` ...) with its value."""
    found: dict[str, Any] = {}

    def visit(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                dotted = f"{prefix}{key}"
                if str(key).lower() in ("seed", "random_seed", "rng_seed"):
                    found[dotted] = value
                visit(value, dotted + ".")

    visit(tree, "")
    return found


def seed_hints(config: CanonicalConfig | None) -> list[str]:
    if config is None:
        return []
    seeds = _seeds(config.tree)
    if not seeds:
        return [f"{config.source} has no seed key: nothing seeds the runs unless the app does it by itself"]
    out = []
    for key, value in seeds.items():
        if value is None:
            out.append(
                f"{key} is null: an app that seeds only `if cfg.{key}:` skips seeding, another draws a seed"
            )
        elif value == 0 and not isinstance(value, bool):
            out.append(f"{key} is 0: `if cfg.{key}:` skips seeding for 0; test `if cfg.{key} is not None:`")
    return out


_VALUES = re.compile(r"0x[0-9a-fA-F.p+-]+|[0-9a-fA-F]{8,}|[-+]?\d[\d.eE+-]*")


def _shape(line: str) -> str:
    """A log line with its numbers and digests blanked: the same message with other values."""
    return _VALUES.sub("#", line.strip())


def log_hints(outcomes: dict[str, Outcome]) -> list[str]:
    out = []
    for key, outcome in sorted(outcomes.items()):
        only_a, only_b = outcome.only_lines
        # A message both runs logged with other values ("weights digest ...", a loss) is a consequence of
        # the difference, not a hint at its cause: only messages one run has at all are.
        shared = {_shape(x) for x in only_a} & {_shape(x) for x in only_b}
        only_a = [x for x in only_a if _shape(x) not in shared]
        only_b = [x for x in only_b if _shape(x) not in shared]
        for label, lines in (("RUN_A", only_a), ("RUN_B", only_b)):
            if lines and len(out) < MAX_LOG_HINTS:
                # A line about seeding says most ("Seed set to 7" in one run only).
                line = next((x for x in lines if "seed" in x.lower()), lines[0])
                out.append(f"a log line only {label} has ({key}): {shorten(line.strip(), 160)}")
    return out


_INTERPOLATION = re.compile(r"\$\{[^}]*\}")
_TRAINING_WORDS = re.compile(r"loss|epoch|step|iter|batch|acc|lr\b", re.IGNORECASE)


def _written_seeds(run: RunDir) -> dict[str, Any]:
    """Seed keys as the run's config file has them written (``.hydra/config.yaml`` keeps interpolations)."""
    for name in (HYDRA_CONFIG, contract.RESOLVED_CONFIG):
        if run.has(name):
            try:
                tree = read_yaml(run, name)
            except UnusableRunError:
                return {}
            return _seeds(tree) if isinstance(tree, dict) else {}
    return {}


def _first_lines(outcomes: dict[str, Outcome]) -> list[tuple[str, int, str, str]]:
    """Per log: (log, line, RUN_A's, RUN_B's) first differing line, when both runs have that line."""
    found = []
    for key, outcome in sorted(outcomes.items()):
        first = outcome.log.first if outcome.log is not None else None
        if first is not None and first.a is not None and first.b is not None:
            found.append((key, first.line, first.a.strip(), first.b.strip()))
    return found


def interpolated_seed_hints(
    runs: tuple[RunDir, RunDir] | None, config: ConfigSection, outcomes: dict[str, Outcome]
) -> list[str]:
    """A seed written as an interpolation that resolves per run (``${now:%f}``), with both resolved
    values when the resolved configs or a log line show them."""
    if runs is None:
        return []
    written = _written_seeds(runs[0])
    out = []
    for key, value in written.items():
        if not (isinstance(value, str) and _INTERPOLATION.search(value)):
            continue
        if _written_seeds(runs[1]).get(key) != value:
            continue  # the configs differ in the seed: the config section says so
        changed = {m.name: m for m in config.changed}
        resolved = ""
        if key in changed:
            resolved = f" (RUN_A: {show_value(changed[key].a)}, RUN_B: {show_value(changed[key].b)})"
        else:
            line = next((x for x in _first_lines(outcomes) if "seed" in x[2].lower()), None)
            if line is not None:
                shown = f"{shorten(line[2], 80)!r} vs {shorten(line[3], 80)!r}"
                resolved = f" ({line[0]} line {line[1]}: {shown})"
        out.append(
            f"{key} is {value!r}, an interpolation that resolves anew in every run{resolved}: the runs "
            f"were seeded differently; give a fixed seed ({key}=42)"
        )
    return out


def _training_started(run: RunDir | None, key: str, line: int) -> bool:
    """Whether RUN_A's log ``key`` mentions training (loss, epoch, step ...) before line ``line``."""
    if run is None:
        return True  # cannot tell: say nothing
    try:
        with run.file(key).open(encoding="utf-8", errors="replace") as handle:
            before = [next(handle, "") for _ in range(line - 1)]
    except OSError:
        return True
    return any(_TRAINING_WORDS.search(text) for text in before)


def early_log_hints(outcomes: dict[str, Outcome], run: RunDir | None = None) -> list[str]:
    """A line both runs logged with other values before training started ("Setting seed to 146124" vs
    "560711"): evidence of the cause, not a consequence of it."""
    out = []
    for key, line, a, b in _first_lines(outcomes):
        if _shape(a) != _shape(b) or a == b or _training_started(run, key, line):
            continue
        if "seed" in a.lower() or not _TRAINING_WORDS.search(a):
            out.append(
                f"both runs logged this line with other values before training differed ({key} line {line}): "
                f"{shorten(a, 100)!r} vs {shorten(b, 100)!r}; that is where the runs part, not a consequence"
            )
    return out[:MAX_LOG_HINTS]


def non_tensor_hints(report: Report) -> list[str]:
    """Every tensor equal, only non-tensor values saved beside them differ (a random run id, a time)."""
    tensor_sections = [s for s in report.sections.values() if isinstance(s, WeightsSection)]
    differing = [s for s in tensor_sections if s.status == DIFFERENT]
    others = [
        name
        for name, s in report.sections.items()
        if s.affects_verdict
        and s.status == DIFFERENT
        and not isinstance(s, WeightsSection)
        and name != "files"
    ]
    if not differing or others:
        return []
    if any(s.differing or s.architecture_differs or s.dtype_mismatches for s in differing):
        return []
    mismatches = [m for s in differing for m in s.leaf_mismatches]
    if not mismatches:
        return []
    first = mismatches[0]
    return [
        f"every tensor is identical; only non-tensor values saved beside them differ ({len(mismatches)}, "
        f"first {first.name}: {show_value(first.a)} vs {show_value(first.b)}): a run id, time or path "
        "saved with the weights, not the training"
    ]


def find_hints(
    report: Report,
    config: CanonicalConfig | None,
    outcomes: dict[str, Outcome],
    runs: tuple[RunDir, RunDir] | None = None,
) -> list[str]:
    """The hints for ``report`` (without the "hint:" mark the renderers add)."""
    sections = report.sections
    if report.verdict != DIFFERENT:
        return []
    config_section = sections["config"]
    interpolated = []
    if isinstance(config_section, ConfigSection):
        interpolated = interpolated_seed_hints(runs, config_section, outcomes)
    if config_section.status not in (IDENTICAL,):
        # A config difference explains the rest; without configs, only what the files themselves show.
        return interpolated + (non_tensor_hints(report) if config_section.status != DIFFERENT else [])
    hints = interpolated + early_log_hints(outcomes, runs[0] if runs else None) + non_tensor_hints(report)
    hints += log_hints(outcomes)
    # What the seed's value suggests is a guess about the app's code, not evidence from the runs: the
    # general advice below still follows it when nothing the runs left names a cause.
    guesses = [h for h in seed_hints(config) if not interpolated]
    env = sections["environment"]
    if isinstance(env, EnvironmentSection) and env.decisive:
        shown = ", ".join(env.decisive[:3]) + (" ..." if len(env.decisive) > 3 else "")
        hints.append(f"the environments differ in {shown}: bit-identity is not expected across them")
    if not hints and sections["trace"].status != DIFFERENT:
        hints += guesses
        # No named cause and no trace to find one: say what usually is wrong and how to find the step.
        hints.append(
            "the configs are identical but the runs are not: something random is not seeded; seed python, "
            "numpy and torch before the model is built (twinrun.seed_everything(cfg.seed)), give data "
            "loaders a seeded generator, and record a trace (twinrun.Recorder) to find the first step "
            "that differs"
        )
    else:
        hints += guesses
    return hints
