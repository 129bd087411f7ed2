"""Folders (section 11; rules R29-R34): a valid folder payload, an empty one, and one vector per
rule. Each file is a valid envelope file (it opens as bytes); ``read_as: "folder"`` says that a
reader reads its payload as a folder, which is where the negative ones fail. Chunk size 16."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import msgpack

from .kit import TestFile, metadata, vector

MARK = {"envelope.payload": "folder-v1"}  # section 11.1
CHUNK = 16


def _align(x: int) -> int:
    return -(-x // CHUNK) * CHUNK


def _index(members: list[tuple[str, bytes, bool]], index_len: int) -> list[dict[str, Any]]:
    """Section 11.2: each member at the first chunk boundary after what precedes it."""
    maps, at = [], 4 + index_len
    for name, data, executable in members:
        entry: dict[str, Any] = {"name": name, "offset": _align(at), "size": len(data)}
        if executable:
            entry["executable"] = True
        maps.append(entry)
        at = _align(at) + len(data)
    return maps


def folder_payload(members: list[tuple[str, bytes, bool]], *, maps: list[Any] | None = None) -> bytes:
    """The payload of section 11.2 for ``members`` in the order given (``maps``: what the index
    says instead, the data staying where section 11.2 puts them)."""
    index_len = 0
    while True:  # the offsets depend on the index's length, which depends on the offsets
        index = msgpack.packb(_index(members, index_len), use_bin_type=True)
        if len(index) == index_len:
            break
        index_len = len(index)
    if maps is not None:
        index = msgpack.packb(maps, use_bin_type=True)
    out = bytearray(struct.pack(">I", len(index)) + index)
    for _, data, _ in members:
        out += bytes(_align(len(out)) - len(out)) + data
    return bytes(out)


def _folder(f: TestFile, payload: bytes, *, meta: dict[str, Any] | None = None) -> None:
    f.header["meta"] = metadata(MARK if meta is None else meta)
    f.seal(payload)


def _refused(f: TestFile, rule: str, error: str) -> None:
    f.expect_error(rule, error)
    f.expected["read_as"] = "folder"


MEMBERS = [
    ("config.json", b'{"model_type": "gpt2"}', False),
    ("empty", b"", False),
    ("run.sh", b"#!/bin/sh\n", True),
    ("tokenizer/vocab-\u00e9.json", b'{"a": 0, "b": 1}', False),
    ("weights/model.safetensors", bytes(range(256)) * 3 + b"tail", False),
]
TWO = [("a.txt", b"hello", False), ("b/c.bin", b"x" * 40, False)]


@vector
def folder_five_members(f: TestFile) -> None:
    """a folder payload (section 11): nested paths, an empty member, an executable one, a non-ASCII name"""
    _folder(f, folder_payload(MEMBERS))
    f.expected["read_as"] = "folder"
    f.expected["folder"] = [
        {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "executable": executable}
        for name, data, executable in MEMBERS
    ]


@vector
def folder_empty(f: TestFile) -> None:
    """a folder payload without members: the index length and the empty array"""
    _folder(f, folder_payload([]))
    f.expected["read_as"] = "folder"
    f.expected["folder"] = []


@vector
def r29_folder_not_marked(f: TestFile) -> None:
    """a valid folder payload whose metadata lacks envelope.payload: not a folder"""
    _folder(f, folder_payload(TWO), meta={"name": "demo"})
    _refused(f, "R29", "MalformedError")


@vector
def r29_folder_unknown_kind(f: TestFile) -> None:
    """envelope.payload names a payload kind other than folder-v1"""
    _folder(f, folder_payload(TWO), meta={"envelope.payload": "folder-v9"})
    _refused(f, "R29", "UnsupportedError")


@vector
def r30_folder_index_past_end(f: TestFile) -> None:
    """the index length says more bytes than the payload holds"""
    _folder(f, struct.pack(">I", 100) + b"\x90")
    _refused(f, "R30", "MalformedError")


@vector
def r30_folder_index_over_limit(f: TestFile) -> None:
    """the index length is 16 MiB + 1: refused before the index is read"""
    _folder(f, struct.pack(">I", (16 << 20) + 1) + b"\x90")
    _refused(f, "R30", "LimitError")


@vector
def r31_folder_index_not_array(f: TestFile) -> None:
    """the index is a map, not an array of members"""
    index = msgpack.packb({"name": "a.txt", "offset": 16, "size": 0})
    _folder(f, struct.pack(">I", len(index)) + index + bytes(_align(4 + len(index)) - 4 - len(index)))
    _refused(f, "R31", "MalformedError")


@vector
def r31_folder_member_extra_key(f: TestFile) -> None:
    """a member map has a key other than name, offset, size and executable"""
    maps = _index(TWO, len(msgpack.packb(_index(TWO, 0))))
    maps[0]["mode"] = 0o644
    payload = folder_payload(TWO, maps=maps)
    _folder(f, payload)
    _refused(f, "R31", "MalformedError")


def _named(f: TestFile, first: str, second: str = "b/c.bin") -> None:
    _folder(f, folder_payload([(first, b"hello", False), (second, b"x" * 40, False)]))
    _refused(f, "R32", "MalformedError")


@vector
def r32_folder_name_dotdot(f: TestFile) -> None:
    """a member name with a '..' component, which would lead out of the folder"""
    _named(f, "../evil")


@vector
def r32_folder_name_absolute(f: TestFile) -> None:
    """a member name that starts with '/'"""
    _named(f, "/etc/evil")


@vector
def r32_folder_name_twice(f: TestFile) -> None:
    """two members with the same name"""
    _named(f, "a.txt", "a.txt")


@vector
def r32_folder_name_inside_a_member(f: TestFile) -> None:
    """a member named a, and another a/b: a is a file and a folder"""
    _named(f, "a", "a/b")


@vector
def r33_folder_member_misplaced(f: TestFile) -> None:
    """the second member's offset is one chunk after where section 11.2 puts it"""
    payload = bytearray(folder_payload(TWO))
    index_len = struct.unpack(">I", payload[:4])[0]
    maps = msgpack.unpackb(bytes(payload[4 : 4 + index_len]))
    maps[1]["offset"] += CHUNK
    index = msgpack.packb(maps)
    assert len(index) == index_len
    payload[4 : 4 + index_len] = index
    _folder(f, bytes(payload[:-40]) + bytes(CHUNK) + b"x" * 40)
    _refused(f, "R33", "MalformedError")


@vector
def r33_folder_trailing_bytes(f: TestFile) -> None:
    """a zero byte after the last member"""
    _folder(f, folder_payload(TWO) + b"\x00")
    _refused(f, "R33", "MalformedError")


@vector
def r34_folder_nonzero_pad(f: TestFile) -> None:
    """a pad byte between the first member and the second is not zero"""
    payload = bytearray(folder_payload(TWO))
    index_len = struct.unpack(">I", payload[:4])[0]
    first = _align(4 + index_len)
    payload[first + 5] = 1  # right after "hello"
    _folder(f, bytes(payload))
    _refused(f, "R34", "MalformedError")
