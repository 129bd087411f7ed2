"""Keys in AWS KMS: an identity that unwraps with ``Decrypt`` and a signer that signs with
``Sign``; the private key never leaves KMS. Needs the ``kms`` extra (``pip install
envelope-ml[kms]``, which brings boto3). docs/SDK.md, "Keys held elsewhere", has the details.

- :class:`KmsIdentity`: an asymmetric KMS key of spec ``RSA_2048``, ``RSA_3072`` or ``RSA_4096``
  and usage ``ENCRYPT_DECRYPT``. Files are sealed to its public key (``GetPublicKey``, read once);
  opening one costs one ``Decrypt`` call with ``RSAES_OAEP_SHA_256`` (the format's OAEP: SHA-256,
  MGF1-SHA-256, empty label).
- :class:`KmsSigner`: a KMS key of spec ``ECC_NIST_P256`` and usage ``SIGN_VERIFY``
  (``ecdsa-p256-sha256``): one ``Sign`` call with ``ECDSA_SHA_256`` per sealed file, the message
  sent whole (``RAW``) up to KMS's 4096 bytes, else as its SHA-256 digest (``DIGEST``).

Credentials, region and endpoint come from boto3's usual sources, or pass ``client=``. Every
botocore failure becomes :class:`~envelope.ExternalKeyError` naming the key and the service's
error code (``AccessDeniedException``...), except a ciphertext that does not decrypt, which fails
as a wrong key does (R15 reads like R16).
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

from .errors import ExternalKeyError, MissingDependencyError

__all__ = ["KmsIdentity", "KmsSigner", "load_public_key"]

OAEP_ALGORITHM = "RSAES_OAEP_SHA_256"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
MAX_RAW_MESSAGE = 4096  # KMS Sign: a longer message goes as its digest
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# KMS's answer to a ciphertext that does not decrypt: the R15 path, not an error of its own.
_DOES_NOT_DECRYPT = frozenset({"InvalidCiphertextException"})


def _botocore() -> Any:
    try:
        import boto3
        import botocore.exceptions
    except ImportError as exc:
        raise MissingDependencyError("keys in AWS KMS need boto3: pip install envelope-ml[kms]") from exc
    return boto3, botocore.exceptions


def _default_client() -> Any:
    boto3, _ = _botocore()
    return boto3.client("kms")


def _failure(exc: Exception, key_id: str, operation: str) -> ExternalKeyError:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    reason = {
        "AccessDeniedException": "access denied (the caller's IAM policy or the key policy does not allow it)",
        "NotFoundException": "no such key",
        "DisabledException": "the key is disabled",
        "KMSInvalidStateException": "the key is not in a state that allows it (pending deletion or import?)",
        "InvalidKeyUsageException": "the key's usage does not allow this operation",
        "IncorrectKeyException": "the key does not match the request",
        "KeyUnavailableException": "the key is unavailable now",
        "DependencyTimeoutException": "KMS timed out",
        "ThrottlingException": "KMS throttled the request",
    }.get(code or "", f"{code or type(exc).__name__}")
    return ExternalKeyError(f"AWS KMS key {key_id}: {operation} failed: {reason}")


def _public_key(client: Any, key_id: str, usage: str) -> tuple[Any, dict[str, Any]]:
    _, errors = _botocore()
    try:
        answer = client.get_public_key(KeyId=key_id)
    except (errors.BotoCoreError, errors.ClientError) as exc:
        raise _failure(exc, key_id, "GetPublicKey") from exc
    if answer.get("KeyUsage") != usage:
        raise ExternalKeyError(f"AWS KMS key {key_id}: its usage is {answer.get('KeyUsage')}, not {usage}")
    try:
        return load_der_public_key(answer["PublicKey"]), answer
    except (KeyError, ValueError, TypeError) as exc:
        raise ExternalKeyError(f"AWS KMS key {key_id}: GetPublicKey returned no readable public key") from exc


def _spec(answer: dict[str, Any]) -> object:
    return answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")  # the older name, which moto answers


def load_public_key(key_id: str, *, client: Any = None) -> Any:
    """The public half of a KMS key (``GetPublicKey``): an RSA public key (a recipient) for an
    ``ENCRYPT_DECRYPT`` key, an ECDSA P-256 one (for ``signed_by=``) for a ``SIGN_VERIFY`` key."""
    client = client if client is not None else _default_client()
    _, errors = _botocore()
    try:
        usage = client.get_public_key(KeyId=key_id).get("KeyUsage")
    except (errors.BotoCoreError, errors.ClientError) as exc:
        raise _failure(exc, key_id, "GetPublicKey") from exc
    if usage == "SIGN_VERIFY":
        return load_der_public_key(KmsSigner(key_id, client=client).public_key_der)
    return KmsIdentity(key_id, client=client).public_key


class KmsIdentity:
    """An RSA key in AWS KMS, as a :class:`~envelope.KeyUnwrapper`: pass it wherever a private key
    opens files. ``key_id``: a key id, ARN, alias name or alias ARN. ``public_key``: the key's
    public half if known (else read with ``GetPublicKey`` now). Pickles as its key id, public key
    and region: a Dask worker rebuilds a client from its own credentials."""

    def __init__(self, key_id: str, *, client: Any = None, public_key: rsa.RSAPublicKey | None = None) -> None:
        self.key_id = key_id
        self._client = client if client is not None else _default_client()
        if public_key is None:
            public, answer = _public_key(self._client, key_id, "ENCRYPT_DECRYPT")
            if OAEP_ALGORITHM not in answer.get("EncryptionAlgorithms", [OAEP_ALGORITHM]):
                raise ExternalKeyError(f"AWS KMS key {key_id}: it does not offer {OAEP_ALGORITHM}")
            if not isinstance(public, rsa.RSAPublicKey):
                raise ExternalKeyError(f"AWS KMS key {key_id}: not an RSA key (KeySpec {_spec(answer)})")
            public_key = public
        self.public_key: rsa.RSAPublicKey = public_key

    def unwrap_key(self, wrapped: bytes) -> bytes:
        _, errors = _botocore()
        try:
            answer = self._client.decrypt(KeyId=self.key_id, CiphertextBlob=wrapped, EncryptionAlgorithm=OAEP_ALGORITHM)
        except errors.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _DOES_NOT_DECRYPT:
                return b""  # fails the header MAC as a wrong key does (R15, R16)
            raise _failure(exc, self.key_id, "Decrypt") from exc
        except errors.BotoCoreError as exc:
            raise _failure(exc, self.key_id, "Decrypt") from exc
        plaintext = answer.get("Plaintext")
        return plaintext if isinstance(plaintext, bytes) else b""

    def __reduce__(self) -> tuple[Any, ...]:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        der = self.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return _identity, (self.key_id, der, getattr(getattr(self._client, "meta", None), "region_name", None))

    def __repr__(self) -> str:
        return f"KmsIdentity({self.key_id!r}, bits={self.public_key.key_size})"


def _identity(key_id: str, public_der: bytes, region: str | None) -> KmsIdentity:
    boto3, _ = _botocore()
    public = load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    return KmsIdentity(key_id, client=boto3.client("kms", region_name=region), public_key=public)


class KmsSigner:
    """An ECC_NIST_P256 key in AWS KMS, as a :class:`~envelope.Signer` (``ecdsa-p256-sha256``)."""

    algorithm = "ecdsa-p256-sha256"

    def __init__(self, key_id: str, *, client: Any = None) -> None:
        self.key_id = key_id
        self._client = client if client is not None else _default_client()
        public, answer = _public_key(self._client, key_id, "SIGN_VERIFY")
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise ExternalKeyError(f"AWS KMS key {key_id}: its spec is {_spec(answer)}; a signer is ECC_NIST_P256")
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self.public_key_der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    def sign(self, message: bytes) -> bytes:
        _, errors = _botocore()
        if len(message) <= MAX_RAW_MESSAGE:
            request = {"Message": message, "MessageType": "RAW"}
        else:
            request = {"Message": hashlib.sha256(message).digest(), "MessageType": "DIGEST"}
        try:
            answer = self._client.sign(KeyId=self.key_id, SigningAlgorithm=SIGNING_ALGORITHM, **request)
        except (errors.BotoCoreError, errors.ClientError) as exc:
            raise _failure(exc, self.key_id, "Sign") from exc
        try:
            r, s = decode_dss_signature(answer["Signature"])  # KMS answers in DER
        except (KeyError, ValueError, TypeError) as exc:
            raise ExternalKeyError(f"AWS KMS key {self.key_id}: Sign returned no DER ECDSA signature") from exc
        s = min(s, _P256_ORDER - s)  # low s (section 8.2)
        if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
            raise ExternalKeyError(f"AWS KMS key {self.key_id}: Sign returned an out-of-range signature")
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def __repr__(self) -> str:
        return f"KmsSigner({self.key_id!r}, {self.algorithm})"
