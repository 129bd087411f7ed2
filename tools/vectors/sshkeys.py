"""``ssh-ed25519`` recipients (section 4.3): OpenSSH Ed25519 keys converted to X25519; R39, R40 and
the rules shared with x25519 (R36, R37)."""

from __future__ import annotations

from .kit import SSH_BAD_KEY, TEXT, X25519_LABEL, TestFile, seeded, vector, x25519_wrap


@vector
def key_ssh_ed25519_a(f: TestFile) -> None:
    """a single ssh-ed25519 recipient; the reader holds its OpenSSH private key (keys/ssh-ed25519-a.openssh)"""
    f.header.update(chunk_size=128, recipients=["ssh-ed25519-a"])
    f.keys = ["ssh-ed25519-a"]
    f.seal(TEXT[:300])


@vector
def ssh_ed25519_age_test_key(f: TestFile) -> None:
    """sealed to the Ed25519 key of age's own tests (FiloSottile/age cmd/age/testdata/ed25519.txt),
    beside an x25519 and an rsa-oaep-sha256 entry"""
    f.header["recipients"] = ["rsa2048-a", "x25519-a", "ssh-ed25519-age"]
    f.keys = ["ssh-ed25519-age"]
    f.seal(TEXT[:40])


@vector
def r13_ssh_ed25519_stranger(f: TestFile) -> None:
    """the reader's Ed25519 key is not a recipient; an x25519 entry holds the same kind of share"""
    f.header["recipients"] = ["ssh-ed25519-a", "x25519-a"]
    f.keys = ["ssh-ed25519-b"]
    f.seal()
    f.expect_error("R13")


def _broken(f: TestFile, **change: object) -> None:
    f.header["recipients"] = [f.entry("ssh-ed25519-a", **change)]
    f.keys = ["ssh-ed25519-a"]
    f.seal()
    f.expect_error("R39")


@vector
def r39_ssh_ed25519_short_epk(f: TestFile) -> None:
    """an ssh-ed25519 entry whose epk is 31 bytes"""
    _broken(f, epk=f.entry("ssh-ed25519-a")["epk"][:31])


@vector
def r39_ssh_ed25519_key_not_bin(f: TestFile) -> None:
    """an ssh-ed25519 entry whose wrapped key is an integer"""
    _broken(f, key=7)


@vector
def r39_ssh_ed25519_duplicate_kid(f: TestFile) -> None:
    """two identical ssh-ed25519 entries"""
    f.header["recipients"] = [f.entry("ssh-ed25519-a"), f.entry("ssh-ed25519-a")]
    f.keys = ["ssh-ed25519-a"]
    f.seal()
    f.expect_error("R39")


@vector
def r36_ssh_ed25519_zero_shared_secret(f: TestFile) -> None:
    """an ssh-ed25519 entry whose epk is u = 0: the shared secret is all zero"""
    f.header["recipients"] = [f.entry("ssh-ed25519-a", epk=bytes(32))]
    f.keys = ["ssh-ed25519-a"]
    f.seal()
    f.expect_error("R36")


@vector
def r37_ssh_ed25519_x25519_label(f: TestFile) -> None:
    """the data key wrapped to the key's X25519 share with the x25519 label (section 4.2) instead of
    the ssh-ed25519 one: each kind opens under its own label only"""
    share = f.kit.keys.ssh_share("ssh-ed25519-a")
    epk, key = x25519_wrap(share, seeded(f.seed, "esk", 32), f.data_key, X25519_LABEL)
    f.header["recipients"] = [f.entry("ssh-ed25519-a", epk=epk, key=key)]
    f.keys = ["ssh-ed25519-a"]
    f.seal()
    f.expect_error("R37")


@vector
def r37_ssh_ed25519_tag_fails(f: TestFile) -> None:
    """the first byte of the wrapped key is flipped"""
    key = bytearray(f.entry("ssh-ed25519-a")["key"])
    key[0] ^= 0x80
    f.header["recipients"] = [f.entry("ssh-ed25519-a", key=bytes(key))]
    f.keys = ["ssh-ed25519-a"]
    f.seal()
    f.expect_error("R37")


@vector
def r40_ssh_ed25519_clear_public_key_differs(f: TestFile) -> None:
    """the reader's OpenSSH private key file shows ssh-ed25519-b's public key in the clear but holds
    ssh-ed25519-a's seed; the file is sealed to ssh-ed25519-b"""
    f.header["recipients"] = ["ssh-ed25519-b"]
    f.keys = [SSH_BAD_KEY]
    f.seal()
    f.expect_error("R40")
