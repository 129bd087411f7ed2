"""A shared Fernet key as a recipient and an identity: ``fernet`` entries (spec/FORMAT.md 4.6).

The key is the one ``cryptography.fernet.Fernet.generate_key()`` returns: 32 random bytes in
base64url. It is never used as a Fernet key here: the key id and every wrapping key are HKDF
outputs under labels of this format, so no entry is a Fernet token under the user's key, and the
user's tokens and ours cannot be swapped.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Sequence

from . import _keywrap
from ._datakey import DataKey
from ._format import FERNET, SALT_LEN, RecipientEntry
from .errors import InvalidKeyError

__all__ = ["FernetKey", "parse_fernet_key"]

SHARED_KEY_LEN = 32
_KEY_ID_INFO = b"envelope v1 fernet key id"
_WRAP_INFO = b"envelope v1 fernet wrap"


def parse_fernet_key(key: str | bytes) -> bytes:
    """The 32 bytes of a Fernet key given in its text form (base64url, 44 characters, as
    ``Fernet.generate_key()`` returns it; surrounding whitespace, a trailing newline say, is
    ignored). Raises :class:`InvalidKeyError` naming no key byte."""
    text = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text) if len(text) == 44 else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SHARED_KEY_LEN or base64.urlsafe_b64encode(raw) != text:
        raise InvalidKeyError("not a Fernet key: expected 32 bytes in url-safe base64 (44 characters)")
    return raw


class FernetKey:
    """A shared Fernet key (``Fernet.generate_key()``'s text form) as a recipient and an identity.

    Whoever holds the key can open the file, and seal files that open with it: a shared key says
    nothing about who sealed a file (sign it for that). ``key_id`` (64 hex digits) is derived from
    the key and names it in the header and in ``envelope-info``; it reveals which files share a key,
    not the key.
    """

    __slots__ = ("_kid", "_shared", "key_id")

    def __init__(self, key: str | bytes) -> None:
        self._shared = parse_fernet_key(key)
        self._kid = _keywrap.hkdf(self._shared, _KEY_ID_INFO)
        self.key_id = self._kid.hex()

    @classmethod
    def generate(cls) -> FernetKey:
        """A new random key (as ``Fernet.generate_key()`` would make)."""
        return cls(base64.urlsafe_b64encode(os.urandom(SHARED_KEY_LEN)))

    def text(self) -> bytes:
        """The key in its text form, as ``Fernet.generate_key()`` returns it. Handle with care."""
        return base64.urlsafe_b64encode(self._shared)

    def wrap(self, data_key: DataKey) -> RecipientEntry:
        salt = os.urandom(SALT_LEN)
        wrapped = _keywrap.wrap(_keywrap.hkdf(self._shared, _WRAP_INFO, salt), data_key)
        return RecipientEntry(FERNET, {"kid": self._kid, "salt": salt, "key": wrapped})

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        for entry in entries:
            if entry.type == FERNET and entry.kid is not None and hmac.compare_digest(entry.kid, self._kid):
                wrapping_key = _keywrap.hkdf(self._shared, _WRAP_INFO, entry.fields["salt"])
                return _keywrap.unwrap(wrapping_key, entry.fields["key"])
        return None

    def __repr__(self) -> str:
        return f"FernetKey(key_id={self.key_id})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a FernetKey cannot be pickled")
