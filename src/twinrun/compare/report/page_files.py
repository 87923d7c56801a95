"""The files the HTML report may read: exactly those the comparison read, regular files inside the run.

A run directory is untrusted input. The report's curves and pictures therefore never walk the run on
their own: they take the relative paths from the report's ``files`` section (so ignored folders such as
``wandb/`` and ``mlruns/`` stay unread), and each file is opened only when its real path lies inside its
run directory and it is a regular file no larger than the caller's limit. A FIFO, a device
(``-> /dev/zero``), a link that leaves the run, or a file that grows while it is read is skipped.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from twinrun.compare.report.model import IGNORED, FilesSection, Report

NOT_FILES = ("ignored", "link")  # files-section kinds that are no file the comparison read


@dataclass
class PageFiles:
    """Both runs' roots (resolved) and the relative paths the comparison read, sorted."""

    run_a: Path
    run_b: Path
    paths: list[str]
    skipped: list[str] = field(default_factory=list)  # "path: why" for files too large to show
    _texts: dict[tuple[str, str], str | None] = field(default_factory=dict, repr=False)  # read once

    @classmethod
    def from_report(cls, report: Report, run_a: str | Path, run_b: str | Path) -> PageFiles:
        section = report.sections.get("files")
        entries = section.files if isinstance(section, FilesSection) else []
        paths = sorted(
            {
                e.path
                for e in entries
                if e.kind not in NOT_FILES and e.verdict != IGNORED and "*" not in e.path
            }
        )
        return cls(_root(run_a), _root(run_b), paths)

    def named(self, *suffixes: str) -> list[str]:
        """The paths whose suffix (lower-cased) is one of ``suffixes``."""
        return [p for p in self.paths if Path(p).suffix.lower() in suffixes]

    def read_bytes(self, side: str, rel: str, limit: int) -> bytes | None:
        """The bytes of ``rel`` in run ``side`` ("a" or "b"); None when the comparison did not read it,
        it is no regular file inside the run, or it is larger than ``limit`` (then noted in ``skipped``)."""
        if rel not in self.paths:
            return None
        data = read_inside(self.run_a if side == "a" else self.run_b, rel, limit)
        if data is TOO_LARGE:
            size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} B"
            note = f"{rel}: larger than {size}, not shown"
            if note not in self.skipped:
                self.skipped.append(note)
            return None
        return data if isinstance(data, bytes) else None

    def read_text(self, side: str, rel: str, limit: int) -> str | None:
        """``read_bytes`` as UTF-8 text (undecodable bytes replaced), read once per page."""
        if (side, rel) not in self._texts:
            data = self.read_bytes(side, rel, limit)
            self._texts[side, rel] = None if data is None else data.decode("utf-8", errors="replace")
        return self._texts[side, rel]


TOO_LARGE = object()  # read_inside's answer for a regular file over the limit


def _root(run: str | Path) -> Path:
    return Path(os.path.realpath(Path(run).expanduser()))


def opened_inside(fd: int, root: Path) -> bool:
    """Whether the open file still lies inside ``root``: a folder of the path swapped for a link between
    ``realpath`` and ``open`` would show here (Linux's ``/proc``; elsewhere the earlier check stands)."""
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True
    return Path(opened).is_relative_to(root)


def read_inside(root: Path, rel: str, limit: int) -> bytes | object | None:
    """The bytes of ``root/rel`` when it is a regular file inside ``root`` (``root`` resolved) of at most
    ``limit`` bytes; :data:`TOO_LARGE` over the limit; None otherwise (missing, a FIFO, a device, a
    link out of the run, unreadable)."""
    real = os.path.realpath(root / rel)
    if not Path(real).is_relative_to(root) or real == str(root):
        return None
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)  # O_NONBLOCK: opening a FIFO never waits for a writer
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not opened_inside(fd, root):
            return None
        if info.st_size > limit:
            return TOO_LARGE
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)  # a file that grows while it is read stops here
    except OSError:
        return None
    finally:
        os.close(fd)
    return TOO_LARGE if len(data) > limit else data
