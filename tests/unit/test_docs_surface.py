"""README.md and docs/ teach only the public surface, and their usage lines are the commands' own.

- every ``from twinrun... import`` / ``import twinrun...`` (and every ``twinrun.x.y(...)`` named in prose)
  uses a public module: ``twinrun`` itself, or one the README's "Public API" section documents;
- every usage block (a code block opening with ``twinrun <command> ...[``) names exactly the options that
  ``twinrun <command> --help`` has.

Each check has a negative control on text written here.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import twinrun
from twinrun.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# module -> the names it offers users (None: any attribute the module has)
PUBLIC: dict[str, set[str] | None] = {
    "twinrun": set(twinrun.__all__),
    "twinrun.testing.pytest_plugin": None,
    "twinrun.integrations.lightning": {"TwinrunCallback"},
}
IMPORT = re.compile(r"^\s*(?:from\s+(twinrun[\w.]*)\s+import\s+\(?([\w, ]+)|import\s+(twinrun[\w.]*))", re.M)
CALL = re.compile(r"`(twinrun(?:\.\w+)+)\(")


def surface_violations(text: str) -> list[str]:
    """The imports and calls in ``text`` that reach past the public surface."""
    found = []
    for match in IMPORT.finditer(text):
        module, names, plain = match.groups()
        if plain:
            if plain not in PUBLIC:
                found.append(f"import {plain}")
            continue
        allowed = PUBLIC.get(module, set())
        for name in (n.strip() for n in names.split(",") if n.strip()):
            if (allowed is not None and name not in allowed) or (
                allowed is None and not hasattr(__import__(module, fromlist=[name]), name)
            ):
                found.append(f"from {module} import {name}")
    for match in CALL.finditer(text):
        module, _, name = match[1].rpartition(".")
        if module not in PUBLIC or (PUBLIC[module] is not None and name not in PUBLIC[module]):
            found.append(f"{match[1]}(...)")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_import_only_the_public_surface(page: Path) -> None:
    assert surface_violations(page.read_text(encoding="utf-8")) == []


def test_the_public_modules_are_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    api = readme.split("## Public API", 1)[1].split("\n## ", 1)[0]
    for module in PUBLIC:
        assert f"`{module}" in api, module


def test_the_surface_check_catches_internal_imports() -> None:
    text = (
        "```python\nfrom twinrun.record import runs\nimport twinrun.verify.apps\n"
        "from twinrun import Recorder, compare_runs\n```\n"
        "From Python, `twinrun.verify.apps.verify_app(app)` and `twinrun.verify_app(app)`.\n"
    )
    assert surface_violations(text) == [
        "from twinrun.record import runs",
        "import twinrun.verify.apps",
        "twinrun.verify.apps.verify_app(...)",
    ]


def usage_blocks(text: str) -> list[tuple[str, str]]:
    """(command, usage text) of each code block that opens with ``twinrun <command> ...[``.

    A command with subcommands (``twinrun golden record ...``) is named ``golden record``; the lines of one
    block that name the same command (``record APP ...`` and ``record --from RUN ...``) are one usage.
    """
    blocks = []
    for body in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S):
        first = body.splitlines()[0] if body.strip() else ""
        if not re.match(r"twinrun (\w+) [^#]*\[", first):
            continue
        found: dict[str, list[str]] = {}
        command = None
        for line in body.splitlines():
            match = re.match(r"twinrun (\w+)(?: (\w+))?", line)
            if match:
                sub = match[2] if match[2] and _has_subcommand(match[1], match[2]) else None
                command = f"{match[1]} {sub}" if sub else match[1]
                found.setdefault(command, []).append(line)
            elif command is not None and re.match(r"^\s+\S", line):
                found[command].append(line)
        blocks += [(command, "\n".join(lines)) for command, lines in found.items()]
    return blocks


def _subparsers(command: str) -> dict[str, argparse.ArgumentParser]:
    parser = build_parser().subcommands[command]
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def _has_subcommand(command: str, word: str) -> bool:
    return command in build_parser().subcommands and word in _subparsers(command)


def usage_mismatch(command: str, usage: str) -> tuple[set[str], set[str]]:
    """(options ``--help`` has that the usage lacks, options the usage names that ``--help`` lacks)."""
    name, _, sub = command.partition(" ")
    parser = _subparsers(name)[sub] if sub else build_parser().subcommands[name]
    actions = [a.option_strings for a in parser._actions if a.option_strings]
    actions = [strings for strings in actions if "--help" not in strings]
    named = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage))
    missing = {strings[-1] for strings in actions if not named.intersection(strings)}
    unknown = named - {s for strings in actions for s in strings}
    return missing, unknown


def all_usage_blocks() -> list[tuple[str, str, str]]:
    return [(page.name, *block) for page in PAGES for block in usage_blocks(page.read_text(encoding="utf-8"))]


@pytest.mark.parametrize(("page", "command", "usage"), all_usage_blocks(), ids=lambda v: str(v)[:24])
def test_each_usage_line_matches_help(page: str, command: str, usage: str) -> None:
    assert usage_mismatch(command, usage) == (set(), set()), f"{page}: twinrun {command}"


def test_usage_blocks_exist_and_the_check_catches_a_stale_one() -> None:
    assert {command for _, command, _ in all_usage_blocks()} >= {"compare", "verify"}
    stale = "```\ntwinrun verify APP [OVERRIDE ...] [--runs N] [--workdir DIR] [--timeout SECONDS]\n```\n"
    [(command, usage)] = usage_blocks(stale)
    missing, unknown = usage_mismatch(command, usage + " [--frobnicate]")
    assert {"--multirun", "--html", "--explain", "--json"} <= missing and unknown == {"--frobnicate"}


def test_the_readme_stays_within_250_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, "move detail into docs/ (one page per topic)"
