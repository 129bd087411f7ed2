"""Recipients wrap a data key; identities unwrap it (spec section 4). Nothing here knows chunks.

A new recipient kind is a new pair of classes with a new ``type`` string: readers skip entries of
types they do not implement, so files stay readable by older readers' other entries.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, Union, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519

from . import _agekeys
from ._datakey import DATA_KEY_LEN, DataKey
from ._external import KeyUnwrapper, UnwrapperIdentity
from ._format import RSA_OAEP_SHA256, RecipientEntry, entry_for
from ._mlkem import MlKem768X25519Identity, MlKem768X25519Recipient
from ._sshkeys import (
    SshEd25519Identity,
    SshEd25519KeyFileIdentity,
    SshEd25519Recipient,
    is_ssh_ed25519_private_key,
    parse_ssh_ed25519_line,
)
from ._x25519 import X25519Identity, X25519Recipient
from .errors import InvalidKeyError, MalformedError, UsageError
from .keys import (
    KeyPath,
    _key_id_hint,
    _locked_key_file,
    _raw_key_id,
    check_key_policy,
    in_key_file,
    load_public_key,
    parse_private_key,
    parse_public_key,
    read_key_file,
)

__all__ = [
    "Identity",
    "IdentityLike",
    "MlKem768X25519Identity",
    "MlKem768X25519Recipient",
    "PassphraseSource",
    "Recipient",
    "RecipientLike",
    "RsaIdentity",
    "RsaKeyFileIdentity",
    "RsaRecipient",
    "SshEd25519Identity",
    "SshEd25519KeyFileIdentity",
    "SshEd25519Recipient",
    "X25519Identity",
    "X25519Recipient",
    "age_identities",
    "age_recipient",
    "age_recipients",
    "as_identities",
    "as_list",
    "as_recipients",
    "is_age_identity_file",
    "key_file_identities",
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

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | bytes | None:
        """The data key (its 32 bytes), or ``None`` when no entry is for this identity. When an
        entry is for it but does not unwrap, return a random key or any value of another length
        (or raise :class:`AuthenticationError`): the header MAC check then fails, and that keeps
        the failure (R15) on the same path, with the same error, as a header MAC failure (R16).
        Whatever else it returns or raises becomes :class:`~envelope.ExternalKeyError`. For an RSA
        key held elsewhere, implementing :class:`~envelope.KeyUnwrapper` is simpler."""
        ...


class RsaRecipient:
    """An RSA public key as a recipient: ``rsa-oaep-sha256`` entries (section 4.1).

    ``key_id`` is the key id as 64 lowercase hex digits, as :func:`envelope.key_id` returns it."""

    __slots__ = ("_kid", "key_id", "public_key")

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        check_key_policy(public_key)
        self.public_key = public_key
        self._kid = _raw_key_id(public_key)
        self.key_id = self._kid.hex()

    def wrap(self, data_key: DataKey) -> RecipientEntry:
        wrapped = self.public_key.encrypt(data_key.raw(), _oaep())
        return RecipientEntry(RSA_OAEP_SHA256, {"kid": self._kid, "key": wrapped})

    def __repr__(self) -> str:
        return f"RsaRecipient(bits={self.public_key.key_size}, key_id={self.key_id})"


class RsaIdentity:
    """An RSA private key as an identity. Finds its entry by key id, without trial decryption.

    ``key_id`` is the key id as 64 lowercase hex digits, as :func:`envelope.key_id` returns it."""

    __slots__ = ("_kid", "_private_key", "key_id")

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        check_key_policy(private_key)
        self._private_key = private_key
        self._kid = _raw_key_id(private_key)
        self.key_id = self._kid.hex()

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return self._private_key

    def recipient(self) -> RsaRecipient:
        """The matching recipient (this key's public half)."""
        return RsaRecipient(self._private_key.public_key())

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        entry = entry_for(entries, RSA_OAEP_SHA256, self._kid)
        return None if entry is None else self._unwrap(entry.fields["key"])

    def _unwrap(self, wrapped: bytes) -> DataKey:
        if len(wrapped) != (self._private_key.key_size + 7) // 8:  # R14, before any RSA work
            raise MalformedError("malformed header: the wrapped key length does not match the RSA key")
        try:
            raw = self._private_key.decrypt(wrapped, _oaep())
        except ValueError:
            raw = b""
        if len(raw) != DATA_KEY_LEN:
            # R15 must read exactly like R16: go on with a random key, so that the header MAC is
            # computed and compared as for a good unwrap, and fails there, with R16's error.
            return DataKey.generate()
        return DataKey(raw)

    def __repr__(self) -> str:
        return f"RsaIdentity(bits={self._private_key.key_size}, key_id={self.key_id})"


PassphraseSource = Union[str, bytes, Callable[[], Union[str, bytes]], None]  # noqa: UP007 - a runtime alias
"""A passphrase, or a function that returns one when it is needed (a prompt, say)."""


class RsaKeyFileIdentity:
    """An RSA private key FILE as an identity, unlocked only when a file needs this key.

    The file is read, and an unencrypted key parsed, when the identity is made (so a missing or
    broken file fails early). An encrypted key is decrypted at the first :meth:`unwrap` whose entries
    hold its key id, using ``passphrase`` (bytes or str, or a function called then, at most once, to
    get it: a terminal prompt, for instance). The passphrase applies to an encrypted key only: given
    with an unencrypted key, it is not used and not an error, so one passphrase can serve a list of
    keys of which some are encrypted.

    The key id is known without unlocking when the file is not encrypted, when it is an OpenSSH
    private key (whose public key is stored in the clear), or when ``PATH.pub`` holds a public key
    (as ``envelope keygen`` writes it; it is trusted to match, and checked once the key is
    unlocked). Otherwise ``key_id`` is ``None`` until unlocked, and :func:`as_identities` tries such
    identities after all the others, so they are unlocked only when no key with a known id matched.

    Errors (:class:`~envelope.InvalidKeyError`) name the file.
    """

    __slots__ = ("_data", "_error", "_identity", "_kid", "_lock", "_passphrase", "path")

    def __init__(self, path: KeyPath, passphrase: PassphraseSource = None) -> None:
        self.path = os.fspath(path)
        self._data = read_key_file(path, "RsaKeyFileIdentity", "parse_private_key")
        self._passphrase = passphrase
        self._identity: RsaIdentity | None = None
        self._error: InvalidKeyError | None = None
        self._lock = threading.Lock()
        locked = in_key_file(path, lambda: _locked_key_file(self._data))
        self._kid: bytes | None = locked.key_id
        if not locked.encrypted:
            self._identity = RsaIdentity(in_key_file(path, lambda: parse_private_key(self._data)))
            self._kid, self._data = self._identity._kid, b""
        elif self._kid is None:
            self._kid = _key_id_hint(self.path + ".pub")

    @property
    def key_id(self) -> str | None:
        """The key id (64 hex digits), or ``None`` while it cannot be known without unlocking."""
        return None if self._kid is None else self._kid.hex()

    @property
    def unlocked(self) -> bool:
        """Whether the key is loaded (an encrypted key: once a file needed it)."""
        return self._identity is not None

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        if self._kid is not None and entry_for(entries, RSA_OAEP_SHA256, self._kid) is None:
            return None  # not for this key: no passphrase asked
        return self._unlock().unwrap(entries)

    def _unlock(self) -> RsaIdentity:
        with self._lock:
            if self._identity is None:
                if self._error is not None:
                    raise self._error  # a wrong passphrase is asked for once, not once per file
                try:
                    self._identity = self._decrypt()
                except InvalidKeyError as exc:
                    self._error = exc
                    raise
                self._data, self._passphrase = b"", None  # the key is loaded: neither is needed again
            return self._identity

    def _decrypt(self) -> RsaIdentity:
        passphrase = self._passphrase() if callable(self._passphrase) else self._passphrase
        identity = RsaIdentity(in_key_file(self.path, lambda: parse_private_key(self._data, passphrase)))
        if self._kid is not None and not hmac.compare_digest(identity._kid, self._kid):
            raise InvalidKeyError(f"{self.path}.pub does not hold the public key of {self.path}")
        self._kid = identity._kid
        return identity

    def __repr__(self) -> str:
        state = "unlocked" if self.unlocked else "locked"
        return f"RsaKeyFileIdentity({self.path!r}, key_id={self.key_id}, {state})"


RecipientLike = Union[Recipient, rsa.RSAPublicKey, x25519.X25519PublicKey, str, bytes, "os.PathLike[str]"]
"""A :class:`Recipient`, an RSA or X25519 public key object, recipient text as age's ``-r`` takes it
(a ``str`` that begins ``age1`` or ``ssh-ed25519 ``), the path of a public key file or of an age
recipients file (any other ``str``, or an ``os.PathLike``), or a public key's bytes (PEM, DER,
OpenSSH line, age recipients file)."""

IdentityLike = Union[Identity, KeyUnwrapper, rsa.RSAPrivateKey, x25519.X25519PrivateKey, str, bytes, "os.PathLike[str]"]
"""An :class:`Identity`, a :class:`KeyUnwrapper` (a key held in a token or a KMS), an RSA or X25519
private key object, the path of a private key file (``str`` or ``os.PathLike``: an
:class:`RsaKeyFileIdentity` without passphrase, or every key of an age identity file), or an
unencrypted private key's bytes (an age identity file's bytes among them)."""


class _MadeFor:
    """The recipient made for a public key object, kept for the next call with the same object:
    its policy check and key id (a DER encoding and a hash) cost about 15 us, as much as the
    header's encoding. Keyed by ``id``, with the key itself held, so that the id cannot be reused by
    another object while its entry exists; key objects are immutable. Public keys only: a private
    key is never kept beyond the call that was given it (a batch, or a caller's own RsaIdentity,
    checks it once)."""

    _MAX = 16

    def __init__(self) -> None:
        self._made: dict[int, tuple[object, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: object, make: Callable[[Any], Any]) -> Any:
        with self._lock:
            found = self._made.get(id(key))
        if found is not None and found[0] is key:
            return found[1]
        made = make(key)  # raises for a key the policy refuses: nothing is kept
        with self._lock:
            if len(self._made) >= self._MAX:
                self._made.clear()
            self._made[id(key)] = (key, made)
        return made


_RECIPIENTS = _MadeFor()


AGE_RECIPIENT_PREFIX = "age1"
SSH_ED25519_PREFIX = "ssh-ed25519 "


def age_recipient(text: str) -> Recipient:
    """The recipient of one key in a form age's ``-r`` takes: ``age1...`` (X25519, section 4.2),
    ``age1pq1...`` (section 4.4) or an OpenSSH ``ssh-ed25519 AAAA...`` line (section 4.3)."""
    if text.startswith(SSH_ED25519_PREFIX):
        return parse_ssh_ed25519_line(text)
    kind, key = _agekeys.decode_recipient(text)
    if kind == _agekeys.X25519_KIND:
        return X25519Recipient(x25519.X25519PublicKey.from_public_bytes(key))
    return MlKem768X25519Recipient(key)


def is_age_identity_file(data: bytes) -> bool:
    """Whether key file bytes are an age identity file: the first line that is neither blank nor a
    ``#`` comment begins ``AGE-SECRET-KEY-`` (as every key line of such a file does)."""
    return _agekeys.is_age_identity_text(bytes(data))


def age_identities(data: bytes) -> list[Identity]:
    """Every identity of an age identity file's bytes (``AGE-SECRET-KEY-1...`` lines, comments)."""
    identities: list[Identity] = []
    for kind, key in _agekeys.parse_identity_file(data):
        if kind == _agekeys.X25519_KIND:
            identities.append(X25519Identity(x25519.X25519PrivateKey.from_private_bytes(key)))
        else:
            identities.append(MlKem768X25519Identity(key))
    return identities


def age_recipients(data: bytes | str) -> list[Recipient]:
    """Every recipient of an age recipients file's contents: one key per line (``age1...``,
    ``ssh-ed25519 ...``, or ``ssh-rsa ...``, an rsa-oaep-sha256 recipient here), ``#`` comments and
    blank lines skipped; any other line is an error naming its number (R38)."""
    found = _age_recipient_lines(data.encode() if isinstance(data, str) else bytes(data))
    if found is None:
        raise InvalidKeyError("not an age recipients file: its first key line is not age1... or ssh-ed25519")
    return found


def _age_recipient_lines(data: bytes) -> list[Recipient] | None:
    """The recipients of an age recipients file (``age1...`` lines, ``#`` comments, blank lines), or
    ``None`` when the first key line is not an age recipient (then it is another key format)."""
    lines = [(n, line.strip()) for n, line in enumerate(data.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith(b"#")]
    if not lines or not lines[0][1].startswith((AGE_RECIPIENT_PREFIX.encode(), SSH_ED25519_PREFIX.encode())):
        return None
    recipients: list[Recipient] = []
    for number, line in lines:
        try:
            if line.startswith(b"ssh-rsa "):
                recipients.append(RsaRecipient(parse_public_key(line)))
                continue
            recipients.append(age_recipient(line.decode("ascii")))
        except (InvalidKeyError, UnicodeDecodeError) as exc:
            raise InvalidKeyError(
                f"line {number}: {exc if isinstance(exc, InvalidKeyError) else 'not ASCII'}"
            ) from None
    return recipients


def key_file_identities(path: KeyPath, passphrase: PassphraseSource = None) -> list[Identity]:
    """The identities of a private key file, whatever its kind: every key of an age identity file
    (section 4.2), an OpenSSH Ed25519 key (:class:`SshEd25519KeyFileIdentity`, section 4.3), or an
    RSA key (:class:`RsaKeyFileIdentity`). ``passphrase`` serves an encrypted key only."""
    data = read_key_file(path, "key_file_identities", "parse_private_key")
    if _agekeys.is_age_identity_text(data):
        return list(in_key_file(path, lambda: age_identities(data)))
    if is_ssh_ed25519_private_key(data):
        return [SshEd25519KeyFileIdentity(path, passphrase)]
    return [RsaKeyFileIdentity(path, passphrase)]


# The recipient and identity classes of this package, told by their exact type: isinstance with
# a runtime-checkable Protocol costs 10 to 50 us, and every file of a batch (and every call with an
# identity made once) passes its keys through here again. Subclasses take the general path.
_OWN_RECIPIENTS: frozenset[type] = frozenset(
    {RsaRecipient, X25519Recipient, SshEd25519Recipient, MlKem768X25519Recipient}
)
_OWN_IDENTITIES: frozenset[type] = frozenset(
    {
        RsaIdentity,
        RsaKeyFileIdentity,
        X25519Identity,
        SshEd25519Identity,
        SshEd25519KeyFileIdentity,
        MlKem768X25519Identity,
        UnwrapperIdentity,
    }
)


def _recipients_of(item: object) -> list[Recipient]:
    # Key objects first: isinstance with a runtime-checkable Protocol costs about 50 us. A
    # recipient already made (a batch makes them once for all its files) is the cheapest check.
    if type(item) in _OWN_RECIPIENTS:
        return [item]  # type: ignore[list-item]
    if isinstance(item, RsaRecipient):
        return [item]
    if isinstance(item, rsa.RSAPublicKey):
        recipient: RsaRecipient = _RECIPIENTS.get(item, RsaRecipient)
        return [recipient]
    if isinstance(item, x25519.X25519PublicKey):
        return [X25519Recipient(item)]
    if isinstance(item, (rsa.RSAPrivateKey, x25519.X25519PrivateKey)):
        raise UsageError("a private key was given as a recipient; give its public key (key.public_key())")
    if isinstance(item, Recipient):
        return [item]
    if isinstance(item, str) and item.startswith((AGE_RECIPIENT_PREFIX, SSH_ED25519_PREFIX)):
        return [age_recipient(item)]  # key text: a file so named is given as a Path
    if isinstance(item, (str, os.PathLike)):
        data = read_key_file(item, "seal", "parse_public_key")
        age = in_key_file(item, lambda: _age_recipient_lines(data))
        return age if age is not None else [RsaRecipient(load_public_key(item))]
    if isinstance(item, (bytes, bytearray, memoryview)):
        age = _age_recipient_lines(bytes(item))
        return age if age is not None else [RsaRecipient(parse_public_key(bytes(item)))]
    check_key_policy(item)  # raises InvalidKeyError naming the kind
    raise AssertionError("unreachable")


def _identities_of(item: object) -> list[Identity]:
    if type(item) in _OWN_IDENTITIES:
        return [item]  # type: ignore[list-item]
    if isinstance(item, RsaIdentity):  # made already (once per batch), as in _recipients_of
        return [item]
    if isinstance(item, rsa.RSAPrivateKey):  # then key objects, as in _recipients_of
        return [RsaIdentity(item)]
    if isinstance(item, x25519.X25519PrivateKey):
        return [X25519Identity(item)]
    if isinstance(item, Identity):
        return [item]
    if isinstance(item, (str, os.PathLike)):
        return key_file_identities(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        if _agekeys.is_age_identity_text(bytes(item)):
            return age_identities(bytes(item))
        if is_ssh_ed25519_private_key(bytes(item)):
            raise UsageError("give an OpenSSH Ed25519 private key as the path of its file (SshEd25519KeyFileIdentity)")
        return [RsaIdentity(parse_private_key(bytes(item)))]
    if isinstance(item, KeyUnwrapper):  # a key in a token or a KMS (envelope.pkcs11, envelope.aws_kms)
        return [UnwrapperIdentity(item)]
    if isinstance(item, (rsa.RSAPublicKey, x25519.X25519PublicKey)):
        raise UsageError("a public key cannot open a file; give the private key")
    check_key_policy(item)
    raise AssertionError("unreachable")


def as_recipients(recipients: RecipientLike | Iterable[RecipientLike]) -> list[Recipient]:
    """Normalise one recipient or many into :class:`Recipient` objects."""
    items = as_list(recipients)
    if not items:
        raise UsageError("at least one recipient is needed")
    return [recipient for item in items for recipient in _recipients_of(item)]


def as_identities(identities: IdentityLike | Iterable[IdentityLike]) -> list[Identity]:
    """Normalise one private key or many into :class:`Identity` objects."""
    items = as_list(identities)
    if not items:
        raise UsageError("at least one private key is needed")
    # A key file whose key id is unknown until it is unlocked goes after the others: it is unlocked
    # (its passphrase asked for) only when no key with a known id matched. sorted() is stable.
    found = [identity for item in items for identity in _identities_of(item)]
    return sorted(found, key=lambda i: isinstance(i, RsaKeyFileIdentity) and i.key_id is None)


def as_list(value: object) -> list[Any]:
    """One key-like value or an iterable of them, as a list (a str, bytes or path is one value)."""
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or not isinstance(value, Iterable):
        return [value]
    return list(value)
