"""Compose-versus-command-line parity: the same overrides, run two ways, must leave the same run.

One run is made in the test process: ``compose`` (with the app's own ``hydra`` node) and a Hydra run
set up as ``@hydra.main`` sets it up (:func:`twinrun.testing.hydra_task.hydra_run`), then
``train(cfg, run_dir)`` or the task ``task(cfg)``. The other is the app's command line in a fresh
process, started as ``twinrun verify`` starts it. Both directories are compared by
:func:`twinrun.compare.runs.compare_runs`, and their file lists must match: a file that only one way
leaves is a difference too. Hydra's ``compose`` and ``@hydra.main`` differ in ways that are hard to
see (the ``hydra`` node, the working directory, logging, environment variables read at import):
this check makes them visible, naming the files that differ.

One difference is not the app's: a script run from the command line is the module ``__main__``, the
same file imported by a test is ``src.train``, so ``logging.getLogger(__name__)`` names its records
differently in the two logs. When APP is a script, the compose run's records from that script's own
module are logged under ``__main__`` (and its children ``__main__.x``), as the command line logs them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twinrun.compare.report.model import Report

COMPOSE_RUN = "compose"
CLI_KIND = "cli"  # the command-line run's directory is <workdir>/cli-1, its output cli-1.out


@dataclass
class ParityResult:
    """A compose run and a command-line run of the same overrides, and their comparison."""

    compose_dir: Path
    cli_dir: Path
    report: Report
    only_in_compose: list[str] = field(default_factory=list)
    only_in_cli: list[str] = field(default_factory=list)

    @property
    def differing_files(self) -> list[str]:
        """Every file (relative path) that differs or that only one of the two runs left."""
        named = report_files(self.report)
        named += [f"{name} (only in the compose run)" for name in self.only_in_compose]
        named += [f"{name} (only in the command-line run)" for name in self.only_in_cli]
        return named

    @property
    def identical(self) -> bool:
        return self.report.exit_code == 0 and not (self.only_in_compose or self.only_in_cli)

    @property
    def verdict(self) -> str:
        return "identical" if self.identical else "different"

    def text(self) -> str:
        from twinrun.compare.report.render import render_text

        files = "\n".join(f"  {name}" for name in self.differing_files) or "  (none)"
        return f"differing files:\n{files}\n\n{render_text(self.report)}"

    def assert_identical(self) -> None:
        """Raise ``AssertionError`` naming the differing files, with the text report."""
        if not self.identical:
            raise AssertionError(
                f"the compose run ({self.compose_dir}) and the command-line run ({self.cli_dir}) differ "
                f"in {', '.join(self.differing_files)}\n{self.text()}"
            )


def file_list(report: Report) -> list[Any] | None:
    """The report's per-file entries (its ``files`` section), or None from a comparer without one."""
    section = report.sections.get("files")
    entries = getattr(section, "files", None)
    if entries and all(hasattr(entry, "differs") for entry in entries):
        return list(entries)
    return None


def report_files(report: Report) -> list[str]:
    """The files a report says differ, named by their path in the run directory."""
    from twinrun.compare.report.model import DIFFERENT
    from twinrun.record import runs

    entries = file_list(report)
    if entries is not None:
        return [e.path if e.verdict == DIFFERENT else f"{e.path} ({e.verdict})" for e in entries if e.differs]
    # A comparer that reports by section: each differing section names its file.
    section_file = {"weights": runs.WEIGHTS, "metrics": runs.METRICS, "trace": runs.TRACE}
    named: list[str] = []
    for name, section in report.sections.items():
        if section.status != DIFFERENT or not section.affects_verdict:
            continue
        if name == "config":
            named.append(getattr(section, "source_a", None) or runs.RESOLVED_CONFIG)
        elif name == "logs":
            named += [f.name_a for f in getattr(section, "files", []) if f.differing_lines]
        else:
            named.append(section_file.get(name, f"({name})"))
    return list(dict.fromkeys(named))


def _files(run_dir: Path) -> set[str]:
    return {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}


def script_module(script: str | Path) -> str | None:
    """The name under which ``script`` is imported in this process (``src.train``), if it is."""
    target = Path(script).resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name != "__main__" and file and Path(file).resolve() == target:
            return name
    return None


class _AsMain(logging.Filter):
    """Rename records of module ``name`` (and its child loggers) to ``__main__``, as a script logs them."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.module = name

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == self.module or record.name.startswith(self.module + "."):
            record.name = "__main__" + record.name[len(self.module) :]
        return True


@contextlib.contextmanager
def logged_as_main(module: str | None) -> Iterator[None]:
    """While the block runs, the root handlers log ``module``'s records as ``__main__``'s."""
    handlers = list(logging.getLogger().handlers) if module else []
    rename = _AsMain(module or "")
    for handler in handlers:
        handler.addFilter(rename)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(rename)


def run_parity(
    app: str,
    train: Callable[..., Any],
    config_name: str,
    overrides: Sequence[str] = (),
    *,
    workdir: Path,
    config_dir: str | Path | None = None,
    cli_overrides: Sequence[str] = (),
    cwd: str | Path | None = None,
) -> ParityResult:
    """Run ``train`` (``train(cfg, run_dir)`` or a task ``task(cfg)``) on ``compose(config_name,
    overrides)`` in this process, and ``app`` with ``overrides`` in a fresh process; compare the two.

    ``cli_overrides`` go to the command line only (Hydra's own keys the command line needs, or a
    planted difference); ``cwd`` is the command line's working directory.
    """
    from twinrun.compare.runs import compare_runs
    from twinrun.testing.compose import compose_config
    from twinrun.testing.hydra_task import as_task, hydra_run, job_name
    from twinrun.testing.twins import preserved_global_state, scramble_global_rngs
    from twinrun.verify.apps import check_overrides, resolve_app, run_once
    from twinrun.verify.outside import OutsideWatch
    from twinrun.verify.outside_names import function_folder, name_in, watch_for

    command = resolve_app(app)  # unusable input fails before anything runs
    cli_args = check_overrides([*overrides, *cli_overrides])
    workdir = Path(workdir)
    compose_dir = workdir / COMPOSE_RUN
    cfg = compose_config(config_name, overrides, config_dir, return_hydra_config=True)
    task = as_task(train)
    # Rule 3: files either run writes outside its run directory move into it ("run 1": the compose run).
    watch = OutsideWatch(Path.cwd(), function_folder(train), [workdir], workdir / ".twinrun-outside-backup")
    main_module = script_module(command.argv[-1]) if command.kind == "script" else None
    twins = []
    try:
        watch.before()
        with preserved_global_state():
            scramble_global_rngs()
            run = hydra_run(cfg, compose_dir, job_name(train), overrides)
            with run as job_cfg, logged_as_main(main_module):
                task(job_cfg) if task is not None else train(job_cfg, compose_dir)
        twins.append(watch.after(1, compose_dir))
    finally:
        watch.close()
    cli_dir = workdir / f"{CLI_KIND}-1"
    cli_watch = watch_for(cwd, command.argv, command.kind, command.app, workdir)
    try:
        cli_watch.before()
        run_once(command, cli_args, 1, 1, workdir, cwd=cwd, kind=CLI_KIND)
        twins.append(cli_watch.after(2, cli_dir))
    finally:
        cli_watch.close()
    report = compare_runs(compose_dir, cli_dir)
    name_in(report.hints, twins, 1, 2)
    if file_list(report) is not None:  # the comparer judged every file, those only one run left too
        return ParityResult(compose_dir, cli_dir, report)
    a, b = _files(compose_dir), _files(cli_dir)
    return ParityResult(compose_dir, cli_dir, report, sorted(a - b), sorted(b - a))
