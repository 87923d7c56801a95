"""The byte rule for tensor files: what explains the bytes of two files whose values read the same.

A tensor reader compares every tensor and value; when it finds none that differs but the bytes do, the
difference must still be accounted for, byte by byte, as named volatile fields
(:mod:`twinrun.compare.judge.accounting`), or the files are different. What a tensor file may hold
that varies between identical runs:

* a zip archive (``torch.save``, Lightning's ``.ckpt``, ``.npz``): a member's timestamp (``zip
  timestamp``); the folder a torch zip keeps its members in, which torch names after the file it saved to
  (``archive name``: a temporary file's random name, then renamed); torch's ``.data/serialization_id``,
  which torch derives from the other members' contents (excused only beside a member that differs and is
  accounted for);
* a pickle (``data.pkl`` of a torch zip, a legacy torch file, a plain pickle): a string that names a run's
  own directory (``path``), or a string of OmegaConf's resolver cache (``resolver cache``). The pickles are
  compared opcode by opcode (``pickletools.genops``: parsed, never run): the same opcodes in the same order,
  every argument equal but those strings.

* a safetensors header: the order of its ``__metadata__`` (``metadata order``: the library writes it in
  hash-map order, another in every process), a metadata value naming a run's directory (``path``).

Anything else that differs decides: a member of another content, a header field, bytes between or after
the members or the pickles, an ``.npy`` file (its format holds no volatile field).
"""

from __future__ import annotations

import io
import json
import pickletools
import struct
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from twinrun.compare.judge.accounting import (
    ARCHIVE_NAME,
    CHUNK,
    METADATA_ORDER,
    PATH,
    RESOLVER_CACHE,
    ZIP_TIME,
)
from twinrun.compare.read.torch_file import MAX_PICKLE_RATIO, SERIALIZATION_ID
from twinrun.compare.read.torch_pickle import MAGIC_NUMBER

LEGACY_PICKLES = 5  # a legacy torch file: magic number, protocol, sys info, the object, storage keys
MAX_PICKLE_BYTES = 1 << 30  # a pickle read whole to be compared opcode by opcode
# Fields of a zip member's header that torch, numpy and zipfile write the same way every time.
_MEMBER_FIELDS = ("compress_type", "flag_bits", "external_attr", "internal_attr", "comment", "create_system")
_CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")  # zipfile's structCentralDir: time at field 7, date at 8
SamePath = Callable[[str, str], bool]


class Unaccounted(Exception):
    """A difference no volatile field explains; its message says where."""


def account_tensor_bytes(
    pa: Path, pb: Path, same_path: SamePath, cache_a: frozenset[str], cache_b: frozenset[str]
) -> Counter[str] | str:
    """The volatile fields that explain every differing byte of two tensor files, or why none can.

    ``same_path(x, y)``: whether string ``x`` of run A and ``y`` of run B are one once the runs' own
    directories are masked; ``cache_a``/``cache_b``: the strings of each file's OmegaConf resolver caches
    (the reader found them).
    """
    strings = _Strings(same_path, cache_a, cache_b)
    try:
        with pa.open("rb") as fa, pb.open("rb") as fb:
            zips, pickles = (zipfile.is_zipfile(fa), zipfile.is_zipfile(fb)), (_is_pickle(fa), _is_pickle(fb))
            if all(zips):
                found = _zip(fa, fb, strings)
            elif all(pickles) and not any(zips):
                found = _pickles(fa, fb, strings)
            elif any(zips) or any(pickles):
                raise Unaccounted("the files are of different formats")
            elif pa.suffix.lower() == ".safetensors" and pb.suffix.lower() == ".safetensors":
                found = _safetensors(fa, fb, strings)
            else:
                raise Unaccounted("its format holds no volatile field")
    except Unaccounted as exc:
        return str(exc)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        return f"its bytes could not be accounted for ({type(exc).__name__})"
    return found if found else "the bytes differ outside any volatile field"


def _is_pickle(f: IO[bytes]) -> bool:
    f.seek(0)
    return f.read(1) == b"\x80"  # protocol 2 and later start with PROTO (torch.save's legacy files too)


class _Strings:
    """Two differing strings of a pickle: a path, a resolver cache's, or a difference."""

    def __init__(self, same_path: SamePath, cache_a: frozenset[str], cache_b: frozenset[str]) -> None:
        self.same_path, self.cache_a, self.cache_b = same_path, cache_a, cache_b

    def field(self, a: str, b: str) -> str | None:
        if self.same_path(a, b):
            return PATH
        if a in self.cache_a and b in self.cache_b:
            return RESOLVER_CACHE
        return None


def _zip(fa: IO[bytes], fb: IO[bytes], strings: _Strings) -> Counter[str]:
    za, zb = zipfile.ZipFile(fa), zipfile.ZipFile(fb)
    infos_a, infos_b = za.infolist(), zb.infolist()
    prefix_a, prefix_b = _archive_name(infos_a), _archive_name(infos_b)
    names_a = [i.filename.removeprefix(prefix_a) for i in infos_a]
    if names_a != [i.filename.removeprefix(prefix_b) for i in infos_b]:
        raise Unaccounted("the archives hold different members (or in another order)")
    if za.comment != zb.comment:
        raise Unaccounted("the archives' comments differ")
    found: Counter[str] = Counter()
    if prefix_a != prefix_b:  # torch names the folder after the file it saved to (a temporary's name)
        found[ARCHIVE_NAME] += 1
    content_differs, serialization_id = False, False
    for name, ia, ib in zip(names_a, infos_a, infos_b, strict=True):
        for attribute in _MEMBER_FIELDS:
            if getattr(ia, attribute) != getattr(ib, attribute):
                raise Unaccounted(f"member {name}: its header's {attribute} differs")
        if ia.date_time != ib.date_time:
            found[ZIP_TIME] += 1
        if _same_member(za, ia, zb, ib):
            continue
        if name.endswith(SERIALIZATION_ID):
            serialization_id = True
        elif name.endswith(".pkl"):
            content_differs = True
            a, b = _read_pickle(za, ia), _read_pickle(zb, ib)
            end_a, end_b = _account_pickle(a, b, 0, 0, strings, found)
            if a[end_a:] != b[end_b:]:
                raise Unaccounted(f"member {name}: bytes after its pickle differ")
        else:
            raise Unaccounted(f"member {name} differs")
    if serialization_id and not content_differs:
        raise Unaccounted("torch's serialization id differs, though no member it is derived from does")
    if not content_differs and len(prefix_a) == len(prefix_b):
        # Nothing moved: the archives must then be the same byte for byte outside the excused fields.
        # (A pickle or a folder name of another length moves every later byte: the fields above decide.)
        _same_outside_fields(fa, fb, za, zb, len(prefix_a))
    return found


def _archive_name(infos: list[zipfile.ZipInfo]) -> str:
    """``name/`` when every member sits in one top folder (a torch zip), else ``""`` (an ``.npz``)."""
    tops = {info.filename.partition("/")[0] for info in infos if "/" in info.filename}
    if len(tops) == 1 and all("/" in info.filename for info in infos):
        return f"{tops.pop()}/"
    return ""


def _same_member(za: zipfile.ZipFile, ia: zipfile.ZipInfo, zb: zipfile.ZipFile, ib: zipfile.ZipInfo) -> bool:
    if ia.file_size != ib.file_size:
        return False
    with za.open(ia) as sa, zb.open(ib) as sb:  # zipfile checks each CRC at the end of the stream
        while True:
            a, b = sa.read(CHUNK), sb.read(CHUNK)
            if a != b:
                return False
            if not a:
                return True


def _read_pickle(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    bound = min(MAX_PICKLE_BYTES, MAX_PICKLE_RATIO * info.compress_size + (1 << 20))
    if info.file_size > bound:
        raise Unaccounted(f"member {info.filename} is too large to account for ({info.file_size} bytes)")
    return archive.read(info)


def _same_outside_fields(
    fa: IO[bytes], fb: IO[bytes], za: zipfile.ZipFile, zb: zipfile.ZipFile, prefix: int
) -> None:
    """Both archives byte for byte, leaving out each member's time and date and the first ``prefix``
    characters of its name (the archive's folder), in its local header and in the central directory."""
    spans_a, spans_b = _field_spans(fa, za, prefix), _field_spans(fb, zb, prefix)
    fa.seek(0, io.SEEK_END), fb.seek(0, io.SEEK_END)
    if spans_a != spans_b or fa.tell() != fb.tell():
        raise Unaccounted("the archives are laid out differently")
    fa.seek(0), fb.seek(0)
    offset = 0
    while chunk_a := fa.read(CHUNK):
        chunk_b = fb.read(CHUNK)
        if chunk_a != chunk_b:
            a, b = bytearray(chunk_a), bytearray(chunk_b)
            for start, size in spans_a:
                lo, hi = max(start, offset) - offset, min(start + size, offset + len(a)) - offset
                if lo < hi:
                    a[lo:hi], b[lo:hi] = bytes(hi - lo), bytes(hi - lo)
            if a != b:
                raise Unaccounted("the archives differ outside their members' contents and timestamps")
        offset += len(chunk_a)


def _field_spans(f: IO[bytes], archive: zipfile.ZipFile, prefix: int) -> list[tuple[int, int]]:
    """(offset, size) of each member's time and date and of its name's folder, in both headers."""
    spans = []
    for info in archive.infolist():
        f.seek(info.header_offset)
        if f.read(4) != b"PK\x03\x04":
            raise Unaccounted(f"member {info.filename}: no local header where the directory says")
        spans += [(info.header_offset + 10, 4), (info.header_offset + 30, prefix)]
    at = archive.start_dir
    for _ in archive.infolist():
        f.seek(at)
        raw = f.read(_CENTRAL_ENTRY.size)
        if len(raw) < _CENTRAL_ENTRY.size or raw[:4] != b"PK\x01\x02":
            raise Unaccounted("the zip's central directory is not where it says")
        fields = _CENTRAL_ENTRY.unpack(raw)
        spans += [(at + 12, 4), (at + _CENTRAL_ENTRY.size, prefix)]
        at += _CENTRAL_ENTRY.size + fields[12] + fields[13] + fields[14]
    return sorted(spans)


MAX_HEADER = 100 << 20  # safetensors' own limit on a header


def _safetensors(fa: IO[bytes], fb: IO[bytes], strings: _Strings) -> Counter[str]:
    """The header's ``__metadata__`` (the safetensors library writes it in hash-map order, which changes
    from process to process; its values may name a run's directory); every other byte must be the same."""
    (head_a, size_a), (head_b, size_b) = _header(fa), _header(fb)
    meta_a, meta_b = head_a.pop("__metadata__", None), head_b.pop("__metadata__", None)
    if list(head_a.items()) != list(head_b.items()):
        raise Unaccounted("the headers describe other tensors (or in another order)")
    found: Counter[str] = Counter()
    if meta_a != meta_b:
        if not (isinstance(meta_a, dict) and isinstance(meta_b, dict)) or meta_a.keys() != meta_b.keys():
            raise Unaccounted("the headers' metadata differ")
        if list(meta_a) != list(meta_b):
            found[METADATA_ORDER] += 1
        for key, value in meta_a.items():
            if value != meta_b[key]:
                field = strings.field(value, meta_b[key]) if isinstance(value, str) else None
                if field != PATH:
                    raise Unaccounted(f"the headers' metadata differ at {key!r}")
                found[PATH] += 1
    fa.seek(8 + size_a), fb.seek(8 + size_b)
    while chunk := fa.read(CHUNK):
        if chunk != fb.read(CHUNK):
            raise Unaccounted("the tensor data differ where no tensor is read")
    if fb.read(1):
        raise Unaccounted("RUN_B's file is longer")
    return found


def _header(f: IO[bytes]) -> tuple[dict[str, Any], int]:
    """The parsed header, checked to be written the one way safetensors writes it (compact JSON, then
    spaces to an 8-byte boundary): no byte of it escapes the comparison."""
    f.seek(0)
    size = int.from_bytes(f.read(8), "little")
    if size > MAX_HEADER:
        raise Unaccounted("the header is larger than safetensors allows")
    raw = f.read(size)
    try:
        header = json.loads(raw)
    except ValueError:
        raise Unaccounted("the header is not JSON") from None
    if not isinstance(header, dict):
        raise Unaccounted("the header is not a JSON object")
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if raw.rstrip(b" ") != text:
        raise Unaccounted("the header is not written as safetensors writes it")
    return header, size


def _pickles(fa: IO[bytes], fb: IO[bytes], strings: _Strings) -> Counter[str]:
    """A plain pickle, or a legacy torch file (five pickles, then its storages' raw bytes)."""
    found: Counter[str] = Counter()
    fa.seek(0), fb.seek(0)
    a, b = fa.read(MAX_PICKLE_BYTES + 1), fb.read(MAX_PICKLE_BYTES + 1)
    if max(len(a), len(b)) > MAX_PICKLE_BYTES:
        raise Unaccounted("the pickle is too large to account for")
    at_a, at_b = _account_pickle(a, b, 0, 0, strings, found)
    count = LEGACY_PICKLES if _first_value(a) == MAGIC_NUMBER else 1
    for _ in range(count - 1):
        at_a, at_b = _account_pickle(a, b, at_a, at_b, strings, found)
    if a[at_a:] != b[at_b:]:
        raise Unaccounted("the bytes after the pickle differ (a storage, or data the reader skips)")
    return found


def _first_value(data: bytes) -> Any:
    ops = pickletools.genops(io.BytesIO(data))
    for opcode, arg, _ in ops:
        if opcode.name not in ("PROTO", "FRAME"):
            return arg
    return None


def _account_pickle(
    a: bytes, b: bytes, start_a: int, start_b: int, strings: _Strings, found: Counter[str]
) -> tuple[int, int]:
    """Compare one pickle of each stream op by op (each op's bytes, then its argument); where each ends."""
    pairs = zip(_ops(a, start_a), _ops(b, start_b), strict=False)
    for index, ((name_a, arg_a, at_a, end_a), (name_b, arg_b, at_b, end_b)) in enumerate(pairs, start=1):
        if a[at_a:end_a] != b[at_b:end_b]:
            if name_a != name_b:
                raise Unaccounted(f"pickle opcode {index} differs ({name_a} vs {name_b})")
            field = _differing_arg(name_a, arg_a, arg_b, strings)
            if field is None:
                raise Unaccounted(f"pickle opcode {index} ({name_a}) has another argument")
            if field:
                found[field] += 1
        if name_a == "STOP":
            return end_a, end_b
    raise Unaccounted("one pickle is longer than the other")


def _differing_arg(name: str, a: Any, b: Any, strings: _Strings) -> str | None:
    """The field two differing arguments of one opcode are, "" for a derived one, None when unexplained."""
    if name == "FRAME":  # a frame's length follows from the opcodes in it, which are all compared
        return ""
    if isinstance(a, str) and isinstance(b, str):
        return strings.field(a, b)
    return None


def _ops(data: bytes, start: int) -> Iterator[tuple[str, Any, int, int]]:
    """(opcode name, argument, its offset, the offset after it) of the pickle at ``start``; parsed, never
    run (``pickletools.genops``)."""
    stream = io.BytesIO(data)
    stream.seek(start)
    for opcode, arg, at in pickletools.genops(stream):
        yield opcode.name, arg, at, stream.tell()
