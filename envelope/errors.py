"""The errors envelope raises. Every one derives from :class:`EnvelopeError`.

Each class maps to the rules of ``spec/FORMAT.md`` section 8. Messages say *that* something failed,
never which byte, and never contain key material or plaintext.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "EnvelopeError",
    "InvalidKeyError",
    "LimitError",
    "MalformedError",
    "MissingDependencyError",
    "NoMatchingKeyError",
    "ObjectChangedError",
    "RemoteError",
    "UnsupportedError",
    "UsageError",
]


class EnvelopeError(Exception):
    """Base class of every error the envelope SDK raises."""


class MalformedError(EnvelopeError):
    """The bytes are not a well-formed envelope file (rules R1, R3-R6, R8-R11, R14)."""


class UnsupportedError(EnvelopeError):
    """The file needs a version or extension this reader does not implement (R2, R12)."""


class LimitError(EnvelopeError):
    """A size or count exceeds a documented limit (R3, R7, R8, R11), or an argument does."""


class NoMatchingKeyError(EnvelopeError):
    """None of the given private keys is a recipient of the file (R13)."""


class AuthenticationError(EnvelopeError):
    """The file was modified, truncated or extended, or the key does not open it (R15-R22)."""


class InvalidKeyError(EnvelopeError):
    """A key cannot be loaded, or violates the key policy (RSA, 2048 to 16384 bits) (R23)."""


class UsageError(EnvelopeError, ValueError):
    """An argument is invalid: an unsupported metadata value, no recipient, a bad chunk size.

    Not a file-format rule: raised by writers before anything is written.
    """


class MissingDependencyError(EnvelopeError, ImportError):
    """A model adapter needs a framework that is not installed; the message names the extra."""


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
