"""The symmetric wrap that every kind but ``rsa-oaep-sha256`` shares (spec/FORMAT.md 4.2-4.6).

ChaCha20-Poly1305 of the data key under a 32-byte wrapping key used for this one wrap only (each
entry's wrapping key is derived from a fresh ephemeral share or a fresh random salt), so the nonce
can be fixed at zero.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._datakey import DATA_KEY_LEN, DataKey

__all__ = ["NONCE", "hkdf", "unwrap", "wrap"]

NONCE = bytes(12)


def hkdf(ikm: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 to 32 bytes: how the kinds derive wrapping keys and key ids from their secrets."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def wrap(wrapping_key: bytes, data_key: DataKey) -> bytes:
    """48 bytes: the encrypted data key and its 16-byte tag."""
    return ChaCha20Poly1305(wrapping_key).encrypt(NONCE, data_key.raw(), None)


def unwrap(wrapping_key: bytes, wrapped: bytes) -> DataKey:
    """The data key; a random one when the tag does not verify (a wrong key or passphrase), so that
    the failure surfaces as the header MAC's (R16), with its error and message (rules R37, R46, R50)."""
    try:
        raw = ChaCha20Poly1305(wrapping_key).decrypt(NONCE, wrapped, None)
    except InvalidTag:
        return DataKey.generate()
    return DataKey(raw) if len(raw) == DATA_KEY_LEN else DataKey.generate()
