"""Prefix and header encoding (sections 2 and 3; rules R1-R12). Each negative vector has a valid
header MAC and payload, so the header's fault is the only one."""

from __future__ import annotations

import struct

import msgpack

from .kit import MAGIC, TEXT, TestFile, kv, raw_map, vector


def with_header(f: TestFile, header: bytes | None = None) -> None:
    """The header given (or ``f.header``), its MAC, and one final token."""
    f.write_header(header)
    f.token(0, 1, b"x")


def with_extra(f: TestFile, *entries: bytes) -> None:
    """The default header's four entries and these encoded entries after them."""
    with_header(f, raw_map(*f.header_pairs(), *entries))


@vector
def non_canonical_header(f: TestFile) -> None:
    """valid but not canonical: keys out of order, chunk_size as uint32; readers accept it"""
    _, recipients, meta, commit = f.header_pairs()
    f.write_header(raw_map(commit, meta, recipients, msgpack.packb("chunk_size") + b"\xce" + struct.pack(">I", 16)))
    f.payload(TEXT[:20])


@vector
def r1_empty_file(f: TestFile) -> None:
    """an empty file"""
    f.expect_error("R1")


@vector
def r1_short(f: TestFile) -> None:
    """five bytes"""
    f.seal(TEXT[:40])
    f.cut(len(f.out) - 5)
    f.expect_error("R1")


@vector
def r1_bad_magic(f: TestFile) -> None:
    """a zip file's magic"""
    f.seal(TEXT[:40])
    f.out[:4] = b"PK\x03\x04"
    f.expect_error("R1")


@vector
def r1_line_ending_conversion(f: TestFile) -> None:
    """CRLF turned into LF by a text-mode transfer"""
    f.seal(TEXT[:40])
    f.replace(b"\r\n", b"\n")
    f.expect_error("R1")


@vector
def r2_version_2(f: TestFile) -> None:
    """major version 2"""
    f.write_header(version=2)
    f.payload(b"x")
    f.expect_error("R2")


@vector
def r2_version_0(f: TestFile) -> None:
    """major version 0"""
    f.write_header(version=0)
    f.payload(b"x")
    f.expect_error("R2")


@vector
def r3_header_len_zero(f: TestFile) -> None:
    """header_len 0"""
    f.out += MAGIC + b"\x01\x00\x00\x00\x00" + b"\x80" * 40
    f.expect_error("R3", "MalformedError")


@vector
def r3_header_len_4gib(f: TestFile) -> None:
    """header_len 0xFFFFFFFF: refused before allocating"""
    f.out += MAGIC + b"\x01\xff\xff\xff\xff" + b"\x80" * 40
    f.expect_error("R3", "LimitError")


@vector
def r3_header_len_over_limit(f: TestFile) -> None:
    """header_len 1 MiB + 1"""
    f.out += MAGIC + b"\x01\x00\x10\x00\x01" + b"\x80" * 40
    f.expect_error("R3", "LimitError")


@vector
def r4_truncated_in_header(f: TestFile) -> None:
    """file ends inside the header"""
    f.seal(TEXT[:40])
    f.cut(len(f.out) - 100)
    f.expect_error("R4")


@vector
def r4_truncated_in_mac(f: TestFile) -> None:
    """file ends inside the header MAC"""
    f.seal(TEXT[:40])
    f.cut(len(f.out) - f.payload_start + 10)
    f.expect_error("R4")


@vector
def r5_not_a_map(f: TestFile) -> None:
    """the header is an array"""
    with_header(f, msgpack.packb([16]))
    f.expect_error("R5")


@vector
def r5_trailing_byte_in_header(f: TestFile) -> None:
    """one byte after the map, inside header_len"""
    with_header(f, f.encode_header() + b"\xc0")
    f.expect_error("R5")


@vector
def r5_duplicate_key(f: TestFile) -> None:
    """'chunk_size' twice"""
    with_extra(f, kv("chunk_size", 16))
    f.expect_error("R5")


@vector
def r5_duplicate_key_in_entry(f: TestFile) -> None:
    """'kid' twice in a recipient entry"""
    chunk_size, _, meta, commit = f.header_pairs()
    entry = b"\x84" + b"".join(kv(k, v) for k, v in f.entry("rsa2048-a").items()) + kv("kid", b"k" * 32)
    with_header(f, raw_map(chunk_size, msgpack.packb("recipients") + b"\x91" + entry, meta, commit))
    f.expect_error("R5")


@vector
def r5_integer_key(f: TestFile) -> None:
    """a map key that is an integer"""
    with_extra(f, msgpack.packb(7) + msgpack.packb(1))
    f.expect_error("R5")


@vector
def r5_invalid_utf8(f: TestFile) -> None:
    """a key that is not UTF-8"""
    with_extra(f, b"\xa2\xff\xfe" + msgpack.packb(1))
    f.expect_error("R5")


@vector
def r5_ext_type(f: TestFile) -> None:
    """an ext value under an unknown key"""
    with_extra(f, msgpack.packb("x") + b"\xd4\x05\x00")
    f.expect_error("R5")


@vector
def r5_timestamp(f: TestFile) -> None:
    """a msgpack timestamp under an unknown key"""
    with_extra(f, msgpack.packb("x") + b"\xd6\xff\x00\x00\x00\x01")
    f.expect_error("R5")


@vector
def r5_too_deep(f: TestFile) -> None:
    """an unknown key nesting 17 levels"""
    with_extra(f, msgpack.packb("x") + b"\x91" * 16 + b"\xc0")
    f.expect_error("R5")


@vector
def r6_chunk_size_missing(f: TestFile) -> None:
    """no chunk_size"""
    with_header(f, raw_map(*f.header_pairs()[1:]))
    f.expect_error("R6")


@vector
def r6_chunk_size_string(f: TestFile) -> None:
    """chunk_size is a string"""
    f.header["chunk_size"] = "16"
    with_header(f)
    f.expect_error("R6")


@vector
def r6_chunk_size_float(f: TestFile) -> None:
    """chunk_size is 16.0"""
    f.header["chunk_size"] = 16.0
    with_header(f)
    f.expect_error("R6")


@vector
def r6_meta_string(f: TestFile) -> None:
    """meta is a str, not bin"""
    f.header["meta"] = "\x80"
    with_header(f)
    f.expect_error("R6")


@vector
def r6_recipients_map(f: TestFile) -> None:
    """recipients is a map"""
    f.header["recipients"] = f.entry("rsa2048-a")
    with_header(f)
    f.expect_error("R6")


@vector
def r6_commit_missing(f: TestFile) -> None:
    """no commit (section 6): the header MAC is valid"""
    del f.header["commit"]
    with_header(f)
    f.expect_error("R6")


@vector
def r6_commit_short(f: TestFile) -> None:
    """a commit of 31 bytes: the right commitment, less its last byte"""
    f.header["commit"] = f.header["commit"][:31]
    with_header(f)
    f.expect_error("R6")


@vector
def r6_commit_string(f: TestFile) -> None:
    """a commit of 32 bytes as a str, not bin"""
    f.header["commit"] = "c" * 32
    with_header(f)
    f.expect_error("R6")


@vector
def r6_critical_not_array(f: TestFile) -> None:
    """critical is a string"""
    f.header["critical"] = "x"
    with_header(f)
    f.expect_error("R6")


@vector
def r7_chunk_size_15(f: TestFile) -> None:
    """chunk_size 15"""
    f.header["chunk_size"] = 15
    with_header(f)
    f.expect_error("R7")


@vector
def r7_chunk_size_too_big(f: TestFile) -> None:
    """chunk_size 16 MiB + 1"""
    f.header["chunk_size"] = 16 * 2**20 + 1
    with_header(f)
    f.expect_error("R7")


@vector
def r8_no_recipients(f: TestFile) -> None:
    """an empty recipients array"""
    f.header["recipients"] = []
    with_header(f)
    f.expect_error("R8", "MalformedError")


@vector
def r8_too_many_recipients(f: TestFile) -> None:
    """1025 recipient entries"""
    f.header["recipients"] = ["rsa2048-a"] + [{"type": "x", "n": i} for i in range(1024)]
    with_header(f)
    f.expect_error("R8", "LimitError")


@vector
def r9_entry_not_map(f: TestFile) -> None:
    """a recipient entry that is a string"""
    chunk_size, _, meta, commit = f.header_pairs()
    with_header(f, raw_map(chunk_size, kv("recipients", [f.entry("rsa2048-a"), "x"]), meta, commit))
    f.expect_error("R9")


@vector
def r9_type_missing(f: TestFile) -> None:
    """a recipient entry without type"""
    f.header["recipients"] = ["rsa2048-a", {"kid": b"k" * 32}]
    with_header(f)
    f.expect_error("R9")


@vector
def r9_type_empty(f: TestFile) -> None:
    """an empty type"""
    f.header["recipients"] = ["rsa2048-a", {"type": ""}]
    with_header(f)
    f.expect_error("R9")


@vector
def r9_type_65_bytes(f: TestFile) -> None:
    """a type of 65 bytes of UTF-8 but 17 characters: the limit counts bytes"""
    f.header["recipients"] = ["rsa2048-a", {"type": "\U0001f600" * 15 + "€é"}]
    with_header(f)
    f.expect_error("R9")


@vector
def r10_short_kid(f: TestFile) -> None:
    """a 31-byte kid"""
    f.header["recipients"] = [f.entry("rsa2048-a", kid=b"k" * 31)]
    with_header(f)
    f.expect_error("R10")


@vector
def r10_key_not_bin(f: TestFile) -> None:
    """a wrapped key that is a string"""
    f.header["recipients"] = [f.entry("rsa2048-a", key="x")]
    with_header(f)
    f.expect_error("R10")


@vector
def r10_duplicate_kid(f: TestFile) -> None:
    """the same kid twice"""
    f.header["recipients"] = ["rsa2048-a", "rsa2048-a"]
    with_header(f)
    f.expect_error("R10")


@vector
def r11_meta_too_long(f: TestFile) -> None:
    """meta of 64 KiB + 1 bytes"""
    f.header["meta"] = b"\x81\xa1k\xc6" + struct.pack(">I", 65537 - 8) + b"\0" * (65537 - 8)
    with_header(f)
    f.expect_error("R11", "LimitError")


@vector
def r11_meta_too_deep(f: TestFile) -> None:
    """metadata nested 9 deep: an empty array at depth 9"""
    f.header["meta"] = b"\x81\xa1k" + b"\x91" * 7 + b"\x90"
    with_header(f)
    f.expect_error("R11", "LimitError")


@vector
def r11_meta_not_map(f: TestFile) -> None:
    """meta holds an array"""
    f.header["meta"] = b"\x90"
    with_header(f)
    f.expect_error("R11", "MalformedError")


@vector
def r11_meta_trailing(f: TestFile) -> None:
    """meta has a byte after its map"""
    f.header["meta"] = b"\x80\xc0"
    with_header(f)
    f.expect_error("R11", "MalformedError")


@vector
def r11_meta_empty(f: TestFile) -> None:
    """meta is empty"""
    f.header["meta"] = b""
    with_header(f)
    f.expect_error("R11", "MalformedError")


@vector
def r12_unknown_critical(f: TestFile) -> None:
    """critical names 'sender-signature'"""
    f.header["critical"] = ["sender-signature"]
    with_header(f)
    f.expect_error("R12")
