"""age's key encodings (spec section 4.2 and 4.4): Bech32 ``age1...`` recipients, upper-case
``AGE-SECRET-KEY-1...`` identities, and identity files as age-keygen writes them (several keys, ``#``
comments, blank lines). Text in, kind and raw key bytes out: no cryptography here.

Errors never repeat the text of a secret key: they name the line.
"""

from __future__ import annotations

from typing import NamedTuple

from . import _bech32
from .errors import InvalidKeyError

__all__ = [
    "MLKEM768X25519_KIND",
    "X25519_KIND",
    "AgeKey",
    "age_identity",
    "age_recipient",
    "check_canonical",
    "decode_identity",
    "decode_recipient",
    "is_age_identity_text",
    "parse_identity_file",
    "pq_identity",
    "pq_recipient",
]

X25519_KIND = "x25519"
MLKEM768X25519_KIND = "mlkem768x25519"

_RECIPIENT_HRP = {"age": X25519_KIND, "age1pq": MLKEM768X25519_KIND}
_IDENTITY_HRP = {"age-secret-key-": X25519_KIND, "age-secret-key-pq-": MLKEM768X25519_KIND}
_RECIPIENT_LEN = {X25519_KIND: 32, MLKEM768X25519_KIND: 1216}  # X25519 share; ML-KEM-768 || X25519
_IDENTITY_LEN = {X25519_KIND: 32, MLKEM768X25519_KIND: 32}  # the scalar; the hybrid's seed
_MAX_TEXT = 2000  # an age1pq1 recipient is 1959 characters
IDENTITY_PREFIX = "AGE-SECRET-KEY-"


class AgeKey(NamedTuple):
    kind: str  # X25519_KIND or MLKEM768X25519_KIND
    key: bytes


def age_recipient(share: bytes) -> str:
    return _bech32.encode("age", share)


def age_identity(scalar: bytes) -> str:
    return _bech32.encode("age-secret-key-", scalar).upper()


def pq_recipient(public_key: bytes) -> str:
    return _bech32.encode("age1pq", public_key)


def pq_identity(seed: bytes) -> str:
    return _bech32.encode("age-secret-key-pq-", seed).upper()


_P = 2**255 - 19  # X25519's field prime


def check_canonical(share: bytes, what: str) -> None:
    """Refuse an X25519 public value that is not below p read little-endian (the top bit set
    included; section 4.2, R38): X25519 would compute with it, but the identity's own public key is
    canonical, so its key id would never match and no identity could open the file."""
    if int.from_bytes(share, "little") >= _P:
        raise InvalidKeyError(f"{what} is not a canonical X25519 key (a value of 2^255 - 19 or more): no key opens it")


def _decode(text: str, prefixes: dict[str, str], lengths: dict[str, int], what: str) -> AgeKey:
    try:
        hrp, data = _bech32.decode(text, _MAX_TEXT)
    except _bech32.Bech32Error as exc:
        raise InvalidKeyError(f"not a valid {what}: {exc}") from None
    kind = prefixes.get(hrp)
    if kind is None:
        raise InvalidKeyError(f"not a valid {what}: unknown prefix")
    if len(data) != lengths[kind]:
        raise InvalidKeyError(f"not a valid {what}: {len(data)} bytes where {lengths[kind]} are expected")
    return AgeKey(kind, data)


_BLANK = " \t"  # what a line of key text may have around it (R38): spaces and tabs, nothing else


def decode_recipient(text: str) -> AgeKey:
    """An ``age1...`` (X25519) or ``age1pq1...`` (ML-KEM-768 + X25519) recipient, in lower case as
    age writes and reads them (R38)."""
    text = text.strip(_BLANK + "\r\n")
    if text.lower() != text:
        raise InvalidKeyError("not a valid age recipient: age recipients are lower case")
    return _decode(text, _RECIPIENT_HRP, _RECIPIENT_LEN, "age recipient")


def decode_identity(text: str) -> AgeKey:
    """An ``AGE-SECRET-KEY-1...`` or ``AGE-SECRET-KEY-PQ-1...`` identity. Upper case only, as age
    writes and reads them (R38)."""
    text = text.strip(_BLANK + "\r\n")
    if text.upper() != text:
        raise InvalidKeyError("not a valid age identity: age identities are upper case")
    return _decode(text, _IDENTITY_HRP, _IDENTITY_LEN, "age identity")


def is_age_identity_text(data: bytes) -> bool:
    """Whether the first line that is not blank nor a ``#`` comment begins like an age identity."""
    for line in identity_file_lines(data.decode("utf-8", "replace")):
        if line and not line.startswith("#"):
            return line.startswith(IDENTITY_PREFIX)
    return False


def identity_file_lines(text: str) -> list[str]:
    """An identity file's lines as section 4.2 defines them: ended by LF (a CR before it is part of
    the line ending), spaces and tabs around each removed. Other characters Python takes for line
    breaks or blanks (form feed, U+2028, NBSP...) are part of the line, which is then not a key."""
    return [line.removesuffix("\r").strip(_BLANK) for line in text.split("\n")]


def parse_identity_file(data: bytes) -> list[AgeKey]:
    """Every identity of an age identity file: one per line, ``#`` comments and blank lines
    skipped; any other line is an error naming its number (R38)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidKeyError("not an age identity file: not UTF-8") from None
    keys = []
    for number, line in enumerate(identity_file_lines(text), 1):
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(decode_identity(line))
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"line {number}: {exc}") from None
    if not keys:
        raise InvalidKeyError("no identity in the age identity file")
    return keys
