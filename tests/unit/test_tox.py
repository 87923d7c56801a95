"""tox.ini, the thin tox front end: its envs exist, run pytest with the test extra, and lint like nox."""

from __future__ import annotations

import configparser
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from tests.unit.automation_helpers import ROOT, TOX_INI, WORKFLOWS, load_noxfile, needs_nox, run_tool


def tox_problems(tox_ini: Path, pythons: list[str]) -> list[str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(tox_ini, encoding="utf-8")
    problems = []
    env_list = set(re.split(r"[\s,]+", config.get("tox", "env_list", fallback="").strip())) - {""}
    wanted = {"py" + py.replace(".", "") for py in pythons} | {"lint"}
    if missing := sorted(wanted - env_list):
        problems.append(f"tox env_list lacks {missing}")
    commands = config.get("testenv", "commands", fallback="")
    if not re.search(r"^\s*pytest\b.*-n\s+auto.*\{posargs\}", commands, re.M):
        problems.append(f"[testenv] does not run `pytest -n auto {{posargs}}`: {commands.strip()!r}")
    if "test" not in re.split(r"[\s,]+", config.get("testenv", "extras", fallback="")):
        problems.append("[testenv] does not install the `test` extra")
    for env in sorted(env_list - {"lint"}):
        section = f"testenv:{env}"
        if config.has_section(section) and "commands" in config[section]:
            problems.append(f"[{section}] overrides the pytest commands")
    lint = config.get("testenv:lint", "commands", fallback="")
    for tool in ("ruff check", "ruff format --check", "check-jsonschema"):
        if tool not in lint:
            problems.append(f"[testenv:lint] does not run {tool}")
    for workflow in WORKFLOWS:
        if workflow.relative_to(ROOT).as_posix() not in lint:
            problems.append(f"[testenv:lint] does not validate {workflow.name}")
    return problems


@needs_nox
def test_tox_envs_exist_and_run_pytest() -> None:
    assert tox_problems(TOX_INI, load_noxfile().PYTHONS) == []


def test_tox_check_flags_an_env_that_does_not_run_pytest(tmp_path: Path) -> None:
    bad = tmp_path / "tox.ini"
    bad.write_text(
        "[tox]\nenv_list = py311, lint\n[testenv]\nextras = test\ncommands = python -c 'print(1)'\n"
        "[testenv:lint]\ncommands = ruff check .\n"
    )
    problems = tox_problems(bad, ["3.10", "3.11"])
    assert any("lacks ['py310']" in p for p in problems), problems
    assert any("does not run `pytest" in p for p in problems), problems
    assert any("ruff format --check" in p for p in problems), problems


@needs_nox
@pytest.mark.skipif(importlib.util.find_spec("tox") is None, reason="tox is not importable here")
def test_tox_itself_resolves_pytest_for_every_python_env() -> None:
    envs = ["py" + py.replace(".", "") for py in load_noxfile().PYTHONS]
    result = run_tool(
        [sys.executable, "-m", "tox", "-c", str(TOX_INI), "config", "-e", ",".join(envs), "-k", "commands"],
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    sections = dict(re.findall(r"^\[testenv:(\w+)\]\ncommands = (.*)$", result.stdout, re.M))
    assert sections == {env: "pytest -n auto" for env in envs}, result.stdout
