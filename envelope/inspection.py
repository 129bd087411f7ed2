"""Read what a header says without any key (like age-inspect). Nothing here is authenticated."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import IO, Any, Union

from ._format import HEADER_MAC_LEN, VERSION, read_header
from ._layout import PayloadLayout, token_len
from .errors import EnvelopeError

__all__ = ["Inspection", "RecipientInfo", "inspect"]


@dataclass(frozen=True)
class RecipientInfo:
    type: str
    key_id: str | None  # hex, for types that carry a key id


@dataclass(frozen=True)
class Inspection:
    """What an envelope file's header claims. Unverified: anyone can write any header; only opening
    with a key authenticates it (``envelope.open_with_metadata``, ``EnvelopeReader.metadata``)."""

    version: int
    chunk_size: int
    recipients: tuple[RecipientInfo, ...]
    unverified_metadata: dict[str, Any]
    critical: tuple[str, ...]
    header_size: int  # prefix + header + header MAC
    file_size: int | None  # None when the source's length is unknown
    chunk_count: int | None
    token_size: int
    payload_size: int | None  # bytes of tokens
    plaintext_size_min: int | None  # padding hides the exact length until the last chunk is opened
    plaintext_size_max: int | None
    complete: bool | None  # the payload length is a possible one (not obviously truncated)
    verified: bool = False

    @property
    def algorithms(self) -> dict[str, str]:
        return {
            "payload": "fernet (AES-128-CBC + HMAC-SHA256) per chunk",
            "header_mac": "HMAC-SHA256, key HKDF-SHA256(data key)",
            "key_wrap": ", ".join(sorted({r.type for r in self.recipients})),
        }


Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]


def inspect(source: Source) -> Inspection:
    """Describe an envelope file from its header and length, without a key. Raises an
    :class:`EnvelopeError` subclass when the header does not parse."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _inspect_stream(io.BytesIO(bytes(source)))
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return _inspect_stream(f)
    return _inspect_stream(source)


def _inspect_stream(src: IO[bytes]) -> Inspection:
    try:
        start = src.tell() if src.seekable() else None
    except (AttributeError, OSError):
        start = None
    authenticated, header, _mac = read_header(src)
    header_size = len(authenticated) + HEADER_MAC_LEN
    file_size = chunk_count = payload_size = low = high = None
    complete: bool | None = None
    if start is not None:
        end = src.seek(0, os.SEEK_END)
        file_size = end - start
        payload_size = file_size - header_size
        try:
            layout = PayloadLayout(header.chunk_size, payload_size)
        except EnvelopeError:
            complete = False
        else:
            complete = True
            chunk_count = layout.chunk_count
            low, high = layout.plaintext_len_range()
    return Inspection(
        version=VERSION,
        chunk_size=header.chunk_size,
        recipients=tuple(RecipientInfo(e.type, e.kid.hex() if e.kid else None) for e in header.recipients),
        unverified_metadata=header.metadata,
        critical=header.critical,
        header_size=header_size,
        file_size=file_size,
        chunk_count=chunk_count,
        token_size=token_len(header.chunk_size),
        payload_size=payload_size,
        plaintext_size_min=low,
        plaintext_size_max=high,
        complete=complete,
    )
