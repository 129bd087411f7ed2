"""Limits met exactly (section 3.3: "a value exactly at a limit is allowed"). The vectors one past
each limit are with their rules (R3, R5, R7, R8, R9, R11)."""

from __future__ import annotations

from .kit import MAX_HEADER_LEN, TEXT, TestFile, metadata, vector


@vector
def limit_header_1mib(f: TestFile) -> None:
    """header_len is exactly 1 MiB: an unknown top-level key pads the header"""
    f.header["padding"] = bytes(70_000)
    f.header["padding"] = bytes(70_000 + MAX_HEADER_LEN - len(f.encode_header()))
    assert len(f.encode_header()) == MAX_HEADER_LEN
    f.seal(TEXT[:20])


@vector
def limit_1024_recipients(f: TestFile) -> None:
    """1024 recipient entries: 1023 of an unknown type, then the reader's"""
    f.header["recipients"] = [{"type": "x-other", "n": i} for i in range(1023)] + ["rsa2048-a"]
    f.seal(TEXT[:20])


@vector
def limit_meta_64kib(f: TestFile) -> None:
    """meta is exactly 65536 bytes"""
    blob = 65_000
    blob += 65_536 - len(metadata({"blob": bytes(blob)}))
    f.header["meta"] = metadata({"blob": bytes(blob)})
    assert len(f.header["meta"]) == 65_536
    f.seal(TEXT[:20])


@vector
def limit_meta_depth_8(f: TestFile) -> None:
    """metadata nested exactly 8 deep: six arrays in the top-level map, an empty map innermost"""
    f.header["meta"] = metadata({"deep": [[[[[[{}]]]]]]})
    f.seal(TEXT[:20])


@vector
def limit_header_depth_16(f: TestFile) -> None:
    """an unknown top-level key nesting 15 arrays: depth 16 with the header map"""
    nested: list[object] = []
    for _ in range(14):
        nested = [nested]
    f.header["nest"] = nested
    f.seal(TEXT[:20])


@vector
def limit_chunk_size_16mib(f: TestFile) -> None:
    """chunk_size 16 MiB, the largest allowed; 100 bytes of plaintext, so one short final token"""
    f.header["chunk_size"] = 16 * 2**20
    f.seal(TEXT[:100])


@vector
def limit_type_64_bytes(f: TestFile) -> None:
    """an unknown recipient type of exactly 64 bytes of UTF-8 (16 four-byte characters), then ours"""
    f.header["recipients"] = [{"type": "\U0001f600" * 16}, "rsa2048-a"]
    f.seal(TEXT[:20])
