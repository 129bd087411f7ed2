"""RSA key helpers: generate, load, parse, write, and the key policy (spec section 3.3, rule R23).

Loading is explicit, never a guess: ``load_*`` functions take the *path* of a key file (a ``str`` or
an ``os.PathLike``), ``parse_*`` functions take the key itself (``bytes``, or text as ``str``).

Public keys: PEM (SubjectPublicKeyInfo or PKCS#1), OpenSSH ``ssh-rsa`` lines, DER, and X.509
certificates (PEM or DER) that are valid now and allow key encipherment. Private keys: PEM or DER
(PKCS#8 or PKCS#1, encrypted with a passphrase or not) and OpenSSH private key files (encrypted or
not). A recipients file (:func:`load_public_keys`) holds several public keys.

Key ids are SHA-256 of the public key's DER SubjectPublicKeyInfo (section 4.1), written as 64
lowercase hex digits everywhere in the public API (:func:`key_id`, ``RecipientInfo.key_id``,
``RsaRecipient.key_id``, ``envelope-info``, ``envelope keygen``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import _keyformat, _keypolicy
from ._keyformat import key_text, passphrase_bytes
from ._keypolicy import check_key_policy
from ._signerkeys import (
    RsaKeyNotASignerError,
    SigningKey,
    VerifyingKey,
    parse_signing_key,
    parse_verifying_key,
    signing_key_pem,
    verifying_key_pem,
)
from .errors import InvalidKeyError, PassphraseError, UsageError
from .limits import DEFAULT_KEY_BITS, KEY_FILE_KDF_ITERATIONS, MAX_KEY_BITS, MAX_KEY_FILE_LEN, MIN_KEY_BITS

__all__ = [
    "DEFAULT_KEY_BITS",
    "MAX_KEY_BITS",
    "MIN_KEY_BITS",
    "KeyData",
    "KeyPath",
    "check_key_policy",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_public_keys",
    "parse_private_key",
    "parse_public_key",
    "parse_public_keys",
    "private_key_pem",
    "public_key_pem",
    "save_private_key",
    "save_public_key",
]


KeyPath = Union[str, "os.PathLike[str]"]
"""The path of a key file."""

KeyData = bytes | str
"""A key itself: PEM or OpenSSH text (``str`` or ``bytes``), or DER ``bytes``."""

Passphrase = str | bytes | None


# --- key ids and new keys -------------------------------------------------------------------------


def key_id(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """The key id: SHA-256 of the public key's DER SubjectPublicKeyInfo (section 4.1), as 64
    lowercase hex digits, as ``envelope-info``, ``envelope keygen`` and ``RecipientInfo`` show it."""
    return _raw_key_id(key).hex()


def _raw_key_id(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bytes:
    """The key id's 32 bytes, as recipient entries store them."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def generate_private_key(bits: int = DEFAULT_KEY_BITS) -> rsa.RSAPrivateKey:
    """A new RSA private key (public exponent 65537) from the OS random generator."""
    if not MIN_KEY_BITS <= bits <= MAX_KEY_BITS:
        raise InvalidKeyError(f"RSA keys must have {MIN_KEY_BITS} to {MAX_KEY_BITS} bits, not {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# --- reading ------------------------------------------------------------------------------------


def read_key_file(path: object, function: str, parser: str) -> bytes:
    """The bytes of a key file. An unreadable file raises InvalidKeyError whose cause is the OSError
    (the command line turns that into an I/O error)."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        raise UsageError(f"{function} takes the path of a key file; to read a key from bytes, use {parser}")
    if not isinstance(path, (str, os.PathLike)):
        raise UsageError(f"{function} takes the path of a key file (str or os.PathLike), not {type(path).__name__}")
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE_LEN + 1)
    except OSError as exc:
        raise InvalidKeyError(f"cannot read key file {name}: {exc.strerror}") from exc
    except ValueError as exc:  # an embedded NUL byte
        raise InvalidKeyError(f"not a usable key file name: {name!r}") from exc
    if len(data) > MAX_KEY_FILE_LEN:
        raise InvalidKeyError(f"{name}: over {MAX_KEY_FILE_LEN} bytes, too large for a key file")
    return data


def _key_bytes(data: object, function: str, loader: str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > MAX_KEY_FILE_LEN:
            raise InvalidKeyError(f"over {MAX_KEY_FILE_LEN} bytes, too large for a key")
        return bytes(data)
    if isinstance(data, os.PathLike):
        raise UsageError(f"{function} takes the key itself (bytes or text); to read a key file, use {loader}")
    raise UsageError(f"{function} takes the key as bytes or text, not {type(data).__name__}")


def in_key_file(path: KeyPath, parse: Callable[[], Any]) -> Any:
    """Run a parser on a file's bytes; its errors name the file."""
    try:
        return parse()
    except InvalidKeyError as exc:  # of the same class: a PassphraseError stays one
        raise type(exc)(f"{os.fspath(path)}: {exc}") from exc


# --- public keys ----------------------------------------------------------------------------------


def load_public_key(path: KeyPath) -> rsa.RSAPublicKey:
    """Load the RSA public key of a key file: PEM, an OpenSSH ``ssh-rsa`` line, DER, or an X.509
    certificate. A file holding several keys or certificates is refused: use
    :func:`load_public_keys` for a file of recipients."""
    data = read_key_file(path, "load_public_key", "parse_public_key")
    key: rsa.RSAPublicKey = in_key_file(path, lambda: parse_public_key(data))
    return key


def parse_public_key(data: KeyData) -> rsa.RSAPublicKey:
    """Parse one RSA public key: PEM (SubjectPublicKeyInfo or PKCS#1), an OpenSSH ``ssh-rsa`` line,
    DER, or an X.509 certificate (PEM or DER).

    A certificate must be valid now and, when it has a KeyUsage extension, allow keyEncipherment;
    to use the key of any other certificate, extract it first
    (``openssl x509 -pubkey -noout -in CERT > KEY.pub``). Data holding several keys or certificates
    (two PEM blocks, a certificate chain) is refused, naming the count: use :func:`parse_public_keys`.
    """
    raw = key_text(_key_bytes(data, "parse_public_key", "load_public_key"))
    try:
        return _parse_single_public_key(raw)
    except InvalidKeyError as exc:
        if isinstance(data, str) and "\n" not in data and not raw.startswith((b"-----", *_SSH_PREFIXES)):
            raise InvalidKeyError(f"{exc} (to read a key file, use load_public_key)") from exc
        raise


def load_public_keys(path: KeyPath) -> list[rsa.RSAPublicKey]:
    """Every public key of a recipients file, in order (see :func:`parse_public_keys`). Errors name
    the file and line: ``team.txt:3: ...``."""
    data = read_key_file(path, "load_public_keys", "parse_public_keys")
    name = os.fspath(path)
    return _public_keys(data, lambda line: f"{name}:{line}", name)


def parse_public_keys(data: KeyData) -> list[rsa.RSAPublicKey]:
    """Every public key of a recipients list: PEM blocks (public keys or certificates) and OpenSSH
    ``ssh-rsa`` lines, one per line; blank lines and lines starting with ``#`` are skipped. Errors
    name the line. The same key listed twice is returned twice."""
    raw = _key_bytes(data, "parse_public_keys", "load_public_keys")
    return _public_keys(raw, lambda line: f"line {line}", "the recipients list")


def _public_keys(data: bytes, where: Callable[[int], str], what: str) -> list[rsa.RSAPublicKey]:
    keys = []
    for line, text in _key_texts(data, where):
        try:
            keys.append(_parse_single_public_key(text))
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{where(line)}: {exc}") from exc
    if not keys:
        raise InvalidKeyError(f"{what}: no public key found")
    return keys


def _key_texts(data: bytes, where: Callable[[int], str]) -> Iterator[tuple[int, bytes]]:
    """(line number, key text) for each key of a recipients list: PEM blocks and other lines,
    skipping blank lines and ``#`` comments."""
    block: list[bytes] = []
    start = 0
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), 1):  # a UTF-8 BOM
        line = raw.strip()
        if block:
            block.append(line)
            if line.startswith(b"-----END"):
                yield start, b"\n".join(block)
                block = []
        elif line.startswith(b"-----BEGIN"):
            block, start = [line], number
        elif line and not line.startswith(b"#"):
            yield number, line
    if block:
        raise InvalidKeyError(f"{where(start)}: PEM block without its END line")


_SSH_PREFIXES = (b"ssh-", b"ecdsa-sha2-", b"sk-")
_NOT_A_PUBLIC_KEY = "not a public key: expected PEM, an OpenSSH ssh-rsa line, DER or an X.509 certificate"
_PUBLIC_PEM_LABELS = (b"PUBLIC KEY", b"RSA PUBLIC KEY", b"CERTIFICATE", b"X509 CERTIFICATE")


def _parse_single_public_key(data: bytes) -> rsa.RSAPublicKey:
    key = _decode_public_key(data)
    check_key_policy(key)
    return key


def _decode_public_key(data: bytes) -> rsa.RSAPublicKey:
    """The RSA public key in ``data``, before the key policy's checks of its numbers."""
    data = key_text(data)
    if b"PRIVATE KEY-----" in data:
        raise InvalidKeyError("this is a private key; give the public key (keygen writes it beside the private key)")
    if b"AGE-SECRET-KEY-" in data:
        raise InvalidKeyError(
            "this is an age identity (a secret key); give its recipient, age1... (keygen writes it in PATH.pub)"
        )
    if b"-----BEGIN" in data:
        key = _pem_public_key(data)
    elif data.startswith(_SSH_PREFIXES):
        key = _ssh_public_key(data)
    else:
        key = _der_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        _keypolicy.refuse_kind(_keypolicy.key_kind(key))
    return key


def _pem_public_key(data: bytes) -> object:
    count = data.count(b"-----BEGIN ")
    if count > 1:
        raise InvalidKeyError(
            f"{count} keys or certificates where one is expected: a file of several recipients is read "
            "with load_public_keys (envelope seal -R FILE)"
        )
    label = _keyformat.pem_label(data)
    if label not in _PUBLIC_PEM_LABELS:
        raise InvalidKeyError(_NOT_A_PUBLIC_KEY)
    if label.endswith(b"CERTIFICATE"):
        from cryptography import x509  # ~30 ms to import: only when a certificate is read

        try:
            certificate = x509.load_pem_x509_certificate(data)
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
            raise InvalidKeyError("not a valid X.509 certificate") from exc
        return _keypolicy.certificate_key(certificate)
    _keypolicy.refuse_rsa_pss(data, private=False)
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError(_parse_failure(exc, _NOT_A_PUBLIC_KEY)) from exc


def _ssh_public_key(data: bytes) -> object:
    lines = [line for line in data.splitlines() if line.strip() and not line.lstrip().startswith(b"#")]
    if len(lines) > 1:
        raise InvalidKeyError(
            f"{len(lines)} keys where one is expected: a file of several recipients is read "
            "with load_public_keys (envelope seal -R FILE)"
        )
    kind = data.split(None, 1)[0]
    if kind != b"ssh-rsa":
        _keypolicy.refuse_ssh_kind(kind)
    try:
        return serialization.load_ssh_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError("not a valid OpenSSH public key line") from exc


def _der_public_key(data: bytes) -> object:
    from cryptography import x509

    _keypolicy.refuse_rsa_pss(data, private=False)
    if _keyformat.der_shape(data) == "private":
        raise InvalidKeyError("this is a private key; give the public key (keygen writes it beside the private key)")
    try:
        return serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as first:
        try:
            return _keypolicy.certificate_key(x509.load_der_x509_certificate(data))
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
            raise InvalidKeyError(_parse_failure(first, _NOT_A_PUBLIC_KEY)) from first


def _parse_failure(exc: Exception, message: str) -> str:
    """The message for a key that did not parse: an algorithm cryptography cannot load is named."""
    if isinstance(exc, UnsupportedAlgorithm):
        return "the key's algorithm is not supported: envelope encrypts to RSA keys"
    return message


# --- private keys ---------------------------------------------------------------------------------


def load_private_key(
    path: KeyPath, passphrase: Passphrase = None, *, full_validation: bool = False
) -> rsa.RSAPrivateKey:
    """Load the RSA private key of a key file (see :func:`parse_private_key`). Errors name the file."""
    data = read_key_file(path, "load_private_key", "parse_private_key")
    key: rsa.RSAPrivateKey = in_key_file(
        path, lambda: parse_private_key(data, passphrase, full_validation=full_validation)
    )
    return key


def parse_private_key(
    data: KeyData, passphrase: Passphrase = None, *, full_validation: bool = False
) -> rsa.RSAPrivateKey:
    """Parse an RSA private key: PEM or DER (PKCS#8 or PKCS#1) or an OpenSSH private key, encrypted
    with ``passphrase`` or not.

    Raises :class:`InvalidKeyError`, with a message saying which: the key is encrypted and no
    passphrase is given; a passphrase is given but the key is not encrypted; the passphrase is wrong;
    the key's encryption is not supported (naming it); the data is a public key or not a key; the
    key is not RSA or breaks the key policy (:func:`check_key_policy`). The passphrase never appears
    in a message.

    OpenSSL's full RSA key validation (primality tests of p and q) costs 40 / 120 / 280 ms for
    2048 / 3072 / 4096-bit keys, which dominates opening a small file. By default it is replaced by
    integer bounds on every component (``p * q == n``, exponents and CRT values below the modulus:
    microseconds) and a pairwise check (wrap a random value with the public half, unwrap it with the
    private half: 1-3 ms), which catch a corrupted, mismatched or crafted key. Skipping the primality
    tests is safe here: the key is the caller's own, and it only ever unwraps data keys whose value
    is never revealed, so a fault in it cannot leak through outputs (the Bellcore attack needs the
    faulty output). ``full_validation=True`` restores OpenSSL's checks.
    """
    raw = key_text(_key_bytes(data, "parse_private_key", "load_private_key"))
    password = passphrase_bytes(passphrase)
    form = _private_form(raw)
    if form.encrypted and password is None:
        raise PassphraseError("the private key is encrypted: a passphrase is needed")
    if not form.encrypted and password is not None:
        raise InvalidKeyError("a passphrase was given but the private key is not encrypted")
    key = _decode_private_key(raw, form, password, skip_validation=not full_validation)
    if not isinstance(key, rsa.RSAPrivateKey):
        _keypolicy.refuse_kind(_keypolicy.key_kind(key))
    check_key_policy(key)
    if not full_validation:
        _pairwise_check(key)
    return key


class _PrivateForm(NamedTuple):
    """What a private key file shows before any passphrase is used."""

    container: str  # "openssh", "pem" or "der"
    encrypted: bool
    cipher: str  # OpenSSH: the cipher name ("none" when not encrypted); otherwise ""
    public_blob: bytes | None  # OpenSSH: the public key, in the clear even when encrypted


def _private_form(data: bytes) -> _PrivateForm:
    """Classify private key bytes, refusing public keys, certificates and non-RSA keys that can be
    recognised without a passphrase."""
    if data.startswith(_SSH_PREFIXES):
        raise InvalidKeyError("this is a public key; opening needs the private key")
    if data.startswith(b"age1"):
        raise InvalidKeyError(
            "this is an age recipient (a public key); opening needs its identity file (AGE-SECRET-KEY-1...)"
        )
    if b"-----BEGIN" not in data:
        shape = _keyformat.der_shape(data)
        if shape == "public":
            raise InvalidKeyError("this is a public key; opening needs the private key")
        if shape == "certificate":
            raise InvalidKeyError("this is a certificate (a public key); opening needs the private key")
        if shape is None:
            raise InvalidKeyError("not a private key: expected PEM, DER or an OpenSSH private key")
        _keypolicy.refuse_rsa_pss(data, private=True)
        return _PrivateForm("der", shape == "encrypted", "", None)
    label = _keyformat.pem_label(data)
    if label == b"OPENSSH PRIVATE KEY":
        cipher, blob = _keyformat.openssh_header(data)
        kind = _keyformat.ssh_field(blob, 0)
        if kind != b"ssh-rsa":
            _keypolicy.refuse_ssh_kind(kind)
        return _PrivateForm("openssh", cipher != "none", cipher, blob)
    if label in _PUBLIC_PEM_LABELS:
        what = "a certificate (a public key)" if label.endswith(b"CERTIFICATE") else "a public key"
        raise InvalidKeyError(f"this is {what}; opening needs the private key")
    encrypted = label == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in data
    if label in (b"EC PRIVATE KEY", b"DSA PRIVATE KEY"):
        _keypolicy.refuse_kind("ECDSA" if label.startswith(b"EC") else "DSA")
    if label not in (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"):
        raise InvalidKeyError("not a private key: expected PEM, DER or an OpenSSH private key")
    _keypolicy.refuse_rsa_pss(data, private=True)
    return _PrivateForm("pem", encrypted, "", None)


def _decode_private_key(data: bytes, form: _PrivateForm, password: bytes | None, *, skip_validation: bool) -> object:
    if form.container == "openssh" and form.encrypted and importlib.util.find_spec("bcrypt") is None:
        # cryptography derives the key with bcrypt-pbkdf from the bcrypt package.
        raise InvalidKeyError(
            "passphrase-protected OpenSSH keys need the bcrypt package (a dependency of envelope-ml: reinstall it)"
        )
    try:
        with _keypolicy.loading_keys():
            if form.container == "openssh":
                return serialization.load_ssh_private_key(
                    data, password, unsafe_skip_rsa_key_validation=skip_validation
                )
            load = serialization.load_pem_private_key if form.container == "pem" else serialization.load_der_private_key
            return load(data, password, unsafe_skip_rsa_key_validation=skip_validation)
    except UnsupportedAlgorithm as exc:
        if form.container == "openssh" and form.encrypted:
            message = f"the key is encrypted with {form.cipher!r}, which envelope cannot read: re-encrypt it"
            raise InvalidKeyError(f"{message} with ssh-keygen -p -Z aes256-ctr -f KEYFILE") from exc
        if form.encrypted:
            raise InvalidKeyError(
                "the key's encryption scheme is not supported: re-encrypt it with "
                "openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEYFILE"
            ) from exc
        raise InvalidKeyError("the key's algorithm or format is not supported: envelope needs RSA keys") from exc
    except ValueError as exc:
        if form.encrypted:
            raise PassphraseError("wrong passphrase for the private key") from exc
        raise InvalidKeyError("not a valid private key (expected PEM, DER or OpenSSH)") from exc
    except TypeError as exc:  # cryptography disagrees with _private_form about the encryption
        if password is None:
            raise PassphraseError("the private key is encrypted: a passphrase is needed") from exc
        raise InvalidKeyError("a passphrase was given but the private key is not encrypted") from exc


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


class _LockedKeyFile(NamedTuple):
    """A private key file as seen before unlocking (for ``recipients.RsaKeyFileIdentity``)."""

    encrypted: bool
    key_id: bytes | None  # known without the passphrase: OpenSSH keys carry their public key in the clear


def _locked_key_file(data: bytes) -> _LockedKeyFile:
    form = _private_form(key_text(data))
    kid = None
    if form.public_blob is not None:
        line = b"ssh-rsa " + base64.b64encode(form.public_blob)
        try:
            kid = _raw_key_id(_decode_public_key(line))
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"the OpenSSH private key's public part: {exc}") from exc
    return _LockedKeyFile(form.encrypted, kid)


def _key_id_hint(path: str) -> bytes | None:
    """The key id of the public key in file ``path``, if it holds one; None on any problem. Only a
    hint (the key policy applies to the private key, once unlocked), so its numbers are not checked."""
    try:
        return _raw_key_id(_decode_public_key(read_key_file(path, "RsaKeyFileIdentity", "parse_public_key")))
    except InvalidKeyError:
        return None


# --- writing --------------------------------------------------------------------------------------


def private_key_pem(key: rsa.RSAPrivateKey, passphrase: Passphrase = None) -> bytes:
    """PKCS#8 PEM of the private key; with a passphrase, an ``ENCRYPTED PRIVATE KEY``.

    The encryption is PBES2 (RFC 8018): PBKDF2-HMAC-SHA256 with ``KEY_FILE_KDF_ITERATIONS``
    (600 000, OWASP's 2023 figure for PBKDF2-HMAC-SHA256) iterations and a random 16-byte salt, then
    AES-256-CBC; unlocking costs about 0.2 s. cryptography's PKCS#8 writer only offers 2048
    iterations and no memory-hard KDF, so the structure is written here, from cryptography's
    primitives (``_keyformat.encrypted_private_key_info``; signing keys use the same). OpenSSL reads
    it (``openssl pkcs8 -in KEYFILE``). For a memory-hard KDF, re-encrypt with
    ``openssl pkcs8 -topk8 -scrypt``: envelope reads scrypt-protected PKCS#8 keys too.
    """
    return _keyformat.private_key_pem(key, passphrase_bytes(passphrase), KEY_FILE_KDF_ITERATIONS)


def public_key_pem(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM of the key (or of a private key's public half)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def save_private_key(path: KeyPath, key: Any, passphrase: Passphrase = None, *, overwrite: bool = False) -> None:
    """Write a private key file: PKCS#8 PEM (encrypted with the passphrase, if one is given), mode
    0600 from the moment it exists, named only once complete (:func:`envelope.atomic_output`).
    Works for RSA keys and for signing keys (Ed25519, ECDSA P-256, ML-DSA-65)."""
    from .atomic import atomic_output

    if isinstance(key, rsa.RSAPrivateKey):
        data = private_key_pem(key, passphrase)
    else:
        data = signing_key_pem(key, passphrase)
    with atomic_output(path, overwrite=overwrite, private=True) as out:
        out.write(data)


def save_public_key(path: KeyPath, key: Any, *, overwrite: bool = False) -> None:
    """Write a public key file (SubjectPublicKeyInfo PEM) for an RSA or signing key, or the public
    half of a private one; named only once complete."""
    from .atomic import atomic_output

    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        data = public_key_pem(key)
    else:
        data = verifying_key_pem(key)
    with atomic_output(path, overwrite=overwrite) as out:
        out.write(data)


# --- signers' keys (spec/FORMAT.md section 8) ------------------------------------------------------


def load_signing_key(path: KeyPath, passphrase: Passphrase = None) -> SigningKey:
    """A signing private key from a file (see :func:`envelope.parse_signing_key`); errors name the
    file. RSA keys are recipients' keys: :func:`load_private_key` reads them."""
    data = read_key_file(path, "load_signing_key", "parse_signing_key")
    key: SigningKey = in_key_file(path, lambda: _pointing(parse_signing_key, "load_private_key", data, passphrase))
    return key


def load_verifying_key(path: KeyPath) -> VerifyingKey:
    """A signer's public key from a file (see :func:`envelope.parse_verifying_key`); errors name the
    file. RSA public keys are recipients: :func:`load_public_key` reads them."""
    data = read_key_file(path, "load_verifying_key", "parse_verifying_key")
    key: VerifyingKey = in_key_file(path, lambda: _pointing(parse_verifying_key, "load_public_key", data))
    return key


def _pointing(parse: Callable[..., Any], loader: str, *arguments: Any) -> Any:
    """``parse(*arguments)``; an RSA key found instead names the SDK function that reads it."""
    try:
        return parse(*arguments)
    except RsaKeyNotASignerError as exc:
        raise InvalidKeyError(f"{exc}; {loader} reads them") from exc
