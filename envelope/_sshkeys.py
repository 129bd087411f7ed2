"""``ssh-ed25519`` recipient entries (spec section 4.3): the Ed25519 keys of ~/.ssh as recipients,
converted to X25519 the standard way (as age's ssh-ed25519 recipient and libsodium do), wrapped as
section 4.2 wraps with its own label.

Public keys: an OpenSSH ``ssh-ed25519 AAAA...`` line. Private keys: OpenSSH private key files,
passphrase-protected or not (bcrypt-pbkdf, as for RSA keys in :mod:`envelope.keys`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Sequence
from typing import Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ._datakey import DataKey
from ._edwards import ed25519_key_problem, montgomery_u
from ._format import SSH_ED25519, RecipientEntry, entry_for
from ._keyformat import openssh_header, passphrase_bytes, ssh_field
from ._x25519 import open_from, seal_to, spki_key_id
from .errors import InvalidKeyError, PassphraseError, UsageError
from .keys import read_key_file

__all__ = [
    "SshEd25519Identity",
    "SshEd25519KeyFileIdentity",
    "SshEd25519Recipient",
    "is_ssh_ed25519_line",
    "is_ssh_ed25519_private_key",
    "parse_ssh_ed25519_line",
]

_LABEL = b"envelope v1 ssh-ed25519"
_LINE_PREFIX = b"ssh-ed25519 "
PassphraseSource = Union[str, bytes, Callable[[], Union[str, bytes]], None]  # noqa: UP007 - a runtime alias


def _checked_share(public_key: ed25519.Ed25519PublicKey) -> tuple[bytes, x25519.X25519PublicKey]:
    """The X25519 share of an Ed25519 public key, refusing invalid keys (R40)."""
    raw = public_key.public_bytes_raw()
    problem = ed25519_key_problem(raw)
    if problem is not None:
        raise InvalidKeyError(f"the ssh-ed25519 key {problem}")
    share = montgomery_u(raw)
    return share, x25519.X25519PublicKey.from_public_bytes(share)


class SshEd25519Recipient:
    """An OpenSSH Ed25519 public key as a recipient: ``ssh-ed25519`` entries (section 4.3).

    ``key_id`` is SHA-256 of the Ed25519 key's DER SubjectPublicKeyInfo, as 64 hex digits."""

    __slots__ = ("_kid", "_share", "_x25519", "key_id", "public_key")

    def __init__(self, public_key: ed25519.Ed25519PublicKey) -> None:
        if not isinstance(public_key, ed25519.Ed25519PublicKey):
            raise UsageError("SshEd25519Recipient takes an Ed25519 public key")
        self.public_key = public_key
        self._share, self._x25519 = _checked_share(public_key)
        self._kid = spki_key_id(public_key)
        self.key_id = self._kid.hex()

    def wrap(self, data_key: DataKey) -> RecipientEntry:
        epk, wrapped = seal_to(self._x25519, self._share, data_key, _LABEL)
        return RecipientEntry(SSH_ED25519, {"kid": self._kid, "epk": epk, "key": wrapped})

    def __repr__(self) -> str:
        return f"SshEd25519Recipient(key_id={self.key_id})"


class SshEd25519Identity:
    """An Ed25519 private key (an OpenSSH ``id_ed25519``) as an identity for ``ssh-ed25519`` entries.

    The X25519 secret is the first half of SHA-512 of the Ed25519 seed (RFC 8032 section 5.1.5; X25519
    clamps it), as age and libsodium derive it."""

    __slots__ = ("_kid", "_public", "_share", "_x25519", "key_id")

    def __init__(self, private_key: ed25519.Ed25519PrivateKey) -> None:
        if not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise UsageError("SshEd25519Identity takes an Ed25519 private key")
        public = self._public = private_key.public_key()
        self._share, _ = _checked_share(public)
        scalar = hashlib.sha512(private_key.private_bytes_raw()).digest()[:32]
        self._x25519 = x25519.X25519PrivateKey.from_private_bytes(scalar)
        if not hmac.compare_digest(self._x25519.public_key().public_bytes_raw(), self._share):
            raise InvalidKeyError("the Ed25519 private key does not match its public key")  # a corrupted key
        self._kid = spki_key_id(public)
        self.key_id = self._kid.hex()

    def recipient(self) -> SshEd25519Recipient:
        """The matching recipient (this key's public half)."""
        return SshEd25519Recipient(self._public)

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        entry = entry_for(entries, SSH_ED25519, self._kid)
        if entry is None:
            return None
        return open_from(self._x25519, self._share, entry.fields["epk"], entry.fields["key"], _LABEL)

    def __repr__(self) -> str:
        return f"SshEd25519Identity(key_id={self.key_id})"


def is_ssh_ed25519_line(data: bytes) -> bool:
    return data.strip().startswith(_LINE_PREFIX)


def parse_ssh_ed25519_line(line: bytes | str) -> SshEd25519Recipient:
    """The recipient of an OpenSSH public key line ``ssh-ed25519 AAAA... [comment]``."""
    raw = line.encode() if isinstance(line, str) else bytes(line)
    try:
        key = serialization.load_ssh_public_key(raw.strip())
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidKeyError("not a valid ssh-ed25519 public key line") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise InvalidKeyError("not an ssh-ed25519 public key line")
    return SshEd25519Recipient(key)


def is_ssh_ed25519_private_key(data: bytes) -> bool:
    """Whether ``data`` is an OpenSSH private key file holding an Ed25519 key (seen without a
    passphrase: OpenSSH keeps the public key in the clear)."""
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" not in data:
        return False
    try:
        return ssh_field(openssh_header(data)[1], 0) == b"ssh-ed25519"
    except InvalidKeyError:
        return False


class SshEd25519KeyFileIdentity:
    """An OpenSSH Ed25519 private key FILE as an identity, unlocked only when a file needs it.

    Its key id comes from the public key OpenSSH stores in the clear, so a passphrase-protected key
    is decrypted only at the first :meth:`unwrap` whose entries hold that key id, with
    ``passphrase`` (bytes, str, or a function called then, once). Errors name the file."""

    __slots__ = ("_data", "_error", "_identity", "_kid", "_lock", "_passphrase", "path")

    def __init__(self, path: str | os.PathLike[str], passphrase: PassphraseSource = None) -> None:
        self.path = os.fspath(path)
        data = read_key_file(path, "SshEd25519KeyFileIdentity", "SshEd25519Identity")
        self._passphrase = passphrase
        self._identity: SshEd25519Identity | None = None
        self._error: InvalidKeyError | None = None
        self._lock = threading.Lock()
        try:
            cipher, blob = openssh_header(data)
            public = serialization.load_ssh_public_key(b"ssh-ed25519 " + base64.b64encode(blob))
        except (InvalidKeyError, ValueError, UnsupportedAlgorithm):
            raise InvalidKeyError(f"{self.path}: not a valid OpenSSH Ed25519 private key") from None
        assert isinstance(public, ed25519.Ed25519PublicKey)
        _checked_share(public)
        self._kid = spki_key_id(public)
        self._data = data
        if cipher == "none":
            self._identity = self._load(None)

    @property
    def key_id(self) -> str:
        return self._kid.hex()

    @property
    def unlocked(self) -> bool:
        """Whether the key is loaded (an encrypted key: once a file needed it)."""
        return self._identity is not None

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        if entry_for(entries, SSH_ED25519, self._kid) is None:
            return None  # not for this key: no passphrase asked
        with self._lock:
            if self._identity is None:
                if self._error is not None:
                    raise self._error
                secret = self._passphrase() if callable(self._passphrase) else self._passphrase
                try:
                    self._identity = self._load(passphrase_bytes(secret))
                except InvalidKeyError as exc:
                    self._error = exc
                    raise
                self._data, self._passphrase = b"", None  # the key is loaded: neither is needed again
        return self._identity.unwrap(entries)

    def _load(self, password: bytes | None) -> SshEd25519Identity:
        try:
            key = serialization.load_ssh_private_key(self._data, password)
        except TypeError:
            raise PassphraseError(f"{self.path}: the private key is encrypted: a passphrase is needed") from None
        except ValueError:
            if password is not None:
                raise PassphraseError(f"{self.path}: wrong passphrase for the private key") from None
            raise InvalidKeyError(f"{self.path}: not a valid OpenSSH Ed25519 private key") from None
        except UnsupportedAlgorithm:
            raise InvalidKeyError(f"{self.path}: the key's encryption is not supported") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise InvalidKeyError(f"{self.path}: not an Ed25519 private key")
        identity = SshEd25519Identity(key)
        if not hmac.compare_digest(bytes.fromhex(identity.key_id), self._kid):
            raise InvalidKeyError(f"{self.path}: the private key does not match its public part")
        return identity

    def __repr__(self) -> str:
        state = "unlocked" if self._identity is not None else "locked"
        return f"SshEd25519KeyFileIdentity({self.path!r}, key_id={self.key_id}, {state})"
