"""Read what a header says without any key (like age-inspect). Nothing here is authenticated."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Union, cast

from ._format import HEADER_MAC_LEN, SCRYPT, VERSION, Header, RecipientEntry, read_header
from ._layout import PayloadLayout, token_len
from ._urls import LOCAL, locate, refuse_options_without_url
from .errors import EnvelopeError

__all__ = ["Inspection", "RecipientInfo", "SignerInfo", "inspect"]


@dataclass(frozen=True)
class RecipientInfo:
    type: str
    key_id: str | None  # hex, for types that carry a key id
    work_factor: int | None = None  # a passphrase (scrypt) entry's log2 of scrypt's N, unverified


@dataclass(frozen=True)
class SignerInfo:
    """Who signed a file (spec/FORMAT.md section 8): the signature algorithm and the signer's key.

    Returned by the open functions once the signature verified (``verified=True``), and by
    :func:`inspect` without any check (``verified=False``: anyone can write any header).
    """

    algorithm: str
    key_id: str  # 64 hex digits: SHA-256 of the public key's SubjectPublicKeyInfo
    public_key_der: bytes = field(repr=False)
    verified: bool

    def public_key(self) -> Any:
        """The signer's public key object (imports cryptography)."""
        from ._signerkeys import parse_verifying_key

        return parse_verifying_key(self.public_key_der)

    def __str__(self) -> str:
        return f"{self.algorithm} key {self.key_id} ({'verified' if self.verified else 'UNVERIFIED'})"


def signer_info(header: Header, *, verified: bool) -> SignerInfo | None:
    if header.signer is None:
        return None
    return SignerInfo(header.signer.alg, header.signer.kid.hex(), header.signer.key, verified)


@dataclass(frozen=True)
class Inspection:
    """What an envelope file's header claims. Unverified: anyone can write any header; only opening
    with a key authenticates it (``envelope.open_with_metadata``, ``EnvelopeReader.metadata``)."""

    version: int
    chunk_size: int
    recipients: tuple[RecipientInfo, ...]
    unverified_metadata: dict[str, Any]
    critical: tuple[str, ...]
    signer: SignerInfo | None  # unverified, unless envelope.inspect_signed checked it
    header_size: int  # prefix + header + header MAC
    file_size: int | None  # None when the source's length is unknown
    chunk_count: int | None
    token_size: int
    payload_size: int | None  # bytes after the header: tokens, and a signed file's footer
    footer_size: int | None  # a signed file's footer (tags and signature); 0 unsigned
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
            **({"signature": self.signer.algorithm} if self.signer else {}),
        }


Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]


def inspect(source: Source, *, storage_options: Mapping[str, Any] | None = None) -> Inspection:
    """Describe an envelope file from its header and length, without a key. Raises an
    :class:`EnvelopeError` subclass when the header does not parse.

    ``source``: a path, a URL (``s3://...``, with fsspec; ``storage_options`` as ``fsspec.open``
    takes them: one ranged read of the first 4 KiB covers most headers), the file's bytes, or a
    binary file object."""
    refuse_options_without_url(storage_options, source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_inspection(io.BytesIO(bytes(source)))[0]
    if isinstance(source, (str, os.PathLike)):
        located = locate(source, storage_options, sealed=True)
        if not isinstance(located, LOCAL):
            with located.header_reading() as remote:
                return read_inspection(cast(IO[bytes], remote))[0]
        with open(located, "rb") as f:
            return read_inspection(f)[0]
    return read_inspection(source)[0]


def read_inspection(src: IO[bytes]) -> tuple[Inspection, Header, int | None]:
    """Read the header at ``src``'s position: what it says, the header itself, and where the file
    started (None for a stream that cannot seek)."""
    try:
        start = src.tell() if src.seekable() else None
    except (AttributeError, OSError):
        start = None
    authenticated, header, _mac = read_header(src)
    header_size = len(authenticated) + HEADER_MAC_LEN
    file_size = chunk_count = payload_size = footer_size = low = high = None
    complete: bool | None = None
    if start is not None:
        end = src.seek(0, os.SEEK_END)
        file_size = end - start
        payload_size = file_size - header_size
        try:
            signature_len = header.signer.signature_len if header.signer else 0
            layout = PayloadLayout(header.chunk_size, payload_size, signature_len)
        except EnvelopeError:
            complete = False
        else:
            complete = True
            chunk_count = layout.chunk_count
            footer_size = layout.footer_len
            low, high = layout.plaintext_len_range()
    inspection = Inspection(
        version=VERSION,
        chunk_size=header.chunk_size,
        recipients=tuple(_recipient_info(e) for e in header.recipients),
        unverified_metadata=header.metadata,
        critical=header.critical,
        signer=signer_info(header, verified=False),
        header_size=header_size,
        file_size=file_size,
        chunk_count=chunk_count,
        token_size=token_len(header.chunk_size),
        payload_size=payload_size,
        footer_size=footer_size,
        plaintext_size_min=low,
        plaintext_size_max=high,
        complete=complete,
    )
    return inspection, header, start


def _recipient_info(entry: RecipientEntry) -> RecipientInfo:
    work_factor = entry.fields.get("ln") if entry.type == SCRYPT else None
    return RecipientInfo(entry.type, entry.kid.hex() if entry.kid else None, work_factor)
