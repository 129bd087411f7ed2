"""``mlkem768x25519`` recipients (section 4.4): age 1.3's ML-KEM-768 + X25519 keys; R41 and the
rules shared with x25519 (R36, R37). ML-KEM ciphertexts are recorded in mlkem-encaps.json."""

from __future__ import annotations

from .kit import TEXT, TestFile, vector


@vector
def key_mlkem768x25519_a(f: TestFile) -> None:
    """a single mlkem768x25519 recipient; the reader holds its age identity file (AGE-SECRET-KEY-PQ-1)"""
    f.header.update(chunk_size=128, recipients=["mlkem768x25519-a"])
    f.keys = ["mlkem768x25519-a"]
    f.seal(TEXT[:300])


@vector
def mlkem768x25519_age_test_key(f: TestFile) -> None:
    """sealed to the hybrid key of age's own tests (FiloSottile/age cmd/age/testdata/hybrid.txt) and
    to mlkem768x25519-b; the reader holds age's identity file"""
    f.header["recipients"] = ["mlkem768x25519-b", "mlkem768x25519-age"]
    f.keys = ["mlkem768x25519-age"]
    f.seal(TEXT[:64])


@vector
def r13_mlkem768x25519_stranger(f: TestFile) -> None:
    """the reader's hybrid key is not a recipient"""
    f.header["recipients"] = ["mlkem768x25519-a"]
    f.keys = ["mlkem768x25519-b"]
    f.seal()
    f.expect_error("R13")


def _broken(f: TestFile, **change: object) -> None:
    f.header["recipients"] = [f.entry("mlkem768x25519-a", **change)]
    f.keys = ["mlkem768x25519-a"]
    f.seal()
    f.expect_error("R41")


@vector
def r41_mlkem768x25519_short_enc(f: TestFile) -> None:
    """an mlkem768x25519 entry whose enc is 1119 bytes"""
    _broken(f, enc=f.entry("mlkem768x25519-a")["enc"][:1119])


@vector
def r41_mlkem768x25519_key_49_bytes(f: TestFile) -> None:
    """an mlkem768x25519 entry whose wrapped key is 49 bytes"""
    _broken(f, key=f.entry("mlkem768x25519-a")["key"] + b"\0")


@vector
def r41_mlkem768x25519_duplicate_kid(f: TestFile) -> None:
    """two identical mlkem768x25519 entries"""
    f.header["recipients"] = [f.entry("mlkem768x25519-a"), f.entry("mlkem768x25519-a")]
    f.keys = ["mlkem768x25519-a"]
    f.seal()
    f.expect_error("R41")


@vector
def r36_mlkem768x25519_zero_x25519_share(f: TestFile) -> None:
    """the X25519 half of enc is u = 0: the X25519 shared secret is all zero"""
    enc = f.entry("mlkem768x25519-a")["enc"]
    _zero = enc[:1088] + bytes(32)
    f.header["recipients"] = [f.entry("mlkem768x25519-a", enc=_zero)]
    f.keys = ["mlkem768x25519-a"]
    f.seal()
    f.expect_error("R36")


@vector
def r37_mlkem768x25519_ml_kem_ciphertext_changed(f: TestFile) -> None:
    """one bit of the ML-KEM ciphertext flipped: decapsulation gives another secret (implicit
    rejection), so the wrap does not open"""
    enc = bytearray(f.entry("mlkem768x25519-a")["enc"])
    enc[100] ^= 1
    f.header["recipients"] = [f.entry("mlkem768x25519-a", enc=bytes(enc))]
    f.keys = ["mlkem768x25519-a"]
    f.seal()
    f.expect_error("R37")


@vector
def r37_mlkem768x25519_x25519_ciphertext_changed(f: TestFile) -> None:
    """one bit of the X25519 half of enc flipped: the combined secret differs, the wrap does not open"""
    enc = bytearray(f.entry("mlkem768x25519-a")["enc"])
    enc[1100] ^= 2
    f.header["recipients"] = [f.entry("mlkem768x25519-a", enc=bytes(enc))]
    f.keys = ["mlkem768x25519-a"]
    f.seal()
    f.expect_error("R37")
