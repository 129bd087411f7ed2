"""Keys: RSA moduli the policy allows, and keys it refuses (R23, section 4.1 and 9)."""

from __future__ import annotations

import functools

from .kit import TEXT, TestFile, vector


def single(f: TestFile, key: str) -> None:
    f.header.update(chunk_size=128, recipients=[key])
    f.keys = [key]
    f.seal(TEXT[:300])


for _key in ("rsa2048-a", "rsa3072-a", "rsa4096-a"):
    vector(functools.partial(single, key=_key), name=f"key-{_key}", description=f"a single {_key} recipient")


@vector
def r23_rsa1024_recipient(f: TestFile) -> None:
    """the file is sealed to a 1024-bit key and would open with it: the reader must refuse the key"""
    f.header["recipients"] = ["rsa1024-a"]
    f.keys = ["rsa1024-a"]
    f.seal()
    f.expect_error("R23")


@vector
def r23_weak_key_before_match(f: TestFile) -> None:
    """the reader is given a 1024-bit key, then a recipient's key: one key outside the policy is an
    error even when another would match"""
    f.keys = ["rsa1024-a", "rsa2048-a"]
    f.seal()
    f.expect_error("R23")


@vector
def r23_weak_key_after_match(f: TestFile) -> None:
    """the reader is given a recipient's key, then a 1024-bit key: every key is checked when loaded,
    not only the one that matches"""
    f.keys = ["rsa2048-a", "rsa1024-a"]
    f.seal()
    f.expect_error("R23")


@vector
def r23_rsa_pss_key(f: TestFile) -> None:
    """an RSA-PSS-restricted private key (id-RSASSA-PSS PKCS#8); the file is sealed to the
    rsaEncryption form of its public key, so a reader that ignored the restriction would open it"""
    f.header["recipients"] = ["rsa2048-pss"]
    f.keys = ["rsa2048-pss"]
    f.seal()
    f.expect_error("R23")


@vector
def r23_not_rsa(f: TestFile) -> None:
    """the reader is given an Ed25519 private key (a signing key) to open the file"""
    f.keys = ["ed25519-a"]
    f.seal()
    f.expect_error("R23")
