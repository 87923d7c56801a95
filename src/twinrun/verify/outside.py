"""Rule 3: what a twin writes outside its run directory is part of the run.

:class:`OutsideWatch` snapshots the working directory (and the app's own folder) before each twin: path,
size, mtime and inode of every file, skipping ``.git``, virtual environments, caches and verify's own
work directory. After the twin, every file it created or modified there is *moved* into its run
directory as ``outside/<relative path>`` (``outside/@app/...`` for the app's folder) and the tree is put
back as it was (a modified file gets its earlier bytes back), so the next twin starts from the same
state and cannot overwrite what this one left. The captured files are then compared like any other.
Work directories of verify and the fixtures carry a marker file and are never looked into, so two
verifies started from one directory at once do not take each other's runs for outside writes; any
other process writing there meanwhile would be, so run nothing else there. Bounded: at most
:data:`MAX_SCANNED` files looked at, :data:`MAX_CAPTURED` files and :data:`MAX_CAPTURED_BYTES` moved;
what is left in place is said, and a file one twin left that the next found already there is named as
the classic cause of twins that differ (a cache made during the run).
Record-agnostic: used by ``verify`` and by the pytest fixtures (:mod:`twinrun.testing.twins`).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

OUTSIDE_DIR = "outside"
# Put in every work directory of a watch: another verify (or fixture) running from the same directory at
# the same time is never taken for files this twin wrote.
WORK_MARKER = ".twinrun-workdir"
APP_PREFIX = "@app"
MAX_SCANNED = 20_000  # files looked at per snapshot
MAX_CAPTURED = 200  # files moved into one twin's run directory
MAX_CAPTURED_BYTES = 1 << 30  # bytes moved into one twin's run directory
MAX_BACKUP_FILE = 16 << 20  # pre-existing files kept for restoring: each at most this ...
MAX_BACKUP_BYTES = 256 << 20  # ... and all together at most this
SKIP_DIRS = (
    ".twinrun-outside-backup",
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "node_modules",
    "__pycache__",
    ".cache",  # ~/.cache when run from the home directory: datasets, model hubs
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".ipynb_checkpoints",
    ".eggs",
    "*.egg-info",
    "twinrun-verify-*",
    ".twinrun-outside-*",
)
SKIP_FILES = ("*.pyc", ".coverage", ".coverage.*", "*.swp", ".DS_Store")


@dataclass(frozen=True)
class Stat:
    size: int
    mtime_ns: int
    ino: int


@dataclass
class Written:
    """One file a twin wrote outside its run directory."""

    rel: str  # as captured under outside/ ("model.pt", "@app/cache.bin")
    action: str  # created | modified | deleted
    captured: bool  # moved into the run directory (False: left in place, over a bound)


@dataclass
class TwinOutside:
    """What one twin wrote outside its run directory, and what the watch had to leave undone."""

    run: int
    written: list[Written] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)  # left by an earlier twin and found there by this one


def _skipped(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


class OutsideWatch:
    """Snapshot ``roots`` before each twin, capture what it wrote after (see the module docstring)."""

    def __init__(self, cwd: Path, app_dir: Path | None, exclude: Sequence[Path], backup_dir: Path) -> None:
        cwd = Path(cwd).resolve()
        self.roots: dict[str, Path] = {"": cwd}
        if app_dir is not None:
            app = Path(app_dir).resolve()
            if not app.is_relative_to(cwd) and not cwd.is_relative_to(app):
                self.roots[APP_PREFIX] = app
        self.exclude = [Path(p).resolve() for p in exclude]
        for folder in self.exclude:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / WORK_MARKER).touch()
            except OSError:
                pass  # not ours to write: excluded by path all the same
        self.backup_dir = backup_dir
        self.backups: dict[str, Path] = {}
        self.linked: set[str] = set()  # backups that are hard links
        self._first_seen: dict[str, Stat] = {}
        self.notes: list[str] = []
        self._before: dict[str, Stat] = {}
        self._left: dict[str, int] = {}  # files a twin left in place -> that twin's number
        self._first = True

    def _path(self, rel: str) -> Path:
        prefix, _, rest = rel.partition("/")
        return self.roots[prefix] / rest if prefix == APP_PREFIX else self.roots[""] / rel

    def snapshot(self) -> dict[str, Stat]:
        """Every file under the roots (bounded), by its ``outside/`` name."""
        found: dict[str, Stat] = {}
        for prefix, root in self.roots.items():
            pending = [root]
            while pending and len(found) < MAX_SCANNED:
                folder = pending.pop()
                if any(folder == p or folder.is_relative_to(p) for p in self.exclude):
                    continue
                if folder != root and (folder / "pyvenv.cfg").exists():
                    continue  # a virtual environment
                if (folder / WORK_MARKER).exists():
                    continue  # a work directory of this or of another verify running beside it
                try:
                    entries = list(os.scandir(folder))
                except OSError:
                    continue
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if not _skipped(entry.name, SKIP_DIRS):
                                pending.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False) and not _skipped(entry.name, SKIP_FILES):
                            st = entry.stat(follow_symlinks=False)
                            rel = Path(entry.path).relative_to(root).as_posix()
                            found[f"{prefix}/{rel}" if prefix else rel] = Stat(
                                st.st_size, st.st_mtime_ns, st.st_ino
                            )
                    except OSError:
                        continue
            if len(found) >= MAX_SCANNED:
                note = f"stopped looking for files written outside the run directory after {MAX_SCANNED}"
                if note not in self.notes:
                    self.notes.append(note + f" files under {root}; run the app from a smaller directory")
        return found

    def before(self) -> None:
        """Call right before a twin starts."""
        self._before = self.snapshot()
        if self._first:
            self._first = False
            self._first_seen = dict(self._before)
            self._backup(self._before)

    def _backup(self, files: dict[str, Stat]) -> None:
        """Keep the bytes of pre-existing files, to restore those a twin modifies: a hard link (free;
        it keeps the old bytes when the file is replaced, not when it is written in place), else a
        copy of small files (bounded)."""
        total = 0
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        for index, (rel, st) in enumerate(sorted(files.items())):
            target = self.backup_dir / str(index)
            try:
                os.link(self._path(rel), target)
                self.linked.add(rel)
            except OSError:
                if st.size > MAX_BACKUP_FILE or total + st.size > MAX_BACKUP_BYTES:
                    continue
                try:
                    shutil.copyfile(self._path(rel), target)
                except OSError:
                    continue
                total += st.size
            self.backups[rel] = target

    def _restorable(self, rel: str, now: Stat) -> bool:
        """A kept copy, or a hard link to an inode the twin did not write into (it replaced the file)."""
        if rel not in self.backups:
            return False
        return rel not in self.linked or now.ino != self._first_seen[rel].ino

    def after(self, run: int, run_dir: Path) -> TwinOutside:
        """Call right after twin ``run`` ended: move what it wrote into ``run_dir/outside`` and restore."""
        out = TwinOutside(run, notes=list(self.notes))
        now = self.snapshot()
        moved_bytes = 0
        changed = sorted(rel for rel, st in now.items() if self._before.get(rel) != st)
        deleted = sorted(rel for rel in self._before if rel not in now)
        for rel in self._left:
            if rel in self._before and rel not in changed and self._left[rel] < run:
                out.found.append(rel)
        for rel in changed:
            action = "modified" if rel in self._before else "created"
            size = now[rel].size
            fits = len([w for w in out.written if w.captured]) < MAX_CAPTURED
            fits = fits and moved_bytes + size <= MAX_CAPTURED_BYTES
            restorable = action == "created" or self._restorable(rel, now[rel])
            if fits and self._capture(rel, run_dir, action, restorable):
                moved_bytes += size
                out.written.append(Written(rel, action, True))
                if not restorable:
                    self._left[rel] = run
                    out.notes.append(
                        f"run {run} wrote into {rel} in place; its copy was compared, but the file is left "
                        f"as run {run} wrote it (its earlier bytes could not be kept)"
                    )
            else:
                out.written.append(Written(rel, action, False))
                self._left[rel] = run
        for rel in deleted:
            restored = self._restore(rel)
            out.written.append(Written(rel, "deleted", False))
            if not restored:
                out.notes.append(
                    f"run {run} deleted {rel} outside its run directory; it could not be restored"
                )
        left = [w.rel for w in out.written if not w.captured and w.action != "deleted"]
        if left:
            out.notes.append(
                f"run {run} wrote {len(left)} file(s) outside its run directory that were left in place "
                f"(over the bound of {MAX_CAPTURED} files / {MAX_CAPTURED_BYTES >> 20} MiB, or too large "
                f"to restore): {', '.join(left[:3])}{' ...' if len(left) > 3 else ''}"
            )
        return out

    def _capture(self, rel: str, run_dir: Path, action: str, restorable: bool) -> bool:
        """Move ``rel`` into ``run_dir/outside`` (restoring a modified file's earlier bytes); copy it
        when it cannot be restored."""
        source, target = self._path(rel), run_dir / OUTSIDE_DIR / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not restorable:
                shutil.copyfile(source, target)
                return True
            shutil.move(source, target)
        except OSError:
            return False
        if action == "modified":
            self._restore(rel)
        else:
            root = self.roots[APP_PREFIX if rel.startswith(APP_PREFIX + "/") else ""]
            _remove_empty_parents(source.parent, root)
        return True

    def _restore(self, rel: str) -> bool:
        backup = self.backups.get(rel)
        if backup is None:
            return False
        try:
            self._path(rel).parent.mkdir(parents=True, exist_ok=True)
            if rel in self.linked:  # the link keeps the old inode: it goes back in place
                os.replace(backup, self._path(rel))
                os.link(self._path(rel), backup)
            else:
                shutil.copyfile(backup, self._path(rel))
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Remove the kept bytes of pre-existing files."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    """Folders a twin created only to hold what was moved away go too (the tree as it was)."""
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
