"""``twinrun verify APP [overrides...]``: run a Hydra app N times in fresh processes and compare.

Each run is a fresh interpreter with its own ``PYTHONHASHSEED`` writing into its own run directory
(``hydra.run.dir=<workdir>/run-<i>``); its output goes to ``<workdir>/run-<i>.out``. Every pair of runs
is compared with :func:`twinrun.compare.runs.compare_runs`; what a run writes outside its run directory is
moved into it first (:mod:`twinrun.verify.outside`). The CLI removes its own temp work directory after
identical runs (:mod:`twinrun.verify.workdir`). :func:`verify_app` is the pure core; the CLI
(:mod:`twinrun.verify.cli`) is thin over it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from twinrun.verify import processes
from twinrun.verify.outside import TwinOutside
from twinrun.verify.outside_names import name_in, watch_for
from twinrun.verify.resolve import (
    APP_ERROR,
    KNOWN_APPS,
    AppCommand,
    VerifyError,
    check_overrides,
    hydra_quote,
    resolve_app,
)
from twinrun.verify.workdir import new_workdir, prepare_workdir

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from twinrun.compare.report.model import Report

# Re-exported from resolve: verify.apps is where callers have always found them.
__all__ = [
    "KNOWN_APPS",
    "AppCommand",
    "CompareOptions",
    "RunRecord",
    "VerifyError",
    "VerifyResult",
    "check_overrides",
    "hydra_quote",
    "launch_runs",
    "new_workdir",
    "prepare_workdir",
    "resolve_app",
    "run_once",
    "verify_app",
]
TAIL_LINES = 15


@dataclass
class RunRecord:
    """One finished run."""

    index: int
    run_dir: Path
    output: Path
    command: list[str]
    hash_seed: int
    seconds: float
    returncode: int
    outside: TwinOutside | None = None  # what it wrote outside its run directory (rule 3)


@dataclass
class VerifyResult:
    """All runs of one verification and the comparison of every pair (``pairs[(i, j)]``, 1-based)."""

    app: AppCommand
    workdir: Path
    runs: list[RunRecord]
    pairs: dict[tuple[int, int], Report] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return all(report.exit_code == 0 for report in self.pairs.values())

    @property
    def exit_code(self) -> int:
        return 0 if self.identical else 1

    @property
    def report(self) -> Report:
        """The first pair that differs, else the first pair: the one shown in full."""
        from twinrun.compare.report.model import shown_report

        shown = shown_report(self.pairs.values())
        assert shown is not None, "a verify result always has a pair"
        return shown

    @property
    def run_dirs(self) -> list[Path]:
        return [run.run_dir for run in self.runs]


def run_dict(record: RunRecord, dir_key: str = "run_dir") -> dict[str, Any]:
    """One run (or sweep) of a JSON report: where it wrote, its output, command and seed, its time."""
    return {
        dir_key: str(record.run_dir),
        "output": str(record.output),
        "command": record.command,
        "pythonhashseed": record.hash_seed,
        "seconds": round(record.seconds, 3),
        "outside": [
            {"path": w.rel, "action": w.action, "captured": w.captured}
            for w in (record.outside.written if record.outside else [])
        ],
    }


def pairs_list(pairs: Mapping[tuple[int, int], Report]) -> list[dict[str, Any]]:
    """Every compared pair of a JSON report: its run numbers, verdict and exit code."""
    return [{"a": i, "b": j, "verdict": r.verdict, "exit_code": r.exit_code} for (i, j), r in pairs.items()]


def _tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return text.splitlines()[-lines:]


def app_argv(command: AppCommand, overrides: Sequence[str], run_dir: Path, kind: str = "run") -> list[str]:
    """The command line of one run of the app into ``run_dir`` (a multirun's sweep dir for ``sweep``)."""
    multirun = ["--multirun"] if kind == "sweep" else []
    where = f"hydra.{'sweep' if kind == 'sweep' else 'run'}.dir={hydra_quote(str(run_dir))}"
    return [*command.argv, *multirun, *overrides, where]


def run_once(
    command: AppCommand,
    overrides: Sequence[str],
    run: int,
    runs: int,
    workdir: Path,
    progress: TextIO | None = None,
    cwd: str | Path | None = None,
    kind: str = "run",
    timeout: float | None = None,
) -> RunRecord:
    """Run the app once into ``workdir/<kind>-<run>`` in a fresh process; raise if it fails or runs
    longer than ``timeout`` seconds (then it is stopped first).

    ``kind="sweep"``: a Hydra multirun (``--multirun``) whose sweep directory is ``workdir/sweep-<run>``.
    """
    run_dir, output = workdir / f"{kind}-{run}", workdir / f"{kind}-{run}.out"
    argv = app_argv(command, overrides, run_dir, kind)
    # A different hash seed per run: set/dict-order bugs surface as differences.
    env = {**os.environ, "PYTHONHASHSEED": str(run), "PYTHONUNBUFFERED": "1"}
    label = f"{kind} {run}/{runs}"
    if progress is not None and not progress.isatty():
        progress.write(f"{label} ...")
        progress.flush()
    started = time.perf_counter()
    with output.open("wb") as out, processes.forwarded_signals():
        try:
            proc = processes.start(argv, out, env, cwd)
        except OSError as error:
            _progress_end(progress, label, "FAILED")  # the error goes on its own line, not after "..."
            raise VerifyError(
                f"{command.app} cannot be started ({error.strerror}): {argv[0]}; give a console script, "
                "module:function or script.py"
            ) from None
        try:
            finished = processes.wait(proc, label, progress, timeout)
        except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: do not leave the run behind
            processes.stop(proc)
            _progress_end(progress, label, "stopped")
            raise
        if not finished:
            processes.stop(proc)
    seconds = time.perf_counter() - started
    record = RunRecord(run, run_dir, output, argv, run, seconds, proc.returncode)
    state = "done" if finished and proc.returncode == 0 else "FAILED"
    state += "" if finished else f" (timed out after {timeout:g}s)"
    state += f" (exit {proc.returncode})" if finished and proc.returncode else ""
    _progress_end(progress, label, f"{state} in {seconds:.1f}s")
    if not finished:
        raise VerifyError(run_failure_message(record, timeout=timeout))
    if proc.returncode != 0:
        raise VerifyError(run_failure_message(record))
    return record


def _progress_end(progress: TextIO | None, label: str, state: str) -> None:
    """End a run's progress line (``run 1/2 ... done in 3.2s``)."""
    if progress is not None:
        prefix = f"\r{label} ..." if progress.isatty() else ""
        progress.write(f"{prefix} {state}\n")
        progress.flush()


def run_failure_message(record: RunRecord, timeout: float | None = None) -> str:
    """One line saying which run failed (or ran past ``timeout``), then the command and the last lines
    of its output."""
    name = record.run_dir.name.replace("-", " ", 1)  # "run 1", "sweep 2"
    tail = _tail(record.output)
    if timeout is None and tail and tail[-1].startswith(APP_ERROR):  # module:function without the function
        return f"{name} failed: {tail[-1].removeprefix(APP_ERROR)}"
    if timeout is not None:
        what = f"{name} did not finish within --timeout {timeout:g}s and was stopped"
    else:
        what = f"{name} failed with exit code {record.returncode}"
    lines = [
        f"{what}; its output is in {record.output}",
        f"  command: {subprocess.list2cmdline(record.command)}",
        f"  last lines of {record.output.name}:",
        *(f"    {line}" for line in tail),
    ]
    return "\n".join(lines)


def check_timeout(timeout: float | None) -> float | None:
    """``--timeout``: None (no limit) or a number of seconds > 0."""
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if timeout is not None and not (number and 0 < timeout < float("inf")):
        shown = f"{timeout:g}" if isinstance(timeout, float) else repr(timeout)
        raise VerifyError(f"--timeout {shown}: give a number of seconds > 0")
    return timeout


def launch_runs(
    app: str | AppCommand,
    overrides: Sequence[str],
    runs: int,
    workdir: str | Path | None,
    *,
    progress: TextIO | None = None,
    cwd: str | Path | None = None,
    kind: str = "run",
    timeout: float | None = None,
) -> tuple[AppCommand, Path, list[RunRecord]]:
    """Validate, then start ``app`` ``runs`` times in fresh processes (``kind``: "run" or "sweep"),
    each limited to ``timeout`` seconds."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2:
        raise VerifyError(f"--runs {runs} is too few; verify needs at least 2 {kind}s")
    timeout = check_timeout(timeout)
    command = app if isinstance(app, AppCommand) else resolve_app(app)
    overrides = check_overrides(overrides)
    directory = prepare_workdir(workdir, runs, kind=kind)
    if progress is not None:
        progress.write(
            f"twinrun verify: {runs} {kind}s of {command.app}; {kind} directories in {directory}\n"
        )
    watch = watch_for(cwd, command.argv, command.kind, command.app, directory)
    records = []
    try:
        for i in range(1, runs + 1):
            watch.before()
            record = run_once(
                command, overrides, i, runs, directory, progress, cwd, kind=kind, timeout=timeout
            )
            # After a run that failed, what it wrote stays where it is: no next run, and the user looks.
            record.outside = watch.after(i, directory / f"{kind}-{i}")
            records.append(record)
    finally:
        watch.close()
    return command, directory, records


@dataclass(frozen=True)
class CompareOptions:
    """What verify (also for sweeps and DDP) passes to :func:`~twinrun.compare.runs.compare_runs`."""

    trust_pickle: bool = False
    ignore: tuple[str, ...] = ()


NO_OPTIONS = CompareOptions()


def left_nothing(run_dir: Path) -> bool:
    """True when ``run_dir`` holds no file beyond Hydra's own (``.hydra/``, the job's ``*.log``)."""
    if not run_dir.is_dir():
        return True
    return not any(
        path.is_file() and path.relative_to(run_dir).parts[0] != ".hydra" and path.suffix != ".log"
        for path in run_dir.rglob("*")
    )


def compare_pair(a: Path, b: Path, app: str, options: CompareOptions = NO_OPTIONS) -> Report:
    """Compare two runs of ``app``; an unusable run that left nothing is told to write into its run dir."""
    from twinrun.compare.runs import UnusableRunError, compare_runs

    try:
        return compare_runs(a, b, trust_pickle=options.trust_pickle, ignore=options.ignore)
    except UnusableRunError as error:
        if not (left_nothing(a) or left_nothing(b)) or "hydra.run.dir" in str(error):
            raise
        raise UnusableRunError(f"{error} (did {app} write into hydra.run.dir?)") from None


def verify_app(
    app: str | AppCommand,
    overrides: Sequence[str] = (),
    runs: int = 2,
    workdir: str | Path | None = None,
    *,
    progress: TextIO | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    options: CompareOptions = NO_OPTIONS,
) -> VerifyResult:
    """Run ``app`` with ``overrides`` ``runs`` times in fresh processes (each at most ``timeout``
    seconds) and compare every pair with ``options``.

    Raises :class:`VerifyError` (unknown app, bad overrides, a failed or timed-out run) or
    :class:`twinrun.compare.read.run_reader.UnusableRunError` (a run left nothing comparable).
    """
    command, directory, records = launch_runs(
        app, overrides, runs, workdir, progress=progress, cwd=cwd, timeout=timeout
    )
    result = VerifyResult(command, directory, records)
    for a, b in itertools.combinations(records, 2):
        result.pairs[(a.index, b.index)] = compare_pair(a.run_dir, b.run_dir, command.app, options)
        # Rule 3: the report names what either run wrote outside its run directory.
        name_in(result.pairs[(a.index, b.index)].hints, [r.outside for r in records], a.index, b.index)
    return result
