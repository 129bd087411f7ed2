"""Sender signatures (spec/FORMAT.md section 8): who sealed a file.

Sealing needs only public keys, so an intact file proves nothing about who made it. A sealer that
passes ``sign_with=`` adds its public key to the header and a signature footer to the file; an
opener that passes ``signed_by=`` accepts only files signed by one of those keys. A :class:`Signer`
is anything that can sign: a private key held here (:class:`KeySigner`), or a key in a KMS or an HSM
behind the same three members.

Algorithms: ``ed25519`` (the default), ``ecdsa-p256-sha256`` (what KMS and HSM signing keys offer)
and ``ml-dsa-65`` (post-quantum).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .errors import InvalidKeyError, PassphraseError, SignatureError, UsageError
from .inspection import SignerInfo
from .limits import KEY_FILE_KDF_ITERATIONS

if TYPE_CHECKING:
    from ._format import Header

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "KeySigner",
    "SignedBy",
    "Signer",
    "SignerInfo",
    "SigningKey",
    "VerifyingKey",
    "check_signature",
    "generate_signing_key",
    "load_signing_key",
    "load_verifying_key",
    "parse_signing_key",
    "parse_verifying_key",
    "signing_key_pem",
    "verifying_key_pem",
]

ED25519, ECDSA_P256, ML_DSA_65 = "ed25519", "ecdsa-p256-sha256", "ml-dsa-65"
ALGORITHMS = (ED25519, ECDSA_P256, ML_DSA_65)
DEFAULT_ALGORITHM = ED25519

_SIGNING_TYPES = (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, mldsa.MLDSA65PrivateKey)
_VERIFYING_TYPES = (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, mldsa.MLDSA65PublicKey)
SigningKey = Union[ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, mldsa.MLDSA65PrivateKey]  # noqa: UP007
VerifyingKey = Union[ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, mldsa.MLDSA65PublicKey]  # noqa: UP007
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


def algorithm_of(key: object) -> str:
    """The format's name for the algorithm of a signing or verifying key; InvalidKeyError if none."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return ED25519
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return ECDSA_P256
        raise InvalidKeyError(f"ECDSA keys on {key.curve.name} cannot sign here: use P-256 (prime256v1)")
    if isinstance(key, (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey)):
        return ML_DSA_65
    raise InvalidKeyError(
        f"a {_kind(key)} cannot sign envelope files: signing keys are Ed25519, ECDSA P-256 or ML-DSA-65"
    )


def _kind(key: object) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA key (RSA keys are for recipients)"
    return f"{type(key).__name__.lstrip('_')} object"


class KeySigner:
    """A signing key held in this process, as a :class:`Signer`."""

    __slots__ = ("_key", "algorithm", "public_key_der")

    def __init__(self, private_key: SigningKey) -> None:
        if not isinstance(
            private_key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, mldsa.MLDSA65PrivateKey)
        ):
            raise InvalidKeyError(f"not a signing private key: {_kind(private_key)}")
        self.algorithm = algorithm_of(private_key)
        self._key = private_key
        self.public_key_der = _spki(private_key.public_key())

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
    if isinstance(value, _SIGNING_TYPES):
        return KeySigner(value)
    if isinstance(value, Signer):
        if value.algorithm not in ALGORITHMS:
            raise UsageError(f"unknown signature algorithm {value.algorithm!r}; known: {', '.join(ALGORITHMS)}")
        return value
    if isinstance(value, (str, bytes, os.PathLike)):
        raise UsageError("sign_with takes a key object or a Signer: load a key file with load_signing_key(path)")
    if hasattr(value, "private_bytes") or hasattr(value, "public_bytes"):  # a key, of the wrong kind
        algorithm_of(value)  # raises InvalidKeyError, naming it
        raise InvalidKeyError("sign_with takes a private key: this is a public key")
    raise UsageError(f"sign_with takes a signing private key or a Signer, not {_kind(value)}")


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
            ids.add(hashlib.sha256(_spki(load_verifying_key(item))).digest())
        elif isinstance(item, bytes):
            ids.add(hashlib.sha256(_spki(parse_verifying_key(item))).digest())
        else:
            algorithm_of(item)  # refuses what is not a verifying key, naming it
            ids.add(hashlib.sha256(_spki(item)).digest())
    return frozenset(ids)


def to_be_signed(header: Header, chunk_count: int, tags_digest: bytes) -> bytes:
    """The bytes a signature covers (section 8.3)."""
    assert header.signer is not None

    def field(value: bytes) -> bytes:
        return len(value).to_bytes(4, "big") + value

    parts = [
        _TBS_CONTEXT,
        header.chunk_size.to_bytes(4, "big"),
        field(header.meta),
        len(header.critical).to_bytes(4, "big"),
        *(field(name.encode()) for name in header.critical),
        field(header.signer.alg.encode()),
        field(header.signer.key),
        chunk_count.to_bytes(8, "big"),
        tags_digest,
    ]
    return b"".join(parts)


def verify(algorithm: str, public_key_der: bytes, message: bytes, signature: bytes) -> None:
    """Verify ``signature`` (section 8.2 encoding) over ``message``; SignatureError if it fails."""
    try:
        key = serialization.load_der_public_key(public_key_der)
    except (ValueError, TypeError):
        from .errors import MalformedError

        raise MalformedError("malformed header: the signer's key is not a public key") from None  # R24
    try:
        found = algorithm_of(key)
    except InvalidKeyError:
        found = None
    if found != algorithm:
        from .errors import MalformedError

        raise MalformedError(f"malformed header: the signer's key is not an {algorithm} key")  # R24
    if _spki(key) != public_key_der:  # one encoding per key, so one key id (P-256: uncompressed point)
        from .errors import MalformedError

        raise MalformedError("malformed header: the signer's key is not in its canonical encoding")  # R24
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            if len(signature) != 64 or s > _P256_ORDER // 2:
                raise SignatureError(_BAD_SIGNATURE)  # R27: a high s would make signatures malleable
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, _VERIFYING_TYPES):
            key.verify(signature, message)
    except InvalidSignature:
        raise SignatureError(_BAD_SIGNATURE) from None


# --- keys ----------------------------------------------------------------------------------------


def generate_signing_key(algorithm: str = DEFAULT_ALGORITHM) -> SigningKey:
    """A new signing key from the OS random generator."""
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == ML_DSA_65:
        return mldsa.MLDSA65PrivateKey.generate()
    raise UsageError(f"unknown signature algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _text(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def parse_signing_key(data: bytes | str, passphrase: str | bytes | None = None) -> SigningKey:
    """A signing private key from PEM or DER (PKCS#8) or an OpenSSH private key."""
    raw = _text(data).strip()
    password = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        if raw.startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
            key: object = serialization.load_ssh_private_key(raw, password)
        elif raw.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(raw, password)
        else:
            key = serialization.load_der_private_key(raw, password)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            raise InvalidKeyError("a passphrase was given but the signing key is not encrypted") from None
        raise PassphraseError("the signing key is encrypted: a passphrase is needed") from None
    except ValueError:
        if password is not None:
            raise PassphraseError("cannot load the signing key: wrong passphrase, or not a valid key") from None
        raise InvalidKeyError("not a signing private key (expected PEM, DER or OpenSSH)") from None
    except Exception as exc:
        raise InvalidKeyError(f"cannot load the signing key: {type(exc).__name__}: {exc}") from None
    algorithm_of(key)
    assert isinstance(key, _SIGNING_TYPES)
    return key


def load_signing_key(path: str | os.PathLike[str], passphrase: str | bytes | None = None) -> SigningKey:
    """A signing private key from a file (see :func:`parse_signing_key`); errors name the file."""
    from .keys import in_key_file, read_key_file

    data = read_key_file(path, "load_signing_key", "parse_signing_key")
    key: SigningKey = in_key_file(path, lambda: parse_signing_key(data, passphrase))
    return key


def parse_verifying_key(data: bytes | str) -> VerifyingKey:
    """A signer's public key from PEM or DER SubjectPublicKeyInfo, or an OpenSSH public key line."""
    raw = _text(data).strip()
    try:
        if raw.startswith((b"ssh-", b"ecdsa-sha2-")):
            key: object = serialization.load_ssh_public_key(raw)
        elif raw.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError):
        raise InvalidKeyError("not a public key (expected PEM, DER or an OpenSSH public key line)") from None
    except Exception as exc:
        raise InvalidKeyError(f"cannot load the public key: {type(exc).__name__}: {exc}") from None
    algorithm_of(key)
    assert isinstance(key, _VERIFYING_TYPES)
    return key


def load_verifying_key(path: str | os.PathLike[str]) -> VerifyingKey:
    """A signer's public key from a file (see :func:`parse_verifying_key`); errors name the file."""
    from .keys import in_key_file, read_key_file

    data = read_key_file(path, "load_verifying_key", "parse_verifying_key")
    key: VerifyingKey = in_key_file(path, lambda: parse_verifying_key(data))
    return key


def signing_key_pem(key: SigningKey, passphrase: str | bytes | None = None) -> bytes:
    """PKCS#8 PEM of a signing key, encrypted with the passphrase when one is given, as RSA key
    files are (:func:`envelope.private_key_pem`: PBKDF2-HMAC-SHA256, ``KEY_FILE_KDF_ITERATIONS``
    iterations, AES-256-CBC)."""
    from ._keyformat import private_key_pem
    from .keys import passphrase_bytes

    return private_key_pem(key, passphrase_bytes(passphrase), KEY_FILE_KDF_ITERATIONS)  # "" is refused


def verifying_key_pem(key: SigningKey | VerifyingKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a signer's public key (or of a signing key's public half)."""
    public = (
        key
        if isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, mldsa.MLDSA65PublicKey))
        else key.public_key()
    )
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- checking a signature without any private key ------------------------------------------------


def check_signature(
    source: Any, *, signed_by: SignedBy | None = None, storage_options: Mapping[str, Any] | None = None
) -> SignerInfo:
    """Check a file's signature without a private key: the footer's tags are the tokens' tags and
    the signer signed them, the metadata, the chunk size and its own key (spec/FORMAT.md 8.3).

    ``source``: a path, a URL (``s3://...``, with fsspec; ``storage_options`` as ``fsspec.open``
    takes them), the file's bytes, or a seekable binary file object. Returns the verified
    signer; raises :class:`~envelope.SignerError` for an unsigned file (or one signed by a key not
    in ``signed_by``) and :class:`~envelope.SignatureError` when the check fails. Without the data
    key this cannot tell whether the token *bodies* are intact (their HMAC needs it): opening the
    file checks that too.
    """
    import io

    from ._format import HEADER_MAC_LEN, read_header
    from ._header import check_signer
    from ._layout import CHUNK_FAILED, TAG_LEN, TAGS_DIFFER, PayloadLayout
    from ._stream import timestamp_field
    from ._urls import LOCAL, locate, refuse_options_without_url
    from .errors import AuthenticationError, SignerError
    from .inspection import signer_info

    refuse_options_without_url(storage_options, source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        located = locate(source, storage_options, sealed=True)
        if not isinstance(located, LOCAL):
            # Every token's first and last bytes are read, in order: windows of 16 MiB, the next
            # one fetched while this one is checked.
            with located.reading() as remote:
                return check_signature(remote, signed_by=signed_by)
        with open(located, "rb") as f:
            return check_signature(f, signed_by=signed_by)
    start = source.tell()
    authenticated, header, _ = read_header(source)
    check_signer(header, signed_by)
    if header.signer is None:
        raise SignerError("the file is not signed")
    payload_start = start + len(authenticated) + HEADER_MAC_LEN
    layout = PayloadLayout(header.chunk_size, source.seek(0, os.SEEK_END) - payload_start, header.signer.signature_len)

    def read_at(offset: int, size: int) -> bytes:
        source.seek(payload_start + offset)
        data: bytes = source.read(size)
        return data

    footer = read_at(layout.footer_offset, layout.footer_len)
    tags, signature = footer[: -layout.signature_len], footer[-layout.signature_len :]
    last = layout.chunk_count - 1
    for index in range(layout.chunk_count):
        start, length = layout.token_offset(index), layout.token_length(index)
        # Check 1 of section 7.4, what can be checked without the data key: version byte and
        # timestamp field (the signature covers the tags, not these).
        if read_at(start, 9) != b"\x80" + timestamp_field(index == last, length):
            raise AuthenticationError(CHUNK_FAILED)  # R19
        if read_at(start + length - TAG_LEN, TAG_LEN) != tags[index * TAG_LEN : (index + 1) * TAG_LEN]:
            raise SignatureError(TAGS_DIFFER)  # R27
    message = to_be_signed(header, layout.chunk_count, hashlib.sha256(tags).digest())
    verify(header.signer.alg, header.signer.key, message, signature)
    info = signer_info(header, verified=True)
    assert info is not None
    return info
