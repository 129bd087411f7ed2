"""RSA key helpers: generate, load, and the key policy (spec section 3.3, rule R23).

Public keys load from PEM (SubjectPublicKeyInfo or PKCS#1), OpenSSH ``ssh-rsa`` lines, DER, and
X.509 certificates (PEM or DER). Private keys load from PEM or DER (PKCS#8 or PKCS#1, encrypted with
a passphrase or not) and from OpenSSH private key files.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any, Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import InvalidKeyError
from .limits import DEFAULT_KEY_BITS, MAX_KEY_BITS, MAX_KEY_FILE_LEN, MIN_KEY_BITS

__all__ = [
    "DEFAULT_KEY_BITS",
    "MAX_KEY_BITS",
    "MIN_KEY_BITS",
    "KeySource",
    "check_key_policy",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
]


KeySource = Union[str, bytes, "os.PathLike[str]"]
"""Key text (PEM, an OpenSSH line), key bytes (PEM or DER), or the path of a file holding them: a
``str`` holding ``-----BEGIN`` or starting with ``ssh-`` is key text, any other ``str`` a path."""


def check_key_policy(key: object) -> None:
    """Refuse anything but RSA keys of 2048 to 16384 bits (R23)."""
    if not isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        kind = type(key).__name__.lstrip("_")
        raise InvalidKeyError(f"only RSA keys are supported, not {kind}")
    if not MIN_KEY_BITS <= key.key_size <= MAX_KEY_BITS:
        raise InvalidKeyError(
            f"RSA key of {key.key_size} bits refused: keys must have {MIN_KEY_BITS} to {MAX_KEY_BITS} bits"
        )


def generate_private_key(bits: int = DEFAULT_KEY_BITS) -> rsa.RSAPrivateKey:
    """A new RSA private key (public exponent 65537) from the OS random generator."""
    if not MIN_KEY_BITS <= bits <= MAX_KEY_BITS:
        raise InvalidKeyError(f"RSA keys must have {MIN_KEY_BITS} to {MAX_KEY_BITS} bits, not {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_id(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bytes:
    """SHA-256 of the public key's DER SubjectPublicKeyInfo: the 32-byte key id (section 4.1)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def _looks_like_key_text(text: str) -> bool:
    return "-----BEGIN" in text or text.lstrip().startswith(("ssh-", "AAAA"))


def _read_source(source: KeySource) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and _looks_like_key_text(source):
        return source.encode()
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                return f.read(MAX_KEY_FILE_LEN)
        except OSError as exc:
            raise InvalidKeyError(f"cannot read key file {os.fspath(source)!r}: {exc.strerror}") from None
        except ValueError:  # an embedded NUL byte
            raise InvalidKeyError(f"not a usable key file name: {os.fspath(source)!r}") from None
    raise InvalidKeyError(f"a key must be given as text, bytes or a path, not {type(source).__name__}")


_RSA_PSS_OID = "1.2.840.113549.1.1.10"
_RSA_PSS_OID_DER = bytes.fromhex("2a864886f70d01010a")  # the OID's content octets
_PSS_REFUSED = "RSA-PSS keys are for signatures only; use an RSA (rsaEncryption) key"


def _der_element(data: bytes, position: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``position``; ValueError if cut."""
    if position + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[position], data[position + 1]
    start = position + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def _algorithm_oid(der: bytes, *, skip_version: bool) -> bytes | None:
    """The algorithm OID of a SubjectPublicKeyInfo (or, skipping the version, a PKCS#8
    PrivateKeyInfo): SEQUENCE { [INTEGER version,] SEQUENCE { OID, ... }, ... }. None if the bytes
    are not shaped like one."""
    try:
        tag, position, _ = _der_element(der, 0)
        if tag != 0x30:
            return None
        if skip_version:
            tag, _, position = _der_element(der, position)
            if tag != 0x02:
                return None
        tag, position, _ = _der_element(der, position)
        if tag != 0x30:
            return None
        tag, start, end = _der_element(der, position)
        return der[start:end] if tag == 0x06 else None
    except ValueError:
        return None


def _pem_body(data: bytes, label: bytes) -> bytes | None:
    """The DER inside the first PEM block with this label, if any."""
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    if begin not in data or end not in data:
        return None
    body = data.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return None


def _refuse_rsa_pss(data: bytes, *, private: bool) -> None:
    """RSA-PSS-restricted keys are signing keys; using them to encrypt breaks their contract (R23).

    cryptography loads them as plain RSA keys, so read the algorithm identifier of the
    SubjectPublicKeyInfo or PKCS#8 structure. (An encrypted PKCS#8 file hides it; such a private key
    could only open files sealed to the rsaEncryption form of the same public key.)
    """
    label = b"PRIVATE KEY" if private else b"PUBLIC KEY"
    der = _pem_body(data, label) if data.startswith(b"-----BEGIN") else data
    if der is not None and _algorithm_oid(der, skip_version=private) == _RSA_PSS_OID_DER:
        raise InvalidKeyError(_PSS_REFUSED)


def _public_loaders(data: bytes) -> list[Callable[[bytes], object]]:
    from cryptography import x509  # ~30 ms to import: only when a key is loaded

    if data.startswith(b"ssh-"):
        return [serialization.load_ssh_public_key]
    if data.startswith(b"-----BEGIN"):
        return [lambda d: _certificate_key(x509.load_pem_x509_certificate(d)), serialization.load_pem_public_key]
    return [serialization.load_der_public_key, lambda d: _certificate_key(x509.load_der_x509_certificate(d))]


def _certificate_key(certificate: Any) -> object:
    if certificate.public_key_algorithm_oid.dotted_string == _RSA_PSS_OID:
        raise InvalidKeyError(_PSS_REFUSED)
    return certificate.public_key()


def load_public_key(source: KeySource) -> rsa.RSAPublicKey:
    """Load an RSA public key from PEM, an OpenSSH line, DER, or an X.509 certificate."""
    data = _read_source(source).strip()
    if b"PRIVATE KEY-----" in data:
        raise InvalidKeyError("this is a private key; give the public key (keygen writes it beside the private key)")
    _refuse_rsa_pss(data, private=False)
    key: object = None
    for loader in _public_loaders(data):
        try:
            key = loader(data)
            break
        except InvalidKeyError:
            raise
        except Exception:  # noqa: S112 - any parser failure means "not this format": try the next
            continue
    if key is None:
        raise InvalidKeyError("not a public key: expected PEM, an OpenSSH ssh-rsa line, DER or an X.509 certificate")
    check_key_policy(key)
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def load_private_key(
    source: KeySource, passphrase: str | bytes | None = None, *, full_validation: bool = False
) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM, DER or an OpenSSH private key file.

    Raises :class:`InvalidKeyError` when the key is encrypted and no passphrase is given, when the
    passphrase is wrong, or when the key is not RSA of an allowed size. The passphrase never appears
    in a message.

    OpenSSL's full RSA key validation (primality tests of p and q) costs 40 / 120 / 280 ms for
    2048 / 3072 / 4096-bit keys, which dominates opening a small file. By default it is replaced by a
    pairwise check (wrap a random value with the public half, unwrap it with the private half:
    1-3 ms), which catches a corrupted or mismatched key. Skipping the primality tests is safe here:
    the key is the caller's own, and it only ever unwraps data keys whose value is never revealed, so
    a fault in it cannot leak through outputs (the Bellcore attack needs the faulty output).
    ``full_validation=True`` restores OpenSSL's checks.
    """
    data = _read_source(source).strip()
    password = passphrase.encode() if isinstance(passphrase, str) else passphrase
    if b"PUBLIC KEY-----" in data or data.startswith(b"ssh-rsa "):
        raise InvalidKeyError("this is a public key; opening needs the private key")
    _refuse_rsa_pss(data, private=True)
    key: object
    skip = not full_validation
    try:
        if data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
            key = serialization.load_ssh_private_key(data, password, unsafe_skip_rsa_key_validation=skip)
        elif data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password, unsafe_skip_rsa_key_validation=skip)
        else:
            key = serialization.load_der_private_key(data, password, unsafe_skip_rsa_key_validation=skip)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            raise InvalidKeyError("a passphrase was given but the private key is not encrypted") from None
        raise InvalidKeyError("the private key is encrypted: a passphrase is needed") from None
    except Exception:
        if password is not None:
            raise InvalidKeyError("cannot load the private key: wrong passphrase, or not a valid key") from None
        raise InvalidKeyError("not a valid private key (expected PEM, DER or OpenSSH)") from None
    check_key_policy(key)
    assert isinstance(key, rsa.RSAPrivateKey)
    if skip:
        _pairwise_check(key)
    return key


def _pairwise_check(key: rsa.RSAPrivateKey) -> None:
    """Refuse a private key whose halves do not match (corrupted or hand-edited)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    probe = os.urandom(32)
    try:
        ok = key.decrypt(key.public_key().encrypt(probe, oaep), oaep) == probe
    except ValueError:
        ok = False
    if not ok:
        raise InvalidKeyError("the private key is inconsistent (corrupted?): its two halves do not match")


def private_key_pem(key: rsa.RSAPrivateKey, passphrase: str | bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the passphrase (the best available scheme) when one is given."""
    password = passphrase.encode() if isinstance(passphrase, str) else passphrase
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def public_key_pem(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM of the key (or of a private key's public half)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
