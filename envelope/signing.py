"""Sender signatures (spec/FORMAT.md section 8): who sealed a file.

Sealing needs only public keys, so an intact file proves nothing about who made it. A sealer that
passes ``sign_with=`` adds its public key to the header and a signature footer to the file; an
opener that passes ``signed_by=`` accepts only files signed by one of those keys. A :class:`Signer`
is anything that can sign: a private key held here (:class:`KeySigner`), or a key in a KMS or an HSM
behind the same three members.

Algorithms: ``ed25519`` (the default), ``ecdsa-p256-sha256`` (what KMS and HSM signing keys offer)
and ``ml-dsa-65`` (post-quantum). The keys themselves (parsing, making, checking) are in
``_signerkeys``, key files in :mod:`envelope.keys`; checking a file's signature without a key is
file-level work: :func:`envelope.check_signature`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any, Protocol, Union, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ._format import SIGNATURE_LENGTHS
from ._signerkeys import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    SIGNING_TYPES,
    SigningKey,
    VerifyingKey,
    algorithm_of,
    check_signer_key,
    generate_signing_key,
    kind_of,
    parse_signing_key,
    parse_verifying_key,
    signing_key_pem,
    spki,
    verifying_key_pem,
)
from .errors import EnvelopeError, ExternalKeyError, InvalidKeyError, PassphraseError, SignatureError, UsageError
from .inspection import SignerInfo
from .keys import load_signing_key, load_verifying_key

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "KeySigner",
    "SignedBy",
    "Signer",
    "SignerInfo",
    "SigningKey",
    "VerifyingKey",
    "generate_signing_key",
    "load_signing_key",
    "load_verifying_key",
    "parse_signing_key",
    "parse_verifying_key",
    "signing_key_pem",
    "verifying_key_pem",
]

SignedBy = Union[VerifyingKey, "SignerInfo", str, "os.PathLike[str]", Iterable[Any]]
"""The signers an opener accepts: a public key, a key file's path, a :class:`SignerInfo`, or an
iterable of them."""

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_TBS_CONTEXT = b"envelope v1 signature\x00"
_BAD_SIGNATURE = "signature check failed: the signature does not verify (the file was modified, or forged)"


@runtime_checkable
class Signer(Protocol):
    """Something that signs files: an algorithm, its public key, and a ``sign`` operation.

    ``sign`` returns the signature in the encoding of spec/FORMAT.md section 8.2 (for
    ``ecdsa-p256-sha256``: 64 bytes ``r || s`` with low ``s``). Implement it to sign with a key in a
    KMS or an HSM.
    """

    @property
    def algorithm(self) -> str: ...

    @property
    def public_key_der(self) -> bytes:
        """The public key, DER SubjectPublicKeyInfo."""
        ...

    def sign(self, message: bytes) -> bytes: ...


class KeySigner:
    """A signing key held in this process, as a :class:`Signer`."""

    __slots__ = ("_key", "algorithm", "public_key_der")

    def __init__(self, private_key: SigningKey) -> None:
        if not isinstance(private_key, SIGNING_TYPES):
            raise InvalidKeyError(f"not a signing private key: {kind_of(private_key)}")
        self.algorithm = algorithm_of(private_key)
        self._key = private_key
        self.public_key_der = spki(private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
            s = min(s, _P256_ORDER - s)  # low s: no second valid signature for the same file (8.2)
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return key.sign(message)

    def __repr__(self) -> str:
        return f"KeySigner({self.algorithm}, key_id={hashlib.sha256(self.public_key_der).hexdigest()})"


def as_signer(value: object) -> Signer:
    """A :class:`Signer`, or a signing private key (wrapped in :class:`KeySigner`)."""
    if isinstance(value, SIGNING_TYPES):
        return KeySigner(value)
    if isinstance(value, KeySigner):
        return value
    if isinstance(value, Signer):
        return _CheckedSigner(value)
    if isinstance(value, (str, os.PathLike)):  # a key file's path, as recipients and signed_by take
        try:
            return KeySigner(load_signing_key(value))
        except PassphraseError as exc:
            raise PassphraseError(
                f"{exc}; for an encrypted key, pass sign_with=load_signing_key(path, passphrase)"
            ) from exc
    if isinstance(value, bytes):
        raise UsageError(
            "sign_with takes a key file's path, a key object or a Signer: parse key bytes with parse_signing_key"
        )
    if hasattr(value, "private_bytes") or hasattr(value, "public_bytes"):  # a key, of the wrong kind
        algorithm_of(value)  # raises InvalidKeyError, naming it
        raise InvalidKeyError("sign_with takes a private key: this is a public key")
    raise UsageError(f"sign_with takes a signing private key or a Signer, not {kind_of(value)}")


class _CheckedSigner:
    """A caller's :class:`Signer` (a KMS or token key), its results checked: its public key must be
    a valid key of its algorithm, and each signature it returns must verify under that key before
    it is written (a signer that signs with another key, or returns garbage, fails at seal time,
    not when the file is opened). Its failures become :class:`~envelope.ExternalKeyError`."""

    __slots__ = ("_name", "_signer", "algorithm", "public_key_der")

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._name = type(signer).__name__
        algorithm = self._get("algorithm", lambda: signer.algorithm)
        if algorithm not in ALGORITHMS:
            raise UsageError(f"unknown signature algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
        der = self._get("public_key_der", lambda: signer.public_key_der)
        if not isinstance(der, (bytes, bytearray, memoryview)):
            raise ExternalKeyError(f"{self._name}.public_key_der is {type(der).__name__}, not bytes")
        try:
            check_signer_key(algorithm, bytes(der))
        except EnvelopeError as exc:
            raise ExternalKeyError(f"{self._name}.public_key_der is not a valid {algorithm} public key") from exc
        self.algorithm: str = algorithm
        self.public_key_der = bytes(der)

    def _get(self, what: str, get: Any) -> Any:
        try:
            return get()
        except EnvelopeError:
            raise
        except Exception as exc:
            failed = f"{self._name}.{what} failed: {type(exc).__name__} (see the chained exception)"
            raise ExternalKeyError(failed) from exc

    def sign(self, message: bytes) -> bytes:
        signature = self._get("sign", lambda: self._signer.sign(message))
        if not isinstance(signature, (bytes, bytearray, memoryview)):
            raise ExternalKeyError(f"{self._name}.sign returned {type(signature).__name__}, not bytes")
        signature = bytes(signature)
        if len(signature) != SIGNATURE_LENGTHS[self.algorithm]:
            raise ExternalKeyError(
                f"{self._name}.sign returned {len(signature)} bytes; {self.algorithm} signatures have "
                f"{SIGNATURE_LENGTHS[self.algorithm]}"
            )
        try:
            verify(self.algorithm, self.public_key_der, message, signature)
        except SignatureError:
            raise ExternalKeyError(
                f"{self._name}.sign returned a signature that does not verify under its public key "
                f"({self.algorithm}, encoded as spec section 8.2 says): nothing was written with it"
            ) from None
        return signature

    def __repr__(self) -> str:
        return f"{self._name}({self.algorithm}, key_id={hashlib.sha256(self.public_key_der).hexdigest()}, checked)"


def pinned_key_ids(signed_by: object) -> frozenset[bytes]:
    """The key ids of the signers a caller accepts: public keys, paths of public key files,
    :class:`SignerInfo` or :class:`Signer` objects; one or an iterable of them."""
    items = (
        [signed_by]
        if isinstance(signed_by, (str, bytes, os.PathLike)) or not isinstance(signed_by, Iterable)
        else list(signed_by)
    )
    if not items:
        raise UsageError("signed_by is empty: give at least one public key, or None to accept any signer")
    ids = set()
    for item in items:
        if isinstance(item, SignerInfo):
            ids.add(bytes.fromhex(item.key_id))
        elif isinstance(item, Signer):
            ids.add(hashlib.sha256(item.public_key_der).digest())
        elif isinstance(item, (str, os.PathLike)):
            ids.add(hashlib.sha256(spki(load_verifying_key(item))).digest())
        elif isinstance(item, bytes):
            ids.add(hashlib.sha256(spki(parse_verifying_key(item))).digest())
        else:
            algorithm_of(item)  # refuses what is not a verifying key, naming it
            public = item.public_key() if isinstance(item, SIGNING_TYPES) else item  # its public half
            ids.add(hashlib.sha256(spki(public)).digest())
    return frozenset(ids)


def to_be_signed(signed_header: bytes, chunk_count: int, tags_digest: bytes) -> bytes:
    """The bytes a signature covers (section 8.3): the signed header H (every header entry but the
    recipients, as encoded), the chunk count and the SHA-256 of the tags."""
    return b"".join(
        [
            _TBS_CONTEXT,
            len(signed_header).to_bytes(4, "big"),
            signed_header,
            chunk_count.to_bytes(8, "big"),
            tags_digest,
        ]
    )


def verify(algorithm: str, public_key_der: bytes, message: bytes, signature: bytes) -> None:
    """Verify ``signature`` (section 8.2 encoding) over ``message``; SignatureError if it fails
    (MalformedError, R24, if the key is not a valid key of ``algorithm``)."""
    key = check_signer_key(algorithm, public_key_der)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            if len(signature) != 64 or s > _P256_ORDER // 2:
                raise SignatureError(_BAD_SIGNATURE)  # R27: a high s would make signatures malleable
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, message)
    except InvalidSignature:
        raise SignatureError(_BAD_SIGNATURE) from None
