"""noxfile.py: its sessions exist, and every ``nox`` call in a workflow names one of them.

- the sessions are read statically from the decorators (an independent reader, cross-checked against
  ``nox --list``), and every workflow call is checked against them;
- where nox is importable, each call is replayed with ``--list --json`` under the job's matrix and env;
- ``repro-cuda`` stops at once, before installing or testing anything, where no CUDA device is visible.

Each checker has a negative control: a broken input that it must reject.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.automation_helpers import (
    NOX_SESSION_OPTS,
    NOXFILE,
    ROOT,
    WORKFLOWS,
    RecordingSession,
    SessionError,
    load_noxfile,
    needs_nox,
    option_values,
    run_tool,
    workflow_nox_calls,
)

NOX = [sys.executable, "-m", "nox"]
_NOX_PYTHON_OPTS = {"-p", "--python", "--pythons"}


def static_sessions(noxfile: Path = NOXFILE) -> dict[str, list[str] | None]:
    """Session base name -> its python list (None: none, or computed at import time) from the decorators."""
    tree = ast.parse(noxfile.read_text(encoding="utf-8"))
    literals: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):  # computed values stay unknown
                literals[node.targets[0].id] = ast.literal_eval(node.value)
    sessions: dict[str, list[str] | None] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            func = deco.func if isinstance(deco, ast.Call) else deco
            if not (isinstance(func, ast.Attribute) and func.attr == "session"):
                continue
            kwargs = {kw.arg: kw.value for kw in deco.keywords} if isinstance(deco, ast.Call) else {}
            name = ast.literal_eval(kwargs["name"]) if "name" in kwargs else node.name
            python = kwargs.get("python")
            pythons: list[str] | None = None
            if isinstance(python, ast.Name) and isinstance(literals.get(python.id), list):
                pythons = literals[python.id]
            elif python is not None:
                try:
                    value = ast.literal_eval(python)
                    pythons = [value] if isinstance(value, str) else value
                except ValueError:
                    pythons = None  # computed (e.g. from the environment): any python accepted
            sessions[name] = pythons
    return sessions


def _expand(arg: str, env: dict[str, str | None]) -> str | None:
    """$VAR / ${VAR} from the step's env; None if the value is not known statically."""

    def substitute(match: re.Match[str]) -> str:
        value = env.get(match.group(1) or match.group(2))
        if value is None:
            raise LookupError(match.group(0))
        return value

    try:
        return re.sub(r"\$(?:\{(\w+)\}|(\w+))", substitute, arg)
    except LookupError:
        return None


def static_problems(calls: list[dict[str, Any]], sessions: dict[str, list[str] | None]) -> list[str]:
    """Session names and -p pythons checked against noxfile.py's decorators (no nox needed)."""
    problems = []
    for call in calls:
        args = [_expand(a, call["env"]) for a in call["args"]]
        if any(a is None or "${{" in a or a.startswith("<unparseable") for a in args):
            problems.append(f"{call['where']}: cannot read `nox {' '.join(call['args'])}` statically")
            continue
        names = option_values(args, NOX_SESSION_OPTS)
        pythons = option_values(args, _NOX_PYTHON_OPTS)
        if not names and not option_values(args, {"-k", "--keywords", "-t", "--tags", "-l", "--list"}):
            problems.append(f"{call['where']}: `nox {' '.join(args)}` names no session (-s NAME)")
        for name in names:
            match = re.fullmatch(r"(?P<base>.+?)(?:-(?P<py>\d+\.\d+))?(?:\((?P<params>.*)\))?", name)
            base = name if name in sessions else (match.group("base") if match else name)
            if base not in sessions:
                problems.append(f"{call['where']}: nox session {name!r} does not exist in noxfile.py")
                continue
            known = sessions[base]
            suffix = match.group("py") if match and name not in sessions else None
            if suffix and known is not None and suffix not in known:
                problems.append(f"{call['where']}: {base!r} has no Python {suffix} (has {known})")
            for py in pythons:
                if known is not None and py not in known:
                    problems.append(f"{call['where']}: -p {py}, but {base!r} runs on {known}")
    return problems


def replay_problems(calls: list[dict[str, Any]], noxfile: Path = NOXFILE) -> list[str]:
    """Ask nox itself: each call, with `--list --json` and the step's env, must select >= 1 session."""
    problems = []
    seen: dict[tuple[Any, ...], list[str]] = {}
    for call in calls:
        args = [_expand(a, call["env"]) for a in call["args"]]
        if any(a is None for a in args):
            problems.append(f"{call['where']}: cannot replay `nox {' '.join(call['args'])}`")
            continue
        env = {k: v for k, v in call["env"].items() if v is not None and k.startswith("TWINRUN_")}
        key = (tuple(args), tuple(sorted(env.items())))
        if key not in seen:
            clean = {k: v for k, v in os.environ.items() if not k.startswith("TWINRUN_")}
            result = run_tool(
                [*NOX, "--noxfile", str(noxfile), *args, "--list", "--json"],
                cwd=noxfile.parent,
                env={**clean, **env, "NO_COLOR": "1"},
            )
            if result.returncode != 0:
                seen[key] = [result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"]
            else:
                listed = json.loads(result.stdout.strip().splitlines()[-1])
                seen[key] = [] if listed else ["selects no session"]
        problems += [f"{call['where']}: `nox {' '.join(args)}`: {p}" for p in seen[key]]
    return problems


ALL_CALLS = [call for path in WORKFLOWS for call in workflow_nox_calls(path)]


def test_there_are_workflows_and_they_call_nox() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "nightly.yml"}
    assert ALL_CALLS, "no nox call found in any workflow: the parser or the workflows are broken"
    called = {n for c in ALL_CALLS for n in option_values(c["args"], NOX_SESSION_OPTS)}
    assert {"lint", "tests", "repro-cpu", "repro-cuda"} <= called


@needs_nox
def test_noxfile_sessions_statically() -> None:
    sessions = static_sessions()
    assert {"tests", "repro-cpu", "repro-cuda", "lint", "typecheck", "build", "bench"} <= set(sessions)
    assert sessions["tests"] == load_noxfile().PYTHONS


def test_every_nox_call_in_the_workflows_names_an_existing_session() -> None:
    assert static_problems(ALL_CALLS, static_sessions()) == []


def test_static_session_check_flags_a_missing_session(tmp_path: Path) -> None:
    workflow = tmp_path / "bad.yml"
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n"
        "        python: ['3.9']\n    env:\n      PY: ${{ matrix.python }}\n    steps:\n"
        "      - run: |\n          python -m pip install nox\n          nox -s no-such-session\n"
        "      - run: nox -s tests --python \"$PY\" && nox -s 'lint'\n"
        '      - run: nox -s "$UNKNOWN"\n'
        "      - run: |\n          python3 - <<'PY'\n          print(\"nox -s it's only text\")\n"
        "          nox -s not-a-call\n          PY\n"
    )
    calls = workflow_nox_calls(workflow)
    assert [c["args"] for c in calls] == [
        ["-s", "no-such-session"],
        ["-s", "tests", "--python", "$PY"],
        ["-s", "lint"],
        ["-s", "$UNKNOWN"],
    ]
    problems = static_problems(calls, static_sessions())
    assert len(problems) == 3, problems
    assert "'no-such-session' does not exist" in problems[0]
    assert "-p 3.9" in problems[1]
    assert "cannot read" in problems[2]


@needs_nox
def test_nox_itself_accepts_every_workflow_call() -> None:
    assert replay_problems(ALL_CALLS) == []


@needs_nox
def test_nox_replay_flags_a_missing_session_and_an_empty_selection() -> None:
    calls = [
        {"where": "bad-1", "args": ["-s", "no-such-session"], "env": {}},
        {"where": "bad-2", "args": ["-s", "tests", "-p", "3.9"], "env": {}},
        {"where": "ok", "args": ["-s", "repro-cpu"], "env": {"TWINRUN_REPRO_PYTHONS": "3.10"}},
    ]
    problems = replay_problems(calls)
    assert len(problems) == 2, problems
    assert "no-such-session" in problems[0]
    assert "selects no session" in problems[1]


@needs_nox
def test_static_reading_of_the_noxfile_matches_nox() -> None:
    """The static reader (used where nox is absent) sees exactly the sessions nox registers."""
    names = sorted(static_sessions())
    result = run_tool([*NOX, "--list", "--json", "-s", *names], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert {s["name"] for s in json.loads(result.stdout)} == set(names)
    every = run_tool([*NOX, "--list"], cwd=ROOT)
    listed = {
        re.split(r"-\d|\(", line[2:].split(" -> ")[0])[0]
        for line in every.stdout.splitlines()
        if line[:2] in ("* ", "- ")
    }
    assert listed == set(names)


# ------------------------------------------------------------------- the noxfile imported as a module


@needs_nox
def test_importing_the_noxfile_leaves_nox_alone() -> None:
    """The tests import noxfile.py: its sessions and nox.options must not leak into nox's global state."""
    import nox
    import nox.registry

    before = (nox.registry.get(), nox.options.sessions, nox.options.reuse_venv)
    load_noxfile.cache_clear()
    noxfile = load_noxfile()
    assert (nox.registry.get(), nox.options.sessions, nox.options.reuse_venv) == before
    assert noxfile.__name__ not in sys.modules
    # ...and the import did run the decorators: the sessions are nox's Func objects.
    assert noxfile.repro_cuda.name == "repro-cuda"


@needs_nox
@pytest.mark.parametrize("visible", [False, True], ids=["no-cuda", "cuda"])
def test_repro_cuda_stops_at_once_without_a_cuda_device(tmp_path: Path, visible: bool) -> None:
    noxfile = load_noxfile()
    probe = f"torch {noxfile.NEWEST_TORCH} (CUDA 12.6) available={visible} Some GPU\n"
    session = RecordingSession(tmp_path, run_output=probe)
    if visible:  # the control: with a device it goes on to the cuda tests and the repro suite
        noxfile.repro_cuda(session)
        assert [c[:3] for c in session.commands[1:]] == [
            ["pytest", "-m", "cuda"],
            ["pytest", "tests/repro", "-m"],
        ]
    else:
        with pytest.raises(SessionError, match=re.escape(noxfile.NO_CUDA_MESSAGE)):
            noxfile.repro_cuda(session)
        assert len(session.commands) == 1  # the probe, and no pytest
    assert session.commands[0][:2] == ["python", "-c"]
    assert session.env["TWINRUN_DEVICE"] == "cuda"
    assert {k: session.env[k] for k in noxfile.DETERMINISTIC_ENV} == noxfile.DETERMINISTIC_ENV


@needs_nox
@pytest.mark.parametrize(
    ("posargs", "picked", "semantic"),
    [
        ([], "", ["tools/semantic_mutants.py"]),
        (["config", "--fail-under", "90"], "", ["tools/semantic_mutants.py"]),
        (["config"], "type-dropped, html", ["tools/semantic_mutants.py", "type-dropped", "html"]),
        (["--list"], "", ["tools/semantic_mutants.py", "--list"]),
        (["--report-only"], "", None),
    ],
    ids=["all", "scope-args", "picked", "list", "report-only"],
)
def test_mutation_runs_mutmut_then_the_semantic_mutants(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    posargs: list[str],
    picked: str,
    semantic: list[str] | None,
) -> None:
    monkeypatch.setenv("TWINRUN_SEMANTIC_MUTANTS", picked)
    session = RecordingSession(tmp_path)
    session.posargs = posargs
    load_noxfile().mutation(session)
    # posargs go to mutation.py only; the semantic runner gets its ids from the environment
    expected = [["python", "tools/mutation.py", *posargs]] + ([["python", *semantic]] if semantic else [])
    assert session.commands == expected


ACTIONLINT_CONFIGS = [
    "self-hosted-runner:\n  labels:\n    - gpu\n",
    "self-hosted-runner:\n  labels: [gpu, 'big-gpu']\n",
    "# a comment\nself-hosted-runner:\n  # labels below\n  labels:\n    - gpu  # the GPU box\n    - arm\n"
    "config-variables: null\n",
    "paths:\n  .github/workflows/*.yml:\n    ignore: []\nself-hosted-runner:\n  labels:\n    - gpu\n",
    "other:\n  labels:\n    - not-a-runner\nself-hosted-runner:\n  labels: []\n",
]


@needs_nox
@pytest.mark.parametrize("text", ACTIONLINT_CONFIGS)
def test_self_hosted_labels_are_read_as_yaml_reads_them(text: str) -> None:
    import yaml

    expected = tuple(yaml.safe_load(text)["self-hosted-runner"]["labels"])
    assert load_noxfile().self_hosted_labels(text) == expected


@needs_nox
def test_the_runner_labels_come_from_actionlint_yaml() -> None:
    import yaml

    config = yaml.safe_load((ROOT / ".github" / "actionlint.yaml").read_text(encoding="utf-8"))
    assert config["self-hosted-runner"]["labels"] == ["gpu"]
    noxfile = load_noxfile()
    assert noxfile.SELF_HOSTED_LABELS == ("gpu",)
    # control: the reader does not invent labels, and a list under another key is not the runner's
    assert noxfile.self_hosted_labels("self-hosted-runner:\n  labels: []\n") == ()
    assert noxfile.self_hosted_labels("labels:\n  - gpu\n") == ()
