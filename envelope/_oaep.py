"""EME-OAEP decoding (RFC 8017 section 7.1.2, steps 3a-3g) for keys that only do raw RSA.

A PKCS#11 token that refuses ``CKM_RSA_PKCS_OAEP`` with SHA-256 (SoftHSM2 2.6) still computes the
raw RSA decryption (``CKM_RSA_X_509``); the encoded message is decoded here. The format fixes the
parameters (SHA-256, MGF1-SHA-256, empty label, section 4.1) and the message length (32 bytes), so
the message's place is known in advance and nothing is sliced at a secret-dependent offset.

One error path, no early exit on secret-dependent data: every byte is looked at whatever came
before, the checks are combined arithmetically, and a failure yields a random 32-byte key that then
fails the header MAC check exactly as a wrong key does (R15 reads like R16). Python gives no
constant-time guarantee; this is as close as it allows, and the token's own RSA dominates the time.
"""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["decode_or_random"]

_HASH_LEN = 32  # SHA-256
_MESSAGE_LEN = 32  # the data key
_EMPTY_LABEL_HASH = hashlib.sha256(b"").digest()


def _mgf1(seed: bytes, length: int) -> bytes:
    """MGF1 with SHA-256 (RFC 8017 appendix B.2.1)."""
    out = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range((length + 31) // 32))
    return out[:length]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def decode_or_random(encoded: bytes, modulus_len: int) -> bytes:
    """The 32-byte message of a well-formed encoding ``EM`` of ``modulus_len`` bytes, else 32
    random bytes, with no branch on the encoding's content."""
    if modulus_len < 2 * _HASH_LEN + 2 + _MESSAGE_LEN or len(encoded) > modulus_len:
        return os.urandom(_MESSAGE_LEN)  # public facts (the key's size, the token's answer length)
    em = encoded.rjust(modulus_len, b"\x00")  # a token may drop the leading zero bytes
    y, masked_seed, masked_db = em[0], em[1 : 1 + _HASH_LEN], em[1 + _HASH_LEN :]
    seed = _xor(masked_seed, _mgf1(masked_db, _HASH_LEN))
    db = _xor(masked_db, _mgf1(seed, len(masked_db)))
    # DB = lHash || PS (zeros) || 0x01 || M, with M the last 32 bytes. Scan every byte of PS||0x01:
    # ``bad`` collects a byte that is neither zero before the 0x01 nor the 0x01 itself; ``found``
    # marks the 0x01; ``where`` records its index. All with integer masks, no data-dependent branch.
    good = hmac.compare_digest(db[:_HASH_LEN], _EMPTY_LABEL_HASH) & (((y - 1) >> 8) & 1)
    padding = db[_HASH_LEN : len(db) - _MESSAGE_LEN]
    found, where, bad = 0, 0, 0
    for index, byte in enumerate(padding):
        is_zero = ((byte - 1) >> 8) & 1
        is_one = (((byte ^ 1) - 1) >> 8) & 1
        first_one = is_one & (found ^ 1)
        where |= -first_one & index
        bad |= (found ^ 1) & (is_zero ^ 1) & (is_one ^ 1)
        found |= is_one
    # The message is exactly 32 bytes: the 0x01 must be the last byte before it.
    at_end = hmac.compare_digest(where.to_bytes(4, "big"), (len(padding) - 1).to_bytes(4, "big"))
    good &= found & (bad ^ 1) & at_end
    message = int.from_bytes(db[-_MESSAGE_LEN:], "big")
    random = int.from_bytes(os.urandom(_MESSAGE_LEN), "big")
    mask = -good & ((1 << (8 * _MESSAGE_LEN)) - 1)
    return (random ^ (mask & (message ^ random))).to_bytes(_MESSAGE_LEN, "big")
