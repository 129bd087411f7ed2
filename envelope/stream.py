"""The chunk stream: payload chunks as raw Fernet tokens (spec section 7).

Knows nothing of headers or recipients: it is given a :class:`~envelope.datakey.DataKey` and a
chunk size. Tokens are built with the hazmat primitives straight into reusable buffers (no base64,
no per-chunk copies of the plaintext); ``tests/test_stream.py`` proves them genuine Fernet tokens.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .datakey import DataKey
from .errors import AuthenticationError

__all__ = [
    "MIN_TOKEN_LEN",
    "ChunkOpener",
    "ChunkSealer",
    "PayloadLayout",
    "open_chunks",
    "read_full",
    "seal_chunks",
    "token_len",
]

FERNET_VERSION = 0x80
_FRAME = struct.Struct(">QB")  # chunk index, final flag (section 7.2)
_HEAD_LEN = 1 + 8 + 16  # version, timestamp, IV
_MAC_LEN = 32
TOKEN_OVERHEAD = _HEAD_LEN + _MAC_LEN  # 57
MIN_TOKEN_LEN = TOKEN_OVERHEAD + 16  # 73: an empty final chunk

CHUNK_FAILED = "payload authentication failed: the file was modified, truncated or extended"
TRUNCATED = "payload authentication failed: the file is truncated"

Progress = Callable[[int], Any]


def token_len(data_len: int) -> int:
    """Length of the token of a chunk of ``data_len`` bytes: 57 + PKCS7-padded (9 + data_len)."""
    return TOKEN_OVERHEAD + 16 * ((_FRAME.size + data_len) // 16 + 1)


def _valid_token_len(length: int, max_len: int) -> bool:
    return MIN_TOKEN_LEN <= length <= max_len and (length - TOKEN_OVERHEAD) % 16 == 0


class ChunkSealer:
    """Seals chunk messages ``u64be(i) || u8(final) || data`` as Fernet tokens under one key."""

    def __init__(
        self,
        key: DataKey,
        chunk_size: int,
        *,
        timestamp: int | None = None,
        iv_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._aes = algorithms.AES(key.encryption_key)
        self._signing_key = key.signing_key
        self.chunk_size = chunk_size
        self.token_size = token_len(chunk_size)
        self._timestamp = struct.pack(">Q", int(time.time()) if timestamp is None else timestamp)
        self._iv_source = iv_source

    def seal_into(self, index: int, final: bool, data: memoryview | bytes, out: memoryview) -> int:
        """Write the token of chunk ``index`` at the start of ``out``; return its length."""
        size = len(data)
        if (final and size >= self.chunk_size) or (not final and size != self.chunk_size):
            raise ValueError("chunk size does not match its position")  # an SDK bug, never input
        length = token_len(size)
        iv = self._iv_source(16)
        out[0] = FERNET_VERSION
        out[1:9] = self._timestamp
        out[9:_HEAD_LEN] = iv
        padding = 16 - (_FRAME.size + size) % 16
        encryptor = Cipher(self._aes, modes.CBC(iv)).encryptor()
        # update_into needs 15 spare bytes past each write; the 32-byte MAC slot provides them.
        written = _HEAD_LEN
        written += encryptor.update_into(_FRAME.pack(index, 1 if final else 0), out[written:])
        written += encryptor.update_into(data, out[written:])
        written += encryptor.update_into(bytes((padding,)) * padding, out[written:])
        encryptor.finalize()
        mac = hmac.HMAC(self._signing_key, hashes.SHA256())
        mac.update(out[:written])
        out[written:length] = mac.finalize()
        return length

    def seal(self, index: int, final: bool, data: memoryview | bytes) -> bytes:
        out = bytearray(token_len(len(data)))
        self.seal_into(index, final, data, memoryview(out))
        return bytes(out)


class ChunkOpener:
    """Verifies and decrypts tokens (section 7.4). Not thread-safe: it reuses one buffer."""

    def __init__(self, key: DataKey, chunk_size: int) -> None:
        self._aes = algorithms.AES(key.encryption_key)
        self._signing_key = key.signing_key
        self.chunk_size = chunk_size
        self.token_size = token_len(chunk_size)
        self._scratch = bytearray(self.token_size + 16)

    def open(self, index: int, is_last: bool, token: memoryview | bytes) -> memoryview:
        """Return the chunk data of ``token``, valid until the next call. Fails with
        :class:`AuthenticationError` unless every check of section 7.4 passes."""
        token = memoryview(token)
        length = len(token)
        if not _valid_token_len(length, self.token_size) or token[0] != FERNET_VERSION:
            raise AuthenticationError(CHUNK_FAILED)
        mac = hmac.HMAC(self._signing_key, hashes.SHA256())
        mac.update(token[: length - _MAC_LEN])
        try:
            mac.verify(token[length - _MAC_LEN :].tobytes())
        except InvalidSignature:
            raise AuthenticationError(CHUNK_FAILED) from None
        decryptor = Cipher(self._aes, modes.CBC(token[9:_HEAD_LEN].tobytes())).decryptor()
        size = decryptor.update_into(token[_HEAD_LEN : length - _MAC_LEN], self._scratch)
        decryptor.finalize()
        message = memoryview(self._scratch)[:size]
        padding = message[-1]
        if not 1 <= padding <= 16 or message[size - padding :] != bytes((padding,)) * padding:
            raise AuthenticationError(CHUNK_FAILED)
        end = size - padding
        if end < _FRAME.size:
            raise AuthenticationError(CHUNK_FAILED)
        found_index, flag = _FRAME.unpack_from(message)
        data_len = end - _FRAME.size
        if (
            found_index != index
            or flag != (1 if is_last else 0)
            or (is_last and data_len >= self.chunk_size)
            or (not is_last and data_len != self.chunk_size)
        ):
            raise AuthenticationError(CHUNK_FAILED)
        return message[_FRAME.size : end]


@dataclass(frozen=True)
class PayloadLayout:
    """Where the tokens are, computed from the payload length alone (section 7.3)."""

    chunk_size: int
    payload_len: int

    def __post_init__(self) -> None:
        if self.payload_len <= 0:
            raise AuthenticationError(TRUNCATED)  # R17
        if not _valid_token_len(self.final_token_len, self.token_size):
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
        low = max(0, padded - 16 - _FRAME.size)
        high = min(self.chunk_size - 1, padded - 1 - _FRAME.size)
        full = (self.chunk_count - 1) * self.chunk_size
        return full + low, full + high


def read_full(src: IO[bytes], buffer: memoryview) -> int:
    """Fill ``buffer`` from ``src`` until it is full or the source ends; return the bytes read."""
    total, size = 0, len(buffer)
    readinto = getattr(src, "readinto", None)
    while total < size:
        if readinto is not None:
            got = readinto(buffer[total:])
        else:
            piece = src.read(size - total)
            got = len(piece) if piece is not None else None
            if got:
                buffer[total : total + got] = piece
        if got is None:
            raise BlockingIOError("non-blocking sources are not supported")
        if got == 0:
            break
        total += got
    return total


def seal_chunks(
    src: IO[bytes], write: Callable[[memoryview], Any], sealer: ChunkSealer, progress: Progress | None = None
) -> int:
    """Read ``src`` to its end and write its tokens; return the plaintext length (section 7.1)."""
    chunk = bytearray(sealer.chunk_size)
    token = memoryview(bytearray(sealer.token_size))
    index = total = 0
    while True:
        got = read_full(src, memoryview(chunk))
        final = got < sealer.chunk_size
        length = sealer.seal_into(index, final, memoryview(chunk)[:got], token)
        write(token[:length])
        total += got
        if progress is not None:
            progress(got)
        if final:
            return total
        index += 1


def open_chunks(
    src: IO[bytes], write: Callable[[memoryview], Any], opener: ChunkOpener, progress: Progress | None = None
) -> int:
    """Read tokens from ``src`` to its end, writing each chunk once it verified; return the length.

    Reads one token ahead to know which is the last one (section 7.4).
    """
    size = opener.token_size
    current, ahead = memoryview(bytearray(size)), memoryview(bytearray(size))
    got = read_full(src, current)
    if got == 0:
        raise AuthenticationError(TRUNCATED)  # R17
    index = total = 0
    while True:
        got_ahead = read_full(src, ahead) if got == size else 0
        is_last = got_ahead == 0
        data = opener.open(index, is_last, current[:got])
        write(data)
        total += len(data)
        if progress is not None:
            progress(len(data))
        if is_last:
            return total
        current, ahead, got = ahead, current, got_ahead
        index += 1
