"""Spec section 8: sender signatures. Every open path checks them, every rule (R24-R28) is enforced."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from forge import chunk_message, fernet_token
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope
from envelope._datakey import DataKey
from envelope._format import (
    Header,
    decode_header,
    encode_header,
    encode_metadata,
    encode_prefix,
    read_header,
    signed_header,
)
from envelope._header import read_and_unlock
from envelope.signing import ALGORITHMS, to_be_signed

DATA = bytes(range(256)) * 40  # 10240 bytes: 10 full chunks of 1000 and a final one


@pytest.fixture(scope="module", params=ALGORITHMS)
def signer(request):  # type: ignore[no-untyped-def]
    return envelope.generate_signing_key(request.param)


@pytest.fixture(scope="module")
def other_signer():  # type: ignore[no-untyped-def]
    return envelope.generate_signing_key()


def seal_signed(alice, signer, data: bytes = DATA, **options) -> bytes:  # type: ignore[no-untyped-def]
    return envelope.seal(data, alice.public_key(), sign_with=signer, chunk_size=1000, **options)


def open_every_way(sealed: bytes, key, tmp_path, **options) -> list[tuple[bytes, object]]:  # type: ignore[no-untyped-def]
    """(plaintext, signer) from every open path of the SDK."""
    results = []
    opened = envelope.open_with_metadata(sealed, key, **options)
    results.append((opened.plaintext, opened.signer))
    out = io.BytesIO()
    streamed = envelope.open_stream(io.BytesIO(sealed), out, key, **options)
    results.append((out.getvalue(), streamed.signer))
    path = tmp_path / f"in-{hashlib.sha256(sealed).hexdigest()[:8]}.env"
    path.write_bytes(sealed)
    output = tmp_path / f"out-{os.urandom(4).hex()}"
    from_file = envelope.open_file(path, output, key, **options)
    results.append((output.read_bytes(), from_file.signer))
    verified = envelope.verify_file(path, key, **options)
    results.append((None, verified.signer))
    with envelope.EnvelopeReader(io.BytesIO(sealed), key, **options) as reader:
        results.append((reader.read(), reader.signer))
    with envelope.EnvelopeStreamReader(io.BytesIO(sealed), key, **options) as reader:
        data = reader.read()
        results.append((data, reader.signer))
    return results


def test_every_algorithm_round_trips_and_names_its_signer(alice, signer, tmp_path):
    sealed = seal_signed(alice, signer)
    key_id = hashlib.sha256(_spki(signer)).hexdigest()
    for plaintext, info in open_every_way(sealed, alice, tmp_path):
        assert plaintext in (None, DATA)
        assert info is not None and info.verified and info.key_id == key_id
    info = envelope.inspect(sealed).signer
    assert info is not None and not info.verified and info.key_id == key_id


def _spki(signer) -> bytes:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    public = signer.public_key() if hasattr(signer, "public_key") else signer
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_every_sealing_path_writes_the_same_layout(alice, signer, tmp_path):
    """seal, seal_stream, seal_file and EnvelopeWriter all write signed files every path opens."""
    source = tmp_path / "plain.bin"
    source.write_bytes(DATA)
    files = [seal_signed(alice, signer)]
    out = io.BytesIO()
    envelope.seal_stream(io.BytesIO(DATA), out, alice.public_key(), sign_with=signer, chunk_size=1000)
    files.append(out.getvalue())
    envelope.seal_file(source, tmp_path / "sealed.env", alice.public_key(), sign_with=signer, chunk_size=1000)
    files.append((tmp_path / "sealed.env").read_bytes())
    written = io.BytesIO()
    with envelope.EnvelopeWriter(written, alice.public_key(), sign_with=signer, chunk_size=1000) as writer:
        writer.write(DATA[:5000])
        writer.write(DATA[5000:])
    files.append(written.getvalue())
    assert len({len(f) for f in files}) == 1  # same header length and payload layout
    for sealed in files:
        assert envelope.open(sealed, alice, signed_by=signer.public_key()) == DATA


def test_signed_by_pins_the_signer(alice, signer, other_signer, tmp_path):
    sealed = seal_signed(alice, signer)
    unsigned = envelope.seal(DATA, alice.public_key(), chunk_size=1000)
    public = signer.public_key()
    assert envelope.open(sealed, alice, signed_by=public) == DATA
    assert envelope.open(sealed, alice, signed_by=[other_signer.public_key(), public]) == DATA
    with pytest.raises(envelope.SignerError, match="not among"):
        envelope.open(sealed, alice, signed_by=other_signer.public_key())
    with pytest.raises(envelope.SignerError, match="not signed"):
        envelope.open(unsigned, alice, signed_by=public)
    # A key file's path, a SignerInfo: the same pin.
    pub_path = tmp_path / "signer.pub"
    pub_path.write_bytes(envelope.verifying_key_pem(signer))
    assert envelope.open(sealed, alice, signed_by=str(pub_path)) == DATA
    assert envelope.open(sealed, alice, signed_by=envelope.inspect(sealed).signer) == DATA


def test_the_signer_policy_is_applied_on_every_path_before_any_key_work(alice, signer, other_signer, tmp_path):
    sealed = seal_signed(alice, signer)
    with pytest.raises(envelope.SignerError):
        open_every_way(sealed, alice, tmp_path, signed_by=other_signer.public_key())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("out-")]  # no output appeared
    # R28 comes before R13: a stranger's key is never even tried.
    with pytest.raises(envelope.SignerError):
        envelope.open(sealed, envelope.generate_private_key(2048), signed_by=other_signer.public_key())


def test_unsigned_files_open_without_a_signer(alice, tmp_path):
    unsigned = envelope.seal(DATA, alice.public_key(), chunk_size=1000)
    for plaintext, info in open_every_way(unsigned, alice, tmp_path):
        assert plaintext in (None, DATA) and info is None
    assert envelope.inspect(unsigned).signer is None


def test_signed_by_empty_is_a_usage_error(alice, signer):
    with pytest.raises(envelope.UsageError):
        envelope.open(seal_signed(alice, signer), alice, signed_by=[])


# --- tampering: R26, R27 ---------------------------------------------------------------------------


def payload_start(sealed: bytes) -> int:
    return envelope.inspect(sealed).header_size


def every_reader_refuses(sealed: bytes, key, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        envelope.open(sealed, key)
    with pytest.raises(error):
        envelope.open_stream(io.BytesIO(sealed), io.BytesIO(), key)
    with pytest.raises(error):
        envelope.EnvelopeReader(io.BytesIO(sealed), key).read()
    with pytest.raises(error):
        envelope.EnvelopeStreamReader(io.BytesIO(sealed), key).read()


def test_r27_a_flipped_footer_byte_anywhere_is_refused(alice, signer):
    sealed = seal_signed(alice, signer, DATA[:2500])
    info = envelope.inspect(sealed)
    footer_start = len(sealed) - info.footer_size
    for position in range(footer_start, len(sealed), max(1, info.footer_size // 40)):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        every_reader_refuses(bytes(tampered), alice, envelope.SignatureError)


@pytest.mark.parametrize("cut", [1, 32, 64])
def test_r26_a_truncated_or_extended_footer_is_refused(alice, signer, cut):
    sealed = seal_signed(alice, signer, DATA[:2500])
    every_reader_refuses(sealed[:-cut], alice, envelope.AuthenticationError)
    every_reader_refuses(sealed + b"\0" * cut, alice, envelope.AuthenticationError)


def forge_signed(alice, signer, chunks: list[bytes], header_change=None) -> tuple[bytes, DataKey]:  # type: ignore[no-untyped-def]
    """A signed file built by hand: what a recipient (who knows K) could make. Returns it and K."""
    template = seal_signed(alice, signer, b"x")
    _, header, _ = read_header(io.BytesIO(template))
    data_key = read_and_unlock(io.BytesIO(template), alice).data_key
    if header_change is not None:
        header = header_change(header)
    tokens = [fernet_token(data_key, chunk_message(i, i == len(chunks) - 1, chunk)) for i, chunk in enumerate(chunks)]
    encoded = encode_header(header)
    authenticated = encode_prefix(len(encoded)) + encoded
    body = authenticated + data_key.header_mac(authenticated) + b"".join(tokens)
    if header.signer is None:
        return body, data_key
    tags = b"".join(t[-32:] for t in tokens)
    message = to_be_signed(signed_header(encoded), len(tokens), hashlib.sha256(tags).digest())
    signature = envelope.KeySigner(signer).sign(message)
    return body + tags + signature, data_key


def test_a_forged_file_with_a_valid_signature_opens(alice, signer):
    """The forge builds what the spec describes: the control case of the tests below."""
    chunks = [b"a" * 16, b"b" * 5]
    template_header = read_header(io.BytesIO(seal_signed(alice, signer, b"x")))[1]
    sealed, _ = forge_signed(alice, signer, chunks, lambda h: dataclasses.replace(h, chunk_size=16))
    assert envelope.open(sealed, alice, signed_by=signer.public_key()) == b"a" * 16 + b"b" * 5
    assert template_header.signer is not None


def test_an_insiders_substituted_chunk_is_refused_even_by_random_access(alice, signer):
    """A recipient knows K and can make a token that passes the HMAC; its tag is not the signed one.
    The random-access reader catches it on the chunk it reads, without reading the others."""
    sealed = seal_signed(alice, signer)
    info = envelope.inspect(sealed)
    data_key = read_and_unlock(io.BytesIO(sealed), alice).data_key
    start = info.header_size + 3 * info.token_size
    substitute = fernet_token(data_key, chunk_message(3, False, b"E" * 1000))
    tampered = sealed[:start] + substitute + sealed[start + info.token_size :]
    reader = envelope.EnvelopeReader(io.BytesIO(tampered), alice)  # footer and final chunk: fine
    reader.seek(500)
    assert reader.read(500) == DATA[500:1000]  # chunk 0 is the signer's
    reader.seek(3000)
    with pytest.raises(envelope.SignatureError):
        reader.read(10)
    every_reader_refuses(tampered, alice, envelope.SignatureError)


def test_an_insiders_rewritten_metadata_is_refused(alice, signer):
    """A recipient knows K, so it can rewrite the header and make its MAC valid again, keeping every
    token and the footer: the signature, which covers the metadata, is what refuses it."""
    sealed = seal_signed(alice, signer, metadata={"stage": "prod", "approved": True})
    info = envelope.inspect(sealed)
    data_key = read_and_unlock(io.BytesIO(sealed), alice).data_key
    header = read_header(io.BytesIO(sealed))[1]
    changed = dataclasses.replace(header, meta=encode_metadata({"stage": "prod", "approved": False}))
    encoded = encode_header(changed)
    authenticated = encode_prefix(len(encoded)) + encoded
    tampered = authenticated + data_key.header_mac(authenticated) + sealed[info.header_size :]
    assert envelope.inspect(tampered).unverified_metadata == {"stage": "prod", "approved": False}
    every_reader_refuses(tampered, alice, envelope.SignatureError)
    with pytest.raises(envelope.SignatureError):
        envelope.check_signature(tampered, signed_by=signer.public_key())


def test_r24_critical_stripped_or_signer_without_critical(alice, signer):
    for change in (
        lambda h: dataclasses.replace(h, critical=()),  # signer left, critical stripped
        lambda h: dataclasses.replace(h, signer=None),  # critical left, signer stripped
    ):
        sealed, _ = forge_signed(alice, signer, [b"tiny"], change)
        with pytest.raises(envelope.MalformedError):
            envelope.open(sealed, alice)
        with pytest.raises(envelope.MalformedError):
            envelope.inspect(sealed)


def test_r24_signer_kid_must_hash_its_key(alice, signer, other_signer):
    def swap_key(h: Header) -> Header:
        assert h.signer is not None
        return dataclasses.replace(h, signer=dataclasses.replace(h.signer, key=_spki(other_signer)))

    sealed, _ = forge_signed(alice, signer, [b"tiny"], swap_key)
    with pytest.raises(envelope.MalformedError, match="key id"):
        envelope.open(sealed, alice)


def test_r25_unknown_signature_algorithm_is_unsupported(alice, signer):
    def rename(h: Header) -> Header:
        assert h.signer is not None
        return dataclasses.replace(h, signer=dataclasses.replace(h.signer, alg="sphincs"))

    with pytest.raises(envelope.UnsupportedError):
        decode_header(encode_header(rename(read_header(io.BytesIO(seal_signed(alice, signer, b"x")))[1])))


def test_a_stripped_signature_is_an_unsigned_file_which_pinning_refuses(alice, signer):
    """An insider can remove the signature entirely (header without signer, no footer): the file is
    then unsigned, which an opener that pins its signer refuses (R28)."""
    sealed, _ = forge_signed(alice, signer, [b"weights"], lambda h: dataclasses.replace(h, critical=(), signer=None))
    assert envelope.open_with_metadata(sealed, alice).signer is None
    with pytest.raises(envelope.SignerError):
        envelope.open(sealed, alice, signed_by=signer.public_key())


def test_ecdsa_signatures_are_low_s_and_high_s_is_refused(alice):
    """Section 8.2: ECDSA is malleable (s and n-s both verify); only low s is accepted."""
    signer = envelope.generate_signing_key("ecdsa-p256-sha256")
    sealed = seal_signed(alice, signer, b"abc")
    signature = sealed[-64:]
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    assert s <= order // 2
    flipped = sealed[:-64] + r.to_bytes(32, "big") + (order - s).to_bytes(32, "big")
    with pytest.raises(envelope.SignatureError):
        envelope.open(flipped, alice)


def test_rewrap_keeps_the_signature_valid(alice, bob, signer):
    sealed = seal_signed(alice, signer)
    added = envelope.rewrap(sealed, alice, add=bob.public_key())
    assert envelope.open(added, bob, signed_by=signer.public_key()) == DATA
    removed = envelope.rewrap(added, bob, remove=[envelope.inspect(added).recipients[0].key_id])
    assert [r.key_id for r in envelope.inspect(removed).recipients] == [envelope.key_id(bob)]
    assert envelope.check_signature(removed).key_id == envelope.inspect(sealed).signer.key_id  # type: ignore[union-attr]


# --- checking without a private key ----------------------------------------------------------------


def test_check_signature_without_a_private_key(alice, signer, other_signer, tmp_path):
    sealed = seal_signed(alice, signer)
    path = tmp_path / "signed.env"
    path.write_bytes(sealed)
    for source in (sealed, str(path), path, io.BytesIO(sealed)):
        assert envelope.check_signature(source, signed_by=signer.public_key()).verified
    with pytest.raises(envelope.SignerError):
        envelope.check_signature(sealed, signed_by=other_signer.public_key())
    with pytest.raises(envelope.SignerError, match="not signed"):
        envelope.check_signature(envelope.seal(b"x", alice.public_key()))
    info = envelope.inspect(sealed)
    token_tag = info.header_size + info.token_size - 1  # the last byte of token 0's tag
    tampered = bytearray(sealed)
    tampered[token_tag] ^= 1
    with pytest.raises(envelope.SignatureError):
        envelope.check_signature(bytes(tampered))


# --- signers kept elsewhere (KMS, HSM) -------------------------------------------------------------


class RemoteSigner:
    """What a KMS-backed signer looks like to the SDK: an algorithm, a public key, a sign call."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.algorithm = "ecdsa-p256-sha256"
        self.public_key_der = _spki(self._key)
        self.calls = 0

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        return envelope.KeySigner(self._key).sign(message)


def test_a_signer_kept_elsewhere_signs_through_the_protocol(alice):
    remote = RemoteSigner()
    sealed = envelope.seal(b"model", alice.public_key(), sign_with=remote)
    assert remote.calls == 1
    assert envelope.open_with_metadata(sealed, alice).signer.key_id == hashlib.sha256(remote.public_key_der).hexdigest()  # type: ignore[union-attr]


def test_a_signer_returning_the_wrong_length_is_refused(alice):
    remote = RemoteSigner()
    remote.sign = lambda message: b"\0" * 70  # type: ignore[method-assign]
    with pytest.raises(envelope.ExternalKeyError, match="70 bytes"):  # a faulty KMS or HSM signer
        envelope.seal(b"model", alice.public_key(), sign_with=remote)


def test_an_rsa_key_file_given_as_a_signer_names_the_loader_of_rsa_keys(alice, tmp_path):
    """load_signing_key / load_verifying_key on an RSA key file: an InvalidKeyError that says RSA
    keys are for recipients and which function reads them (a typed refusal, not a message match)."""
    envelope.save_private_key(tmp_path / "alice.key", alice)
    envelope.save_public_key(tmp_path / "alice.pub", alice.public_key())
    with pytest.raises(envelope.InvalidKeyError, match=r"RSA keys are for recipients.*load_private_key reads them"):
        envelope.load_signing_key(tmp_path / "alice.key")
    with pytest.raises(envelope.InvalidKeyError, match=r"RSA keys are for recipients.*load_public_key reads them"):
        envelope.load_verifying_key(tmp_path / "alice.pub")
    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(envelope.InvalidKeyError) as refused:
        envelope.load_verifying_key(tmp_path / "junk.pub")
    assert "reads them" not in str(refused.value)


def test_sign_with_refuses_rsa_keys_and_takes_paths(alice, signer, tmp_path):
    """sign_with takes a key file's path, as recipients and signed_by do (issue 17 item 16)."""
    with pytest.raises(envelope.InvalidKeyError, match="RSA keys are for recipients"):
        envelope.seal(b"x", alice.public_key(), sign_with=alice)
    envelope.save_private_key(tmp_path / "signer.key", signer)
    sealed = envelope.seal(b"x", alice.public_key(), sign_with=tmp_path / "signer.key")
    assert envelope.open_with_metadata(sealed, alice, signed_by=signer.public_key()).signer.verified
    envelope.save_private_key(tmp_path / "locked.key", signer, passphrase="pw")
    with pytest.raises(envelope.PassphraseError, match=r"load_signing_key\(path, passphrase\)"):
        envelope.seal(b"x", alice.public_key(), sign_with=str(tmp_path / "locked.key"))
    with pytest.raises(envelope.InvalidKeyError, match=r"signer\.key"):
        envelope.seal(b"x", alice.public_key(), sign_with=tmp_path / "missing" / "signer.key")


def test_key_loaders_point_to_each_other(alice, signer, tmp_path):
    """A signing key given to the recipients' loaders, or an RSA key to the signers', names the
    function that reads it (issue 17 item 16)."""
    envelope.save_private_key(tmp_path / "signer.key", signer)
    envelope.save_public_key(tmp_path / "signer.pub", signer)
    envelope.save_private_key(tmp_path / "alice.key", alice)
    envelope.save_public_key(tmp_path / "alice.pub", alice)
    with pytest.raises(envelope.InvalidKeyError, match="load_signing_key"):
        envelope.load_private_key(tmp_path / "signer.key")
    with pytest.raises(envelope.InvalidKeyError, match="load_verifying_key"):
        envelope.load_public_key(tmp_path / "signer.pub")
    with pytest.raises(envelope.InvalidKeyError, match="load_private_key"):
        envelope.load_signing_key(tmp_path / "alice.key")
    with pytest.raises(envelope.InvalidKeyError, match="load_public_key"):
        envelope.load_verifying_key(tmp_path / "alice.pub")


def test_signing_keys_round_trip_through_pem(tmp_path, signer):
    path = tmp_path / "signer.key"
    envelope.save_private_key(path, signer)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert _spki(envelope.load_signing_key(path)) == _spki(signer)
    envelope.save_public_key(tmp_path / "signer.pub", signer)
    assert _spki(envelope.load_verifying_key(tmp_path / "signer.pub")) == _spki(signer)
    with pytest.raises(envelope.UsageError, match="empty"):
        envelope.signing_key_pem(signer, passphrase="")  # as for RSA keys: never silently unencrypted
    encrypted = envelope.signing_key_pem(signer, passphrase="pw")
    assert b"ENCRYPTED PRIVATE KEY" in encrypted
    assert _pbkdf2_iterations(encrypted) == 600_000  # the KDF of RSA key files, not OpenSSL's 2048
    assert _spki(envelope.parse_signing_key(encrypted, passphrase="pw")) == _spki(signer)


def _pbkdf2_iterations(pem: bytes) -> int:
    """The PBKDF2 iteration count of an encrypted PKCS#8 PEM (PBES2), read from its DER."""
    import base64

    der = base64.b64decode(b"".join(pem.strip().splitlines()[1:-1]))
    oid = bytes.fromhex("06092a864886f70d01050c")  # id-PBKDF2
    at = der.index(oid) + len(oid)
    params = der[at:]
    salt_at = params.index(b"\x04")  # OCTET STRING salt, then INTEGER iterationCount
    salt_len = params[salt_at + 1]
    count_at = salt_at + 2 + salt_len
    assert params[count_at] == 0x02
    length = params[count_at + 1]
    return int.from_bytes(params[count_at + 2 : count_at + 2 + length], "big")


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3000), chunk=st.sampled_from([16, 100, 1000]))
def test_signed_round_trip_any_size(alice, data, chunk):
    signer = envelope.generate_signing_key()
    sealed = envelope.seal(data, alice.public_key(), sign_with=signer, chunk_size=chunk)
    assert envelope.open(sealed, alice, signed_by=signer.public_key()) == data
    out = io.BytesIO()
    envelope.open_stream(io.BytesIO(sealed), out, alice, signed_by=signer.public_key())
    assert out.getvalue() == data
    info = envelope.inspect(sealed)
    assert info.complete and info.footer_size == 32 * info.chunk_count + 64


def test_signing_key_file_errors_name_the_file_and_keep_the_cause(tmp_path):
    missing = tmp_path / "missing.key"
    with pytest.raises(envelope.InvalidKeyError, match=r"missing\.key") as info:
        envelope.load_signing_key(missing)
    assert isinstance(info.value.__cause__, OSError)
    garbage = tmp_path / "garbage.pub"
    garbage.write_bytes(b"not a key")
    with pytest.raises(envelope.InvalidKeyError, match=r"garbage\.pub"):
        envelope.load_verifying_key(garbage)


def test_der_keys_ending_in_a_white_space_byte_load():
    """A DER key's last byte is a key byte: stripping white space from it (as from PEM text) broke
    about one EC key in 40 (seen as a flaky KMS test: KMS returns DER)."""
    from cryptography.hazmat.primitives import serialization

    found = 0
    for _ in range(5000):
        key = ec.generate_private_key(ec.SECP256R1())
        der = serialization.Encoding.DER
        public = key.public_key().public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)
        private = key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        if public[-1:].isspace():
            assert envelope.parse_verifying_key(public).public_numbers() == key.public_key().public_numbers()
            found += 1
        if private[-1:].isspace():
            signer = envelope.parse_signing_key(private)
            assert signer.public_key().public_numbers() == key.public_key().public_numbers()
            found += 1
        if found >= 4:
            break
    assert found >= 4, "no DER key ending in a white space byte in 5000 tries"
