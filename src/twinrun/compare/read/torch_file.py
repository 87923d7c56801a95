"""Opening a ``torch.save`` file (zip or legacy format) with :mod:`twinrun.compare.read.torch_pickle`.

The result is the saved object, rebuilt inertly, and where each storage's bytes lie in the file. Nothing
of the tensor data is read here.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from twinrun.compare.read.file_regions import FileRegion, Region, member_region
from twinrun.compare.read.pickle_bounds import TooDeepError
from twinrun.compare.read.run_reader import UnusableRunError
from twinrun.compare.read.torch_pickle import (
    ELEMENT_SIZES,
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    StorageRef,
    unpickle,
)
from twinrun.errors import first_line

MAX_PICKLE_RATIO = 32  # how much a compressed data.pkl may expand (deflated pickles: 3 to 10 times)
SERIALIZATION_ID = ".data/serialization_id"
_KEPT_RECORD = 4096  # records up to this size are compared by their bytes, larger ones by sha256

# What a damaged pickle or zip raises while being read.
DAMAGED = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    LookupError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    RecursionError,
    MemoryError,
    OverflowError,
)


class NotATensorFileError(UnusableRunError):
    """The file is not of a tensor format at all (a ``.bin`` of something else): callers may fall back to
    comparing its bytes."""


@dataclass
class TorchFile:
    """The object a torch file holds (tensors as TensorRef, foreign classes as placeholders) and the
    region of the file that holds each storage."""

    obj: Any
    regions: dict[str, Region]
    files: list[IO[bytes]] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)  # the zip's other records, by name in the archive

    def close(self) -> None:
        for f in self.files:
            f.close()


def unreadable(shown: str, exc: BaseException) -> UnusableRunError:
    """The one-line message for a torch file that cannot be parsed."""
    return UnusableRunError(
        f"{shown} is not a readable torch.save file ({type(exc).__name__}: {first_line(exc)}); "
        "it is truncated or corrupt: regenerate it"
    )


def open_torch_file(path: Path, shown: str) -> TorchFile:
    """Parse ``path``; raises RefusedPickleError for pickled code, UnusableRunError for damage."""
    try:
        size = path.stat().st_size
        file = path.open("rb", buffering=0)
    except OSError as exc:
        raise UnusableRunError(f"cannot read {shown} ({exc.strerror}); check its permissions") from None
    if size == 0:
        file.close()
        raise UnusableRunError(f"{shown} is empty; the run did not finish writing it, re-run it")
    try:
        head = file.read(512)
        if head.startswith(b"PK\x03\x04"):
            return _open_zip(file, size, shown)
        if head[:1] == b"\x80":
            return _open_legacy(path, file, size, shown)
        if head[257:262] == b"ustar":
            raise UnusableRunError(
                f"{shown} is in torch's pre-1.0 tar format; load and re-save it with torch"
            )
        raise NotATensorFileError(f"{shown} is not a torch.save file (neither a zip archive nor a pickle)")
    except TooDeepError as exc:
        file.close()
        raise UnusableRunError(
            f"{shown} holds {exc}; it is not a file of weights twinrun can compare (nothing was built)"
        ) from None
    except DAMAGED as exc:
        file.close()
        raise unreadable(shown, exc) from None
    except BaseException:
        file.close()
        raise


MAX_ZIP_PREFIX = 1 << 20  # bytes before a zip's first record that are read to be compared


def _open_zip(file: IO[bytes], size: int, shown: str) -> TorchFile:
    archive = zipfile.ZipFile(file)
    names = archive.namelist()
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if not pickles:
        raise NotATensorFileError(f"{shown} is a zip archive without data.pkl, not a torch.save file")
    prefixes = {n.split("/", 1)[0] if "/" in n else "" for n in names}
    if len(prefixes) > 1:  # torch refuses it too: which archive would be the file?
        raise UnusableRunError(
            f"{shown} holds {len(prefixes)} archives ({', '.join(sorted(map(repr, prefixes))[:3])}), "
            "torch.save writes one; the file is corrupt or was assembled: regenerate it"
        )
    prefix = pickles[0].removesuffix("data.pkl")
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
        raise UnusableRunError(f"{shown} was saved big-endian; re-save it on a little-endian machine")
    storages: dict[str, StorageRef] = {}
    obj = unpickle(_read_pickle(archive, archive.getinfo(pickles[0]), shown), storages)
    records: dict[str, Any] = {}
    for name in sorted(set(names) - {pickles[0]} - {f"{prefix}data/{key}" for key in storages}):
        # every other record (version, byteorder, a storage no tensor names ...) is part of the file:
        # compared by its bytes, read a window at a time (its CRC checked on the way). Not the
        # serialization id: torch derives it from the records' contents, which are all compared.
        value = _record_value(archive, archive.getinfo(name))
        if name != f"{prefix}{SERIALIZATION_ID}":
            records[name.removeprefix(prefix)] = value
    # Bytes outside every member are part of the file too (the byte rule): torch.save writes neither data
    # before the first member nor a comment after the directory; either one is compared, not skipped.
    first = min((info.header_offset for info in archive.infolist()), default=0)
    if first:
        if first > MAX_ZIP_PREFIX:
            raise UnusableRunError(f"{shown} has {first} bytes before its first record; the file is corrupt")
        file.seek(0)
        records["(bytes before the zip)"] = file.read(first)
    if archive.comment:
        records["(zip comment)"] = archive.comment
    regions: dict[str, Region] = {}
    for key, storage in storages.items():
        try:
            info = archive.getinfo(f"{prefix}data/{key}")
        except KeyError:
            raise UnusableRunError(
                f"{shown} lacks the record of storage {key}; the file is corrupt"
            ) from None
        region = member_region(archive, file, info, size, shown)
        regions[key] = _checked(region, storage, shown)
    return TorchFile(obj, regions, [file], records)


def _read_pickle(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str) -> bytes:
    """``data.pkl``, whole (the unpickler needs it): torch stores it uncompressed, so it is no larger than
    the file; a compressed one may not expand more than ``MAX_PICKLE_RATIO`` times (a zip bomb would)."""
    compressed = info.compress_type != zipfile.ZIP_STORED
    if compressed and info.file_size > MAX_PICKLE_RATIO * info.compress_size + (1 << 20):
        raise UnusableRunError(
            f"{shown}: its data.pkl expands from {info.compress_size} to {info.file_size} bytes "
            f"(more than {MAX_PICKLE_RATIO} times: a zip bomb, not a torch.save file); regenerate it"
        )
    return archive.read(info)


def _record_value(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    """A record's bytes (small ones) or its size and sha256, read in windows."""
    digest, kept, total = hashlib.sha256(), bytearray(), 0
    with archive.open(info) as stream:  # zipfile checks the CRC at the end of the stream
        while chunk := stream.read(1 << 20):
            total += len(chunk)
            digest.update(chunk)
            if total <= _KEPT_RECORD:
                kept += chunk
    return bytes(kept) if total <= _KEPT_RECORD else f"{total} bytes, sha256 {digest.hexdigest()}"


def _open_legacy(path: Path, raw: IO[bytes], size: int, shown: str) -> TorchFile:
    with path.open("rb") as f:  # buffered: the unpickler reads opcode by opcode
        if unpickle(f, {}) != MAGIC_NUMBER:
            raise NotATensorFileError(f"{shown} is a pickle, not a torch.save file (no torch magic number)")
        if unpickle(f, {}) != PROTOCOL_VERSION:
            raise UnusableRunError(f"{shown} has an unknown torch protocol version; re-save it")
        sys_info = unpickle(f, {})
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise UnusableRunError(f"{shown} was saved big-endian; re-save it on a little-endian machine")
        storages: dict[str, StorageRef] = {}
        obj = unpickle(f, storages)
        keys = unpickle(f, {})
        pos = f.tell()
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise UnusableRunError(f"{shown}: its storage list does not match its tensors; the file is corrupt")
    regions: dict[str, Region] = {}
    for key in map(str, keys):
        raw.seek(pos)
        count = raw.read(8)
        if len(count) < 8:
            raise UnusableRunError(f"{shown} ended early; the file was truncated: regenerate it")
        storage = storages[key]
        nbytes = int.from_bytes(count, "little", signed=True) * ELEMENT_SIZES[storage.dtype]
        if nbytes < 0:
            raise UnusableRunError(f"{shown}: storage {key} has a negative size; the file is corrupt")
        region = FileRegion(raw, pos + 8, nbytes, shown)
        pos += 8 + nbytes
        if pos > size:
            raise UnusableRunError(f"{shown} ended early; the file was truncated: regenerate it")
        regions[key] = _checked(region, storage, shown)
    return TorchFile(obj, regions, [raw])


def _checked(region: Region, storage: StorageRef, shown: str) -> Region:
    if storage.offset + storage.nbytes > region.size:
        raise UnusableRunError(
            f"{shown}: storage {storage.key} is shorter than its tensors ({region.size} bytes); "
            "the file is corrupt"
        )
    return region
