"""Fernet's timestamp field (section 7.2; R19): 0 in every token but the last, the last token's own
length in the last one. A stream reader learns from it where a token ends."""

from __future__ import annotations

from .kit import TestFile, vector

SEAL_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z: what the first draft wrote in the field


@vector
def r19_timestamp_seal_time(f: TestFile) -> None:
    """the final token's timestamp field holds a seal time (the first draft's rule), not its length"""
    f.write_header()
    f.token(0, 1, b"old", timestamp=SEAL_TIME)
    f.expect_error("R19")


@vector
def r19_timestamp_not_zero_before_last(f: TestFile) -> None:
    """the first of two tokens has timestamp field 1: not 0, and not a token length"""
    f.write_header()
    f.token(0, 0, b"A" * 16, timestamp=1)
    f.token(1, 1, b"c")
    f.expect_error("R19")


@vector
def r19_timestamp_other_length(f: TestFile) -> None:
    """the only token is 89 bytes long and its timestamp field says 73, a valid length but not its own"""
    f.write_header()
    f.token(0, 1, b"A" * 15, timestamp=73)
    f.expect_error("R19")
