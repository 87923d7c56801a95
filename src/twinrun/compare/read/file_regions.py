"""Byte ranges of a file, read a window at a time.

Tensor bytes are looked at through a memory map of one window (``view``: a chunk of at most a few MiB),
unmapped as soon as the caller drops it. Not through one map of the whole file: every touched page of a
map counts in the process's resident set until the map closes, so comparing two 1 GiB files through
whole-file maps grows RSS by 2 GiB, while windows keep it at a few chunks. Not by ``readinto`` either:
copying out of the page cache costs a memcpy per byte, which made comparing two files three times slower
than mapping the pages (``MAP_POPULATE``: one call faults a window in) on a busy machine. A zip member
stored without compression (what ``torch.save`` and ``numpy.savez`` write) is such a range of the zip
file; a compressed member is read through :mod:`zipfile`, sequentially.
"""

from __future__ import annotations

import mmap
import os
import zipfile
from typing import IO

import numpy as np

from twinrun.compare.read.run_reader import UnusableRunError

_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0) if hasattr(mmap, "MAP_SHARED") else 0


class Region:
    """``size`` bytes somewhere in a file; ``readinto(pos, view)`` fills ``view`` from ``pos``."""

    def __init__(self, size: int, shown: str) -> None:
        self.size = size
        self.shown = shown  # the file as named in messages

    def readinto(self, pos: int, view: memoryview) -> None:
        raise NotImplementedError

    def view(self, pos: int, buffer: np.ndarray) -> np.ndarray:
        """Bytes ``[pos, pos + buffer.size)`` as uint8: in ``buffer``, or a window of the file itself
        (valid as long as the returned array is referenced)."""
        self.readinto(pos, memoryview(buffer))
        return buffer

    def _truncated(self) -> UnusableRunError:
        return UnusableRunError(f"{self.shown} ended early; the file was truncated: regenerate it")


class FileRegion(Region):
    """Bytes ``[start, start + size)`` of an open, unbuffered file."""

    def __init__(self, file: IO[bytes], start: int, size: int, shown: str) -> None:
        super().__init__(size, shown)
        self.file, self.start = file, start

    def view(self, pos: int, buffer: np.ndarray) -> np.ndarray:
        n = buffer.size
        if not _MAP_FLAGS or n < mmap.PAGESIZE:
            return super().view(pos, buffer)
        start = self.start + pos
        if start + n > os.fstat(self.file.fileno()).st_size:  # a map past the end faults (SIGBUS) on access
            raise self._truncated()
        base = start - start % mmap.ALLOCATIONGRANULARITY
        window = mmap.mmap(
            self.file.fileno(), start - base + n, flags=_MAP_FLAGS, prot=mmap.PROT_READ, offset=base
        )
        # The array keeps the map alive; the map is unmapped when the caller lets go of the array.
        return np.frombuffer(window, np.uint8, count=n, offset=start - base)

    def readinto(self, pos: int, view: memoryview) -> None:
        self.file.seek(self.start + pos)
        got = 0
        while got < len(view):
            count = self.file.readinto(view[got:])
            if not count:
                raise self._truncated()
            got += count


class ZipMemberRegion(Region):
    """A compressed zip member, decompressed as it is read (forward reads are cheap, backward ones
    restart the member)."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, skip: int, shown: str) -> None:
        super().__init__(info.file_size - skip, shown)
        self.archive, self.info, self.skip = archive, info, skip
        self.stream: IO[bytes] | None = None

    def readinto(self, pos: int, view: memoryview) -> None:
        if self.stream is None:
            self.stream = self.archive.open(self.info)
        try:
            self.stream.seek(self.skip + pos)
            got = 0
            while got < len(view):
                chunk = self.stream.read(len(view) - got)
                if not chunk:
                    raise self._truncated()
                view[got : got + len(chunk)] = chunk
                got += len(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UnusableRunError(f"{self.shown}: damaged zip member {self.info.filename} ({exc})") from None


def member_region(
    archive: zipfile.ZipFile,
    file: IO[bytes],
    info: zipfile.ZipInfo,
    file_size: int,
    shown: str,
    skip: int = 0,
) -> Region:
    """Member ``info`` of ``archive`` (read from ``file``) from byte ``skip`` on, as a region."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:  # compressed or encrypted
        return ZipMemberRegion(archive, info, skip, shown)
    file.seek(info.header_offset)
    header = file.read(_LOCAL_HEADER)
    if len(header) < _LOCAL_HEADER or not header.startswith(b"PK\x03\x04"):
        raise UnusableRunError(
            f"{shown}: zip member {info.filename} has no local header; the file is corrupt"
        )
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    start = info.header_offset + _LOCAL_HEADER + name_len + extra_len
    if start + info.file_size > file_size:
        raise UnusableRunError(f"{shown}: zip member {info.filename} ends past the file; it was truncated")
    return FileRegion(file, start + skip, info.file_size - skip, shown)
