"""``x25519`` recipient entries (spec section 4.2): age's X25519 construction with envelope's labels.

The wrap, shared with ``ssh-ed25519`` (section 4.3), is :func:`seal_to` / :func:`open_from`:
an ephemeral X25519 share ``epk``, the shared secret refused when it is all zero (R36), a wrap key
``HKDF-SHA256(shared, salt=epk || recipient share, info=label)``, and the data key sealed with
ChaCha20-Poly1305 under that key and a zero nonce (each wrap key is used once).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from . import _keywrap
from ._agekeys import age_identity, age_recipient, check_canonical
from ._datakey import DATA_KEY_LEN, DataKey
from ._format import X25519, RecipientEntry, entry_for
from .errors import InvalidKeyError, UsageError

__all__ = ["WRAPPED_LEN", "X25519Identity", "X25519Recipient", "open_from", "seal_to", "spki_key_id"]

SHARE_LEN = 32
WRAPPED_LEN = DATA_KEY_LEN + 16  # the data key and the Poly1305 tag
_LABEL = b"envelope v1 x25519"


def spki_key_id(public_key: x25519.X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo, as for every kind with an SPKI (section 4.1)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def seal_to(share: x25519.X25519PublicKey, share_bytes: bytes, data_key: DataKey, label: bytes) -> tuple[bytes, bytes]:
    """(epk, wrapped) for a recipient's X25519 share (section 4.2, "Wrapping")."""
    ephemeral = x25519.X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(share)
    except ValueError:
        shared = bytes(SHARE_LEN)
    if not any(shared):  # a small-order recipient share: nothing to seal to
        raise InvalidKeyError("the X25519 public key is of small order: it cannot receive a file")
    return epk, _keywrap.wrap(_keywrap.hkdf(shared, label, epk + share_bytes), data_key)


def open_from(
    private_key: x25519.X25519PrivateKey, share_bytes: bytes, epk: bytes, wrapped: bytes, label: bytes
) -> DataKey:
    """The data key of an entry, or a random key when it does not unwrap (R36, R37): the header MAC
    check then fails with R16's error, so that every failure reads the same (section 4.2 rule 4)."""
    try:
        shared = private_key.exchange(x25519.X25519PublicKey.from_public_bytes(epk))
    except ValueError:  # OpenSSL refuses an all-zero shared secret
        shared = bytes(SHARE_LEN)
    if not any(shared):
        return DataKey.generate()
    return _keywrap.unwrap(_keywrap.hkdf(shared, label, epk + share_bytes), wrapped)


class X25519Recipient:
    """An X25519 public key (an age ``age1...`` recipient) as a recipient: ``x25519`` entries.

    ``key_id`` is SHA-256 of the key's DER SubjectPublicKeyInfo, as 64 hex digits."""

    __slots__ = ("_kid", "_share", "key_id", "public_key")

    def __init__(self, public_key: x25519.X25519PublicKey) -> None:
        if not isinstance(public_key, x25519.X25519PublicKey):
            raise UsageError("X25519Recipient takes an X25519 public key")
        self.public_key = public_key
        self._share = public_key.public_bytes_raw()
        check_canonical(self._share, "the X25519 public key")
        self._kid = spki_key_id(public_key)
        self.key_id = self._kid.hex()

    def wrap(self, data_key: DataKey) -> RecipientEntry:
        epk, wrapped = seal_to(self.public_key, self._share, data_key, _LABEL)
        return RecipientEntry(X25519, {"kid": self._kid, "epk": epk, "key": wrapped})

    def to_age(self) -> str:
        """The key in age's encoding, ``age1...``."""
        return age_recipient(self._share)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and hmac.compare_digest(self._kid, other._kid)

    def __hash__(self) -> int:
        return hash(self._kid)

    def __repr__(self) -> str:
        return f"X25519Recipient(key_id={self.key_id})"


class X25519Identity:
    """An X25519 private key (an age ``AGE-SECRET-KEY-1...`` identity) as an identity.

    Finds its ``x25519`` entry by key id. :meth:`generate` makes a new one; :meth:`to_age` gives
    the age encoding (a secret: handle it as one)."""

    __slots__ = ("_kid", "_private_key", "_share", "key_id")

    def __init__(self, private_key: x25519.X25519PrivateKey) -> None:
        if not isinstance(private_key, x25519.X25519PrivateKey):
            raise UsageError("X25519Identity takes an X25519 private key")
        self._private_key = private_key
        public = private_key.public_key()
        self._share = public.public_bytes_raw()
        self._kid = spki_key_id(public)
        self.key_id = self._kid.hex()

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(x25519.X25519PrivateKey.from_private_bytes(os.urandom(32)))

    @property
    def private_key(self) -> x25519.X25519PrivateKey:
        return self._private_key

    def recipient(self) -> X25519Recipient:
        """The matching recipient (this key's public half)."""
        return X25519Recipient(self._private_key.public_key())

    def to_age(self) -> str:
        """The key in age's encoding, ``AGE-SECRET-KEY-1...``: a secret."""
        return age_identity(self._private_key.private_bytes_raw())

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        entry = entry_for(entries, X25519, self._kid)
        if entry is None:
            return None
        return open_from(self._private_key, self._share, entry.fields["epk"], entry.fields["key"], _LABEL)

    def __repr__(self) -> str:
        return f"X25519Identity(key_id={self.key_id})"
