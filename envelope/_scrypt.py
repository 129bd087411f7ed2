"""A passphrase as a recipient and an identity: ``scrypt`` entries (spec/FORMAT.md 4.5).

As in age, a passphrase entry is the only recipient of its file. Whoever unwraps the data key can
write another payload and header under it; if a key's holder could, a file that opens with the
passphrase would no longer show that someone who knows the passphrase made it.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Union

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from . import _keywrap
from ._datakey import DataKey
from ._format import SALT_LEN, SCRYPT, RecipientEntry
from .errors import LimitError, UsageError
from .limits import (
    DEFAULT_SCRYPT_WORK_FACTOR,
    MAX_SCRYPT_WORK_FACTOR,
    SCRYPT_R,
    SCRYPT_WORK_FACTOR_CEILING,
    scrypt_memory,
)

__all__ = ["Passphrase", "PassphraseLike", "passphrase_bytes"]

_SALT_LABEL = b"envelope v1 scrypt"
SCRYPT_P = 1

PassphraseLike = Union[str, bytes, Callable[[], Union[str, bytes]]]  # noqa: UP007 - a runtime alias
"""A passphrase, or a function that returns one when it is first needed (a prompt, say)."""


def passphrase_bytes(passphrase: str | bytes) -> bytes:
    """The bytes scrypt takes (section 4.5): a str in Unicode NFC, as UTF-8; bytes as given."""
    if isinstance(passphrase, str):
        data = unicodedata.normalize("NFC", passphrase).encode("utf-8", "surrogatepass")
    elif isinstance(passphrase, (bytes, bytearray, memoryview)):
        data = bytes(passphrase)
    else:
        raise UsageError("a passphrase is a str or bytes")
    if not data:
        raise UsageError("the passphrase is empty")
    return data


def _wrapping_key(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SALT_LABEL + salt, length=32, n=1 << work_factor, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(passphrase)


def _check_work_factor(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SCRYPT_WORK_FACTOR_CEILING:
        raise UsageError(f"{name} must be an integer from 1 to {SCRYPT_WORK_FACTOR_CEILING} (log2 of scrypt's N)")
    return value


class Passphrase:
    """A passphrase as a recipient (``seal``) and as an identity (``open``).

    ``passphrase``: a str (normalised to Unicode NFC, then UTF-8, so that the same text typed on
    any system opens the file), bytes (used as given), or a function returning either, called at
    most once, when the passphrase is first needed. ``work_factor``: log2 of scrypt's N when
    sealing (memory 2**work_factor KiB; 18 by default: 256 MiB). ``max_work_factor``: the largest
    a file may ask for when opening (20 by default: 1 GiB); a file asking more is refused with
    :class:`LimitError` before any scrypt work (R48). Raise it only for files you expect.

    A passphrase entry must be the only recipient of its file: sealing or rewrapping to a
    passphrase and anything else raises :class:`UsageError`.
    """

    __slots__ = ("_lock", "_passphrase", "_source", "max_work_factor", "work_factor")

    def __init__(
        self,
        passphrase: PassphraseLike,
        *,
        work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR,
        max_work_factor: int = MAX_SCRYPT_WORK_FACTOR,
    ) -> None:
        self.work_factor = _check_work_factor(work_factor, "work_factor")
        self.max_work_factor = _check_work_factor(max_work_factor, "max_work_factor")
        self._passphrase: bytes | None = None
        self._source: Callable[[], str | bytes] | None = None
        self._lock = threading.Lock()
        if callable(passphrase):
            self._source = passphrase
        else:
            self._passphrase = passphrase_bytes(passphrase)

    @property
    def unlocked(self) -> bool:
        """Whether the passphrase is known (given as a function: once it was called)."""
        return self._passphrase is not None

    def _secret(self) -> bytes:
        with self._lock:
            if self._passphrase is None:
                assert self._source is not None
                source, self._source = self._source, None
                self._passphrase = passphrase_bytes(source())
            return self._passphrase

    def wrap(self, data_key: DataKey) -> RecipientEntry:
        salt = os.urandom(SALT_LEN)
        wrapped = _keywrap.wrap(_wrapping_key(self._secret(), salt, self.work_factor), data_key)
        return RecipientEntry(SCRYPT, {"salt": salt, "ln": self.work_factor, "key": wrapped})

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        entry = next((e for e in entries if e.type == SCRYPT), None)
        if entry is None:
            return None
        ln = entry.fields["ln"]
        if ln > self.max_work_factor:  # R48, before any work
            raise LimitError(
                f"the file's passphrase work factor {ln} exceeds the limit of {self.max_work_factor} "
                f"(scrypt would need {scrypt_memory(min(ln, 64)) >> 20} MiB); raise max_work_factor to open it"
            )
        return _keywrap.unwrap(_wrapping_key(self._secret(), entry.fields["salt"], ln), entry.fields["key"])

    def __repr__(self) -> str:
        return f"Passphrase(work_factor={self.work_factor}, max_work_factor={self.max_work_factor})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Passphrase cannot be pickled")
