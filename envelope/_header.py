"""Header work (spec sections 2-6 and 9): build a sealed header, unlock one with an identity, and
rewrite one with other recipients. Below both the public functions and the file-like classes; knows
nothing of chunks."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from . import signing
from ._datakey import DataKey
from ._external import checked_unwrap
from ._format import (
    HEADER_MAC_LEN,
    PREFIX_LEN,
    SCRYPT,
    SIGNATURE,
    Header,
    SignerEntry,
    encode_header,
    encode_metadata,
    encode_prefix,
    read_header,
    replace_recipients,
    signed_header,
)
from ._layout import TAG_LEN
from ._scrypt import Passphrase
from ._signerkeys import check_signer_key
from .errors import NoMatchingKeyError, SignerError, UsageError
from .inspection import SignerInfo, signer_info
from .limits import MAX_CHUNK_SIZE, MAX_HEADER_LEN, MIN_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike, as_identities, as_list, as_recipients

__all__ = [
    "MAX_SEALED_HEADER_LEN",
    "NewHeader",
    "UnlockedHeader",
    "check_chunk_size",
    "new_header",
    "read_and_unlock",
    "rewrapped_header",
    "unlock",
]

MAX_SEALED_HEADER_LEN = PREFIX_LEN + MAX_HEADER_LEN + HEADER_MAC_LEN  # prefix, header, MAC at most


@dataclass(frozen=True)
class NewHeader:
    """A fresh data key and the sealed header (prefix, header, MAC) that wraps it."""

    data_key: DataKey
    chunk_size: int
    encoded: bytes
    header: Header
    signer: signing.Signer | None

    @property
    def metadata(self) -> dict[str, Any]:  # as readers will decode it
        return self.header.metadata

    @property
    def signature_len(self) -> int:
        return self.header.signer.signature_len if self.header.signer else 0

    def footer(self, tags: bytes | bytearray) -> bytes:
        """The signature footer over these tags (section 8.3): tags, then the signature."""
        assert self.signer is not None and self.header.signer is not None
        count = len(tags) // TAG_LEN
        message = signing.to_be_signed(self.header.signed, count, hashlib.sha256(tags).digest())
        signature = self.signer.sign(message)
        if len(signature) != self.signature_len:
            raise UsageError(
                f"the signer returned {len(signature)} bytes; {self.header.signer.alg} signatures have "
                f"{self.signature_len}"
            )
        return bytes(tags) + signature


@dataclass(frozen=True)
class UnlockedHeader:
    """A header read from a file and verified with a data key."""

    header: Header
    data_key: DataKey
    size: int  # prefix + header + MAC: where the payload starts, relative to the file's start
    encoded: bytes = dataclasses.field(repr=False, default=b"")  # the header's bytes, as verified
    pinned: bool = False  # the caller named the signers it accepts (signed_by): R28 held

    @property
    def metadata(self) -> dict[str, Any]:
        return self.header.metadata

    @property
    def signature_len(self) -> int:
        return self.header.signer.signature_len if self.header.signer else 0

    def check_signature(self, chunk_count: int, tags_digest: bytes, signature: bytes) -> None:
        """Verify a signed file's signature (section 8.3): a ``SignatureCheck`` of the stream layer."""
        signer = self.header.signer
        assert signer is not None
        message = signing.to_be_signed(self.header.signed, chunk_count, tags_digest)
        signing.verify(signer.alg, signer.key, message, signature)

    def signer(self) -> SignerInfo | None:
        """Who signed the file; to be called once the footer verified."""
        return signer_info(self.header, verified=True)


def check_chunk_size(chunk_size: object) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise UsageError("chunk_size must be an integer")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise UsageError(f"chunk_size must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes, not {chunk_size}")
    return chunk_size


def _sealed(encoded: bytes, data_key: DataKey) -> bytes:
    """Prefix, header and header MAC (sections 2, 3 and 6) around the header's bytes."""
    authenticated = encode_prefix(len(encoded)) + encoded
    return authenticated + data_key.header_mac(authenticated)


def new_header(
    recipients: RecipientLike | Iterable[RecipientLike],
    metadata: Mapping[str, Any] | None,
    chunk_size: int,
    sign_with: object = None,
) -> NewHeader:
    """Check the arguments, draw a data key and wrap it for every recipient; name the signer."""
    check_chunk_size(chunk_size)
    meta = encode_metadata(metadata)
    targets = as_recipients(recipients)
    signer = None if sign_with is None else signing.as_signer(sign_with)
    data_key = DataKey.generate()
    entries = tuple(r.wrap(data_key) for r in targets)
    header = Header(chunk_size=chunk_size, recipients=entries, meta=meta, commit=data_key.commitment())
    if signer is not None:
        key = signer.public_key_der
        entry = SignerEntry(signer.algorithm, hashlib.sha256(key).digest(), key)
        header = dataclasses.replace(header, critical=(SIGNATURE,), signer=entry)
    encoded = encode_header(header)
    header = dataclasses.replace(header, signed=signed_header(encoded))
    return NewHeader(data_key, chunk_size, _sealed(encoded, data_key), header, signer)


def check_signer(header: Header, signed_by: object) -> None:
    """R24, the signer's key is a valid key of its algorithm (section 8.1); then R28: with
    ``signed_by`` (not None), the file must be signed by one of those keys."""
    if header.signer is not None:
        check_signer_key(header.signer.alg, header.signer.key)
    if signed_by is None:
        return
    pinned = signing.pinned_key_ids(signed_by)
    if header.signer is None:
        raise SignerError("the file is not signed, and a signature by a given key is required (signed_by)")
    if header.signer.kid not in pinned:
        raise SignerError(
            f"the file is signed by key id {header.signer.kid.hex()}, which is not among the required signers"
        )


def unlock(
    authenticated: bytes,
    header: Header,
    mac: bytes,
    identities: IdentityLike | Iterable[IdentityLike],
    signed_by: object = None,
) -> UnlockedHeader:
    """Check the signer policy (R28), find an identity among the recipients, unwrap the data key and
    verify the header MAC (R13-R16)."""
    check_signer(header, signed_by)
    given = as_identities(identities)
    for identity in given:
        data_key = checked_unwrap(identity, header.recipients)
        if data_key is not None:
            data_key.verify_header(authenticated, header.commit, mac)
            return UnlockedHeader(
                header, data_key, len(authenticated) + len(mac), authenticated[PREFIX_LEN:], signed_by is not None
            )
    if all(isinstance(identity, Passphrase) for identity in given):
        raise NoMatchingKeyError("the file is not sealed with a passphrase: it opens with a key")
    raise NoMatchingKeyError("none of the given keys is a recipient of this file")


def read_and_unlock(
    src: IO[bytes], identities: IdentityLike | Iterable[IdentityLike], signed_by: object = None
) -> UnlockedHeader:
    return unlock(*read_header(src), identities, signed_by)


def unlock_bytes(
    sealed: memoryview, identities: IdentityLike | Iterable[IdentityLike], signed_by: object = None
) -> UnlockedHeader:
    """:func:`read_and_unlock` on a file held in memory: only the header region is copied."""
    return read_and_unlock(io.BytesIO(sealed[:MAX_SEALED_HEADER_LEN]), identities, signed_by)


def rewrapped_header(
    unlocked: UnlockedHeader, add: RecipientLike | Iterable[RecipientLike], remove: Iterable[bytes | str]
) -> bytes:
    """The header of ``unlocked`` with recipients added and removed, under the same data key
    (section 9). Everything else (metadata, chunk size, ``critical``) is kept."""
    header = unlocked.header
    removed = {key_id_bytes(k) for k in _listify(remove)}
    # An entry of any type that carries one of these key ids goes: "remove this key" means every
    # entry through which that key opens the file, whatever kind of entry it is.
    kept = [e for e in header.recipients if e.kid not in removed]
    added = as_recipients(add) if _listify(add) else []
    if added:
        # A passphrase entry is alone in its file (section 4.5): adding recipients to such a file
        # replaces it, which is how a file moves from a passphrase to keys or to a new passphrase.
        kept = [e for e in kept if e.type != SCRYPT]
    present = {e.kid for e in header.recipients}
    unknown = removed - present
    if unknown:
        raise UsageError(f"not a recipient of this file: {', '.join(sorted(k.hex() for k in unknown))}")
    new_entries = [r.wrap(unlocked.data_key) for r in added]
    kids = {e.kid for e in kept}
    for entry in new_entries:
        if entry.kid in kids:
            raise UsageError(f"already a recipient: {entry.kid.hex() if entry.kid else entry.type}")
        kids.add(entry.kid)
    entries = tuple(kept + new_entries)
    if not entries:
        raise UsageError("removing every recipient would leave a file nobody can open")
    return _sealed(replace_recipients(unlocked.encoded, entries), unlocked.data_key)


def key_id_bytes(value: bytes | str) -> bytes:
    """A key id given as 32 bytes, or as 64 hexadecimal digits (``sha256:`` prefix allowed)."""
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value.strip().lower().removeprefix("sha256:"))
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw
    raise UsageError("a key id is 32 bytes, or 64 hexadecimal digits")


def _listify(value: object) -> list[Any]:
    return [] if value is None else as_list(value)
