"""Passphrase (`scrypt`) and shared Fernet key (`fernet`) entries (sections 4.5, 4.6; rules R45-R50).

The reader's keys are text files in spec/vectors/keys/: NAME.fernet holds a shared Fernet key
(base64url, 44 characters) and NAME.passphrase a passphrase (UTF-8), neither with a newline. The
work factor is 10 (1 MiB, about a millisecond), which the rules allow, so the vectors stay cheap.
"""

from __future__ import annotations

import base64
import unicodedata
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .kit import TEXT, TestFile, seeded, vector

FERNET_KEYS = {name: base64.urlsafe_b64encode(seeded("keys", name, 32)).decode() for name in ("fernet-a", "fernet-b")}
PASSPHRASES = {
    "passphrase-a": "correct horse battery staple",
    "passphrase-b": "correct horse battery stapler",
    # "Crème brûlée" with every accent decomposed (NFD): a reader takes text in NFC (section 4.5), so
    # this opens what was sealed with the composed form.
    "passphrase-nfd": unicodedata.normalize("NFD", "Crème brûlée à 3 €"),
}
KEY_FILES = {
    **{f"keys/{name}.fernet": text.encode() for name, text in FERNET_KEYS.items()},
    **{f"keys/{name}.passphrase": text.encode() for name, text in PASSPHRASES.items()},
}
WORK_FACTOR = 10
_ZERO_NONCE = bytes(12)


def _chacha(wrap_key: bytes, data_key: bytes) -> bytes:
    return ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, data_key, None)


def fernet_entry(f: TestFile, name: str, **change: Any) -> dict[str, Any]:
    """Section 4.6: the `fernet` entry of a shared key, with fields changed or added."""
    shared = base64.urlsafe_b64decode(FERNET_KEYS[name])
    kid = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 fernet key id").derive(shared)
    salt = change.pop("wrap_salt", seeded(f.seed, f"{name}/salt", 16))
    wrap_key = HKDF(hashes.SHA256(), 32, salt=salt, info=b"envelope v1 fernet wrap").derive(shared)
    return {"type": "fernet", "kid": kid, "salt": salt, "key": _chacha(wrap_key, f.data_key), **change}


def scrypt_entry(f: TestFile, name: str = "passphrase-a", ln: int = WORK_FACTOR, **change: Any) -> dict[str, Any]:
    """Section 4.5: the `scrypt` entry of a passphrase (its NFC form, as UTF-8), fields changed or added."""
    passphrase = unicodedata.normalize("NFC", PASSPHRASES[name]).encode()
    salt = seeded(f.seed, f"{name}/salt", 16)
    wrap_key = Scrypt(salt=b"envelope v1 scrypt" + salt, length=32, n=1 << ln, r=8, p=1).derive(passphrase)
    return {"type": "scrypt", "salt": salt, "ln": ln, "key": _chacha(wrap_key, f.data_key), **change}


# --- fernet ----------------------------------------------------------------------------------------


@vector
def fernet_recipient(f: TestFile) -> None:
    """a shared Fernet key is the only recipient"""
    f.header["recipients"] = [fernet_entry(f, "fernet-a")]
    f.keys = ["fernet-a"]
    f.seal(TEXT[:100])


@vector
def fernet_beside_rsa(f: TestFile) -> None:
    """an RSA entry and a fernet entry; the reader holds another shared key, then the file's, and
    finds the entry by key id"""
    f.header["recipients"] = ["rsa2048-a", fernet_entry(f, "fernet-a", note="ignored")]
    f.keys = ["fernet-b", "fernet-a"]
    f.seal(TEXT[:40])


@vector
def r13_fernet_other_key(f: TestFile) -> None:
    """the reader's shared key is not the file's"""
    f.header["recipients"] = [fernet_entry(f, "fernet-a")]
    f.keys = ["fernet-b"]
    f.seal()
    f.expect_error("R13")


@vector
def r45_fernet_kid_short(f: TestFile) -> None:
    """a fernet entry whose kid is 31 bytes"""
    entry = fernet_entry(f, "fernet-a")
    f.header["recipients"] = [{**entry, "kid": entry["kid"][:31]}]
    f.keys = ["fernet-a"]
    f.seal()
    f.expect_error("R45", "MalformedError")


@vector
def r45_fernet_salt_missing(f: TestFile) -> None:
    """a fernet entry without salt"""
    entry = fernet_entry(f, "fernet-a")
    del entry["salt"]
    f.header["recipients"] = [entry]
    f.keys = ["fernet-a"]
    f.seal()
    f.expect_error("R45", "MalformedError")


@vector
def r45_fernet_key_long(f: TestFile) -> None:
    """a fernet entry whose wrapped key is 49 bytes"""
    entry = fernet_entry(f, "fernet-a")
    f.header["recipients"] = [{**entry, "key": entry["key"] + b"\0"}]
    f.keys = ["fernet-a"]
    f.seal()
    f.expect_error("R45", "MalformedError")


@vector
def r45_fernet_duplicate_kid(f: TestFile) -> None:
    """two fernet entries for the same shared key (both would unwrap)"""
    other = fernet_entry(f, "fernet-a", wrap_salt=seeded(f.seed, "second salt", 16))
    f.header["recipients"] = [fernet_entry(f, "fernet-a"), other]
    f.keys = ["fernet-a"]
    f.seal()
    f.expect_error("R45", "MalformedError")


@vector
def r46_fernet_unwrap_fails(f: TestFile) -> None:
    """the fernet entry's salt was changed: its key no longer decrypts"""
    entry = fernet_entry(f, "fernet-a")
    f.header["recipients"] = [{**entry, "salt": seeded(f.seed, "other salt", 16)}]
    f.keys = ["fernet-a"]
    f.seal()
    f.expect_error("R46", "AuthenticationError")


@vector
def r46_fernet_no_fallback(f: TestFile) -> None:
    """the reader's first shared key matches an entry that does not unwrap; its second key (an RSA
    key) would open the file: the reader must not fall back to it"""
    entry = fernet_entry(f, "fernet-a")
    f.header["recipients"] = [{**entry, "key": seeded(f.seed, "junk", 48)}, "rsa2048-a"]
    f.keys = ["fernet-a", "rsa2048-a"]
    f.seal()
    f.expect_error("R46", "AuthenticationError")


# --- scrypt ----------------------------------------------------------------------------------------


@vector
def scrypt_recipient(f: TestFile) -> None:
    """a passphrase (work factor 10) is the only recipient"""
    f.header["recipients"] = [scrypt_entry(f)]
    f.keys = ["passphrase-a"]
    f.seal(TEXT[:100])


@vector
def scrypt_passphrase_normalised(f: TestFile) -> None:
    """sealed with a passphrase in NFC; the reader's passphrase file holds the same text in NFD"""
    f.header["recipients"] = [scrypt_entry(f, "passphrase-nfd", extra=[1, 2])]
    f.keys = ["passphrase-nfd"]
    f.seal(TEXT[:40])


@vector
def r13_scrypt_without_passphrase(f: TestFile) -> None:
    """a passphrase file read with an RSA key only"""
    f.header["recipients"] = [scrypt_entry(f)]
    f.keys = ["rsa2048-a"]
    f.seal()
    f.expect_error("R13")


@vector
def r47_scrypt_ln_zero(f: TestFile) -> None:
    """a scrypt entry whose ln is 0"""
    f.header["recipients"] = [{**scrypt_entry(f), "ln": 0}]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R47", "MalformedError")


@vector
def r47_scrypt_ln_not_int(f: TestFile) -> None:
    """a scrypt entry whose ln is the string "10\""""
    f.header["recipients"] = [{**scrypt_entry(f), "ln": "10"}]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R47", "MalformedError")


@vector
def r47_scrypt_salt_short(f: TestFile) -> None:
    """a scrypt entry whose salt is 15 bytes"""
    entry = scrypt_entry(f)
    f.header["recipients"] = [{**entry, "salt": entry["salt"][:15]}]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R47", "MalformedError")


@vector
def r47_scrypt_key_short(f: TestFile) -> None:
    """a scrypt entry whose wrapped key is 47 bytes"""
    entry = scrypt_entry(f)
    f.header["recipients"] = [{**entry, "key": entry["key"][:47]}]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R47", "MalformedError")


@vector
def r48_scrypt_work_factor_over_limit(f: TestFile) -> None:
    """a scrypt entry asking for work factor 21 (2 GiB), over the readers' limit of 20; its key is
    junk, since the reader must refuse before any scrypt work"""
    f.header["recipients"] = [{**scrypt_entry(f), "ln": 21, "key": seeded(f.seed, "junk", 48)}]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R48", "LimitError")


@vector
def r49_scrypt_beside_rsa(f: TestFile) -> None:
    """a valid scrypt entry and an RSA entry; the reader holds the RSA key, which would open it"""
    f.header["recipients"] = [scrypt_entry(f), "rsa2048-a"]
    f.keys = ["rsa2048-a"]
    f.seal()
    f.expect_error("R49", "MalformedError")


@vector
def r49_scrypt_twice(f: TestFile) -> None:
    """two scrypt entries, for two passphrases; the reader holds the first"""
    f.header["recipients"] = [scrypt_entry(f), scrypt_entry(f, "passphrase-b")]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R49", "MalformedError")


@vector
def r49_scrypt_beside_unknown_type(f: TestFile) -> None:
    """a valid scrypt entry and an entry of a type no reader implements"""
    f.header["recipients"] = [scrypt_entry(f), {"type": "kms", "arn": "x"}]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R49", "MalformedError")


@vector
def r50_scrypt_wrong_passphrase(f: TestFile) -> None:
    """the reader's passphrase is not the file's"""
    f.header["recipients"] = [scrypt_entry(f)]
    f.keys = ["passphrase-b"]
    f.seal()
    f.expect_error("R50", "AuthenticationError")


@vector
def r50_scrypt_key_flipped(f: TestFile) -> None:
    """one bit of the scrypt entry's wrapped key flipped"""
    entry = scrypt_entry(f)
    key = bytearray(entry["key"])
    key[0] ^= 1
    f.header["recipients"] = [{**entry, "key": bytes(key)}]
    f.keys = ["passphrase-a"]
    f.seal()
    f.expect_error("R50", "AuthenticationError")
