"""Keys held outside this process (spec section 4.1 for the entries they open).

A key in a PKCS#11 token or a KMS never leaves it: it is asked to unwrap one ``rsa-oaep-sha256``
entry, or to sign one message. :class:`KeyUnwrapper` is the public protocol for the first; this
module turns one into an :class:`~envelope.Identity`, and checks what any caller-written identity
returns or raises, so that a faulty implementation fails with a typed error rather than an
``AttributeError`` deep in the header code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import rsa

from ._datakey import DATA_KEY_LEN, DataKey
from ._format import RSA_OAEP_SHA256, RecipientEntry, entry_for
from .errors import EnvelopeError, ExternalKeyError, MalformedError
from .keys import _raw_key_id, check_key_policy

__all__ = ["KeyUnwrapper", "UnwrapperIdentity", "checked_unwrap"]

WRAPPED_LENGTH_MISMATCH = "malformed header: the wrapped key length does not match the RSA key"


@runtime_checkable
class KeyUnwrapper(Protocol):
    """An RSA key held elsewhere (a token, a KMS) that can undo RSA-OAEP for this format.

    ``public_key`` is its public half (the key id and the wrapped length come from it).
    ``unwrap_key(wrapped)`` decrypts one ``rsa-oaep-sha256`` entry's ``key`` field (RSA-OAEP,
    SHA-256, MGF1-SHA-256, empty label) and returns the 32-byte data key. A wrapped key that does
    not decrypt may raise :class:`~envelope.AuthenticationError`, or return any wrong-length value:
    either way the open fails with the header MAC's error (R15 reads like R16). Any other exception
    becomes :class:`~envelope.ExternalKeyError`.
    """

    @property
    def public_key(self) -> rsa.RSAPublicKey: ...

    def unwrap_key(self, wrapped: bytes) -> bytes: ...


def _data_key(raw: bytes) -> DataKey:
    # R15 must read exactly like R16: a result of the wrong length goes on as a random key, so the
    # header MAC is computed and compared as for a good unwrap, and fails there, with R16's error.
    return DataKey(raw) if len(raw) == DATA_KEY_LEN else DataKey.generate()


def _failed(what: str, exc: BaseException) -> ExternalKeyError:
    # The class name only: a library's message may quote anything, and it stays in __cause__.
    return ExternalKeyError(f"{what} failed: {type(exc).__name__} (see the chained exception)")


class UnwrapperIdentity:
    """A :class:`KeyUnwrapper` as an :class:`~envelope.Identity`: it finds its entry by key id,
    checks the wrapped length (R14), asks the unwrapper, and checks what comes back."""

    __slots__ = ("_kid", "_wrapped_len", "key_id", "unwrapper")

    def __init__(self, unwrapper: KeyUnwrapper) -> None:
        name = type(unwrapper).__name__
        try:
            public = unwrapper.public_key
        except EnvelopeError:
            raise
        except Exception as exc:
            raise _failed(f"{name}.public_key", exc) from exc
        if not isinstance(public, rsa.RSAPublicKey):
            raise ExternalKeyError(f"{name}.public_key is {type(public).__name__}, not an RSA public key")
        check_key_policy(public)
        self.unwrapper = unwrapper
        self._kid = _raw_key_id(public)
        self._wrapped_len = (public.key_size + 7) // 8
        self.key_id = self._kid.hex()

    def unwrap(self, entries: Sequence[RecipientEntry]) -> DataKey | None:
        entry = entry_for(entries, RSA_OAEP_SHA256, self._kid)
        if entry is None:
            return None
        wrapped = entry.fields["key"]
        if len(wrapped) != self._wrapped_len:  # R14, before the key is asked anything
            raise MalformedError(WRAPPED_LENGTH_MISMATCH)
        name = type(self.unwrapper).__name__
        try:
            raw = self.unwrapper.unwrap_key(bytes(wrapped))
        except EnvelopeError:
            raise
        except Exception as exc:
            raise _failed(f"{name}.unwrap_key", exc) from exc
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise ExternalKeyError(f"{name}.unwrap_key returned {type(raw).__name__}, not bytes")
        return _data_key(bytes(raw))

    def __repr__(self) -> str:
        return f"UnwrapperIdentity({self.unwrapper!r}, key_id={self.key_id})"


def checked_unwrap(identity: object, entries: Sequence[RecipientEntry]) -> DataKey | None:
    """``identity.unwrap(entries)``, its result checked: ``None``, a data key, or the key's 32 bytes
    (what an identity written with public names returns). Bytes of another length take the R15 path;
    anything else, or an exception that is not an :class:`EnvelopeError`, is ExternalKeyError."""
    name = type(identity).__name__
    try:
        result = identity.unwrap(entries)  # type: ignore[attr-defined]
    except EnvelopeError:
        raise
    except Exception as exc:
        raise _failed(f"{name}.unwrap", exc) from exc
    if result is None or isinstance(result, DataKey):
        return result
    if isinstance(result, (bytes, bytearray, memoryview)):
        return _data_key(bytes(result))
    raise ExternalKeyError(
        f"{name}.unwrap returned {type(result).__name__}: an Identity returns the 32-byte data key, or None"
    )
