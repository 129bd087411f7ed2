"""Signers' keys (spec/FORMAT.md sections 8.1 and 8.2): the algorithms, their key types, and keys
parsed, made, encoded and checked. No signing and no files here: :mod:`envelope.signing` signs and
verifies, :mod:`envelope.keys` reads and writes key files, and both stand on this module."""

from __future__ import annotations

from typing import Any, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from ._edwards import ed25519_key_problem
from ._keyformat import key_text, passphrase_bytes, private_key_pem
from ._keypolicy import key_kind, loading_keys
from .errors import InvalidKeyError, MalformedError, PassphraseError, UsageError
from .limits import KEY_FILE_KDF_ITERATIONS

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "ECDSA_P256",
    "ED25519",
    "ML_DSA_65",
    "SIGNING_TYPES",
    "VERIFYING_TYPES",
    "SigningKey",
    "VerifyingKey",
    "algorithm_of",
    "check_signer_key",
    "generate_signing_key",
    "kind_of",
    "parse_signing_key",
    "parse_verifying_key",
    "signing_key_pem",
    "spki",
    "verifying_key_pem",
]

ED25519, ECDSA_P256, ML_DSA_65 = "ed25519", "ecdsa-p256-sha256", "ml-dsa-65"
ALGORITHMS = (ED25519, ECDSA_P256, ML_DSA_65)
DEFAULT_ALGORITHM = ED25519

SIGNING_TYPES = (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, mldsa.MLDSA65PrivateKey)
VERIFYING_TYPES = (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, mldsa.MLDSA65PublicKey)
SigningKey = Union[ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, mldsa.MLDSA65PrivateKey]  # noqa: UP007
VerifyingKey = Union[ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, mldsa.MLDSA65PublicKey]  # noqa: UP007


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
    from cryptography.hazmat.primitives.asymmetric import rsa

    refusal = RsaKeyNotASignerError if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) else InvalidKeyError
    raise refusal(f"a {kind_of(key)} cannot sign envelope files: signing keys are Ed25519, ECDSA P-256 or ML-DSA-65")


class RsaKeyNotASignerError(InvalidKeyError):
    """An RSA key where a signing or verifying key was expected. Private: callers see an
    InvalidKeyError; the key-file functions catch this class to name the loader of RSA keys."""


def kind_of(key: object) -> str:
    """What a key is, for messages that refuse it."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA key (RSA keys are for recipients)"
    if hasattr(key, "public_bytes") or hasattr(key, "private_bytes"):
        return f"{key_kind(key)} key"
    return f"{type(key).__name__.lstrip('_')} object"


def spki(key: Any) -> bytes:
    """DER SubjectPublicKeyInfo of a public key."""
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def check_signer_key(algorithm: str, public_key_der: bytes) -> VerifyingKey:
    """R24: ``public_key_der`` is the canonical SubjectPublicKeyInfo of a valid public key of
    ``algorithm`` (section 8.1); the key, loaded. Raises MalformedError."""

    def malformed(problem: str) -> MalformedError:
        return MalformedError(f"malformed header: the signer's key {problem}")

    try:
        key = serialization.load_der_public_key(public_key_der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise malformed("is not a public key") from None  # an ECDSA point off the curve lands here too
    try:
        found = algorithm_of(key)
    except InvalidKeyError:
        found = None
    if found != algorithm:
        raise malformed(f"is not an {algorithm} key")
    if spki(key) != public_key_der:  # one encoding per key, so one key id (P-256: uncompressed point)
        raise malformed("is not in its canonical encoding")
    if isinstance(key, ed25519.Ed25519PublicKey):
        problem = ed25519_key_problem(key.public_bytes_raw())
        if problem is not None:
            raise malformed(problem)
    assert isinstance(key, VERIFYING_TYPES)
    return key


def generate_signing_key(algorithm: str = DEFAULT_ALGORITHM) -> SigningKey:
    """A new signing key from the OS random generator."""
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == ML_DSA_65:
        return mldsa.MLDSA65PrivateKey.generate()
    raise UsageError(f"unknown signature algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")


def _text(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def _refuse_age_key(raw: bytes) -> None:
    if raw.startswith(b"age1") or b"AGE-SECRET-KEY-" in raw:
        raise InvalidKeyError(
            "this is an age key, which receives files and signs nothing: a signer's key is Ed25519, ECDSA P-256 "
            "or ML-DSA-65 (keygen --type ed25519 writes one)"
        )


def parse_signing_key(data: bytes | str, passphrase: str | bytes | None = None) -> SigningKey:
    """A signing private key from PEM or DER (PKCS#8) or an OpenSSH private key."""
    raw = key_text(_text(data))
    _refuse_age_key(raw)
    password = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        with loading_keys():
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
    assert isinstance(key, SIGNING_TYPES)
    return key


def parse_verifying_key(data: bytes | str) -> VerifyingKey:
    """A signer's public key from PEM or DER SubjectPublicKeyInfo, or an OpenSSH public key line."""
    raw = key_text(_text(data))
    _refuse_age_key(raw)
    try:
        with loading_keys():
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
    assert isinstance(key, VERIFYING_TYPES)
    return key


def signing_key_pem(key: SigningKey, passphrase: str | bytes | None = None) -> bytes:
    """PKCS#8 PEM of a signing key, encrypted with the passphrase when one is given, as RSA key
    files are (:func:`envelope.private_key_pem`: PBKDF2-HMAC-SHA256, ``KEY_FILE_KDF_ITERATIONS``
    iterations, AES-256-CBC)."""
    return private_key_pem(key, passphrase_bytes(passphrase), KEY_FILE_KDF_ITERATIONS)  # "" is refused


def verifying_key_pem(key: SigningKey | VerifyingKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a signer's public key (or of a signing key's public half)."""
    public = key if isinstance(key, VERIFYING_TYPES) else key.public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
