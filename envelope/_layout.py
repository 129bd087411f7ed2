"""Payload arithmetic (spec section 7.3): token lengths and where tokens sit. No cryptography, so
that inspecting a file (``envelope-info``) loads none."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import AuthenticationError

__all__ = [
    "CHUNK_FAILED",
    "FOOTER_EXTENDED",
    "FOOTER_TRUNCATED",
    "FRAME",
    "MIN_TOKEN_LEN",
    "TAGS_DIFFER",
    "TAG_LEN",
    "TOKEN_OVERHEAD",
    "TRAILING",
    "TRUNCATED",
    "PayloadLayout",
    "sealed_payload_len",
    "token_len",
    "valid_token_len",
]

FERNET_VERSION = 0x80
FRAME = struct.Struct(">QB")  # chunk index, final flag (section 7.2)
HEAD_LEN = 1 + 8 + 16  # version, timestamp, IV
MAC_LEN = 32
TOKEN_OVERHEAD = HEAD_LEN + MAC_LEN  # 57
MIN_TOKEN_LEN = TOKEN_OVERHEAD + 16  # 73: an empty final chunk
TAG_LEN = MAC_LEN  # a token's tag (its HMAC), as a signed file's footer lists them (section 8.3)

CHUNK_FAILED = "payload authentication failed: the file was modified, truncated or extended"
TRUNCATED = "payload authentication failed: the file is truncated"
TRAILING = "payload authentication failed: bytes follow the end of the file (extended, or damaged)"
FOOTER_TRUNCATED = "signature check failed: the signature footer is truncated"
FOOTER_EXTENDED = "signature check failed: bytes follow the signature footer (extended, or damaged)"
TAGS_DIFFER = "signature check failed: the file was modified after it was signed"


def token_len(data_len: int) -> int:
    """Length of the token of a chunk of ``data_len`` bytes: 57 + PKCS7-padded (9 + data_len)."""
    return TOKEN_OVERHEAD + 16 * ((FRAME.size + data_len) // 16 + 1)


def valid_token_len(length: int, max_len: int) -> bool:
    return MIN_TOKEN_LEN <= length <= max_len and (length - TOKEN_OVERHEAD) % 16 == 0


@dataclass(frozen=True)
class PayloadLayout:
    """Where the tokens (and a signed file's footer) are, computed from the length of what follows the
    header MAC alone (section 7.3). ``signature_len``: S of a signed file, 0 for an unsigned one."""

    chunk_size: int
    payload_len: int  # every byte after the header MAC: tokens, and the footer of a signed file
    signature_len: int = 0
    # Computed once, here: readers ask for them for every token (a property recomputed them, and a
    # cached_property takes a lock in this Python).
    token_size: int = field(init=False, repr=False, compare=False)
    chunk_count: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.payload_len <= 0:
            raise AuthenticationError(TRUNCATED)  # R17
        size = token_len(self.chunk_size)
        if not self.signature_len:
            count = -(-self.payload_len // size)
        else:
            count = (self.payload_len - self.signature_len + size) // (size + TAG_LEN)
        object.__setattr__(self, "token_size", size)
        object.__setattr__(self, "chunk_count", count)
        if count < 1 or not valid_token_len(self.final_token_len, size):
            raise AuthenticationError(TRUNCATED)  # R18: an impossible layout

    @property
    def signed(self) -> bool:
        return self.signature_len > 0

    @property
    def final_token_len(self) -> int:
        return self.footer_offset - (self.chunk_count - 1) * self.token_size

    @property
    def footer_offset(self) -> int:
        """Offset of the footer (or of the end, unsigned) from the start of the payload."""
        return self.payload_len - self.footer_len

    @property
    def footer_len(self) -> int:
        return TAG_LEN * self.chunk_count + self.signature_len if self.signed else 0

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


def sealed_payload_len(chunk_size: int, plaintext_len: int, signature_len: int = 0) -> int:
    """Bytes after the header MAC of a file sealing ``plaintext_len`` bytes (tokens and footer)."""
    full, rest = divmod(plaintext_len, chunk_size)
    tokens = full * token_len(chunk_size) + token_len(rest)
    return tokens + (TAG_LEN * (full + 1) + signature_len if signature_len else 0)
