"""Spec section 4.2: x25519 recipients in age's key encoding (R35-R38), and interoperability with
age's keys. The age side is pyrage (the Python binding of rage, an age implementation), not the
age binary, which cannot be installed here."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st
from remote_fixtures import need

import envelope
from envelope import _bech32
from envelope._datakey import HEADER_AUTH_FAILED, DataKey
from envelope._format import decode_header
from envelope._x25519 import X25519Identity, X25519Recipient


def age() -> Any:
    """pyrage, for the interoperability tests only (the others need nothing beyond the core)."""
    return need("pyrage")


def entries(sealed: bytes) -> list[dict[str, bytes]]:
    header = decode_header(sealed[13 : 13 + int.from_bytes(sealed[9:13], "big")])
    return [{"type": e.type, **e.fields} for e in header.recipients]


# --- the wrap, checked with cryptography's primitives -----------------------------------------------


def test_the_wrap_is_section_4_2():
    """Unwrap an entry the SDK wrote with X25519, HKDF-SHA256 and ChaCha20-Poly1305 directly."""
    identity = X25519Identity.generate()
    key = DataKey.generate()
    entry = identity.recipient().wrap(key)
    assert entry.type == "x25519" and list(entry.fields) == ["kid", "epk", "key"]
    share = identity.private_key.public_key().public_bytes_raw()
    spki = identity.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki == bytes.fromhex("302a300506032b656e032100") + share  # the DER the spec spells out
    assert entry.fields["kid"] == hashlib.sha256(spki).digest()
    epk = entry.fields["epk"]
    shared = identity.private_key.exchange(x25519.X25519PublicKey.from_public_bytes(epk))
    wrap_key = HKDF(hashes.SHA256(), 32, salt=epk + share, info=b"envelope v1 x25519").derive(shared)
    assert ChaCha20Poly1305(wrap_key).decrypt(bytes(12), entry.fields["key"], None) == key.raw()
    assert len(entry.fields["key"]) == 48


def test_each_wrap_has_its_own_ephemeral_key():
    recipient = X25519Identity.generate().recipient()
    key = DataKey.generate()
    assert recipient.wrap(key).fields["epk"] != recipient.wrap(key).fields["epk"]


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=3000), chunk=st.integers(16, 700))
def test_round_trip(data: bytes, chunk: int):
    identity = X25519Identity.generate()
    sealed = envelope.seal(data, identity.recipient().to_age(), chunk_size=chunk)
    assert envelope.open(sealed, identity) == data
    assert envelope.open(sealed, identity.to_age().encode()) == data


@pytest.mark.parametrize("high_bit", [False, True])
def test_a_recipient_that_is_not_canonical_is_refused_r38(high_bit: bool):
    """2^255 - 19 or more (the top bit set): X25519 computes with it, but the identity's own public
    key is canonical, so its key id would never match: no identity could open the file."""
    from envelope import _agekeys

    share = bytearray(X25519Identity.generate().recipient().public_key.public_bytes_raw())
    if high_bit:
        share[31] |= 0x80
    else:
        share = bytearray(b"\xed" + b"\xff" * 30 + b"\x7f")  # p itself
    with pytest.raises(envelope.InvalidKeyError, match="not a canonical X25519 key"):
        X25519Recipient(x25519.X25519PublicKey.from_public_bytes(bytes(share)))
    with pytest.raises(envelope.InvalidKeyError, match="not a canonical X25519 key"):
        envelope.seal(b"x", _agekeys.age_recipient(bytes(share)))
    hybrid = envelope.MlKem768X25519Identity.generate().recipient().public_key[:1184] + bytes(share)
    with pytest.raises(envelope.InvalidKeyError, match="X25519 part is not a canonical X25519 key"):
        envelope.MlKem768X25519Recipient(hybrid)


def test_a_small_order_recipient_is_refused_when_sealing():
    with pytest.raises(envelope.InvalidKeyError, match="small order"):
        envelope.seal(b"x", X25519Recipient(x25519.X25519PublicKey.from_public_bytes(bytes(32))))


@pytest.mark.parametrize("change", ["tag", "epk-zero", "other-key"])
def test_a_failed_unwrap_reads_exactly_like_a_header_mac_failure(change: str):
    """R36 and R37 give R16's error and message (section 4.2 rule 4)."""
    identity, other = X25519Identity.generate(), X25519Identity.generate()
    key = DataKey.generate()
    entry = identity.recipient().wrap(key)
    fields = dict(entry.fields)
    if change == "tag":
        fields["key"] = fields["key"][:-1] + bytes([fields["key"][-1] ^ 1])
    elif change == "epk-zero":
        fields["epk"] = bytes(32)
    else:
        fields.update({k: v for k, v in other.recipient().wrap(key).fields.items() if k != "kid"})
    got = identity.unwrap([type(entry)("x25519", fields)])
    assert got is not None and got.raw() != key.raw()  # a random key: the MAC check fails later
    sealed = bytearray(envelope.seal(b"x", identity.recipient()))
    at = sealed.index(entry_key := entries(bytes(sealed))[0]["key"])
    sealed[at + 47] ^= 1
    assert entry_key
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(bytes(sealed), identity)
    assert str(caught.value) == HEADER_AUTH_FAILED


def test_no_secret_in_repr():
    identity = X25519Identity.generate()
    secret = identity.to_age()
    assert secret not in repr(identity) and secret.lower() not in repr(identity)
    assert identity.key_id in repr(identity)


# --- age's key encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "A12UEL5L",
        "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    ],
)
def test_bech32_accepts_bip173_valid_strings(text: str):
    hrp, data = _bech32.decode(text, 90)
    assert _bech32.encode(hrp, data) == text.lower()


@pytest.mark.parametrize(
    "text",
    [
        "pzry9x0s0muk",  # no separator
        "1pzry9x0s0muk",  # empty human-readable part
        "x1b4n0q5v",  # b is not in the alphabet
        "li1dgmt3",  # checksum too short
        "A1G7SGD8",  # checksum computed over an upper-case human-readable part
        "10a06t8",  # empty human-readable part
        "1qzzfhee",  # the same
        "A12uEL5L",  # mixed case
        " 1nwldj5",  # a space
    ],
)
def test_bech32_refuses_bip173_invalid_strings(text: str):
    with pytest.raises(_bech32.Bech32Error):
        _bech32.decode(text, 90)


def test_bech32_bounds_the_length_before_decoding():
    with pytest.raises(_bech32.Bech32Error, match="too long"):
        _bech32.decode("a" * 91, 90)


@settings(max_examples=50)
@given(hrp=st.sampled_from(["age", "age-secret-key-", "age1pq"]), data=st.binary(max_size=64))
def test_bech32_round_trip(hrp: str, data: bytes):
    assert _bech32.decode(_bech32.encode(hrp, data), 2000) == (hrp, data)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.upper(),  # age recipients are lower case
        lambda t: t[:-1] + ("q" if t[-1] != "q" else "p"),  # checksum
        lambda t: t[:5] + t[5:].upper(),  # mixed case
        lambda t: _bech32.encode("age", bytes(31)),  # 31 bytes
        lambda t: _bech32.encode("agf", bytes(32)),  # another prefix
    ],
)
def test_age_recipient_text_is_checked_r38(mangle):
    text = X25519Identity.generate().recipient().to_age()
    with pytest.raises(envelope.InvalidKeyError):
        envelope.seal(b"x", mangle(text))


def test_identity_file_errors_name_the_line_and_never_the_key(tmp_path: Path):
    secret = X25519Identity.generate().to_age()
    path = tmp_path / "keys.txt"
    path.write_text(f"# comment\n\n{secret}\n{secret.lower()}\n")
    with pytest.raises(envelope.InvalidKeyError) as caught:
        envelope.open(envelope.seal(b"x", X25519Identity.generate().recipient()), path)
    assert "line 4" in str(caught.value) and str(path) in str(caught.value)
    assert secret not in str(caught.value) and secret.lower() not in str(caught.value)


@pytest.mark.parametrize("noise", ["{k}\f# hidden", "{k}\u2028{k}", "\u00a0{k}", "{k}\v", "{k}\x85"])
def test_an_identity_file_line_ends_at_lf_and_only_spaces_and_tabs_are_blank(tmp_path: Path, noise: str):
    """Section 4.2 (R38): other characters Python takes for line breaks or blanks make a line no
    key, as in the Node reference (a comment hidden after a form feed is not a comment)."""
    identity = X25519Identity.generate()
    sealed = envelope.seal(b"x", identity.recipient())
    path = tmp_path / "keys.txt"
    path.write_bytes(f"# c\r\n \t{identity.to_age()}\t \r\n".encode())
    assert envelope.open(sealed, path) == b"x"
    path.write_bytes(noise.format(k=identity.to_age()).encode())
    with pytest.raises(envelope.InvalidKeyError):
        envelope.open(sealed, path)


def test_an_identity_file_opens_with_any_of_its_keys(tmp_path: Path):
    a, b = X25519Identity.generate(), X25519Identity.generate()
    path = tmp_path / "keys.txt"
    path.write_text(f"# created: now\n# public key: {a.recipient().to_age()}\n{a.to_age()}\n\n{b.to_age()}\n")
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# team\n{b.recipient().to_age()}\n")
    sealed = envelope.seal(b"model", recipients)
    assert envelope.open(sealed, path) == b"model"
    assert [i.key_id for i in envelope.age_identities(path.read_bytes())] == [a.key_id, b.key_id]


def test_a_string_beginning_age1_is_key_text_and_other_strings_paths(tmp_path: Path):
    identity = X25519Identity.generate()
    named = tmp_path / identity.recipient().to_age()  # a file so named is given as a Path
    named.write_text(identity.recipient().to_age() + "\n")
    assert envelope.open(envelope.seal(b"x", named), identity) == b"x"
    with pytest.raises(envelope.InvalidKeyError):
        envelope.seal(b"x", str(tmp_path / "missing"))


def test_private_keys_are_not_recipients_and_public_keys_do_not_open():
    identity = X25519Identity.generate()
    with pytest.raises(envelope.UsageError):
        envelope.seal(b"x", identity.private_key)
    with pytest.raises(envelope.UsageError):
        envelope.open(envelope.seal(b"x", identity.recipient()), identity.private_key.public_key())


def test_key_objects_are_accepted():
    identity = X25519Identity.generate()
    sealed = envelope.seal(b"x", identity.private_key.public_key())
    assert envelope.open(sealed, identity.private_key) == b"x"


def test_x25519_and_rsa_recipients_in_one_file(alice):
    identity = X25519Identity.generate()
    sealed = envelope.seal(b"both", [alice.public_key(), identity.recipient()])
    assert envelope.open(sealed, identity) == b"both" and envelope.open(sealed, alice) == b"both"
    assert [r.type for r in envelope.inspect(sealed).recipients] == ["rsa-oaep-sha256", "x25519"]


def test_rewrap_to_an_x25519_recipient(alice):
    identity = X25519Identity.generate()
    sealed = envelope.seal(b"data", alice.public_key())
    rewrapped = envelope.rewrap(sealed, alice, add=[identity.recipient().to_age()])
    assert envelope.open(rewrapped, identity) == b"data"


# --- interoperability with age (pyrage) ----------------------------------------------------------------


def test_a_key_made_by_age_opens_a_file_sealed_to_its_recipient():
    pyrage = age()
    made_by_age = pyrage.x25519.Identity.generate()
    sealed = envelope.seal(b"weights", str(made_by_age.to_public()))
    assert envelope.open(sealed, str(made_by_age).encode()) == b"weights"


def test_age_reads_the_keys_envelope_writes():
    pyrage = age()
    identity = X25519Identity.generate()
    parsed = pyrage.x25519.Identity.from_str(identity.to_age())
    assert str(parsed.to_public()) == identity.recipient().to_age()
    # and the pair works in age itself: age encrypts to envelope's recipient, decrypts with its identity
    to_age = pyrage.x25519.Recipient.from_str(identity.recipient().to_age())
    assert pyrage.decrypt(pyrage.encrypt(b"age", [to_age]), [parsed]) == b"age"


def test_an_age_identity_file_as_age_keygen_writes_it(tmp_path: Path):
    pyrage = age()
    made_by_age = pyrage.x25519.Identity.generate()
    path = tmp_path / "key.txt"
    path.write_text(f"# created: 2026-12-07T10:00:00+01:00\n# public key: {made_by_age.to_public()}\n{made_by_age}\n")
    sealed = envelope.seal(b"x", str(made_by_age.to_public()))
    assert envelope.open(sealed, path) == b"x"


def test_an_age_stanza_does_not_open_as_an_entry():
    """Cross-protocol (section 4.2): the X25519 stanza age writes opens under age's label and not
    under envelope's, and its body has the wrong length for an entry (R35)."""
    pyrage = age()
    made_by_age = pyrage.x25519.Identity.generate()
    lines = pyrage.encrypt(b"x", [made_by_age.to_public()]).split(b"\n")
    stanza = next(line for line in lines if line.startswith(b"-> X25519 "))
    epk = base64.b64decode(stanza.split()[2] + b"==")
    body = base64.b64decode(lines[lines.index(stanza) + 1] + b"==")
    identity = envelope.age_identities(str(made_by_age).encode())[0]
    assert isinstance(identity, X25519Identity)
    share = identity.private_key.public_key().public_bytes_raw()
    shared = identity.private_key.exchange(x25519.X25519PublicKey.from_public_bytes(epk))

    def opened(label: bytes) -> bytes | None:
        wrap_key = HKDF(hashes.SHA256(), 32, salt=epk + share, info=label).derive(shared)
        try:
            return ChaCha20Poly1305(wrap_key).decrypt(bytes(12), body, None)
        except InvalidTag:
            return None

    assert len(opened(b"age-encryption.org/v1/X25519") or b"") == 16  # age's file key
    assert opened(b"envelope v1 x25519") is None
    assert len(body) == 32
    with pytest.raises(envelope.MalformedError):
        decode_header(
            msgpack.packb(
                {
                    "chunk_size": 16,
                    "recipients": [{"type": "x25519", "kid": bytes(32), "epk": epk, "key": body}],
                    "meta": b"\x80",
                    "commit": bytes(32),
                },
                use_bin_type=True,
            )
        )


def test_age_keys_through_the_envelope_filesystem(tmp_path: Path):
    """The envelope:: filesystem (and Dask, which shares its rules for keys on workers) takes age
    recipients and an age identity file's path; an identity object is not put in a task graph."""
    fsspec = pytest.importorskip("fsspec")
    import pickle

    from envelope.fsspec import EnvelopeFileSystem

    identity = X25519Identity.generate()
    key = tmp_path / "key.age"
    key.write_text(f"# a comment\n{identity.to_age()}\n")
    url = f"envelope::file://{tmp_path}/out.env"
    with fsspec.open(url, "wb", envelope={"recipients": [identity.recipient()]}) as f:
        f.write(b"weights" * 1000)
    with fsspec.open(url, "rb", envelope={"identity": str(key)}) as f:
        assert f.read() == b"weights" * 1000
    fs = pickle.loads(pickle.dumps(EnvelopeFileSystem(target_protocol="file", recipients=[identity.recipient()])))
    assert fs.storage_options["recipients"] == [identity.recipient().to_age()]  # travels as age1... text
    for holder in (identity, identity.private_key):
        with pytest.raises(envelope.UsageError, match="never pickled"):
            pickle.dumps(EnvelopeFileSystem(target_protocol="file", identity=holder))


@settings(max_examples=40)
@given(
    keys=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4),
    noise=st.lists(st.sampled_from(["", "   ", "# created: now", "  # indented", "#"]), max_size=6),
    data=st.data(),
)
def test_an_identity_file_is_its_keys_whatever_the_comments(keys: list[bytes], noise: list[str], data):
    """Any mix of blank and comment lines around the keys gives the keys, in file order."""
    lines = [_bech32.encode("age-secret-key-", key).upper() for key in keys]
    for line in noise:
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    found = envelope.age_identities("\n".join(lines).encode())
    assert [i.to_age() for i in found] == [_bech32.encode("age-secret-key-", k).upper() for k in keys]  # type: ignore[attr-defined]
