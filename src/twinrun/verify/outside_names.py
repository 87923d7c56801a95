"""Rule 3, the edges: where to watch (the working directory, the app's own folder) and what the
report says about the files a twin wrote outside its run directory (:mod:`twinrun.verify.outside`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from twinrun.verify.outside import OUTSIDE_DIR, OutsideWatch, TwinOutside


def describe(twins: Sequence[TwinOutside], a: int, b: int) -> list[str]:
    """The report's lines about runs ``a`` and ``b``: what each wrote outside, what one left the other."""
    lines: list[str] = []
    for twin in twins:
        if twin.run not in (a, b):
            continue
        captured = [w.rel for w in twin.written if w.captured]
        if captured:
            shown = ", ".join(captured[:5]) + (f" +{len(captured) - 5} more" if len(captured) > 5 else "")
            lines.append(
                f"run {twin.run} wrote {shown} outside its run directory; moved to its {OUTSIDE_DIR}/ and "
                "compared there: save into the run directory (HydraConfig.get().runtime.output_dir) instead"
            )
        lines += twin.notes
        for rel in twin.found:
            lines.append(
                f"run {twin.run} found {rel} already there, left by an earlier run: a file made during a "
                "run and read by the next (a data cache) is a classic cause of twins that differ"
            )
    return list(dict.fromkeys(lines))


def app_folder(argv: Sequence[str], kind: str, app: str) -> Path | None:
    """The app's own folder, when it is the user's: a script's folder, a module's (not an installed one)."""
    import importlib.util
    import sys
    import sysconfig

    if kind == "script":
        return Path(argv[-1]).resolve().parent
    if kind != "module" or ":" not in app:
        return None  # a console script lives in an environment's bin/; torchrun wraps another command
    try:
        spec = importlib.util.find_spec(app.split(":")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    folder = Path(spec.origin).resolve().parent
    installed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"])}
    return None if any(folder.is_relative_to(p) for p in installed) else folder


def watch_for(
    cwd: str | Path | None, argv: Sequence[str], kind: str, app: str, workdir: Path
) -> OutsideWatch:
    """The watch of one verify (or fixture) call: its working directory and the app's folder, minus
    ``workdir`` (where the runs go, and the restore copies in ``workdir/.twinrun-outside-backup``)."""
    return OutsideWatch(
        Path(cwd) if cwd is not None else Path.cwd(),
        app_folder(argv, kind, app),
        [workdir],
        workdir / ".twinrun-outside-backup",
    )


def name_in(hints: list[str], twins: Sequence[TwinOutside | None], a: int, b: int) -> None:
    """Put first among a report's ``hints`` what runs ``a`` and ``b`` wrote outside their run directories."""
    lines = describe([t for t in twins if t is not None], a, b)
    hints[:0] = [line for line in lines if line not in hints]


def function_folder(function: object) -> Path | None:
    """The folder of the file that defines ``function`` (a test's train), unless it is installed."""
    import inspect
    import sys
    import sysconfig

    try:
        source = inspect.getsourcefile(inspect.unwrap(function))  # type: ignore[arg-type]
    except TypeError:
        return None
    if source is None or not os.path.isfile(source):
        return None
    folder = Path(source).resolve().parent
    installed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"])}
    return None if any(folder.is_relative_to(p) for p in installed) else folder
