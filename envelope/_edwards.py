"""Ed25519 public keys over public data only (RFC 8032 section 5.1.3): is an encoding canonical, a
point, and not of small order (signers, section 8.1; ssh-ed25519 recipients, section 4.3)? And the
birational map to Curve25519 that age and libsodium use for ssh-ed25519 keys (RFC 7748 section
4.1), which cryptography does not expose. The curve arithmetic proper stays in cryptography.
"""

from __future__ import annotations

__all__ = ["ed25519_key_problem", "montgomery_u"]

_ED25519_P = 2**255 - 19
_ED25519_D = -121665 * pow(121666, _ED25519_P - 2, _ED25519_P) % _ED25519_P
# The y coordinates of the eight points whose order divides 8 (the identity, order 2, order 4 and
# order 8; tests/test_signer_keys.py derives them): anyone can make a signature that such a key
# verifies.
_ED25519_Y8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
_ED25519_SMALL_ORDER_Y = frozenset({0, 1, _ED25519_P - 1, _ED25519_Y8, _ED25519_P - _ED25519_Y8})


def ed25519_key_problem(raw: bytes) -> str | None:
    """Why a 32-byte Ed25519 public key is not a valid, canonical, prime-order-subgroup-safe key."""
    encoded = int.from_bytes(raw, "little")
    y, x_odd = encoded & ((1 << 255) - 1), encoded >> 255
    if y >= _ED25519_P:
        return "is not in its canonical encoding"  # y and y + p would be one key under two key ids
    u, v = (y * y - 1) % _ED25519_P, (_ED25519_D * y * y + 1) % _ED25519_P
    x2 = u * pow(v, _ED25519_P - 2, _ED25519_P) % _ED25519_P
    if (x2 == 0 and x_odd) or (x2 != 0 and pow(x2, (_ED25519_P - 1) // 2, _ED25519_P) != 1):
        return "is not a point of the curve"
    if y in _ED25519_SMALL_ORDER_Y:
        return "is of small order (anyone could sign for it)"
    return None


def montgomery_u(raw: bytes) -> bytes:
    """The X25519 public key (u-coordinate, 32 bytes little-endian) of a valid Ed25519 public key:
    ``u = (1 + y) / (1 - y) mod p`` (RFC 7748 section 4.1). The caller checked the key with
    :func:`ed25519_key_problem` (so ``y != 1``)."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow(1 - y, _ED25519_P - 2, _ED25519_P) % _ED25519_P
    return u.to_bytes(32, "little")
