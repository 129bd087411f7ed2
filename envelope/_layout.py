"""Payload arithmetic (spec section 7.3): token lengths and where tokens sit. No cryptography, so
that inspecting a file (``envelope-info``) loads none."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import AuthenticationError

__all__ = [
    "CHUNK_FAILED",
    "FRAME",
    "MIN_TOKEN_LEN",
    "TOKEN_OVERHEAD",
    "TRUNCATED",
    "PayloadLayout",
    "token_len",
    "valid_token_len",
]

FERNET_VERSION = 0x80
FRAME = struct.Struct(">QB")  # chunk index, final flag (section 7.2)
HEAD_LEN = 1 + 8 + 16  # version, timestamp, IV
MAC_LEN = 32
TOKEN_OVERHEAD = HEAD_LEN + MAC_LEN  # 57
MIN_TOKEN_LEN = TOKEN_OVERHEAD + 16  # 73: an empty final chunk

CHUNK_FAILED = "payload authentication failed: the file was modified, truncated or extended"
TRUNCATED = "payload authentication failed: the file is truncated"


def token_len(data_len: int) -> int:
    """Length of the token of a chunk of ``data_len`` bytes: 57 + PKCS7-padded (9 + data_len)."""
    return TOKEN_OVERHEAD + 16 * ((FRAME.size + data_len) // 16 + 1)


def valid_token_len(length: int, max_len: int) -> bool:
    return MIN_TOKEN_LEN <= length <= max_len and (length - TOKEN_OVERHEAD) % 16 == 0


@dataclass(frozen=True)
class PayloadLayout:
    """Where the tokens are, computed from the payload length alone (section 7.3)."""

    chunk_size: int
    payload_len: int

    def __post_init__(self) -> None:
        if self.payload_len <= 0:
            raise AuthenticationError(TRUNCATED)  # R17
        if not valid_token_len(self.final_token_len, self.token_size):
            raise AuthenticationError(TRUNCATED)  # R18

    @property
    def token_size(self) -> int:
        return token_len(self.chunk_size)

    @property
    def chunk_count(self) -> int:
        return -(-self.payload_len // self.token_size)

    @property
    def final_token_len(self) -> int:
        return self.payload_len - (self.chunk_count - 1) * self.token_size

    def token_offset(self, index: int) -> int:
        """Offset of token ``index`` from the start of the payload."""
        return index * self.token_size

    def token_length(self, index: int) -> int:
        return self.final_token_len if index == self.chunk_count - 1 else self.token_size

    def plaintext_len_range(self) -> tuple[int, int]:
        """Bounds on the plaintext length, before the final token is opened (padding blurs it)."""
        padded = self.final_token_len - TOKEN_OVERHEAD
        low = max(0, padded - 16 - FRAME.size)
        high = min(self.chunk_size - 1, padded - 1 - FRAME.size)
        full = (self.chunk_count - 1) * self.chunk_size
        return full + low, full + high
