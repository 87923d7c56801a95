"""Shared by the automation checks (test_workflows.py, test_noxfile.py, test_tox.py).

- where things are (the workflows, noxfile.py, tox.ini) and how a tool is run;
- noxfile.py imported as a module, so the checks reuse its constants and functions instead of copying
  them, and a stand-in for ``nox.Session`` to call its helpers and sessions with;
- reading workflows: YAML 1.1's ``on``, GitHub's matrix expansion, and every ``nox`` call in a ``run:``.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import itertools
import os
import re
import shlex
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NOXFILE = ROOT / "noxfile.py"
TOX_INI = ROOT / "tox.ini"
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
TIMEOUT = 120


def run_tool(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs)


# -------------------------------------------------------------------------------- noxfile.py, imported

needs_nox = pytest.mark.skipif(
    importlib.util.find_spec("nox") is None,
    reason="nox is not importable here (it comes with the test extra: pip install -e '.[test]')",
)


@functools.cache
def load_noxfile() -> ModuleType:
    """noxfile.py as a module (once per process; only in tests marked ``needs_nox``).

    Importing it runs its ``@nox.session`` decorators, which register in nox's global registry, and its
    ``nox.options.x = ...`` lines: both go to throwaway copies, so nothing of it stays in nox's state.
    The module is not put in sys.modules, and it reads only the environment.
    """
    import nox
    import nox.registry

    spec = importlib.util.spec_from_file_location("twinrun_noxfile", NOXFILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with (
        mock.patch.dict(nox.registry._REGISTRY),
        mock.patch.object(nox, "options", copy.copy(nox.options)),
    ):
        spec.loader.exec_module(module)
    return module


class SessionError(Exception):
    """What ``session.error(...)`` raises in a :class:`RecordingSession`."""


class RecordingSession:
    """Stands in for ``nox.Session`` (``--no-venv``: nothing is installed): records, runs nothing.

    ``run`` returns ``run_output`` (what a ``silent=True`` call would capture), ``error`` raises
    :class:`SessionError`, ``create_tmp`` is ``tmp``.
    """

    venv_backend = "none"

    def __init__(self, tmp: Path, run_output: str | None = None) -> None:
        self.tmp = tmp
        self.run_output = run_output
        self.env: dict[str, str | None] = {}
        self.posargs: list[str] = []
        self.commands: list[list[str]] = []
        self.warnings: list[str] = []
        self.logs: list[str] = []

    def run(self, *args: str, **kwargs: Any) -> str | None:
        self.commands.append(list(args))
        return self.run_output

    def create_tmp(self) -> str:
        return str(self.tmp)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def log(self, message: str) -> None:
        self.logs.append(message)

    def error(self, message: str) -> None:
        raise SessionError(message)


# ------------------------------------------------------------------------------------ reading workflows


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data and "on" not in data:  # YAML 1.1: a bare `on` key is the boolean true
        data["on"] = data.pop(True)
    return data


def matrix_combinations(strategy: dict[str, Any] | None) -> list[dict[str, Any]]:
    """GitHub's matrix expansion: product of the lists, minus `exclude`, plus/extended by `include`."""
    matrix = (strategy or {}).get("matrix") or {}
    if isinstance(matrix, str):
        return [{}]  # a fromJSON(...) expression: not expandable statically
    keys = [k for k in matrix if k not in ("include", "exclude")]
    combos = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*(matrix[k] for k in keys))
    ]
    if not keys:
        combos = []
    for exclude in matrix.get("exclude", []) or []:
        combos = [c for c in combos if any(c.get(k) != v for k, v in exclude.items())]
    originals = [dict(c) for c in combos]
    for include in matrix.get("include", []) or []:
        extended = False
        for combo, original in zip(combos[: len(originals)], originals, strict=True):
            if all(original.get(k, v) == v for k, v in include.items() if k in keys):
                combo.update(include)
                extended = True
        if not extended:
            combos.append(dict(include))
    return combos or [{}]


EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _resolve(value: Any, matrix: dict[str, Any]) -> str | None:
    """A workflow env value with `${{ matrix.X }}` filled in; None if another expression remains."""
    text = str(value)

    def substitute(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr.startswith("matrix.") and expr[len("matrix.") :] in matrix:
            return str(matrix[expr[len("matrix.") :]])
        raise LookupError(expr)

    try:
        return EXPR.sub(substitute, text)
    except LookupError:
        return None


# ------------------------------------------------------------------------ workflows: nox calls in run:

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}
NOX_SESSION_OPTS = {"-s", "-e", "--session", "--sessions"}


def _logical_lines(script: str) -> list[str]:
    """Shell lines with backslash continuations joined and here-document bodies dropped."""
    lines: list[str] = []
    pending = ""
    heredoc_end: str | None = None
    for raw in script.splitlines():
        if heredoc_end is not None:
            if raw.strip() == heredoc_end:
                heredoc_end = None
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = pending + raw
        pending = ""
        match = _HEREDOC.search(line)
        if match:
            heredoc_end = match.group(2)
        lines.append(line)
    if pending:
        lines.append(pending)
    return lines


def _simple_commands(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in _SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _nox_args(command: list[str]) -> list[str] | None:
    """The arguments of a nox call (`nox ...`, `python -m nox ...`, `pipx run nox ...`), else None."""
    words = list(command)
    while words and _ENV_ASSIGN.match(words[0]):
        words.pop(0)
    if not words:
        return None
    program = os.path.basename(words[0])
    if program == "nox":
        return words[1:]
    if re.fullmatch(r"python(\d(\.\d+)?)?", program) and words[1:3] == ["-m", "nox"]:
        return words[3:]
    if program in {"pipx", "uvx", "uv"}:
        rest = words[1:]
        if rest[:1] == ["run"] or rest[:2] == ["tool", "run"]:
            rest = rest[1:] if rest[0] == "run" else rest[2:]
        if rest and re.fullmatch(r"nox([=<>!~].*)?", rest[0]):
            return rest[1:]
    return None


def nox_calls(script: str) -> list[list[str]]:
    """Every nox call in a `run:` script, as its argument list (up to a `--`)."""
    calls = []
    for line in _logical_lines(script):
        if not re.search(r"\bnox\b", line):
            continue
        try:
            commands = _simple_commands(line)
        except ValueError as exc:  # unbalanced quotes: the checker cannot read it, so nobody can trust it
            calls.append([f"<unparseable: {exc}: {line.strip()}>"])
            continue
        for command in commands:
            args = _nox_args(command)
            if args is not None:
                calls.append(args[: args.index("--")] if "--" in args else args)
    return calls


def option_values(args: list[str], options: set[str]) -> list[str]:
    values: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if "=" in arg and arg.split("=", 1)[0] in options:
            values.append(arg.split("=", 1)[1])
        elif arg in options:
            i += 1
            while i < len(args) and not args[i].startswith("-"):
                values.append(args[i])
                i += 1
            continue
        i += 1
    return values


def workflow_nox_calls(path: Path) -> list[dict[str, Any]]:
    """Every nox call in a workflow, once per matrix combination, with the env the step would see."""
    workflow = load_workflow(path)
    calls = []
    for job_id, job in (workflow.get("jobs") or {}).items():
        for combo in matrix_combinations(job.get("strategy")):
            for index, step in enumerate(job.get("steps") or []):
                if "run" not in step:
                    continue
                env: dict[str, str | None] = {}
                for scope in (workflow.get("env"), job.get("env"), step.get("env")):
                    env.update({k: _resolve(v, combo) for k, v in (scope or {}).items()})
                for args in nox_calls(str(step["run"])):
                    where = f"{path.name}: jobs.{job_id}.steps[{index}] {combo or ''}".rstrip()
                    calls.append({"where": where, "args": args, "env": env})
    return calls
