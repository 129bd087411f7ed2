"""``x25519`` recipients (section 4.2): age's X25519 keys and encoding; rules R35-R38."""

from __future__ import annotations

from .kit import AGE_X25519_LABEL, TEXT, TestFile, seeded, vector, x25519_wrap


@vector
def key_x25519_a(f: TestFile) -> None:
    """a single x25519 recipient; the reader holds its age identity file (keys/x25519-a.age)"""
    f.header.update(chunk_size=128, recipients=["x25519-a"])
    f.keys = ["x25519-a"]
    f.seal(TEXT[:300])


@vector
def x25519_among_rsa(f: TestFile) -> None:
    """an rsa-oaep-sha256 entry, then two x25519 entries; the reader holds the second x25519 key"""
    f.header["recipients"] = ["rsa2048-a", "x25519-a", "x25519-b"]
    f.keys = ["x25519-b"]
    f.seal(TEXT[:100])


@vector
def x25519_identity_file_with_several_keys(f: TestFile) -> None:
    """the reader's age identity file holds two keys among comments and blank lines; the second
    matches the file's only entry"""
    f.header["recipients"] = ["x25519-a"]
    f.keys = ["x25519-several"]
    f.seal(TEXT[:50])


@vector
def r13_x25519_stranger(f: TestFile) -> None:
    """the reader's X25519 key is not a recipient (the file has an x25519 entry for another key)"""
    f.header["recipients"] = ["x25519-a"]
    f.keys = ["x25519-stranger"]
    f.seal()
    f.expect_error("R13")


@vector
def x25519_unknown_keys_ignored(f: TestFile) -> None:
    """an x25519 entry with an extra key, which readers ignore"""
    f.header["recipients"] = [{**f.entry("x25519-a"), "note": "ignored"}]
    f.keys = ["x25519-a"]
    f.seal(TEXT[:20])


def _broken(f: TestFile, **change: object) -> None:
    f.header["recipients"] = [f.entry("x25519-a", **change)]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R35")


@vector
def r35_x25519_short_epk(f: TestFile) -> None:
    """an x25519 entry whose epk is 31 bytes"""
    _broken(f, epk=f.entry("x25519-a")["epk"][:31])


@vector
def r35_x25519_key_47_bytes(f: TestFile) -> None:
    """an x25519 entry whose wrapped key is 47 bytes"""
    _broken(f, key=f.entry("x25519-a")["key"][:47])


@vector
def r35_x25519_kid_not_bin(f: TestFile) -> None:
    """an x25519 entry whose kid is a str"""
    _broken(f, kid="0" * 32)


@vector
def r35_x25519_no_epk(f: TestFile) -> None:
    """an x25519 entry without epk"""
    entry = f.entry("x25519-a")
    del entry["epk"]
    f.header["recipients"] = [entry]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R35")


@vector
def r35_x25519_duplicate_kid(f: TestFile) -> None:
    """two x25519 entries with the same kid (both valid wraps of K)"""
    f.header["recipients"] = [f.entry("x25519-a"), f.entry("x25519-a", epk=f.entry("x25519-a")["epk"])]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R35")


@vector
def r36_x25519_zero_shared_secret(f: TestFile) -> None:
    """epk is a point of small order (u = 0): the shared secret is all zero whatever the key"""
    f.header["recipients"] = [f.entry("x25519-a", epk=bytes(32))]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R36")


@vector
def r36_x25519_zero_shared_secret_u1(f: TestFile) -> None:
    """epk is u = 1, of small order: the shared secret is all zero"""
    f.header["recipients"] = [f.entry("x25519-a", epk=(1).to_bytes(32, "little"))]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R36")


@vector
def r37_x25519_tag_fails(f: TestFile) -> None:
    """the last byte of the wrapped key's tag is flipped"""
    key = bytearray(f.entry("x25519-a")["key"])
    key[-1] ^= 1
    f.header["recipients"] = [f.entry("x25519-a", key=bytes(key))]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R37")


@vector
def r37_x25519_wrapped_by_another_key(f: TestFile) -> None:
    """the entry carries x25519-a's kid but the data key is wrapped to x25519-b"""
    f.header["recipients"] = [
        f.entry("x25519-a", **{k: v for k, v in f.entry("x25519-b").items() if k in ("epk", "key")})
    ]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R37")


@vector
def r37_x25519_age_label(f: TestFile) -> None:
    """the data key wrapped with age's HKDF label (age-encryption.org/v1/X25519) instead of
    envelope's: a wrap of one protocol does not open in the other (section 4.2)"""
    share = f.kit.keys.x25519_share("x25519-a")
    epk, key = x25519_wrap(share, seeded(f.seed, "esk", 32), f.data_key, AGE_X25519_LABEL)
    f.header["recipients"] = [f.entry("x25519-a", epk=epk, key=key)]
    f.keys = ["x25519-a"]
    f.seal()
    f.expect_error("R37")


def _bad_key_file(name: str, description: str) -> None:
    def make(f: TestFile) -> None:
        f.header["recipients"] = ["x25519-a"]
        f.keys = [f"x25519-bad-{name}"]
        f.seal()
        f.expect_error("R38")

    vector(make, name=f"r38-x25519-{name}", description=description)


for _name, _description in {
    "checksum": "the reader's identity file: one Bech32 character changed, so the checksum fails",
    "mixed-case": "the reader's identity file: the secret key's last 8 characters in lower case",
    "lower-case": "the reader's identity file: the secret key in lower case (valid Bech32, not age's form)",
    "short": "the reader's identity file: a valid Bech32 secret key of 31 bytes",
    "prefix": "the reader's identity file: a Bech32 string with another human-readable part",
    "line": "the reader's identity file: a valid key, then a line that is neither a key nor a comment",
    "form-feed": "the reader's identity file: a valid key and, after a form feed on the same line, a comment: "
    "lines end at LF only, so the line is neither a key nor a comment",
}.items():
    _bad_key_file(_name, _description)
