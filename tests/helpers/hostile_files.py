"""Hostile tensor files built by hand: deep nesting, memo repetition, zip bombs, sizes that lie, code.

Zip archives are written here byte by byte (not with :mod:`zipfile`) so that a member of 128 MiB of
zeros costs a few milliseconds: its deflate stream is one fully flushed 1 MiB block repeated.
"""

from __future__ import annotations

import ast
import struct
import zlib
from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class Zeros:
    """``head`` + ``count`` MiB of zero bytes + ``tail``, stored deflated."""

    head: bytes
    count: int
    tail: bytes = b""


def _deflated(member: bytes | Zeros) -> tuple[bytes, int, int]:
    """(raw deflate stream, crc32, uncompressed size)."""
    if isinstance(member, bytes):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(member) + c.flush(), zlib.crc32(member), len(member)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    zero = bytes(MIB)
    parts = [c.compress(member.head) + c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)]
    block = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)  # no history after a full flush: repeatable
    parts += [block] * (member.count - 1)
    parts.append(c.compress(member.tail) + c.flush())
    crc = zlib.crc32(member.head)
    for _ in range(member.count):  # chained, one MiB at a time
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(member.tail, crc)
    return b"".join(parts), crc, len(member.head) + member.count * MIB + len(member.tail)


def zip_bytes(members: list[tuple[str, bytes | Zeros, bool]]) -> bytes:
    """A zip archive of ``(name, data, deflate?)`` members, in order."""
    out, central = bytearray(), bytearray()
    for name, data, deflate in members:
        raw = name.encode()
        if deflate or isinstance(data, Zeros):
            body, crc, size = _deflated(data)
            method = 8
        else:
            body, crc, size, method = data, zlib.crc32(data), len(data), 0
        offset = len(out)
        fields = struct.pack("<HHHHHIII", 20, 0, method, 0, 0x21, crc, len(body), size)
        out += b"PK\x03\x04" + fields + struct.pack("<HH", len(raw), 0) + raw + body
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields
        central += struct.pack("<HHHHHII", len(raw), 0, 0, 0, 0, 0, offset) + raw
    count = len(members)
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + eocd)


def torch_zip(
    pickle: bytes | Zeros, *, prefix: str = "archive", extra: dict[str, bytes] | None = None
) -> bytes:
    """A torch.save zip around ``pickle`` (data.pkl), with torch's small records."""
    members: list[tuple[str, bytes | Zeros, bool]] = [(f"{prefix}/data.pkl", pickle, False)]
    members += [(f"{prefix}/byteorder", b"little", False), (f"{prefix}/version", b"3\n", False)]
    members += [(f"{prefix}/{name}", data, False) for name, data in (extra or {}).items()]
    return zip_bytes(members)


def npy_header(shape: tuple[int, ...], *, fortran: bool = False, descr: str = "<f8") -> bytes:
    """A ``.npy`` version 1 header for ``shape``."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    assert ast.literal_eval(text.decode())["shape"] == shape
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


# Pickles (protocol 2 unless noted), each a whole data.pkl.
def deep_tuple_key(depth: int) -> bytes:
    """``{((...((),)...),): 1}``: hashing the key recurses ``depth`` levels in C."""
    return b"\x80\x02}" + b")" + b"\x85" * depth + b"K\x01s."


def deep_frozenset_key(depth: int) -> bytes:
    """A frozenset nested ``depth`` deep as a dict key (protocol 4)."""
    return b"\x80\x04}" + b"(" * depth + b"\x91" * depth + b"K\x01s."


def deep_tuple(depth: int) -> bytes:
    """A tuple nested ``depth`` deep, the whole object."""
    return b"\x80\x02" + b")" + b"\x85" * depth + b"."


def deep_list(depth: int) -> bytes:
    """Lists nested ``depth`` deep, built outermost first (each filled after it was made)."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def memo_repeat(size: int, refs: int, letter: bytes = b"x") -> bytes:
    """``{"k": [s] * refs}`` with one string ``s`` of ``size`` characters, shared through the memo."""
    string = b"X" + struct.pack("<I", size) + letter * size
    body = b"]" + b"(" + string + b"q\x00" + b"h\x00" * (refs - 1) + b"e"
    return b"\x80\x02}X\x01\x00\x00\x00k" + body + b"s."


def calls_code(marker: str) -> bytes:
    """``os.system("touch marker")`` as a pickle: the inert reader must refuse it, never run it."""
    return b"cos\nsystem\n(X" + struct.pack("<I", len(marker) + 6) + f"touch {marker}".encode() + b"tR."


def leaves(count: int) -> bytes:
    """``{"k": [0, 1, ..., count - 1]}``: many small leaves."""
    items = b"".join(b"J" + struct.pack("<i", i) for i in range(count))
    return b"\x80\x02}X\x01\x00\x00\x00k](" + items + b"es."


def legacy_torch(pickle_bytes: bytes) -> bytes:
    """A torch.save file in the legacy (pre-1.6) format around ``pickle_bytes`` (the object), no storages."""
    import pickle

    head = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    return b"".join(pickle.dumps(x, protocol=2) for x in head) + pickle_bytes + pickle.dumps([], protocol=2)
