"""Spec section 4.4: mlkem768x25519 recipients (R41, R42), age 1.3's post-quantum hybrid. The key
derivation is checked against the key pair of age's own test data; the KEM combiner against
@noble/post-quantum's X-Wing in the Node reference, which opens every vector."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cli_support import ENVELOPE, needs_console_scripts, ok, run
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope
from envelope import _bech32
from envelope._datakey import HEADER_AUTH_FAILED, DataKey

KEYS = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "keys"
# FiloSottile/age cmd/age/testdata/hybrid.txt: an identity and the recipient age derived from it.
AGE_SECRET = "AGE-SECRET-KEY-PQ-16XDSLZ3XCSZ3236YJ5J0T9NAPLZTP96LJKQCVHJYUDTQVJR5J5PQTDPQCX"
AGE_PUBLIC_START = "age1pq1044e3hfmq2tltgck54m0gnpv8rfrwkdxjgl38psnwg8zfyv4uqdu63kk0u94ztt0q35k9dzuwgv405kxq6due2"
AGE_PUBLIC_END = "wkranhyadxf33kjn9xpg2fq5hnlq0"


def test_keys_derive_as_age_derives_them():
    """The recipient envelope derives from age's test identity is the one age's test data gives."""
    (identity,) = envelope.age_identities(AGE_SECRET.encode())
    public = identity.recipient().to_age()  # type: ignore[attr-defined]
    assert public.startswith(AGE_PUBLIC_START) and public.endswith(AGE_PUBLIC_END) and len(public) == 1959
    assert public + "\n" == (KEYS / "mlkem768x25519-age.pub.age").read_text()
    assert identity.to_age() == AGE_SECRET  # type: ignore[attr-defined]


def test_the_wrap_is_section_4_4():
    """Unwrap an entry the SDK wrote with cryptography's ML-KEM, X25519, hashlib's SHA-3 and HKDF."""
    identity = envelope.MlKem768X25519Identity.generate()
    data_key = DataKey.generate()
    entry = identity.recipient().wrap(data_key)
    assert entry.type == "mlkem768x25519" and list(entry.fields) == ["kid", "enc", "key"]
    seed = _bech32.decode(identity.to_age(), 2000)[1]
    expanded = hashlib.shake_256(seed).digest(96)
    kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    secret = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
    pk_x = secret.public_key().public_bytes_raw()
    public = kem.public_key().public_bytes_raw() + pk_x
    assert entry.fields["kid"] == hashlib.sha256(public).digest()
    enc = entry.fields["enc"]
    ss_m = kem.decapsulate(enc[:1088])
    ss_x = secret.exchange(x25519.X25519PublicKey.from_public_bytes(enc[1088:]))
    ss = hashlib.sha3_256(ss_m + ss_x + enc[1088:] + pk_x + bytes.fromhex("5c2e2f2f5e5c")).digest()
    wrap_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 mlkem768x25519").derive(ss)
    assert ChaCha20Poly1305(wrap_key).decrypt(bytes(12), entry.fields["key"], None) == data_key.raw()


@settings(max_examples=10, deadline=None)
@given(data=st.binary(max_size=2000))
def test_round_trip(data: bytes):
    identity = envelope.MlKem768X25519Identity.generate()
    sealed = envelope.seal(data, identity.recipient().to_age(), chunk_size=100)
    assert envelope.open(sealed, identity.to_age().encode()) == data


def test_a_failed_unwrap_reads_like_a_header_mac_failure():
    identity = envelope.MlKem768X25519Identity.generate()
    sealed = bytearray(envelope.seal(b"x", identity.recipient()))
    kid = bytes.fromhex(identity.key_id)
    at = sealed.index(kid) + 32 + 4 + 3 + 10  # inside the ML-KEM ciphertext: implicit rejection
    sealed[at] ^= 1
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(bytes(sealed), identity)
    assert str(caught.value) == HEADER_AUTH_FAILED


def test_an_invalid_encapsulation_key_is_refused_r42():
    public = bytearray(envelope.MlKem768X25519Identity.generate().recipient().public_key)
    public[0], public[1] = 0xFF, public[1] | 0x0F  # the first coefficient is 4095, not below q
    with pytest.raises(envelope.InvalidKeyError):
        envelope.MlKem768X25519Recipient(bytes(public))
    text = _bech32.encode("age1pq", bytes(public))
    with pytest.raises(envelope.InvalidKeyError):
        envelope.seal(b"x", text)


def test_a_small_order_x25519_half_is_refused_r42():
    public = envelope.MlKem768X25519Identity.generate().recipient().public_key[:1184] + bytes(32)
    with pytest.raises(envelope.InvalidKeyError, match="small order"):
        envelope.seal(b"x", envelope.MlKem768X25519Recipient(public))


def test_no_secret_in_repr():
    identity = envelope.MlKem768X25519Identity.generate()
    assert identity.to_age() not in repr(identity) and identity.key_id in repr(identity)


@needs_console_scripts
def test_keygen_and_the_command_line(tmp_path: Path):
    private = tmp_path / "pq.age"
    result = ok(run(ENVELOPE, "keygen", "--type", "mlkem768x25519", "-o", private))
    public = Path(f"{private}.pub").read_text().strip()
    assert public.startswith("age1pq1") and f"Public key: {public}" in result.stdout.decode()
    lines = private.read_text().splitlines()
    assert lines[1] == f"# public key: {public}" and lines[2].startswith("AGE-SECRET-KEY-PQ-1")
    (tmp_path / "in").write_bytes(b"pq")
    ok(run(ENVELOPE, "seal", "-r", public, "-o", tmp_path / "a.env", tmp_path / "in"))
    ok(run(ENVELOPE, "open", "-i", private, "-o", tmp_path / "out", tmp_path / "a.env"))
    assert (tmp_path / "out").read_bytes() == b"pq"
