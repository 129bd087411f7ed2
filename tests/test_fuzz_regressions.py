"""Regression tests for what fuzzing (tools/fuzz.py) and the crash-safety review found.

Each test pins the documented outcome: success with the exact plaintext, or an EnvelopeError
subclass (for key loading, InvalidKeyError). Tests marked ``xfail(strict=True)`` reproduce bugs that
are not fixed yet: they start passing, and so fail as XPASS, once the bug is fixed; then drop the mark.
"""

from __future__ import annotations

import base64
import datetime
import io
import tracemalloc
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID
from forge import Pipe

import envelope
from envelope import _format as fmt

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "spec" / "vectors" / "keys"
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


@pytest.fixture(scope="module")
def key_a() -> envelope.RsaIdentity:
    return envelope.load_private_key(KEYS / "rsa2048-a.pem")


# --- minimal DER, to write the fuzzer's inputs down readably -------------------------------------------


def der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def sequence(*parts: bytes) -> bytes:
    return der(0x30, b"".join(parts))


SHA256_WITH_RSA = sequence(der(0x06, bytes.fromhex("2a864886f70d01010b")), der(0x05, b""))
RSA_ENCRYPTION = sequence(der(0x06, bytes.fromhex("2a864886f70d010101")), der(0x05, b""))


def certificate_with_version(version: int) -> bytes:
    """The smallest X.509 certificate cryptography parses far enough to check its version field."""
    tbs = sequence(
        der(0xA0, der(0x02, bytes((version,)))),  # [0] EXPLICIT version
        der(0x02, b"\x01"),  # serial
        SHA256_WITH_RSA,
        sequence(),  # issuer
        sequence(der(0x17, b"250101000000Z"), der(0x17, b"260101000000Z")),  # validity
        sequence(),  # subject
        sequence(RSA_ENCRYPTION, der(0x03, b"\x00")),  # subjectPublicKeyInfo
    )
    return sequence(tbs, SHA256_WITH_RSA, der(0x03, b"\x00"))


def pem(label: str, body: bytes) -> bytes:
    return f"-----BEGIN {label}-----\n".encode() + base64.encodebytes(body) + f"-----END {label}-----\n".encode()


# --- findings: crashes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["der", "pem"])
def test_certificate_with_invalid_version_is_an_invalid_key(encoding: str) -> None:
    # Found by `tools/fuzz.py --targets keys` (a seed certificate with its version byte mutated to 44).
    body = certificate_with_version(44)
    data = body if encoding == "der" else pem("CERTIFICATE", body)
    with pytest.raises(envelope.InvalidKeyError):
        envelope.parse_public_key(data)


def test_minimal_certificate_reaches_the_version_check() -> None:
    """Guards the input above: with a valid version the same certificate fails for another reason."""
    with pytest.raises(envelope.InvalidKeyError):
        envelope.parse_public_key(certificate_with_version(2))


@pytest.mark.parametrize("loader", [envelope.load_public_key, envelope.load_private_key])
def test_key_path_with_nul_byte_is_an_invalid_key(loader) -> None:
    with pytest.raises(envelope.InvalidKeyError):
        loader("alice.key\0.pub")


# --- findings: the key policy (R23) ----------------------------------------------------------------------


def test_rsa_pss_key_in_pem_certificate_is_refused() -> None:
    with pytest.raises(envelope.InvalidKeyError):
        envelope.load_public_key(CORPUS / "keys-rsa-pss-certificate.pem")


def test_rsa_pss_key_in_der_certificate_is_refused() -> None:
    der_certificate = x509.load_pem_x509_certificate((CORPUS / "keys-rsa-pss-certificate.pem").read_bytes())
    with pytest.raises(envelope.InvalidKeyError):
        envelope.parse_public_key(der_certificate.public_bytes(serialization.Encoding.DER))


def test_rsa_pss_key_in_encrypted_pkcs8_is_a_documented_limit() -> None:
    """An encrypted PKCS#8 file hides the key's algorithm, and cryptography loads RSA-PSS keys as plain
    RSA, so this one loads (FORMAT.md R23 says so). It is harmless: its key id is that of the
    rsaEncryption form, and sealers refuse RSA-PSS public keys, so it opens only files sealed to the
    rsaEncryption form of the same public key."""
    key = envelope.load_private_key(CORPUS / "keys-rsa-pss-encrypted-secret.pem", "secret")
    public_pss = (CORPUS / "keys-rsa-pss-certificate.pem").read_bytes()
    with pytest.raises(envelope.InvalidKeyError, match="RSA-PSS"):
        envelope.seal(b"x", public_pss)  # bytes: the key itself
    assert envelope.open(envelope.seal(b"x", key.public_key()), key) == b"x"


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_rsa_key_in_certificate_signed_with_pss_is_accepted(key_a, encoding) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)  # valid now
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key_a.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(key_a, hashes.SHA256(), rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), 32))
    )
    loaded = envelope.parse_public_key(certificate.public_bytes(encoding))
    assert envelope.key_id(loaded) == envelope.key_id(key_a)


# --- findings of the keys target after the explicit parsers (issue 10 item 4) ---------------------------------


def _certificate_der(key_a) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key_a.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(key_a, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("2a864886f70d010101", "2a864886f70d014101"),  # rsaEncryption -> an unknown key algorithm
        ("0282010100", "0282012100"),  # the modulus claims 32 bytes more than the key holds
    ],
    ids=["unknown-algorithm", "damaged-key"],
)
def test_certificate_whose_key_cannot_be_read_is_an_invalid_key(key_a, old: str, new: str) -> None:
    # Found by `tools/fuzz.py --targets keys`: certificate.public_key() raised UnsupportedAlgorithm
    # or ValueError (the certificate itself parses: its signature is not checked).
    der = _certificate_der(key_a)
    assert bytes.fromhex(old) in der
    mutated = der.replace(bytes.fromhex(old), bytes.fromhex(new), 1)
    for data in (mutated, pem("CERTIFICATE", mutated)):
        with pytest.raises(envelope.InvalidKeyError, match="certificate"):
            envelope.parse_public_key(data)


def test_pem_label_split_over_lines_is_not_an_openssh_key() -> None:
    # Found by `tools/fuzz.py --targets keys`: a "-----BEGIN" and "OPENSSH PRIVATE KEY-----" on
    # different lines passed the label test and then raised IndexError.
    data = b"-----BEGIN \nOPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"
    with pytest.raises(envelope.InvalidKeyError):
        envelope.parse_private_key(data)


# --- findings: resources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reader",
    [
        lambda sealed, key: envelope.open_stream(io.BytesIO(sealed), io.BytesIO(), key, threads=2),
        lambda sealed, key: envelope.open_stream(io.BytesIO(sealed), io.BytesIO(), key, threads=8),
        lambda sealed, key: envelope.open(sealed, key, threads=2),
        lambda sealed, key: envelope.EnvelopeReader(io.BytesIO(sealed), key).read(),
        lambda sealed, key: envelope.EnvelopeStreamReader(Pipe(sealed), key).read(),
    ],
    ids=["open_stream-2-threads", "open_stream-8-threads", "open", "reader-seekable", "reader-pipe"],
)
def test_memory_follows_the_file_not_the_declared_chunk_size(key_a, reader) -> None:
    """Found by review of the fuzz targets: a 500-byte file declaring 16 MiB chunks used to make the
    streaming pipeline allocate (depth + 1) x 2 x 16 MiB = 176 MiB up front. Buffers now grow with
    the bytes actually read."""
    sealed = envelope.seal(b"tiny", key_a.public_key(), chunk_size=fmt.MAX_CHUNK_SIZE)
    assert len(sealed) < 600
    tracemalloc.start()
    try:
        reader(sealed, key_a)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 4 << 20, f"{peak >> 20} MiB for a {len(sealed)}-byte file"


# --- pinned behaviour the fuzzer relies on -----------------------------------------------------------------


class _PrefixOnly(io.RawIOBase):
    """A source that fails the test if anything past the 13-byte prefix is read."""

    def __init__(self, prefix: bytes) -> None:
        self._data = prefix
        self.read_calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.read_calls += 1
        assert self._data, "read past the prefix: the header length was not checked first"
        size = min(len(buffer), len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


@pytest.mark.parametrize("claimed", [fmt.MAX_HEADER_LEN + 1, 0xFFFFFFFF])
def test_huge_header_length_is_refused_from_the_prefix(claimed: int) -> None:
    source = _PrefixOnly(fmt.MAGIC + b"\x01" + claimed.to_bytes(4, "big"))
    with pytest.raises(envelope.LimitError):
        fmt.read_header(source)
    with pytest.raises(envelope.LimitError):
        envelope.inspect(fmt.MAGIC + b"\x01" + claimed.to_bytes(4, "big"))


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (b"\xc1", envelope.MalformedError),  # never-used MessagePack byte
        (b"\x91" * 20 + b"\x80", envelope.MalformedError),  # nesting deeper than 16
        (b"\x81\xa1a\xd6\xff\x00\x00\x00\x00", envelope.MalformedError),  # timestamp ext
        (b"\x81\xa1a\xd7\xff" + b"\xff" * 8, envelope.MalformedError),  # invalid timestamp (ns > 1e9)
        (b"\x82\xa1a\xc0\xa1a\xc0", envelope.MalformedError),  # duplicate key
        (b"\x81\x01\xc0", envelope.MalformedError),  # non-str key
        (b"\x81\xa2\xed\xa0\xc0", envelope.MalformedError),  # surrogate in UTF-8
        (b"\xdf\xff\xff\xff\xff", envelope.MalformedError),  # map claiming 4 billion entries
        (b"\xc6\xff\xff\xff\xff", envelope.MalformedError),  # bin claiming 4 GiB
    ],
)
def test_hostile_header_bytes_raise_documented_errors(header: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        fmt.decode_header(header)
    with pytest.raises(error):
        fmt.decode_metadata(header)
