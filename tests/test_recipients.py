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
from envelope._format import Header, RecipientEntry, encode_header


def test_key_id_is_sha256_of_spki_der(alice):
    der = alice.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert envelope.key_id(alice.public_key()) == hashlib.sha256(der).digest()
    assert envelope.key_id(alice) == envelope.key_id(alice.public_key())


def test_every_recipient_opens_and_strangers_do_not(alice, bob, carol, stranger):
    sealed = envelope.seal(b"model", [alice.public_key(), bob.public_key(), carol.public_key()])
    for key in (alice, bob, carol):
        assert envelope.open(sealed, key) == b"model"
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(sealed, stranger)
    assert envelope.open(sealed, [stranger, carol]) == b"model"  # any of several keys
    kinds = [r.key_id for r in envelope.inspect(sealed).recipients]
    assert kinds == [envelope.key_id(k).hex() for k in (alice, bob, carol)]


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
        header = encode_header(Header(16, (RecipientEntry(good.type, {"kid": good.kid, "key": wrapped}),)))
        with pytest.raises(envelope.MalformedError, match="wrapped key length"):
            envelope.open(forge(alice, data_key, [], header=header), alice)


def test_r15_unwrap_failure_reads_exactly_like_r16(alice):
    """No padding oracle: an OAEP failure and a header MAC failure raise the same error, same text."""
    data_key = DataKey.generate()
    good = envelope.RsaRecipient(alice.public_key()).wrap(data_key)
    bad_wrap = bytes(256)
    header = encode_header(Header(16, (RecipientEntry(good.type, {"kid": good.kid, "key": bad_wrap}),)))
    with pytest.raises(envelope.AuthenticationError) as oaep_failure:
        envelope.open(forge(alice, data_key, [], header=header), alice)
    sealed = bytearray(envelope.seal(b"x", alice.public_key()))
    sealed[envelope.inspect(bytes(sealed)).header_size - 1] ^= 1  # last byte of the header MAC
    with pytest.raises(envelope.AuthenticationError) as mac_failure:
        envelope.open(bytes(sealed), alice)
    assert str(oaep_failure.value) == str(mac_failure.value) == HEADER_AUTH_FAILED


def test_r15_unwrapped_key_of_wrong_length(alice):
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), b"envelope v1 rsa-oaep-sha256")
    data_key = DataKey.generate()
    wrapped = alice.public_key().encrypt(b"k" * 31, oaep)
    header = encode_header(
        Header(16, (RecipientEntry("rsa-oaep-sha256", {"kid": envelope.key_id(alice), "key": wrapped}),))
    )
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge(alice, data_key, [], header=header), alice)


def test_r16_header_mac_under_another_key(alice):
    """A header whose MAC was made with a different data key than the wrapped one fails."""
    real, other = DataKey.generate(), DataKey.generate()
    entry = envelope.RsaRecipient(alice.public_key()).wrap(real)
    header = encode_header(Header(16, (entry,)))
    token = fernet_token(real, chunk_message(0, True, b"x"))
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge(alice, other, [token], header=header), alice)


def test_r13_only_unknown_recipient_types(alice):
    data_key = DataKey.generate()
    header = encode_header(Header(16, (RecipientEntry("hardware-token", {"slot": 1}),)))
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(forge(alice, data_key, [], header=header), alice)


# --- rewrap (section 9) ----------------------------------------------------------------------


def test_rewrap_adds_and_removes_without_touching_the_payload(alice, bob, carol):
    sealed = envelope.seal(b"weights" * 1000, alice.public_key(), metadata={"v": 1}, chunk_size=256)
    added = envelope.rewrap(sealed, alice, add=[bob.public_key(), carol.public_key()])
    for key in (alice, bob, carol):
        assert envelope.open_with_metadata(added, key) == (b"weights" * 1000, {"v": 1}, None)
    removed = envelope.rewrap(added, bob, remove=[envelope.key_id(alice).hex()])
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(removed, alice)
    assert envelope.open(removed, carol) == b"weights" * 1000
    payloads = {s[envelope.inspect(s).header_size :] for s in (sealed, added, removed)}
    assert len(payloads) == 1


@pytest.mark.parametrize(
    "make_kwargs, message",
    [
        (lambda key: {"remove": ["00" * 32]}, "not a recipient"),
        (lambda key: {"remove": ["xyz"]}, "key id"),
        (lambda key: {"add": key.public_key()}, "already a recipient"),
        (lambda key: {"remove": [envelope.key_id(key).hex()]}, "nobody can open"),
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
    header = encode_header(Header(16, (*fillers, ours)))
    token = fernet_token(data_key, chunk_message(0, True, b"found"))
    assert envelope.open(forge(bob, data_key, [token], header=header), bob) == b"found"
