"""The folder payload codec (spec/FORMAT.md section 11): the index and the layout, to plain data
and back. No cryptography and no I/O live here; every check is a rule of section 11 (R29-R34)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from .errors import LimitError, MalformedError, UnsupportedError, UsageError
from .limits import MAX_FOLDER_INDEX_LEN, MAX_FOLDER_MEMBERS, MAX_MEMBER_NAME_LEN

__all__ = [
    "FOLDER_V1",
    "INDEX_PREFIX_LEN",
    "PAYLOAD_KEY",
    "FolderLayout",
    "Member",
    "check_marking",
    "check_name",
    "decode_index",
    "index_length",
    "is_folder",
    "plan",
]

PAYLOAD_KEY = "envelope.payload"  # the metadata key that marks a folder (section 11.1)
FOLDER_V1 = "folder-v1"
INDEX_PREFIX_LEN = 4  # u32be(index_len)
_KEYS = ("name", "offset", "size", "executable")  # the member map's keys, in canonical order


@dataclass(frozen=True)
class Member:
    """One file of a folder: its path in the folder, where its data lie in the payload, its size."""

    name: str
    offset: int
    size: int
    executable: bool = False

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class FolderLayout:
    """A decoded, checked index: the members in payload order, and the ranges that must be zero."""

    chunk_size: int
    index_end: int  # 4 + index_len: where the index ends
    members: tuple[Member, ...]
    payload_len: int

    def padding(self) -> list[tuple[int, int]]:
        """The pad ranges ``[start, end)`` of section 11.2, in payload order (empty ones left out)."""
        ranges, at = [], self.index_end
        for member in self.members:
            if member.offset > at:
                ranges.append((at, member.offset))
            at = member.end
        return ranges


def is_folder(metadata: Mapping[str, Any]) -> bool:
    """Whether metadata mark a folder payload, as a tool without a key reads it (nothing raised)."""
    return metadata.get(PAYLOAD_KEY) == FOLDER_V1


def check_marking(metadata: Mapping[str, Any]) -> None:
    """R29: the file is marked as a folder this reader reads."""
    kind = metadata.get(PAYLOAD_KEY)
    if kind is None and PAYLOAD_KEY not in metadata:
        raise MalformedError(f"not a folder: the metadata has no {PAYLOAD_KEY!r} (R29)")
    if not isinstance(kind, str):
        raise MalformedError(f"malformed folder: {PAYLOAD_KEY!r} is not a string (R29)")
    if kind != FOLDER_V1:
        raise UnsupportedError(f"unsupported payload kind {kind[:64]!r}: this reader reads {FOLDER_V1!r} (R29)")


def _align(offset: int, chunk_size: int) -> int:
    return -(-offset // chunk_size) * chunk_size


def index_length(prefix: bytes, payload_len: int) -> int:
    """R30: the index length from the payload's first 4 bytes, checked before the index is read."""
    if len(prefix) < INDEX_PREFIX_LEN or payload_len < INDEX_PREFIX_LEN:
        raise MalformedError("malformed folder: the payload is shorter than its index length (R30)")
    (length,) = struct.unpack(">I", prefix[:INDEX_PREFIX_LEN])
    if length > MAX_FOLDER_INDEX_LEN:
        raise LimitError(f"folder index of {length} bytes exceeds the limit of {MAX_FOLDER_INDEX_LEN} (R30)")
    if INDEX_PREFIX_LEN + length > payload_len:
        raise MalformedError("malformed folder: the payload ends inside the index (R30)")
    return int(length)


def check_name(name: str, error: type[Exception] = MalformedError) -> None:
    """R32, for one name alone (uniqueness and nesting are checked over the index)."""
    try:
        encoded = name.encode()
    except UnicodeEncodeError:  # a caller's name with a lone surrogate (a file name that is not UTF-8)
        raise error("member name is not valid UTF-8 (R32)") from None
    if not encoded or len(encoded) > MAX_MEMBER_NAME_LEN:
        raise error(f"member name is empty or longer than {MAX_MEMBER_NAME_LEN} bytes (R32)")
    if name.startswith("/") or "\x00" in name or "\\" in name:
        raise error("member name starts with '/' or holds a NUL or a backslash (R32)")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise error("member name has an empty, '.' or '..' component (R32)")


def _check_names(names: Iterable[str], error: type[Exception] = MalformedError) -> None:
    """R32 over a whole index: every name valid, none twice, none a folder of another."""
    seen: set[str] = set()
    folders: set[str] = set()
    for name in names:
        check_name(name, error)
        if name in seen:
            raise error("two members have the same name (R32)")
        seen.add(name)
        parts = name.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    if not seen.isdisjoint(folders):
        raise error("a member's name is a folder of another member (R32)")


def _member(raw: Any) -> Member:
    """R31: one member map, its keys and their types."""
    if not isinstance(raw, dict):
        raise MalformedError("malformed folder index: a member is not a map (R31)")
    if not {"name", "offset", "size"} <= raw.keys() or not raw.keys() <= set(_KEYS):
        raise MalformedError("malformed folder index: a member lacks name, offset or size, or has another key (R31)")
    name, offset, size = raw["name"], raw["offset"], raw["size"]
    executable = raw.get("executable", False)
    if not isinstance(name, str) or not isinstance(executable, bool):
        raise MalformedError("malformed folder index: a member's name or executable is of the wrong type (R31)")
    for value in (offset, size):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MalformedError("malformed folder index: an offset or size is not a non-negative integer (R31)")
    return Member(name, offset, size, executable)


# First bytes of the MessagePack types a member map never holds: maps and arrays (whose contents
# would be built before they could be refused) and extension types.
_NOT_A_SCALAR = frozenset(range(0x80, 0xA0)) | {0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xDC, 0xDD, 0xDE, 0xDF}


def _member_maps(index: bytes) -> list[dict[str, Any]]:
    """The index as member maps of scalars (R31), read one value at a time: the member count is
    checked against its limit from the array's header, and no value that could hold others is ever
    decoded, so a crafted index costs memory in proportion to its members, not to its bytes."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(index), 1))
    unpacker.feed(index)
    try:
        try:
            count = unpacker.read_array_header()
        except msgpack.UnpackValueError:
            raise MalformedError("malformed folder index: not an array (R31)") from None
        if count > MAX_FOLDER_MEMBERS:
            raise LimitError(f"folder of {count} members exceeds the limit of {MAX_FOLDER_MEMBERS} (R31)")
        maps = []
        for _ in range(count):
            try:
                entries = unpacker.read_map_header()
            except msgpack.UnpackValueError:
                raise MalformedError("malformed folder index: a member is not a map (R31)") from None
            if entries > len(_KEYS):
                raise MalformedError("malformed folder index: a member has more keys than a member has (R31)")
            pairs = []
            for _ in range(2 * entries):
                at = unpacker.tell()
                if at >= len(index) or index[at] in _NOT_A_SCALAR:
                    raise MalformedError("malformed folder index: a member holds a map, an array or an extension (R31)")
                pairs.append(unpacker.unpack())
            keys = pairs[0::2]
            if not all(isinstance(key, str) for key in keys) or len(set(keys)) != len(keys):
                raise MalformedError("malformed folder index: a member's keys are not distinct strings (R31)")
            maps.append(dict(zip(keys, pairs[1::2], strict=True)))
        if unpacker.tell() != len(index):
            raise MalformedError("malformed folder index: not one valid MessagePack array (R31)")
    except (msgpack.UnpackException, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, (MalformedError, LimitError)):
            raise
        raise MalformedError("malformed folder index: not one valid MessagePack array (R31)") from None
    return maps


def decode_index(index: bytes, chunk_size: int, payload_len: int) -> FolderLayout:
    """The index's bytes (after the 4-byte length) to a checked layout: R31, R32, R33."""
    members = tuple(_member(raw) for raw in _member_maps(index))
    _check_names(m.name for m in members)
    index_end = INDEX_PREFIX_LEN + len(index)
    at = index_end
    for member in members:
        if member.offset != _align(at, chunk_size):
            raise MalformedError("malformed folder: a member is not where the layout puts it (R33)")
        at = member.end
    if at != payload_len:
        raise MalformedError("malformed folder: the payload does not end where the last member does (R33)")
    return FolderLayout(chunk_size, index_end, members, payload_len)


def _encode(members: Iterable[Member]) -> bytes:
    maps = []
    for m in members:
        fields: dict[str, Any] = {"name": m.name, "offset": m.offset, "size": m.size}
        if m.executable:
            fields["executable"] = True
        maps.append(fields)
    packed: bytes = msgpack.packb(maps, use_bin_type=True)
    return packed


def plan(files: Iterable[tuple[str, int, bool]], chunk_size: int) -> tuple[bytes, FolderLayout]:
    """The payload's first bytes (the index length and the index) and the layout of a folder of
    ``(name, size, executable)`` files, in canonical order (section 11.2). Raises UsageError for a
    folder that no reader would accept."""
    entries = sorted(files, key=lambda entry: entry[0].encode("utf-8", "surrogateescape"))
    if len(entries) > MAX_FOLDER_MEMBERS:
        raise LimitError(f"a folder of {len(entries)} files exceeds the limit of {MAX_FOLDER_MEMBERS} members")
    _check_names((name for name, _, _ in entries), UsageError)
    # The offsets depend on the index's length and the index holds the offsets: grow until stable
    # (each pass can only lengthen the encodings, so this ends within a few passes).
    index_len = 0
    while True:
        at, members = INDEX_PREFIX_LEN + index_len, []
        for name, size, executable in entries:
            offset = _align(at, chunk_size)
            members.append(Member(name, offset, size, executable))
            at = offset + size
        index = _encode(members)
        if len(index) == index_len:
            break
        index_len = len(index)
    if index_len > MAX_FOLDER_INDEX_LEN:
        raise LimitError(f"the folder's index would take {index_len} bytes; the limit is {MAX_FOLDER_INDEX_LEN}")
    layout = FolderLayout(chunk_size, INDEX_PREFIX_LEN + index_len, tuple(members), at)
    return struct.pack(">I", index_len) + index, layout
