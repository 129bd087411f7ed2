"""Bech32 (BIP-173, checksum constant 1) as age writes its keys: ``age1...``, ``AGE-SECRET-KEY-1...``.

A small codec of our own (spec section 4.2): the checksum is verified, the length is bounded by the
caller before anything is decoded, and mixed case is refused as BIP-173 says. age's post-quantum keys
are longer than BIP-173's 90 characters, so the bound is the caller's, not BIP-173's.
"""

from __future__ import annotations

__all__ = ["Bech32Error", "decode", "encode"]

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """The text is not valid Bech32 (the caller turns it into a typed error)."""


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                check ^= generator
    return check


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: bytes | list[int], source: int, target: int, *, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    for value in data:
        acc = (acc << source) | value
        bits += source
        while bits >= target:
            bits -= target
            out.append((acc >> bits) & ((1 << target) - 1))
    if pad:
        if bits:
            out.append((acc << (target - bits)) & ((1 << target) - 1))
    elif bits >= source or (acc << (target - bits)) & ((1 << target) - 1):
        raise Bech32Error("non-zero padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """``hrp`` (lowercase) + ``1`` + data + checksum, all lowercase."""
    words = _regroup(data, 8, 5, pad=True)
    check = _polymod(_expand(hrp) + words + [0] * 6) ^ 1
    words += [(check >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words)


def decode(text: str, max_length: int) -> tuple[str, bytes]:
    """(hrp in lowercase, data) of a Bech32 string of at most ``max_length`` characters."""
    if len(text) > max_length:
        raise Bech32Error("too long")
    if not text.isascii() or any(not 33 <= ord(c) <= 126 for c in text):
        raise Bech32Error("characters outside US-ASCII 33-126")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed case")
    text = text.lower()
    split = text.rfind("1")
    if split < 1 or split + 7 > len(text):
        raise Bech32Error("no separator, empty prefix or short checksum")
    hrp = text[:split]
    try:
        words = [_VALUES[c] for c in text[split + 1 :]]
    except KeyError:
        raise Bech32Error("a character outside the Bech32 alphabet") from None
    if _polymod(_expand(hrp) + words) != 1:
        raise Bech32Error("bad checksum")
    return hrp, bytes(_regroup(words[:-6], 5, 8, pad=False))
