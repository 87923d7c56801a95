"""Mutation testing of the verification core with mutmut: score and survivors as a table.

    python tools/mutation.py                      every scope, one after the other
    python tools/mutation.py determinism trace    some scopes (names: --list)
    python tools/mutation.py --fail-under 95      exit 1 below that score (percent of mutants killed)

Each scope is a set of modules and the test files that are meant to kill their mutants. A scope runs in
its own copy of the checkout under ``build/mutation/<scope>/`` (mutmut writes ``mutants/`` and reads its
settings from the copy's ``pyproject.toml``, to which the scope's ``[tool.mutmut]`` table is appended);
mutmut runs each mutant against the tests of the selection that reached the mutated function.

The markdown table (score per module, then every survivor with its explanation from
``tests/mutation/survivors.md`` or "UNEXPLAINED") goes to stdout, to ``build/mutation/summary.md`` and,
on GitHub Actions, to ``$GITHUB_STEP_SUMMARY``. Exit status: 1 when the score is under --fail-under or a
survivor is unexplained, else 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
SURVIVORS = ROOT / "tests" / "mutation" / "survivors.md"
COPIED = ("src", "tests", "conf", "pyproject.toml")


@dataclass(frozen=True)
class Scope:
    modules: tuple[str, ...]  # files under src/
    tests: tuple[str, ...]  # test files or folders whose tests may kill the modules' mutants


COMPARE_TESTS = ("tests/unit/compare", "tests/helpers")
SCOPES = {
    "determinism": Scope(("src/twinrun/record/determinism.py",), ("tests/unit/record/test_determinism.py",)),
    "config": Scope(("src/twinrun/config.py",), ("tests/unit/test_config.py",)),
    "strategies": Scope(("src/twinrun/testing/strategies.py",), ("tests/unit/testing/test_strategies.py",)),
    "trace": Scope(("src/twinrun/record/trace.py",), ("tests/unit/record/test_trace.py",)),
    "divergence": Scope(("src/twinrun/compare/divergence.py",), COMPARE_TESTS),
    "compare": Scope(
        tuple(
            f"src/twinrun/compare/{name}.py"
            for name in ("runs", "run_reader", "weights_reader", "weights", "sections")
        ),
        COMPARE_TESTS,
    ),
}
# Everything but a survivor counts as killed: a timeout or a crash is a test noticing the change.
SURVIVED = {"survived", "no tests"}
NOT_RUN = {"not checked", "skipped"}
_NAME = re.compile(r"^(?P<module>[\w.]+)\.x[_\u01c1](?P<rest>.+)__mutmut_\d+$")


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def prepare(name: str, scope: Scope) -> Path:
    """A fresh copy of the checkout for one scope, with mutmut's settings for it."""
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    for item in COPIED:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, work / item, ignore=ignore)
        else:
            shutil.copy2(source, work / item)
    settings = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"only_mutate = {_toml_list(scope.modules)}",
            f"pytest_add_cli_args_test_selection = {_toml_list(scope.tests)}",
            # -p no:randomly: the same test order in the stats run and in every mutant's run.
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q", "-x"]',
            'also_copy = ["conf"]',
            # torch is not fork-safe once its thread pools run: fork mutants from a clean server.
            'process_isolation = "forkserver"',
            "",
        ]
    )
    with (work / "pyproject.toml").open("a") as pyproject:
        pyproject.write(settings)
    return work


def run_scope(work: Path, max_children: int) -> dict[str, str]:
    """Run mutmut in ``work``; ``{mutant name: status}``."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TWINRUN_DEVICE": "cpu"}
    mutmut = [sys.executable, "-m", "mutmut"]
    log = work / "mutmut.log"
    with log.open("w") as out:
        done = subprocess.run(
            [*mutmut, "run", "--max-children", str(max_children)], cwd=work, env=env, stdout=out, stderr=out
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutation: mutmut run failed in {work} (exit {done.returncode}); log tail:\n{tail}")
    listing = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True, check=True
    )
    results = {}
    for line in listing.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and _NAME.match(name):
            results[name] = status
    return results


def explanations() -> dict[str, str]:
    """``{mutant name: reason}`` from the survivors file's table rows (``| name | reason |``)."""
    found = {}
    if SURVIVORS.is_file():
        for line in SURVIVORS.read_text().splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) >= 2 and _NAME.match(cells[0].strip("`")):
                found[cells[0].strip("`")] = cells[-1]
    return found


def module_of(name: str) -> str:
    match = _NAME.match(name)
    return match["module"] if match else "?"


def summarize(results: dict[str, str], reasons: dict[str, str]) -> tuple[str, float, int]:
    """The markdown report, the score over all run mutants, and how many survivors are unexplained."""
    per_module: dict[str, Counter] = {}
    for name, status in results.items():
        counts = per_module.setdefault(module_of(name), Counter())
        counts["not run" if status in NOT_RUN else "survived" if status in SURVIVED else "killed"] += 1
    lines = ["## Mutation testing (mutmut)", "", "| module | mutants | killed | survived | score |"]
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    total = Counter()
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        lines.append(_row(module, counts))
    lines.append(_row("**all**", total))
    survivors = sorted(name for name, status in results.items() if status in SURVIVED)
    unexplained = [name for name in survivors if name not in reasons]
    lines += ["", f"Survivors: {len(survivors)} ({len(unexplained)} unexplained)", ""]
    if survivors:
        lines += ["| survivor | status | why it is equivalent or out of reach |", "| --- | --- | --- |"]
        lines += [f"| `{n}` | {results[n]} | {reasons.get(n, '**UNEXPLAINED**')} |" for n in survivors]
    run = total["killed"] + total["survived"]
    score = 100.0 * total["killed"] / run if run else 0.0
    return "\n".join(lines) + "\n", score, len(unexplained)


def _row(label: str, counts: Counter) -> str:
    run = counts["killed"] + counts["survived"]
    score = f"{100.0 * counts['killed'] / run:.1f}%" if run else "-"
    return f"| {label} | {run} | {counts['killed']} | {counts['survived']} | {score} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scopes", nargs="*", help=f"scopes to run (default all): {', '.join(SCOPES)}")
    parser.add_argument("--list", action="store_true", help="list the scopes and their modules, then exit")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="mutants in parallel")
    parser.add_argument("--fail-under", type=float, default=95.0, help="minimum score in percent")
    args = parser.parse_args(argv)
    if args.list:
        for name, scope in SCOPES.items():
            print(f"{name}: {' '.join(scope.modules)}  <-  {' '.join(scope.tests)}")
        return 0
    unknown = sorted(set(args.scopes) - set(SCOPES))
    if unknown:
        parser.error(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    results: dict[str, str] = {}
    for name in args.scopes or list(SCOPES):
        print(f"mutation: scope {name} ...", flush=True)
        results.update(run_scope(prepare(name, SCOPES[name]), args.max_children))
    report, score, unexplained = summarize(results, explanations())
    print(report)
    (WORK / "summary.md").write_text(report)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a") as out:
            out.write(report)
    if score < args.fail_under or unexplained:
        print(f"mutation: score {score:.1f}% (target {args.fail_under}%), {unexplained} unexplained")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
