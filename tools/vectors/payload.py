"""The payload (section 7; rules R17-R22). Chunk size 16, so full tokens are T = 89 bytes.

Every token that is not the last is T bytes long with a timestamp field of 0, and the last one
carries its own length, unless breaking that is the point: then a stream reader (which finds the
tokens from their timestamp fields) and a reader that derives the layout from the file length see
the same tokens and report the same rule. Where they cannot (a cut or extended file), the vector
says what the second reader reports (``from_length``).
"""

from __future__ import annotations

from .kit import TEXT, TestFile, seeded, vector

A, B = b"A" * 16, b"B" * 16


def chunks(f: TestFile, *specs: tuple[int, int, bytes]) -> None:
    """The header, then one token per (index, flag, data), each the last one when its flag is 1."""
    f.write_header()
    for index, flag, data in specs:
        f.token(index, flag, data)


@vector
def r17_no_payload(f: TestFile) -> None:
    """the file ends after the header MAC"""
    f.write_header()
    f.expect_error("R17")


@vector
def r18_final_token_cut(f: TestFile) -> None:
    """the last byte removed"""
    f.seal(TEXT[:40])
    f.cut(1)
    f.expect_error("R18")


@vector
def r18_cut_mid_token(f: TestFile) -> None:
    """cut in the middle of the second token"""
    f.seal(TEXT[:40])
    f.cut(120)
    f.expect_error("R18")


@vector
def r18_cut_at_chunk_boundary(f: TestFile) -> None:
    """two full non-final chunks and nothing after them: a stream ends before a final token (R18);
    from the length, the second token is the last and its timestamp field is 0, not its length (R19)"""
    chunks(f, (0, 0, A), (1, 0, B))
    f.expect_error("R18", from_length="R19")


@vector
def r19_chunk_flipped(f: TestFile) -> None:
    """one ciphertext bit flipped in chunk 1"""
    f.seal(TEXT[:40])
    f.flip(f.payload_start + 89 + 40)
    f.expect_error("R19")


@vector
def r19_version_byte(f: TestFile) -> None:
    """token version 0x81 (with a valid HMAC)"""
    f.write_header()
    f.token(0, 1, b"x", version=0x81)
    f.expect_error("R19")


@vector
def r19_message_too_short(f: TestFile) -> None:
    """the only token's message is 8 bytes (no final flag); its timestamp field is its length, 73"""
    f.write_header()
    f.token(0, 0, b"", message=b"\0" * 8, last=True)
    f.expect_error("R19")


@vector
def r19_other_key(f: TestFile) -> None:
    """a token made under another key"""
    f.write_header()
    f.token(0, 1, b"x", key=seeded(f.name, "other", 32))
    f.expect_error("R19")


@vector
def r20_swapped(f: TestFile) -> None:
    """chunks 0 and 1 swapped"""
    chunks(f, (1, 0, B), (0, 0, A), (2, 1, b"c"))
    f.expect_error("R20")


@vector
def r20_dropped_middle(f: TestFile) -> None:
    """chunk 1 dropped"""
    chunks(f, (0, 0, A), (2, 1, b"c"))
    f.expect_error("R20")


@vector
def r20_duplicated(f: TestFile) -> None:
    """chunk 0 twice"""
    chunks(f, (0, 0, A), (0, 0, A), (1, 1, b"c"))
    f.expect_error("R20")


@vector
def r20_final_flag_missing(f: TestFile) -> None:
    """the last token (timestamp field: its length) holds a full chunk whose final flag is 0"""
    f.write_header()
    f.token(0, 0, A)
    f.token(1, 0, B, last=True)
    f.expect_error("R20")


@vector
def r20_final_not_last(f: TestFile) -> None:
    """chunk 0, a full chunk in a full-length token with timestamp field 0, has the final flag; a
    final chunk follows"""
    f.write_header()
    f.token(0, 1, A, last=False)
    f.token(1, 1, b"c")
    f.expect_error("R20")


@vector
def r20_starts_at_1(f: TestFile) -> None:
    """the first chunk has index 1"""
    chunks(f, (1, 1, b"a"))
    f.expect_error("R20")


@vector
def r20_flag_2(f: TestFile) -> None:
    """final flag value 2 in the last token (timestamp field: its length)"""
    f.write_header()
    f.token(0, 2, b"a", last=True)
    f.expect_error("R20")


@vector
def r21_short_non_final(f: TestFile) -> None:
    """a 15-byte non-final chunk (its token is as long as a full one)"""
    chunks(f, (0, 0, A[:15]), (1, 1, b"c"))
    f.expect_error("R21")


@vector
def r21_shortest_non_final(f: TestFile) -> None:
    """a 7-byte non-final chunk: the shortest whose token is as long as a full one of 16 bytes"""
    chunks(f, (0, 0, A[:7]), (1, 1, b"c"))
    f.expect_error("R21")


@vector
def r21_long_non_final(f: TestFile) -> None:
    """a 17-byte non-final chunk (its token is as long as a full one)"""
    chunks(f, (0, 0, A + b"+"), (1, 1, b"c"))
    f.expect_error("R21")


@vector
def r21_full_final(f: TestFile) -> None:
    """a final chunk of exactly chunk_size bytes"""
    chunks(f, (0, 1, A))
    f.expect_error("R21")


@vector
def r21_long_final(f: TestFile) -> None:
    """a final chunk of chunk_size + 1 bytes (its token is no longer than a full one)"""
    chunks(f, (0, 0, A), (1, 1, B + b"+"))
    f.expect_error("R21")


@vector
def r22_trailing_byte(f: TestFile) -> None:
    """one byte after the final token; from the length alone the layout is impossible (R18)"""
    f.seal(TEXT[:40])
    f.out += b"\0"
    f.expect_error("R22", from_length="R18")


@vector
def r22_trailing_token(f: TestFile) -> None:
    """the final token appended again; from the length alone the layout is impossible (R18)"""
    f.seal(TEXT[:32])
    f.out += f.out[-73:]
    f.expect_error("R22", from_length="R18")
