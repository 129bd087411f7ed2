"""The file's data key and what is derived from it (spec sections 6 and 7.2)."""

from __future__ import annotations

import base64
import hmac as _hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _crypto_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import AuthenticationError

__all__ = ["DATA_KEY_LEN", "HEADER_AUTH_FAILED", "DataKey"]

DATA_KEY_LEN = 32
_HEADER_MAC_INFO = b"envelope v1 header"
_COMMIT_INFO = b"envelope v1 key commitment"

# R15 and R16 share this message so that an OAEP failure is indistinguishable from a MAC failure.
HEADER_AUTH_FAILED = "header authentication failed: the file was modified or the key does not open it"


class DataKey:
    """A file's random 32-byte Fernet key: signing key ``[0:16]``, encryption key ``[16:32]``.

    The bytes never appear in ``repr`` or ``str``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != DATA_KEY_LEN:
            raise ValueError("a data key is 32 bytes")
        self._key = bytes(key)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(DATA_KEY_LEN))

    @property
    def signing_key(self) -> bytes:
        return self._key[:16]

    @property
    def encryption_key(self) -> bytes:
        return self._key[16:]

    def raw(self) -> bytes:
        """The 32 key bytes, for wrapping. Handle with care."""
        return self._key

    def fernet_key(self) -> bytes:
        """The key in Fernet's usual text form, ``base64url(K)``."""
        return base64.urlsafe_b64encode(self._key)

    def _derive(self, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._key)

    def commitment(self) -> bytes:
        """``HKDF(K, info="envelope v1 key commitment")``, the header's ``commit`` (section 6)."""
        return self._derive(_COMMIT_INFO)

    def header_mac(self, authenticated: bytes) -> bytes:
        """HMAC-SHA256 of prefix || header under ``HKDF(K, info="envelope v1 header")`` (section 6)."""
        h = _crypto_hmac.HMAC(self._derive(_HEADER_MAC_INFO), hashes.SHA256())
        h.update(authenticated)
        return h.finalize()

    def verify_header(self, authenticated: bytes, commit: bytes, mac: bytes) -> None:
        """R16: the header's commitment is this key's and its MAC verifies. Both are compared
        whatever the first gives, and either failing is one error: no oracle on which."""
        committed = _hmac.compare_digest(self.commitment(), commit)
        authentic = _hmac.compare_digest(self.header_mac(authenticated), mac)
        if not (committed & authentic):
            raise AuthenticationError(HEADER_AUTH_FAILED)

    def __repr__(self) -> str:
        return "DataKey(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a DataKey cannot be pickled")
