"""The errors envelope raises. Every one derives from :class:`EnvelopeError`.

Each class maps to the rules of ``spec/FORMAT.md`` section 8. Messages say *that* something failed,
never which byte, and never contain key material or plaintext.
"""

from __future__ import annotations

import errno
import os
from typing import Any

__all__ = [
    "AuthenticationError",
    "EnvelopeError",
    "ExternalKeyError",
    "InvalidKeyError",
    "LimitError",
    "MalformedError",
    "MissingDependencyError",
    "NoMatchingKeyError",
    "ObjectChangedError",
    "OutputExistsError",
    "PassphraseError",
    "RemoteError",
    "SignatureError",
    "SignerError",
    "UnsafeModelError",
    "UnsafeOutputError",
    "UnsupportedError",
    "UsageError",
]


class EnvelopeError(Exception):
    """Base class of every error the envelope SDK raises."""


class MalformedError(EnvelopeError):
    """The bytes are not a well-formed envelope file (rules R1, R3-R6, R8-R11, R14; recipient entries
    of the kinds of sections 4.2-4.4: R35, R39, R41)."""


class UnsupportedError(EnvelopeError):
    """The file needs a version or extension this reader does not implement (R2, R12)."""


class LimitError(EnvelopeError):
    """A size or count exceeds a documented limit (R3, R7, R8, R11), or an argument does."""


class NoMatchingKeyError(EnvelopeError):
    """None of the given keys (private keys, identities, passphrase, shared keys) is a recipient of the
    file (R13)."""


class AuthenticationError(EnvelopeError):
    """The file was modified, truncated or extended, or the key does not open it (R15-R22, R36, R37); or its
    signature, or its signer, is not what the caller requires (the subclasses below)."""


class SignatureError(AuthenticationError):
    """A signed file's signature footer is truncated or extended, lists tags that are not the
    tokens', or its signature does not verify (R26, R27): the file was modified after it was signed."""


class SignerError(AuthenticationError):
    """The caller requires one of some signers, and the file is unsigned or signed by another key
    (R28)."""


class InvalidKeyError(EnvelopeError):
    """A key cannot be loaded, or violates the key policy (RSA, 2048 to 16384 bits) (R23), or its age or
    OpenSSH encoding is invalid (R38, R40), or a hybrid public key fails its checks (R42)."""


class ExternalKeyError(InvalidKeyError):
    """A key held outside this process (a PKCS#11 token, a KMS, or any :class:`~envelope.Identity`,
    :class:`~envelope.KeyUnwrapper` or :class:`~envelope.Signer` written by a caller) could not be
    used: its module or service is missing or refused the request (a wrong or locked PIN, a missing
    object, a key of the wrong type, access denied), or the implementation raised an exception that
    is not an :class:`EnvelopeError`, or returned something its protocol does not allow, or (a
    signer) a signature that does not verify under its own public key. Not a file-format rule.

    The library's own exception is chained as ``__cause__``; the message names the key (a URI
    without its PIN, a KMS key id), never a PIN or key material. An unwrap whose result has the
    wrong length is not this error: it fails as a header MAC failure does (R15, R16).
    """


class UsageError(EnvelopeError, ValueError):
    """An argument is invalid: an unsupported metadata value, no recipient, a bad chunk size.

    Not a file-format rule: raised by writers before anything is written.
    """


class MissingDependencyError(EnvelopeError, ImportError):
    """A model adapter needs a framework that is not installed; the message names the extra."""


class UnsafeModelError(EnvelopeError):
    """A sealed model would run code or read local files when loaded, or is not in the format its
    adapter expects.

    Raised by the model adapters (``envelope.models``) before the framework parses the model: a
    TorchScript or legacy-format PyTorch file, a pickle that only a full unpickle can load, a
    TensorFlow SavedModel opened without ``unsafe_trust_graph=True``, an ONNX model whose tensors
    refer to external data files. Sealing needs only public keys,
    so a file that opens proves nothing about who made it.
    """


class OutputExistsError(EnvelopeError, FileExistsError):
    """An output path already holds a file and replacing it was not asked for.

    Raised by :func:`envelope.atomic_output` (and so by ``seal_file``, ``open_file``,
    ``rewrap_file`` and the model adapters' ``save``) without ``overwrite=True``, before anything
    is written, or when the path appeared while the output was being written. ``path`` is the
    path as the caller gave it; a caller words its own hint from it (the CLI says ``--force``).
    Not a file-format rule. Also a ``FileExistsError``, with ``errno.EEXIST`` and ``filename``.

    ``device`` is set when ``path`` is a block device (a disk, a partition): data at rest, written
    over in place only with ``overwrite=True``, never replaced by a file.
    """

    def __init__(self, path: str, *, device: bool = False) -> None:
        super().__init__(errno.EEXIST, os.strerror(errno.EEXIST), path)
        self.path = path
        self.device = device

    def __str__(self) -> str:
        if self.device:
            return f"{self.path} is a block device, which holds data (pass overwrite=True to write over it)"
        return f"{self.path} exists (pass overwrite=True to replace it)"

    def __reduce__(self) -> tuple[Any, ...]:
        return _output_exists, (self.path, self.device)


def _output_exists(path: str, device: bool) -> OutputExistsError:
    """Unpickle an :class:`OutputExistsError` (its ``device`` is keyword-only)."""
    return OutputExistsError(path, device=device)


class UnsafeOutputError(EnvelopeError, PermissionError):
    """The output path is a FIFO, a socket or a device that belongs to another user: whoever reads
    it would get the data (a name planted in a shared folder such as /tmp). Not written into.

    Raised by :func:`envelope.atomic_output` (and so by the file functions and the model adapters'
    ``save``) before anything is written, whatever ``overwrite`` says: a FIFO, a socket or a device
    is written into, never replaced. Special files the caller owns are written into, and so are
    descriptor paths (``/dev/stdout``, ``/dev/fd/N``), the null device and terminals. To send the
    data to such a file all the same, open it yourself (a shell redirection) and write to that.
    ``path`` is the path as given, ``kind`` what it is (``"a FIFO"``), ``owner`` its owner's uid.
    Not a file-format rule. Also a ``PermissionError``, with ``errno.EACCES`` and ``filename``.
    """

    def __init__(self, path: str, kind: str, owner: int) -> None:
        super().__init__(errno.EACCES, f"{kind} that belongs to {_user_name(owner)}, not to this user", path)
        self.path = path
        self.kind = kind
        self.owner = owner

    def __str__(self) -> str:
        return (
            f"{self.path} is {self.strerror}: not written into, since whoever reads it would get the data "
            "(choose another path, or open it yourself and write to that)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.kind, self.owner)


def _user_name(uid: int) -> str:
    """``uid 65534 (nobody)``: a uid, and its name where the system knows one."""
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):  # Windows; a uid with no name
        return f"uid {uid}"


class RemoteError(EnvelopeError, OSError):
    """Reading or writing the storage under an ``envelope::`` URL failed (a network or server error).

    An :class:`OSError` too, so code that handles I/O errors keeps working; the storage library's own
    exception is chained as ``__cause__``. No byte of a chunk that was not fetched whole and verified
    is ever returned. A missing object raises :class:`FileNotFoundError` and a refused one
    :class:`PermissionError`, unchanged, as for local files (docs/REMOTE.md).
    """


class ObjectChangedError(RemoteError):
    """The object under an ``envelope::`` URL was replaced, shortened or deleted between two ranged
    reads (its ETag or length changed). Open it again to read the new object."""


class WorkerError(EnvelopeError):
    """A worker process of a batch (:func:`~envelope.seal_files`, :func:`~envelope.open_files`,
    :func:`~envelope.verify_files`) died: killed, or out of memory. Not one file's failure: the call
    stops. ``results`` holds one entry per file in the order given, ``None`` where the file's fate
    is unknown (it may have an output, complete, or none); the outputs of the others are complete
    and durable, as when the call returns."""

    def __init__(self, message: str, results: list[Any]) -> None:
        super().__init__(message)
        self.results = results


class PassphraseError(InvalidKeyError):
    """A passphrase-protected private key file (RSA or signing) was given no passphrase, or one that
    does not unlock it. Not a file-format rule.

    Whether a passphrase was given tells the two apart, so that a caller can ask for one, or ask
    again (the command line gives three tries at the terminal).
    """
