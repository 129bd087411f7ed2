"""Spec sections 4, 6 and 9: recipients, key ids, unwrapping, header MAC, rewrap; R13-R16."""

from __future__ import annotations

import hashlib
import io

import msgpack
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from forge import chunk_message, fernet_token, forge

import envelope
from envelope._datakey import HEADER_AUTH_FAILED, DataKey
from envelope._format import HEADER_MAC_LEN, PREFIX_LEN, Header, RecipientEntry, decode_header, encode_header
from envelope.recipients import RsaRecipient, as_identities


def test_key_id_is_sha256_of_spki_der(alice):
    der = alice.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert envelope.key_id(alice.public_key()) == hashlib.sha256(der).hexdigest()
    assert envelope.key_id(alice) == envelope.key_id(alice.public_key())


def test_every_recipient_opens_and_strangers_do_not(alice, bob, carol, stranger):
    sealed = envelope.seal(b"model", [alice.public_key(), bob.public_key(), carol.public_key()])
    for key in (alice, bob, carol):
        assert envelope.open(sealed, key) == b"model"
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(sealed, stranger)
    assert envelope.open(sealed, [stranger, carol]) == b"model"  # any of several keys
    kinds = [r.key_id for r in envelope.inspect(sealed).recipients]
    assert kinds == [envelope.key_id(k) for k in (alice, bob, carol)]


def test_wrapping_is_rsa_oaep_sha256_with_the_empty_label(alice):
    """Unwrap the entry with cryptography's OAEP directly: SHA-256, MGF1-SHA-256, no label (what
    AWS/GCP KMS and PKCS#11 tokens accept, section 4.1); the first draft's label does not unwrap it."""
    sealed = envelope.seal(b"x", alice.public_key())
    length = int.from_bytes(sealed[9:13], "big")
    top = msgpack.unpackb(sealed[13 : 13 + length], raw=False)
    wrapped = top["recipients"][0]["key"]
    assert len(wrapped) == 256
    assert len(alice.decrypt(wrapped, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))) == 32
    with pytest.raises(ValueError):
        alice.decrypt(
            wrapped, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), b"envelope v1 rsa-oaep-sha256")
        )


def test_data_key_is_fresh_per_file(alice):
    from envelope._header import read_and_unlock

    keys = {
        read_and_unlock(io.BytesIO(envelope.seal(b"x", alice.public_key())), alice).data_key.raw() for _ in range(5)
    }
    assert len(keys) == 5


def test_r14_wrapped_key_of_wrong_length(alice):
    data_key = DataKey.generate()
    good = envelope.RsaRecipient(alice.public_key()).wrap(data_key)
    for wrapped in (good.fields["key"][:-1], good.fields["key"] + b"\0", b""):
        entries = (RecipientEntry(good.type, {"kid": good.kid, "key": wrapped}),)
        header = encode_header(Header(16, entries, commit=data_key.commitment()))
        with pytest.raises(envelope.MalformedError, match="wrapped key length"):
            envelope.open(forge(alice, data_key, [], header=header), alice)


def test_r15_unwrap_failure_reads_exactly_like_r16(alice):
    """No padding oracle: an OAEP failure and a header MAC failure raise the same error, same text."""
    data_key = DataKey.generate()
    good = envelope.RsaRecipient(alice.public_key()).wrap(data_key)
    bad_wrap = bytes(256)
    entries = (RecipientEntry(good.type, {"kid": good.kid, "key": bad_wrap}),)
    header = encode_header(Header(16, entries, commit=data_key.commitment()))
    with pytest.raises(envelope.AuthenticationError) as oaep_failure:
        envelope.open(forge(alice, data_key, [], header=header), alice)
    sealed = bytearray(envelope.seal(b"x", alice.public_key()))
    sealed[envelope.inspect(bytes(sealed)).header_size - 1] ^= 1  # last byte of the header MAC
    with pytest.raises(envelope.AuthenticationError) as mac_failure:
        envelope.open(bytes(sealed), alice)
    assert str(oaep_failure.value) == str(mac_failure.value) == HEADER_AUTH_FAILED


def test_r15_takes_the_same_path_as_r16(alice, monkeypatch):
    """Not only the same error: after an OAEP failure the header MAC is still computed and compared
    (under a random key), so the two failures cost the same work (issue 11 item 11)."""
    calls = []
    real = DataKey.verify_header
    monkeypatch.setattr(DataKey, "verify_header", lambda self, a, c, m: calls.append(1) or real(self, a, c, m))
    data_key = DataKey.generate()
    good = envelope.RsaRecipient(alice.public_key()).wrap(data_key)
    entries = (RecipientEntry(good.type, {"kid": good.kid, "key": bytes(256)}),)
    header = encode_header(Header(16, entries, commit=data_key.commitment()))
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge(alice, data_key, [], header=header), alice)
    assert calls == [1]


def test_r15_unwrapped_key_of_wrong_length(alice):
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    data_key = DataKey.generate()
    wrapped = alice.public_key().encrypt(b"k" * 31, oaep)
    entries = (RecipientEntry("rsa-oaep-sha256", {"kid": bytes.fromhex(envelope.key_id(alice)), "key": wrapped}),)
    header = encode_header(Header(16, entries, commit=data_key.commitment()))
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge(alice, data_key, [], header=header), alice)


def test_r16_header_mac_under_another_key(alice):
    """A header whose MAC was made with a different data key than the wrapped one fails."""
    real, other = DataKey.generate(), DataKey.generate()
    entry = envelope.RsaRecipient(alice.public_key()).wrap(real)
    header = encode_header(Header(16, (entry,), commit=real.commitment()))
    token = fernet_token(real, chunk_message(0, True, b"x"))
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge(alice, other, [token], header=header), alice)


def test_r13_only_unknown_recipient_types(alice):
    data_key = DataKey.generate()
    header = encode_header(Header(16, (RecipientEntry("hardware-token", {"slot": 1}),), commit=data_key.commitment()))
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(forge(alice, data_key, [], header=header), alice)


# --- rewrap (section 9) ----------------------------------------------------------------------


def test_rewrap_adds_and_removes_without_touching_the_payload(alice, bob, carol):
    sealed = envelope.seal(b"weights" * 1000, alice.public_key(), metadata={"v": 1}, chunk_size=256)
    added = envelope.rewrap(sealed, alice, add=[bob.public_key(), carol.public_key()])
    for key in (alice, bob, carol):
        assert envelope.open_with_metadata(added, key) == (b"weights" * 1000, {"v": 1}, None)
    removed = envelope.rewrap(added, bob, remove=[envelope.key_id(alice)])
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(removed, alice)
    assert envelope.open(removed, carol) == b"weights" * 1000
    payloads = {s[envelope.inspect(s).header_size :] for s in (sealed, added, removed)}
    assert len(payloads) == 1


def _sealed_with_header(alice, bob, **header_fields):  # type: ignore[no-untyped-def]
    """A file for alice and bob whose header also holds ``header_fields`` (forged with the data key)."""
    data_key = DataKey.generate()
    entries = tuple(RsaRecipient(k.public_key()).wrap(data_key) for k in (alice, bob))
    extra = header_fields.pop("entries", ())
    header = encode_header(
        Header(chunk_size=16, recipients=entries + tuple(extra), commit=data_key.commitment(), **header_fields)
    )
    token = fernet_token(data_key, chunk_message(0, True, b"weights"))
    return forge(alice, data_key, [token], header=header)


def test_rewrap_remove_takes_every_entry_that_carries_the_key_id(alice, bob):
    """Issue 11, item 6: an entry of another type with alice's key id stayed, and the command said OK."""
    alice_kid = bytes.fromhex(envelope.key_id(alice))
    sealed = _sealed_with_header(alice, bob, entries=[RecipientEntry("hardware-token", {"kid": alice_kid, "slot": 1})])
    assert [r.type for r in envelope.inspect(sealed).recipients].count("hardware-token") == 1
    removed = envelope.rewrap(sealed, bob, remove=[envelope.key_id(alice)])
    assert [(r.type, r.key_id) for r in envelope.inspect(removed).recipients] == [
        ("rsa-oaep-sha256", envelope.key_id(bob))
    ]


def test_rewrap_keeps_unknown_top_level_keys(alice, bob, carol):
    """Issue 11, item 7: the slot FORMAT.md reserves for ignorable extensions survives a rewrap."""
    sealed = _sealed_with_header(alice, bob, extensions={"x-provenance": {"build": 7}})
    added = envelope.rewrap(sealed, alice, add=carol.public_key())
    header = decode_header(added[PREFIX_LEN : envelope.inspect(added).header_size - HEADER_MAC_LEN])
    assert header.extensions == {"x-provenance": {"build": 7}}
    assert envelope.open(added, carol) == b"weights"


@pytest.mark.parametrize(
    "make_kwargs, message",
    [
        (lambda key: {"remove": ["00" * 32]}, "not a recipient"),
        (lambda key: {"remove": ["xyz"]}, "key id"),
        (lambda key: {"add": key.public_key()}, "already a recipient"),
        (lambda key: {"remove": [envelope.key_id(key)]}, "nobody can open"),
    ],
)
def test_rewrap_refuses_mistakes(alice, make_kwargs, message):
    sealed = envelope.seal(b"x", alice.public_key())
    with pytest.raises(envelope.UsageError, match=message):
        envelope.rewrap(sealed, alice, **make_kwargs(alice))


def test_rewrap_needs_a_recipient_key(alice, stranger):
    sealed = envelope.seal(b"x", alice.public_key())
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.rewrap(sealed, stranger, add=stranger.public_key())


def test_many_recipients_up_to_the_limit_are_found_by_key_id(alice, bob):
    """1000 recipients: the reader looks its entry up by key id (no trial decryption)."""
    data_key = DataKey.generate()
    fillers = tuple(
        RecipientEntry("rsa-oaep-sha256", {"kid": i.to_bytes(32, "big"), "key": b"\0" * 256}) for i in range(999)
    )
    ours = envelope.RsaRecipient(bob.public_key()).wrap(data_key)
    header = encode_header(Header(16, (*fillers, ours), commit=data_key.commitment()))
    token = fernet_token(data_key, chunk_message(0, True, b"found"))
    assert envelope.open(forge(bob, data_key, [token], header=header), bob) == b"found"


# --- key files as identities: unlocked only when needed (issue 12 item 5) --------------------------


class Prompt:
    """A passphrase source that counts how often it is asked."""

    def __init__(self, answer: str) -> None:
        self.answer, self.asked = answer, 0

    def __call__(self) -> str:
        self.asked += 1
        return self.answer


@pytest.fixture
def key_files(alice, bob, tmp_path):
    """alice.key encrypted, without a .pub beside it (its key id is unknown until unlocked);
    bob.key not encrypted."""
    (tmp_path / "alice.key").write_bytes(envelope.private_key_pem(alice, "alice pass"))
    (tmp_path / "bob.key").write_bytes(envelope.private_key_pem(bob))
    return tmp_path


def test_a_passphrase_applies_to_encrypted_key_files_only(alice, bob, key_files):
    """`-i enc.key -i plain.key --passphrase-env V` failed: the passphrase was an error for the
    unencrypted key."""
    identities = [
        envelope.RsaKeyFileIdentity(key_files / "alice.key", "alice pass"),
        envelope.RsaKeyFileIdentity(key_files / "bob.key", "alice pass"),
    ]
    assert envelope.open(envelope.seal(b"to bob", bob.public_key()), identities) == b"to bob"
    assert envelope.open(envelope.seal(b"to alice", alice.public_key()), identities) == b"to alice"


def test_an_encrypted_key_is_unlocked_only_when_no_other_key_matched(alice, bob, key_files):
    """With no terminal, an encrypted first key blocked a plain one that would match."""
    prompt = Prompt("alice pass")
    locked = envelope.RsaKeyFileIdentity(key_files / "alice.key", prompt)
    plain = envelope.RsaKeyFileIdentity(key_files / "bob.key")
    assert locked.key_id is None and plain.key_id == envelope.key_id(bob)
    assert envelope.open(envelope.seal(b"to bob", bob.public_key()), [locked, plain]) == b"to bob"
    assert prompt.asked == 0 and not locked.unlocked
    sealed = envelope.seal(b"to alice", alice.public_key())
    assert envelope.open(sealed, [locked, plain]) == b"to alice"
    assert envelope.open(sealed, [locked, plain]) == b"to alice"
    assert prompt.asked == 1 and locked.unlocked and locked.key_id == envelope.key_id(alice)


def test_a_key_id_known_without_unlocking_means_no_passphrase_for_other_files(alice, bob, key_files):
    """A sibling PATH.pub (as envelope keygen writes it) gives the key id of an encrypted key."""
    (key_files / "alice.key.pub").write_bytes(envelope.public_key_pem(alice))
    prompt = Prompt("alice pass")
    locked = envelope.RsaKeyFileIdentity(key_files / "alice.key", prompt)
    assert locked.key_id == envelope.key_id(alice) and not locked.unlocked
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(envelope.seal(b"to bob", bob.public_key()), locked)
    assert prompt.asked == 0
    assert envelope.open(envelope.seal(b"to alice", alice.public_key()), locked) == b"to alice"
    assert prompt.asked == 1


def test_a_sibling_public_key_that_does_not_match_is_reported(alice, bob, key_files):
    (key_files / "alice.key.pub").write_bytes(envelope.public_key_pem(bob))
    locked = envelope.RsaKeyFileIdentity(key_files / "alice.key", "alice pass")
    with pytest.raises(envelope.InvalidKeyError, match=r"alice\.key\.pub does not hold the public key"):
        envelope.open(envelope.seal(b"to bob", bob.public_key()), locked)


def test_a_wrong_passphrase_is_asked_once_and_reported_with_the_file(alice, key_files):
    prompt = Prompt("guess")
    locked = envelope.RsaKeyFileIdentity(key_files / "alice.key", prompt)
    sealed = envelope.seal(b"x", alice.public_key())
    for _ in range(2):
        with pytest.raises(envelope.InvalidKeyError, match=r"alice\.key: wrong passphrase") as wrong:
            envelope.open(sealed, locked)
        assert "guess" not in str(wrong.value) and "guess" not in repr(locked)
    assert prompt.asked == 1
    with pytest.raises(envelope.InvalidKeyError, match=r"alice\.key: the private key is encrypted"):
        envelope.open(sealed, envelope.RsaKeyFileIdentity(key_files / "alice.key"))


def test_a_path_given_to_open_is_a_key_file_identity(alice, bob, key_files):
    """A str or PathLike identity is a key file: an encrypted one that is not needed is no error."""
    sealed = envelope.seal(b"to bob", bob.public_key())
    assert envelope.open(sealed, [str(key_files / "alice.key"), key_files / "bob.key"]) == b"to bob"
    identities = as_identities([str(key_files / "alice.key"), key_files / "bob.key"])
    assert [type(i).__name__ for i in identities] == ["RsaKeyFileIdentity", "RsaKeyFileIdentity"]
    assert [i.key_id for i in identities] == [envelope.key_id(bob), None]  # the unknown one goes last
    assert envelope.open(sealed, envelope.private_key_pem(bob)) == b"to bob"  # bytes are a key


def test_openssh_key_files_have_a_key_id_before_unlocking(alice, tmp_path):
    """An OpenSSH private key stores its public key in the clear."""
    locked_format = serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(1).build(b"pass")
    path = tmp_path / "id_rsa"
    path.write_bytes(
        alice.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, locked_format)
    )
    prompt = Prompt("pass")
    identity = envelope.RsaKeyFileIdentity(path, prompt)
    assert identity.key_id == envelope.key_id(alice) and prompt.asked == 0
    assert envelope.open(envelope.seal(b"x", alice.public_key()), identity) == b"x"
    assert prompt.asked == 1


def test_key_file_identity_errors_come_early_for_what_can_be_checked_early(alice, tmp_path):
    (tmp_path / "alice.pub").write_bytes(envelope.public_key_pem(alice))
    with pytest.raises(envelope.InvalidKeyError, match=r"alice\.pub: this is a public key"):
        envelope.RsaKeyFileIdentity(tmp_path / "alice.pub")
    with pytest.raises(envelope.InvalidKeyError, match="cannot read key file"):
        envelope.RsaKeyFileIdentity(tmp_path / "missing.key")
    (tmp_path / "junk.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(envelope.InvalidKeyError, match=r"junk\.key: not a valid private key"):
        envelope.RsaKeyFileIdentity(tmp_path / "junk.key", "unused passphrase")
