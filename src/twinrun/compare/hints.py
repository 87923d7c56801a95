"""Hints: when two runs of one config differ, the likely reasons, one line each.

Given only when the configs are identical and the runs are not: the seed is ``0`` (an app that seeds
``if cfg.seed:`` skips seeding for 0), ``null`` or absent; a log line only one run has (Lightning's
"Seed set to 7" when only one run seeded); the environments differ in a key that decides bit-identity.
"""

from __future__ import annotations

import re
from typing import Any

from twinrun.compare.kinds import Outcome
from twinrun.compare.report_model import DIFFERENT, IDENTICAL, EnvironmentSection, Report, shorten
from twinrun.compare.run_reader import CanonicalConfig

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


def find_hints(report: Report, config: CanonicalConfig | None, outcomes: dict[str, Outcome]) -> list[str]:
    """The hints for ``report`` (without the "hint:" mark the renderers add)."""
    sections = report.sections
    if report.verdict != DIFFERENT or sections["config"].status not in (IDENTICAL,):
        return []
    hints = seed_hints(config) + log_hints(outcomes)
    env = sections["environment"]
    if isinstance(env, EnvironmentSection) and env.decisive:
        shown = ", ".join(env.decisive[:3]) + (" ..." if len(env.decisive) > 3 else "")
        hints.append(f"the environments differ in {shown}: bit-identity is not expected across them")
    if not hints and sections["trace"].status != DIFFERENT:
        # No named cause and no trace to find one: say what usually is wrong and how to find the step.
        hints.append(
            "the configs are identical but the runs are not: something random is not seeded; seed python, "
            "numpy and torch before the model is built (twinrun.seed_everything(cfg.seed)), give data "
            "loaders a seeded generator, and record a trace (twinrun.Recorder) to find the first step "
            "that differs"
        )
    return hints
