"""Turn an old whole-file Fernet token into an envelope file (docs/SDK.md, "Migrating from Fernet").

The usual recipe wrote ``Fernet(key).encrypt(data)`` to a file: one base64url token for the whole
payload. :func:`migrate_fernet_token` reads such a file in blocks, in two passes over a seekable
source: the first checks the token's HMAC-SHA256 under the key, the second decrypts AES-128-CBC,
checks the padding and seals the plaintext as it comes, and checks the HMAC again over the bytes it
actually read before the output is committed (so a token changed between the passes is refused
too). Memory stays flat whatever the token's size; the plaintext never reaches the disk; the output
appears atomically, or not at all. A source that cannot seek (a pipe) is first copied to an
anonymous temporary file: that copy holds the token (ciphertext), never plaintext.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._fernetkey import FernetKey, parse_fernet_key
from .errors import AuthenticationError, MalformedError
from .fileio import EnvelopeWriter, open_writer
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import RecipientLike

__all__ = ["MigratedToken", "migrate_fernet_token"]

FERNET_VERSION = 0x80
_HEADER_LEN = 1 + 8 + 16  # version, timestamp, IV
_TAG_LEN = 32
_MIN_TOKEN_LEN = _HEADER_LEN + 16 + _TAG_LEN  # one AES block: the empty plaintext, padded
_TEXT_BLOCK = 1 << 20  # base64 characters read at a time (a multiple of 4): 768 KiB of token
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TRAILING = b" \t\r\n"
_NOT_FERNET = "not a Fernet token: expected url-safe base64 of a version 0x80 token"
# A token's length is set by its ciphertext's 16-byte blocks: any other length is a cut (or padded) one.
_BAD_LENGTH = _NOT_FERNET + " (its length fits no token: truncated?)"
FERNET_AUTH_FAILED = "the Fernet token does not authenticate under this key: it was modified, or made with another key"


@dataclass(frozen=True)
class MigratedToken:
    """What a migration read: the plaintext's length, and the token's timestamp field (seconds
    since 1970, as the token's writer set it; authenticated only as far as the shared key is kept
    secret, and never checked against a TTL)."""

    plaintext_len: int
    timestamp: int


def migrate_fernet_token(
    src: str | os.PathLike[str] | IO[bytes],
    dst: str | os.PathLike[str] | IO[bytes],
    fernet_key: str | bytes | FernetKey,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sign_with: Any = None,
    overwrite: bool = False,
) -> MigratedToken:
    """Read the Fernet token in ``src`` (a path or a binary file object: the text that
    ``Fernet(fernet_key).encrypt(data)`` returned, possibly followed by a newline) and seal ``data``
    for ``recipients`` into ``dst`` (a path or URL, written atomically, as
    :func:`~envelope.seal_file` writes; or a binary file object, as :func:`~envelope.open_writer`
    takes one).

    Verified: the token is well formed (url-safe base64, version 0x80, whole AES blocks), its
    HMAC-SHA256 under ``fernet_key`` (in constant time, before any byte is decrypted, and again
    over the bytes decrypted) and its PKCS#7 padding. Not verified: who made the token (anyone
    holding ``fernet_key`` can make one), and when: the timestamp is returned, no TTL is applied.
    Raises :class:`~envelope.MalformedError` for text that is not a Fernet token and
    :class:`~envelope.AuthenticationError` for one that does not authenticate under the key; then
    ``dst`` is not written.
    """
    key = fernet_key if isinstance(fernet_key, FernetKey) else FernetKey(fernet_key)
    shared = parse_fernet_key(key.text())
    with _seekable(src) as source:
        text_len, token_len = _measure(source)
        header = _authenticate(source, text_len, token_len, shared[:16])
        with open_writer(
            dst, recipients, overwrite=overwrite, metadata=metadata, chunk_size=chunk_size, sign_with=sign_with
        ) as writer:
            plaintext_len = _decrypt_into(writer, source, text_len, token_len, shared, header)
    return MigratedToken(plaintext_len, int.from_bytes(header[1:9], "big"))


class _seekable:
    """``src`` as a seekable binary file: a path opened, a seekable file object as it is, anything
    else spooled to an anonymous temporary file (the token only: ciphertext)."""

    def __init__(self, src: str | os.PathLike[str] | IO[bytes]) -> None:
        self._src = src
        self._opened: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if isinstance(self._src, (str, os.PathLike)):
            self._opened = open(self._src, "rb")
            return self._opened
        if _can_seek(self._src):
            return self._src
        self._opened = tempfile.TemporaryFile()
        shutil.copyfileobj(self._src, self._opened, _TEXT_BLOCK)
        self._opened.seek(0)
        return self._opened

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()


def _can_seek(f: IO[bytes]) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _measure(source: IO[bytes]) -> tuple[int, int]:
    """The token's text length (trailing whitespace dropped) and its decoded length."""
    start = source.tell()
    end = source.seek(0, io.SEEK_END)
    tail_start = max(start, end - 64)
    source.seek(tail_start)
    tail = source.read(end - tail_start)
    text_len = tail_start + len(tail.rstrip(_TRAILING)) - start
    padding_len = 0
    if text_len >= 2:
        source.seek(start + text_len - 2)
        padding_len = source.read(2).count(b"=")
    source.seek(start)
    if text_len % 4:
        raise MalformedError(_BAD_LENGTH)
    token_len = text_len // 4 * 3 - padding_len
    if token_len < _MIN_TOKEN_LEN or (token_len - _HEADER_LEN - _TAG_LEN) % 16:
        raise MalformedError(_BAD_LENGTH)
    return text_len, token_len


def _decoded(source: IO[bytes], text_len: int) -> Iterator[bytes]:
    """The token's bytes, block by block, from ``text_len`` characters of strict url-safe base64
    ('=' only as the last one or two characters)."""
    start = source.tell()
    done = 0
    while done < text_len:
        block = source.read(min(_TEXT_BLOCK, text_len - done))
        if not block:
            raise MalformedError("the Fernet token file changed while it was read")
        last = done + len(block) == text_len
        body = block.rstrip(b"=") if last else block
        if len(block) - len(body) > 2 or body.translate(None, _ALPHABET) or len(block) % 4:
            raise MalformedError(_NOT_FERNET)
        done += len(block)
        yield base64.urlsafe_b64decode(block)
    source.seek(start)


def _split(blocks: Iterator[bytes], token_len: int) -> Iterator[tuple[bytes, bytes]]:
    """(body bytes, tag bytes) per block: the body is everything but the last 32 bytes."""
    position = 0
    body_len = token_len - _TAG_LEN
    for block in blocks:
        cut = min(max(body_len - position, 0), len(block))
        yield block[:cut], block[cut:]
        position += len(block)


def _authenticate(source: IO[bytes], text_len: int, token_len: int, signing_key: bytes) -> bytes:
    """Pass 1: the HMAC over the whole token; returns its first 25 bytes (version, time, IV)."""
    mac = hmac.HMAC(signing_key, hashes.SHA256())
    header = bytearray()
    tag = bytearray()
    for body, tail in _split(_decoded(source, text_len), token_len):
        if len(header) < _HEADER_LEN:
            header += body[: _HEADER_LEN - len(header)]
        mac.update(body)
        tag += tail
    if header[0] != FERNET_VERSION:
        raise MalformedError(_NOT_FERNET)
    _verify(mac, bytes(tag))
    return bytes(header)


def _verify(mac: hmac.HMAC, tag: bytes) -> None:
    try:
        mac.verify(tag)  # constant time
    except InvalidSignature:
        raise AuthenticationError(FERNET_AUTH_FAILED) from None


def _decrypt_into(
    writer: EnvelopeWriter, source: IO[bytes], text_len: int, token_len: int, shared: bytes, header: bytes
) -> int:
    """Pass 2: decrypt, unpad and write the plaintext, the HMAC computed again over these bytes
    and checked before returning (an exception here discards the output)."""
    mac = hmac.HMAC(shared[:16], hashes.SHA256())
    decryptor = Cipher(algorithms.AES(shared[16:]), modes.CBC(header[9:25])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    seen = 0
    written = 0
    tag = bytearray()
    for body, tail in _split(_decoded(source, text_len), token_len):
        mac.update(body)
        tag += tail
        head = body[: max(_HEADER_LEN - seen, 0)]
        if head != header[seen : seen + len(head)]:
            raise AuthenticationError(FERNET_AUTH_FAILED)  # the token changed since pass 1
        seen += len(body)
        plaintext = unpadder.update(decryptor.update(body[len(head) :]))
        writer.write(plaintext)
        written += len(plaintext)
    _verify(mac, bytes(tag))
    try:
        plaintext = unpadder.update(decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise AuthenticationError(FERNET_AUTH_FAILED) from None
    writer.write(plaintext)
    return written + len(plaintext)
