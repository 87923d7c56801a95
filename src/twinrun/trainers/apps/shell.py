"""What every app shell does around ``train``: find the run directory, turn errors into one line.

Bad input ends the process with one line on stderr and exit code 2, never a traceback: a
:class:`TwinrunError` raised by ``train``, and (through :func:`app_main`) Hydra's own errors before the job
starts: an unknown config option, an override that does not parse, a run directory Hydra cannot create.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from twinrun.errors import TwinrunError, first_line
from twinrun.record.lock import claim_run_dir, run_dir_lock

log = logging.getLogger("twinrun")
Task = Callable[[DictConfig], None]


def fail(message: str, app: str | None = None) -> None:
    """Exit 2 with ``<app>: error: <message>`` on stderr (one line), also recorded in the job's log file."""
    app = app or Path(sys.argv[0]).name or "twinrun"
    line = " ".join(message.split())  # one line, whatever the message held
    for handler in logging.getLogger().handlers:  # the log file only: the console is stderr's line
        if isinstance(handler, logging.FileHandler):
            handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, line, (), None))
    print(f"{app}: error: {line}", file=sys.stderr, flush=True)
    sys.exit(2)


def run_under_hydra(train: Callable[[DictConfig, Path], Any], cfg: DictConfig) -> None:
    """Call ``train(cfg, <Hydra's output dir>)``; a :class:`TwinrunError` exits 2 with one line."""
    if hasattr(signal, "SIGXFSZ"):
        # A file-size limit (ulimit -f) would kill the process mid-write; ignored, the write fails with
        # EFBIG and the writer reports it in one line.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    logging.raiseExceptions = False  # a full disk must not print a traceback per log line
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        train(cfg, run_dir)
    except TwinrunError as error:
        fail(str(error))


def app_main(config_name: str, config_path: str | None = None) -> Callable[[Task], Callable[[], None]]:
    """``hydra.main`` for twinrun's apps, with Hydra's own errors as one line and exit 2.

    Use as ``@app_main(APP_NAME)`` over ``def main(cfg): run_under_hydra(train, cfg)``.
    """
    import hydra

    from twinrun.config import config_dir

    def decorate(task: Task) -> Callable[[], None]:
        started = False

        @functools.wraps(task)
        def job(cfg: DictConfig) -> None:
            nonlocal started
            started = True
            try:
                task(cfg)
            except Exception as exc:
                # Inside the job: Hydra would print "Error executing job with overrides" before our line.
                message = hydra_error(exc, job_started=True)
                if message is None:
                    raise
                fail(message)

        hydra_main = hydra.main(
            version_base="1.3", config_path=config_path or str(config_dir()), config_name=config_name
        )(job)

        @functools.wraps(task)
        def main() -> None:
            _check_arguments()
            try:
                with _hydra_raises():
                    hydra_main()
            except Exception as exc:
                message = hydra_error(exc, job_started=started)
                if message is None:
                    raise
                fail(message)

        return main

    return decorate


def _check_arguments() -> None:
    """Parse the command line as Hydra will, but a usage error is one line (argparse prints 8 lines of
    usage: e.g. overrides after ``-m`` when some came before it)."""
    try:
        from hydra._internal.utils import get_args_parser
    except ImportError:  # another Hydra: it reports usage errors itself
        return
    parser = get_args_parser()

    def error(message: str) -> None:
        # argparse takes one run of overrides: options between them leave the rest unrecognized
        hint = " (give the options first, then all overrides)" if "unrecognized" in message else ""
        fail(f"{message}{hint}; see {parser.prog} --help")

    parser.error = error  # type: ignore[method-assign]
    parser.parse_args(sys.argv[1:])


@contextlib.contextmanager
def _hydra_raises() -> Iterator[None]:
    """Hydra prints its errors (12 lines for an unknown option) and exits 1 unless HYDRA_FULL_ERROR is set;
    set, it raises them, and :func:`hydra_error` makes them one line."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def hydra_error(exc: BaseException, *, job_started: bool = False) -> str | None:
    """One line for an error Hydra raises before or around the job; None for anything else (a bug).

    An ``OSError`` counts only before the job started: Hydra creating the run directory or ``.hydra/``.
    """
    from hydra.errors import (
        HydraException,
        InstantiationException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        choices = ", ".join(exc.options or []) or "none"
        return f"{group}={option} is not an option of the config group {group}; choose one of {choices}"
    if isinstance(exc, OSError) and not job_started:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror or first_line(exc)}; choose a writable hydra.run.dir"
    if isinstance(exc, OverrideParseException):
        return f"the override {exc.override!r} does not parse ({first_line(exc)}); see the override grammar"
    if isinstance(exc, HydraException | OmegaConfBaseException):
        cause = exc.__cause__
        if isinstance(exc, InstantiationException) and cause is not None:  # "Error in call to target 'X':"
            return f"{first_line(exc).rstrip(':')}: {type(cause).__name__}: {first_line(cause)}"
        return first_line(exc)
    return None


class RunDirLockCallback(Callback):
    """``hydra.callbacks`` entry: lock the run directory before Hydra writes ``.hydra/`` and the log into it.

    ``fit`` takes the same lock (re-entrant within a process), which covers ``train(cfg, run_dir)`` after
    ``compose``; under ``@hydra.main`` only this callback keeps a second launch into a busy or finished
    directory from overwriting the first one's ``.hydra/config.yaml``.
    """

    def __init__(self) -> None:
        self._held = contextlib.ExitStack()

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 holds the run directory (as in fit)
            return
        run_dir = Path(str(OmegaConf.select(config, "hydra.run.dir"))).absolute()
        try:
            resume_from = OmegaConf.select(config, "training.resume_from", default=None)
        except Exception:  # an interpolation that does not resolve: fit reports it in one line
            resume_from = None
        # Hydra turns a callback's exception into a warning and runs the job anyway: exit here instead.
        try:
            self._held.enter_context(run_dir_lock(run_dir))
            claim_run_dir(run_dir, resume_from)
        except TwinrunError as error:
            self._held.close()
            fail(str(error))

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._held.close()
