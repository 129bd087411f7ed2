"""``mlkem768x25519`` recipient entries (spec section 4.4): the post-quantum hybrid of age 1.3.

The KEM is MLKEM768-X25519 as age's ``age1pq1...`` keys use it (X-Wing's combiner: ML-KEM-768 and
X25519, their shared secrets hashed with SHA3-256 over the X25519 ciphertext and public key), keys
being a 32-byte seed expanded with SHAKE256. The KEM's shared secret is turned into a wrap key with
HKDF under envelope's own label, and the data key sealed with ChaCha20-Poly1305 as in section 4.2.
ML-KEM comes from cryptography; SHA3 and SHAKE from hashlib.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from . import _keywrap
from ._agekeys import check_canonical, pq_identity, pq_recipient
from ._datakey import DataKey
from ._format import MLKEM768X25519, RecipientEntry, entry_for
from .errors import InvalidKeyError, MissingDependencyError, UsageError

__all__ = ["MlKem768X25519Identity", "MlKem768X25519Recipient"]

SEED_LEN = 32
PUBLIC_KEY_LEN = 1184 + 32  # ML-KEM-768 encapsulation key || X25519 public key
ENC_LEN = 1088 + 32  # ML-KEM-768 ciphertext || X25519 ephemeral public key
_COMBINER_LABEL = b"\\.//^\\"  # X-Wing's six-byte label, as MLKEM768-X25519 uses it
_LABEL = b"envelope v1 mlkem768x25519"


def _mlkem() -> Any:
    """cryptography's ML-KEM module, or a typed error where the installed version lacks it."""
    try:
        from cryptography.hazmat.primitives.asymmetric import mlkem
    except ImportError:  # pragma: no cover - cryptography >= 48 ships it
        raise MissingDependencyError(
            "mlkem768x25519 keys need ML-KEM, which this cryptography does not provide: upgrade cryptography"
        ) from None
    return mlkem


def _combine(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + _COMBINER_LABEL).digest()


def key_id(public_key: bytes) -> bytes:
    """SHA-256 of the 1216-byte public key (section 4.4: no SubjectPublicKeyInfo is defined for it)."""
    return hashlib.sha256(public_key).digest()


class MlKem768X25519Recipient:
    """An ``age1pq1...`` public key as a recipient: ``mlkem768x25519`` entries (section 4.4)."""

    __slots__ = ("_kid", "_mlkem", "_x25519", "key_id", "public_key")

    def __init__(self, public_key: bytes) -> None:
        if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_LEN:
            raise UsageError(f"an mlkem768x25519 public key is {PUBLIC_KEY_LEN} bytes")
        try:  # R42: the ML-KEM encapsulation key check of FIPS 203 (done by cryptography)
            self._mlkem = _mlkem().MLKEM768PublicKey.from_public_bytes(public_key[:1184])
        except ValueError:
            raise InvalidKeyError("not a valid mlkem768x25519 public key (its ML-KEM-768 part)") from None
        check_canonical(public_key[1184:], "the mlkem768x25519 public key's X25519 part")
        self._x25519 = x25519.X25519PublicKey.from_public_bytes(public_key[1184:])
        self.public_key = public_key
        self._kid = key_id(public_key)
        self.key_id = self._kid.hex()

    def wrap(self, data_key: DataKey) -> RecipientEntry:
        ss_m, ct_m = self._mlkem.encapsulate()
        ephemeral = x25519.X25519PrivateKey.generate()
        ct_x = ephemeral.public_key().public_bytes_raw()
        try:
            ss_x = ephemeral.exchange(self._x25519)
        except ValueError:  # an all-zero shared secret: a small-order X25519 part
            raise InvalidKeyError("the mlkem768x25519 public key's X25519 part is of small order") from None
        shared = _combine(ss_m, ss_x, ct_x, self.public_key[1184:])
        wrapped = _keywrap.wrap(_keywrap.hkdf(shared, _LABEL), data_key)
        return RecipientEntry(MLKEM768X25519, {"kid": self._kid, "enc": ct_m + ct_x, "key": wrapped})

    def to_age(self) -> str:
        """age's encoding, ``age1pq1...``."""
        return pq_recipient(self.public_key)

    def __repr__(self) -> str:
        return f"MlKem768X25519Recipient(key_id={self.key_id})"


class MlKem768X25519Identity:
    """An ``AGE-SECRET-KEY-PQ-1...`` key (a 32-byte seed) as an identity for ``mlkem768x25519`` entries."""

    __slots__ = ("_kid", "_mlkem", "_public", "_seed", "_x25519", "key_id")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_LEN:
            raise UsageError(f"an mlkem768x25519 secret key is a {SEED_LEN}-byte seed")
        expanded = hashlib.shake_256(seed).digest(96)
        self._seed = seed
        self._mlkem = _mlkem().MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        self._x25519 = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
        self._public = self._mlkem.public_key().public_bytes_raw() + self._x25519.public_key().public_bytes_raw()
        self._kid = key_id(self._public)
        self.key_id = self._kid.hex()

    @classmethod
    def generate(cls) -> MlKem768X25519Identity:
        return cls(os.urandom(SEED_LEN))

    def recipient(self) -> MlKem768X25519Recipient:
        return MlKem768X25519Recipient(self._public)

    def to_age(self) -> str:
        """age's encoding, ``AGE-SECRET-KEY-PQ-1...``: a secret."""
        return pq_identity(self._seed)

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        entry = entry_for(entries, MLKEM768X25519, self._kid)
        if entry is None:
            return None
        enc, wrapped = entry.fields["enc"], entry.fields["key"]
        ss_m = self._mlkem.decapsulate(enc[:1088])  # implicit rejection: never fails
        try:
            ss_x = self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(enc[1088:]))
        except ValueError:  # R36: an all-zero X25519 shared secret
            return DataKey.generate()
        shared = _combine(ss_m, ss_x, enc[1088:], self._public[1184:])
        return _keywrap.unwrap(_keywrap.hkdf(shared, _LABEL), wrapped)  # R37, reported as R16 is

    def __repr__(self) -> str:
        return f"MlKem768X25519Identity(key_id={self.key_id})"
