"""Recipients wrap a data key; identities unwrap it (spec section 4). Nothing here knows chunks.

A new recipient kind is a new pair of classes with a new ``type`` string: readers skip entries of
types they do not implement, so files stay readable by older readers' other entries.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, Union, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._datakey import DATA_KEY_LEN, HEADER_AUTH_FAILED, DataKey
from ._format import RSA_OAEP_SHA256, RecipientEntry
from .errors import AuthenticationError, MalformedError, UsageError
from .keys import KeySource, check_key_policy, key_id, load_private_key, load_public_key

__all__ = [
    "Identity",
    "IdentityLike",
    "Recipient",
    "RecipientLike",
    "RsaIdentity",
    "RsaRecipient",
    "as_identities",
    "as_list",
    "as_recipients",
]


def _oaep() -> padding.OAEP:
    """RSA-OAEP with SHA-256, MGF1-SHA-256 and the empty label (section 4.1: what KMS and HSMs take)."""
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@runtime_checkable
class Recipient(Protocol):
    """Something that wraps a data key into a header entry."""

    def wrap(self, data_key: DataKey) -> RecipientEntry: ...


@runtime_checkable
class Identity(Protocol):
    """Something that finds its entry in a header and unwraps the data key from it."""

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        """The data key, or ``None`` when no entry is for this identity. Raises
        :class:`AuthenticationError` when an entry is for it but does not unwrap."""
        ...


class RsaRecipient:
    """An RSA public key as a recipient: ``rsa-oaep-sha256`` entries (section 4.1)."""

    __slots__ = ("key_id", "public_key")

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        check_key_policy(public_key)
        self.public_key = public_key
        self.key_id = key_id(public_key)

    def wrap(self, data_key: DataKey) -> RecipientEntry:
        wrapped = self.public_key.encrypt(data_key.raw(), _oaep())
        return RecipientEntry(RSA_OAEP_SHA256, {"kid": self.key_id, "key": wrapped})

    def __repr__(self) -> str:
        return f"RsaRecipient(bits={self.public_key.key_size}, key_id={self.key_id.hex()})"


class RsaIdentity:
    """An RSA private key as an identity. Finds its entry by key id, without trial decryption."""

    __slots__ = ("_private_key", "key_id")

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        check_key_policy(private_key)
        self._private_key = private_key
        self.key_id = key_id(private_key)

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return self._private_key

    def recipient(self) -> RsaRecipient:
        """The matching recipient (this key's public half)."""
        return RsaRecipient(self._private_key.public_key())

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        for entry in entries:
            if entry.type == RSA_OAEP_SHA256 and entry.kid is not None and hmac.compare_digest(entry.kid, self.key_id):
                return self._unwrap(entry.fields["key"])
        return None

    def _unwrap(self, wrapped: bytes) -> DataKey:
        if len(wrapped) != (self._private_key.key_size + 7) // 8:  # R14, before any RSA work
            raise MalformedError("malformed header: the wrapped key length does not match the RSA key")
        try:
            raw = self._private_key.decrypt(wrapped, _oaep())
        except ValueError:
            raise AuthenticationError(HEADER_AUTH_FAILED) from None  # R15, worded as R16
        if len(raw) != DATA_KEY_LEN:
            raise AuthenticationError(HEADER_AUTH_FAILED)
        return DataKey(raw)

    def __repr__(self) -> str:
        return f"RsaIdentity(bits={self._private_key.key_size}, key_id={self.key_id.hex()})"


RecipientLike = Union[Recipient, rsa.RSAPublicKey, KeySource]  # noqa: UP007 - a runtime alias
"""A :class:`Recipient`, an RSA public key object, or public key text/bytes/path."""

IdentityLike = Union[Identity, rsa.RSAPrivateKey, KeySource]  # noqa: UP007 - a runtime alias
"""An :class:`Identity`, an RSA private key object, or unencrypted private key text/bytes/path."""


def _as_recipient(item: object) -> Recipient:
    if isinstance(item, Recipient):
        return item
    if isinstance(item, rsa.RSAPrivateKey):
        raise UsageError("a private key was given as a recipient; give its public key (key.public_key())")
    if isinstance(item, rsa.RSAPublicKey):
        return RsaRecipient(item)
    if isinstance(item, (str, bytes, os.PathLike)):
        return RsaRecipient(load_public_key(item))
    check_key_policy(item)  # raises InvalidKeyError naming the type
    raise AssertionError("unreachable")


def _as_identity(item: object) -> Identity:
    if isinstance(item, Identity):
        return item
    if isinstance(item, rsa.RSAPrivateKey):
        return RsaIdentity(item)
    if isinstance(item, (str, bytes, os.PathLike)):
        return RsaIdentity(load_private_key(item))
    if isinstance(item, rsa.RSAPublicKey):
        raise UsageError("a public key cannot open a file; give the private key")
    check_key_policy(item)
    raise AssertionError("unreachable")


def as_recipients(recipients: RecipientLike | Iterable[RecipientLike]) -> list[Recipient]:
    """Normalise one recipient or many into :class:`Recipient` objects."""
    items = as_list(recipients)
    if not items:
        raise UsageError("at least one recipient is needed")
    return [_as_recipient(item) for item in items]


def as_identities(identities: IdentityLike | Iterable[IdentityLike]) -> list[Identity]:
    """Normalise one private key or many into :class:`Identity` objects."""
    items = as_list(identities)
    if not items:
        raise UsageError("at least one private key is needed")
    return [_as_identity(item) for item in items]


def as_list(value: object) -> list[Any]:
    """One key-like value or an iterable of them, as a list (a str, bytes or path is one value)."""
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or not isinstance(value, Iterable):
        return [value]
    return list(value)
