"""Semantic mutants: bugs a person would write into the verification core, each one a test must catch.

    python tools/semantic_mutants.py                 every mutant in tests/mutation/semantic.toml
    python tools/semantic_mutants.py type-dropped    some mutants (ids: --list)
    python tools/semantic_mutants.py --check         only check that every mutant still applies (fast)

mutmut's operator swaps (``<`` for ``<=``, ``"a"`` for ``"XXaXX"``) say little about the wrong verdicts
that matter: a value's type forgotten, a file read only in part, a run left out. Each entry of the
catalogue is one such bug as a text replacement in one source file (``find`` must occur exactly once, so
a catalogue that no longer matches the code fails loudly instead of passing), with the tests expected to
kill it. A mutant runs in its own copy of ``src/`` and ``conf/`` under ``build/semantic/<id>/``; the
tests run from the checkout with that copy first on ``PYTHONPATH`` (child processes inherit it).

Exit status: 0 when every mutant is killed, 1 when one survives (or its tests fail unmutated), 2 when the
catalogue does not apply to the code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest brings tomli
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "tests" / "mutation" / "semantic.toml"
WORK = ROOT / "build" / "semantic"
TIMEOUT_S = 600


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # path under src/twinrun/
    find: str
    replace: str
    kill: tuple[str, ...]  # pytest node ids or files, relative to the checkout
    why: str


def load(path: Path = CATALOGUE) -> list[Mutant]:
    """The catalogue's mutants, in file order; ids are unique."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    mutants = [
        Mutant(m["id"], m["file"], m["find"], m["replace"], tuple(m["kill"]), m["why"])
        for m in data.get("mutant", [])
    ]
    ids = [m.id for m in mutants]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path.name}: duplicated mutant ids: {', '.join(duplicated)}")
    return mutants


def problem(mutant: Mutant, root: Path = ROOT) -> str | None:
    """Why ``mutant`` cannot be applied to the code under ``root`` (None: it applies)."""
    source = root / "src" / "twinrun" / mutant.file
    if not source.is_file():
        return f"{mutant.id}: no file src/twinrun/{mutant.file}"
    count = source.read_text(encoding="utf-8").count(mutant.find)
    if count != 1:
        return f"{mutant.id}: its find text occurs {count} times in {mutant.file} (must be once)"
    if mutant.find == mutant.replace:
        return f"{mutant.id}: find and replace are the same text"
    if not mutant.kill:
        return f"{mutant.id}: names no test to kill it"
    missing = [test for test in mutant.kill if not (root / test.split("::")[0]).exists()]
    if missing:
        return f"{mutant.id}: kill names missing test files: {', '.join(missing)}"
    return None


def _pytest(tests: tuple[str, ...], pythonpath: Path | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TWINRUN_DEVICE": "cpu"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def run(mutant: Mutant) -> str:
    """``killed``, ``survived`` or ``error: ...`` for one mutant."""
    work = WORK / mutant.id
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "conf", work / "conf", ignore=ignore)  # config_dir() looks beside src/
    target = work / "src" / "twinrun" / mutant.file
    target.write_text(target.read_text(encoding="utf-8").replace(mutant.find, mutant.replace, 1))
    try:
        done = _pytest(mutant.kill, work / "src")
    except subprocess.TimeoutExpired:
        return "killed"  # a hang is a test noticing the change
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if done.returncode == 1:
        return "killed"
    if done.returncode == 0:
        return "survived"
    tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["(no output)"]
    return f"error: pytest exit {done.returncode}: {tail[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="mutants to run (default all)")
    parser.add_argument("--list", action="store_true", help="list the mutants, then exit")
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants in parallel")
    args = parser.parse_args(argv)
    mutants = load()
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id}: {mutant.file}  <-  {' '.join(mutant.kill)}\n    {mutant.why}")
        return 0
    unknown = sorted(set(args.ids) - {m.id for m in mutants})
    if unknown:
        parser.error(f"unknown mutant id(s) {', '.join(unknown)}; see --list")
    chosen = [m for m in mutants if not args.ids or m.id in args.ids]
    problems = [p for p in map(problem, chosen) if p]
    if problems:
        print("\n".join(f"semantic mutants: {p}" for p in problems), file=sys.stderr)
        return 2
    if args.check:
        print(f"semantic mutants: {len(chosen)} apply")
        return 0
    clean = _pytest(tuple(sorted({t for m in chosen for t in m.kill})), None)
    if clean.returncode != 0:
        print("semantic mutants: the kill tests fail on the unmutated code; fix them first", file=sys.stderr)
        print(clean.stdout[-3000:], file=sys.stderr)
        return 1
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(run, chosen))
    lines = ["## Semantic mutants", "", "| mutant | file | outcome | the bug |", "| --- | --- | --- | --- |"]
    lines += [f"| `{m.id}` | {m.file} | {o} | {m.why} |" for m, o in zip(chosen, outcomes, strict=True)]
    killed = outcomes.count("killed")
    lines += ["", f"Killed {killed} of {len(chosen)}."]
    report = "\n".join(lines) + "\n"
    print(report)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a") as out:
            out.write(report)
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
