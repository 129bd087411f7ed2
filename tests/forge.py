"""Build envelope files by hand from the spec's parts, to test what the SDK must reject.

Tokens are made with cryptography's high-level Fernet, independent of envelope's hazmat code.
"""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Sequence

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa

from envelope._datakey import DataKey
from envelope._format import Header, encode_header, encode_prefix
from envelope.recipients import RsaRecipient


def spec_timestamp(message: bytes) -> int:
    """The timestamp field section 7.2 asks for: 0, or in a final token (the message's flag byte is 1)
    the token's length, 57 + PKCS7-padded message length."""
    final = len(message) > 8 and message[8] == 1
    return 57 + 16 * (len(message) // 16 + 1) if final else 0


def fernet_token(data_key: DataKey, message: bytes, timestamp: int | None = None) -> bytes:
    """A raw token made by cryptography's high-level Fernet, independent of envelope's hazmat code.
    The timestamp field is the spec's unless one is given."""
    stamp = spec_timestamp(message) if timestamp is None else timestamp
    return base64.urlsafe_b64decode(Fernet(data_key.fernet_key()).encrypt_at_time(message, stamp))


def chunk_message(index: int, final: bool, data: bytes) -> bytes:
    return struct.pack(">QB", index, 1 if final else 0) + data


def forge(
    recipient_key: rsa.RSAPrivateKey,
    data_key: DataKey,
    tokens: Sequence[bytes],
    *,
    chunk_size: int = 16,
    meta: bytes = b"\x80",
    header: bytes | None = None,
) -> bytes:
    """Build a file by hand from the spec's parts, with a valid header MAC, around any tokens."""
    if header is None:
        entry = RsaRecipient(recipient_key.public_key()).wrap(data_key)
        header = encode_header(
            Header(chunk_size=chunk_size, recipients=(entry,), meta=meta, commit=data_key.commitment())
        )
    authenticated = encode_prefix(len(header)) + header
    return authenticated + data_key.header_mac(authenticated) + b"".join(tokens)


def forge_chunks(
    recipient_key: rsa.RSAPrivateKey, data_key: DataKey, chunks: Sequence[tuple[int, bool, bytes]], chunk_size: int = 16
) -> bytes:
    """A file whose chunk messages are exactly ``(index, final, data)`` as given, in that order."""
    tokens = [fernet_token(data_key, chunk_message(i, f, d)) for i, f, d in chunks]
    return forge(recipient_key, data_key, tokens, chunk_size=chunk_size)


class Pipe(io.RawIOBase):
    """Bytes as a stream that cannot seek, as a pipe or a socket gives them."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        return self._data.readinto(buffer)
