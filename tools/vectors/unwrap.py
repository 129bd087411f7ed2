"""Finding the reader's entry and unwrapping the data key (sections 4.1 and 6; rules R13-R16)."""

from __future__ import annotations

from .kit import FIRST_DRAFT_LABEL, TEXT, TestFile, commitment, seeded, vector


@vector
def r13_stranger(f: TestFile) -> None:
    """the reader's key is not a recipient"""
    f.keys = ["rsa2048-stranger"]
    f.seal(TEXT[:40])
    f.expect_error("R13")


@vector
def r13_only_unknown_types(f: TestFile) -> None:
    """the only entry is of an unknown type"""
    f.header["recipients"] = [{"type": "kms", "arn": "x"}]
    f.seal()
    f.expect_error("R13")


@vector
def r14_wrapped_key_short(f: TestFile) -> None:
    """a wrapped key one byte short of the modulus"""
    f.header["recipients"] = [f.entry("rsa2048-a", key=f.entry("rsa2048-a")["key"][:-1])]
    f.seal()
    f.expect_error("R14")


@vector
def r14_wrapped_key_long(f: TestFile) -> None:
    """a wrapped key one byte longer than the modulus (a zero byte in front)"""
    f.header["recipients"] = [f.entry("rsa2048-a", key=b"\0" + f.entry("rsa2048-a")["key"])]
    f.seal()
    f.expect_error("R14")


@vector
def r15_unwrap_fails(f: TestFile) -> None:
    """a wrapped key that is not an OAEP ciphertext for this key"""
    f.header["recipients"] = [f.entry("rsa2048-a", key=seeded(f.name, "junk", 255).rjust(256, b"\0"))]
    f.seal()
    f.expect_error("R15")


@vector
def r15_unwrapped_31_bytes(f: TestFile) -> None:
    """OAEP decrypts to 31 bytes"""
    f.header["recipients"] = [f.entry("rsa2048-a", key=f.kit.wrap("rsa2048-a", f.data_key[:31]))]
    f.seal()
    f.expect_error("R15")


@vector
def r15_wrong_label(f: TestFile) -> None:
    """wrapped with the first draft's OAEP label instead of the empty one"""
    f.header["recipients"] = [f.entry("rsa2048-a", key=f.kit.wrap("rsa2048-a", f.data_key, FIRST_DRAFT_LABEL))]
    f.seal()
    f.expect_error("R15")


@vector
def r15_no_fallback(f: TestFile) -> None:
    """the reader's first key matches an entry that does not unwrap; its second key would open the
    file: the reader must not fall back to it"""
    f.header["recipients"] = [f.entry("rsa2048-a", key=seeded(f.name, "junk", 255).rjust(256, b"\0")), "rsa2048-b"]
    f.keys = ["rsa2048-a", "rsa2048-b"]
    f.seal()
    f.expect_error("R15")


@vector
def r15_no_fallback_in_caller_order(f: TestFile) -> None:
    """as r15-no-fallback, with the good entry first in the header: the key used is the first the
    caller gave that matches an entry, not the key of the first entry"""
    f.header["recipients"] = ["rsa2048-b", f.entry("rsa2048-a", key=seeded(f.name, "junk", 255).rjust(256, b"\0"))]
    f.keys = ["rsa2048-a", "rsa2048-b"]
    f.seal()
    f.expect_error("R15")


@vector
def r16_no_fallback(f: TestFile) -> None:
    """the reader's first key unwraps a data key that is not the file's (the header MAC fails); its
    second key would open the file: the reader must not fall back to it"""
    other = f.kit.wrap("rsa2048-a", seeded(f.name, "other", 32))
    f.header["recipients"] = [f.entry("rsa2048-a", key=other), "rsa2048-b"]
    f.keys = ["rsa2048-a", "rsa2048-b"]
    f.seal()
    f.expect_error("R16")


@vector
def r16_mac_flipped(f: TestFile) -> None:
    """one bit of the header MAC flipped"""
    f.seal(TEXT[:40])
    f.flip(f.payload_start - 1)
    f.expect_error("R16")


@vector
def r16_mac_other_key(f: TestFile) -> None:
    """header MAC made under another data key"""
    f.write_header(mac_key=seeded(f.name, "other", 32))
    f.payload(b"x")
    f.expect_error("R16")


@vector
def r16_commit_other_key(f: TestFile) -> None:
    """the header's commit is that of another data key; the header MAC is valid under K"""
    f.header["commit"] = commitment(seeded(f.name, "other", 32))
    f.seal(TEXT[:40])
    f.expect_error("R16")


@vector
def r16_metadata_edited(f: TestFile) -> None:
    """metadata value changed after sealing"""
    f.header["meta"] = b"\x81\xa5stage\xa4prod"
    f.seal()
    f.replace(b"prod", b"test")
    f.expect_error("R16")


@vector
def r16_chunk_size_edited(f: TestFile) -> None:
    """chunk_size changed from 32 to 16 after sealing"""
    f.header["chunk_size"] = 32
    f.seal(TEXT[:40])
    f.replace(b"chunk_size\x20", b"chunk_size\x10")
    f.expect_error("R16")
