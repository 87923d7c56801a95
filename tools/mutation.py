"""Mutation testing of the verification core with mutmut: score and survivors as a table.

    python tools/mutation.py                      every scope, one after the other
    python tools/mutation.py determinism trace    some scopes (names: --list)
    python tools/mutation.py --fail-under 95      exit 1 below that score (percent of mutants killed)

Each scope is a set of modules and the test files that are meant to kill their mutants. A scope runs in
its own copy of the checkout under ``build/mutation/<scope>/`` (mutmut writes ``mutants/`` and reads its
settings from the copy's ``pyproject.toml``, to which the scope's ``[tool.mutmut]`` table is appended);
mutmut runs each mutant against the tests of the selection that reached the mutated function.

The markdown table (score per module, then every survivor with its explanation from
``tests/mutation/<scope>.md`` or "UNEXPLAINED") goes to stdout, to ``build/mutation/summary.md`` and,
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
SURVIVORS = ROOT / "tests" / "mutation"  # one markdown file per scope: <scope>.md
COPIED = ("src", "tests", "conf", "docs", "pyproject.toml")  # some tests read docs/


@dataclass(frozen=True)
class Scope:
    modules: tuple[str, ...]  # files under src/
    tests: tuple[str, ...]  # test files or folders whose tests may kill the modules' mutants
    # Test files left out: slow end-to-end checks (a trained run per example, a 10,000-step page) that
    # would be rerun for every mutant and are not where these modules' behaviour is pinned down.
    skip: tuple[str, ...] = ()


def _compare(*names: str) -> tuple[str, ...]:
    return tuple(f"src/twinrun/compare/{name}.py" for name in names)


COMPARE_TESTS = ("tests/unit/compare",)
COMPARE_SKIP = ("tests/unit/compare/test_damage.py", "tests/unit/compare/report/test_html.py")
SCOPES = {
    "determinism": Scope(("src/twinrun/record/determinism.py",), ("tests/unit/record/test_determinism.py",)),
    "config": Scope(("src/twinrun/config.py",), ("tests/unit/test_config.py",)),
    "strategies": Scope(("src/twinrun/testing/strategies.py",), ("tests/unit/testing/test_strategies.py",)),
    "trace": Scope(
        ("src/twinrun/record/trace.py",),
        ("tests/unit/record/test_trace.py", "tests/unit/record/test_recorder.py"),
    ),
    "divergence": Scope(_compare("judge/divergence"), COMPARE_TESTS, COMPARE_SKIP),
    # the comparer: compare_runs, the contract's sections and the one verdict rule (report/model.decide)
    "compare": Scope(_compare("runs", "judge/sections", "report/model"), COMPARE_TESTS, COMPARE_SKIP),
    # element-wise tensor comparison (dtype, ULP distance, closeness, first difference across chunks)
    "weights": Scope(_compare("judge/weights"), COMPARE_TESTS, COMPARE_SKIP),
    # tensor files pair by pair, and the merged tensors section
    "tensors": Scope(_compare("judge/tensors"), COMPARE_TESTS, COMPARE_SKIP),
    # readers: run directories, configs, logs and the weights files
    "readers": Scope(_compare("read/run_reader", "read/weights_reader"), COMPARE_TESTS, COMPARE_SKIP),
}
# Everything but a survivor counts as killed: a timeout or a crash is a test noticing the change.
SURVIVED = {"survived", "no tests"}
NOT_RUN = {"not checked", "skipped"}
_NAME = re.compile(r"^(?P<module>[\w.]+)\.x[_\u01c1](?P<rest>.+)__mutmut_\d+$")


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def prepare(name: str, scope: Scope, *, reuse: bool = False) -> Path:
    """A copy of the checkout for one scope, with mutmut's settings for it.

    Fresh unless ``reuse``: then the previous copy's ``mutants/`` (and its results) is kept, the checkout
    is copied over it, and the modules' unmutated copies are dropped so mutmut takes them anew; mutmut
    itself re-mutates the functions that changed (their results are reset) and learns the new tests.
    """
    work = WORK / name
    if not reuse or not (work / "mutants").is_dir():
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    for item in COPIED:
        source = ROOT / item
        if source.is_dir():
            shutil.rmtree(work / item, ignore_errors=True)
            shutil.copytree(source, work / item, ignore=ignore)
        else:
            shutil.copy2(source, work / item)
    mutated = {str(Path("mutants") / module) for module in scope.modules}
    for stale in (work / "mutants" / "src").rglob("*.py"):
        if str(stale.relative_to(work)) not in mutated:
            stale.unlink()
    pytest_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q", "-x"]
    pytest_args += [f"--ignore={test}" for test in scope.skip]
    settings = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"only_mutate = {_toml_list(scope.modules)}",
            f"pytest_add_cli_args_test_selection = {_toml_list(scope.tests)}",
            # -p no:randomly: the same test order in the stats run and in every mutant's run.
            f"pytest_add_cli_args = {_toml_list(pytest_args)}",
            'also_copy = ["conf", "docs"]',
            # torch is not fork-safe once its thread pools run: fork mutants from a clean server.
            'process_isolation = "forkserver"',
            "",
        ]
    )
    with (work / "pyproject.toml").open("a") as pyproject:
        pyproject.write(settings)
    return work


def _mutmut(work: Path, *args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TWINRUN_DEVICE": "cpu"}
    command = [sys.executable, "-m", "mutmut", *args]
    if log is None:
        return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=True)
    # Examples hypothesis saved while mutants ran would be replayed in the next clean run and change
    # what ``find`` returns there: every run starts without them.
    shutil.rmtree(work / "mutants" / ".hypothesis", ignore_errors=True)
    with log.open("a") as out:
        done = subprocess.run(command, cwd=work, env=env, stdout=out, stderr=out)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        failed = f"mutation: mutmut {args[0]} failed in {work} (exit {done.returncode})"
        raise SystemExit(f"{failed}; log tail:\n{tail}")
    return done


def results_of(work: Path) -> dict[str, str]:
    """``{mutant name: status}`` of the last mutmut run in ``work``."""
    results = {}
    for line in _mutmut(work, "results", "--all", "true").stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and _NAME.match(name):
            results[name] = status
    return results


def run_scope(work: Path, max_children: int, *, rerun_survivors: bool = False) -> dict[str, str]:
    """Run mutmut in ``work`` (then, if asked, the survivors again: new tests may kill them)."""
    log = work / "mutmut.log"
    log.write_text("")
    _mutmut(work, "run", "--max-children", str(max_children), log=log)
    results = results_of(work)
    survivors = sorted(name for name, status in results.items() if status in SURVIVED)
    if rerun_survivors and survivors:
        _mutmut(work, "run", "--max-children", str(max_children), *survivors, log=log)
        results = results_of(work)
    return results


def explanations() -> dict[str, str]:
    """``{mutant name: reason}`` from the survivors files' table rows (``| name | change | reason |``)."""
    found = {}
    for survivors in sorted(SURVIVORS.glob("*.md")):
        for line in survivors.read_text().splitlines():
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
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep each scope's earlier results: run only changed functions' mutants, then the survivors",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="no mutmut run: the table from the scopes' last results"
    )
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
        if args.report_only:
            if not (WORK / name / "mutants").is_dir():
                parser.error(f"no results for scope {name} in {WORK / name}: run it first")
            results.update(results_of(WORK / name))
            continue
        print(f"mutation: scope {name} ...", flush=True)
        work = prepare(name, SCOPES[name], reuse=args.reuse)
        results.update(run_scope(work, args.max_children, rerun_survivors=args.reuse))
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
