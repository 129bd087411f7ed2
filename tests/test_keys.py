"""Key helpers and the key policy (section 3.3, R23)."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

import envelope


def certificate_for(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "model-consumer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def public_forms(key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    pub = key.public_key()
    cert = certificate_for(key)
    return {
        "spki pem": pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "pkcs1 pem": pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "spki der": pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "openssh": pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" me@host",
        "x509 pem": cert.public_bytes(serialization.Encoding.PEM),
        "x509 der": cert.public_bytes(serialization.Encoding.DER),
    }


@pytest.mark.parametrize("form", ["spki pem", "pkcs1 pem", "spki der", "openssh", "x509 pem", "x509 der"])
def test_public_key_formats_load_to_the_same_key_id(alice, form, tmp_path):
    data = public_forms(alice)[form]
    assert envelope.key_id(envelope.load_public_key(data)) == envelope.key_id(alice)
    path = tmp_path / "key"
    path.write_bytes(data)
    assert envelope.key_id(envelope.load_public_key(path)) == envelope.key_id(alice)
    if form.endswith("pem") or form == "openssh":
        assert envelope.open(envelope.seal(b"x", data.decode()), alice) == b"x"  # text works as a recipient


def test_private_keys_load_plain_and_encrypted(alice):
    plain = envelope.private_key_pem(alice)
    assert b"BEGIN PRIVATE KEY" in plain
    assert envelope.key_id(envelope.load_private_key(plain)) == envelope.key_id(alice)
    locked = envelope.private_key_pem(alice, "correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in locked
    assert envelope.key_id(envelope.load_private_key(locked, "correct horse")) == envelope.key_id(alice)
    pkcs1 = alice.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    openssh = alice.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    der = alice.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for data in (pkcs1, openssh, der):
        assert envelope.key_id(envelope.load_private_key(data)) == envelope.key_id(alice)


def test_passphrase_errors_are_clear_and_never_echo_the_passphrase(alice):
    locked = envelope.private_key_pem(alice, "s3cret-passphrase")
    with pytest.raises(envelope.InvalidKeyError, match="passphrase is needed"):
        envelope.load_private_key(locked)
    with pytest.raises(envelope.InvalidKeyError, match="wrong passphrase") as wrong:
        envelope.load_private_key(locked, "guess-passphrase")
    assert "guess" not in str(wrong.value) and "s3cret" not in str(wrong.value)
    with pytest.raises(envelope.InvalidKeyError, match="not encrypted"):
        envelope.load_private_key(envelope.private_key_pem(alice), "unneeded")


@pytest.fixture(scope="module")
def small_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_r23_small_rsa_keys_are_refused_to_seal_and_to_open(small_rsa, alice):
    with pytest.raises(envelope.InvalidKeyError, match="1024 bits"):
        envelope.seal(b"x", small_rsa.public_key())
    pem = small_rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(envelope.InvalidKeyError):
        envelope.load_public_key(pem)
    with pytest.raises(envelope.InvalidKeyError):
        envelope.open(envelope.seal(b"x", alice.public_key()), small_rsa)
    with pytest.raises(envelope.InvalidKeyError):
        envelope.generate_private_key(1024)


@pytest.mark.parametrize("make", [lambda: ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate])
def test_r23_non_rsa_keys_are_refused_with_a_clear_message(make, alice):
    key = make()
    with pytest.raises(envelope.InvalidKeyError, match="only RSA"):
        envelope.seal(b"x", key.public_key())
    with pytest.raises(envelope.InvalidKeyError, match="only RSA"):
        envelope.open(envelope.seal(b"x", alice.public_key()), key)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(envelope.InvalidKeyError, match="only RSA"):
        envelope.load_public_key(pem)


@pytest.mark.parametrize(
    "junk", [b"", b"hello", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", b"ssh-rsa !!!"]
)
def test_garbage_keys(junk):
    with pytest.raises(envelope.InvalidKeyError):
        envelope.load_public_key(junk)
    with pytest.raises(envelope.InvalidKeyError):
        envelope.load_private_key(junk)


def test_mixed_up_keys_get_a_hint(alice, tmp_path):
    with pytest.raises(envelope.InvalidKeyError, match="private key"):
        envelope.load_public_key(envelope.private_key_pem(alice))
    with pytest.raises(envelope.InvalidKeyError, match="public key"):
        envelope.load_private_key(envelope.public_key_pem(alice))
    with pytest.raises(envelope.UsageError, match="public_key"):
        envelope.seal(b"x", alice)
    with pytest.raises(envelope.UsageError, match="private key"):
        envelope.open(envelope.seal(b"x", alice.public_key()), alice.public_key())
    with pytest.raises(envelope.InvalidKeyError, match="cannot read"):
        envelope.load_public_key(tmp_path / "missing.pem")


def test_generated_keys_default_to_3072_bits():
    assert envelope.generate_private_key().key_size == 3072


def test_no_key_material_in_repr(alice):
    identity = envelope.RsaIdentity(alice)
    text = repr(identity) + repr(envelope.RsaRecipient(alice.public_key()))
    assert envelope.key_id(alice).hex() in text
    assert str(alice.private_numbers().d)[:20] not in text
    from envelope._datakey import DataKey

    key = DataKey(b"\x01" * 32)
    assert "01" not in repr(key) and "AQEB" not in str(key)


def test_r23_rsa_pss_keys_are_refused():
    """RSA-PSS-restricted keys (made with `openssl genpkey -algorithm RSA-PSS`) are signing keys."""
    from pathlib import Path

    data = Path(__file__).parent / "data"
    with pytest.raises(envelope.InvalidKeyError, match="RSA-PSS"):
        envelope.load_public_key(data / "rsa-pss-2048.pub.pem")
    with pytest.raises(envelope.InvalidKeyError, match="RSA-PSS"):
        envelope.load_private_key(data / "rsa-pss-2048.pem")


def test_a_string_is_key_text_or_a_path(alice, tmp_path):
    path = tmp_path / "alice.key"
    path.write_bytes(envelope.private_key_pem(alice))
    (tmp_path / "alice.pub").write_bytes(envelope.public_key_pem(alice))
    assert envelope.key_id(envelope.load_private_key(str(path))) == envelope.key_id(alice)
    assert envelope.key_id(envelope.load_public_key(str(tmp_path / "alice.pub"))) == envelope.key_id(alice)
    assert envelope.open(envelope.seal(b"x", str(tmp_path / "alice.pub")), str(path)) == b"x"
    with pytest.raises(envelope.InvalidKeyError, match="cannot read key file"):
        envelope.load_private_key(str(tmp_path / "missing.key"))


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_length(len(body)) + body


def _der_length(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_a_private_key_with_mismatched_halves_is_refused(alice, bob):
    """The fast load path skips OpenSSL's primality tests but still refuses a key whose private part
    does not match its public part (here: another key's modulus, in a hand-built PKCS#1 structure,
    since cryptography refuses to build one). OpenSSL re-checks every CRT result and falls back to
    d, so the mismatch surfaces as a failed round trip."""
    a = alice.private_numbers()
    fields = [0, bob.private_numbers().public_numbers.n, a.public_numbers.e, a.d, a.p, a.q, a.dmp1, a.dmq1, a.iqmp]
    body = b"".join(_der_integer(v) for v in fields)
    pkcs1 = b"\x30" + _der_length(len(body)) + body
    pem = b"-----BEGIN RSA PRIVATE KEY-----\n" + base64.encodebytes(pkcs1) + b"-----END RSA PRIVATE KEY-----\n"
    with pytest.raises(envelope.InvalidKeyError, match="inconsistent"):
        envelope.load_private_key(pem)
    with pytest.raises(envelope.InvalidKeyError):
        envelope.load_private_key(pem, full_validation=True)
