"""Every vector in spec/vectors/v1 (spec/vectors/README.md), through every reader of the SDK: the SDK
agrees with the spec's examples."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import math
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, padding, x25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from forge import Pipe

import envelope
from envelope import _bech32
from envelope.cli.render import tagged

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
ALL_SPECS = {p.stem: json.loads(p.read_text()) for p in sorted((VECTORS / "v1").glob("*.json"))}
# Folder vectors (FORMAT.md 11) are read as folders; the negative ones are valid files read as bytes.
FOLDER_SPECS = {name: spec for name, spec in ALL_SPECS.items() if spec.get("read_as") == "folder"}
SPECS = {name: spec for name, spec in ALL_SPECS.items() if name not in FOLDER_SPECS or spec["expect"] == "success"}
SUCCESSES = [name for name, spec in SPECS.items() if spec["expect"] == "success"]
SIGNATURE_LEN = {"ed25519": 64, "ecdsa-p256-sha256": 64, "ml-dsa-65": 3309}  # FORMAT.md 8.2

# FORMAT.md section 9: the error categories of each rule.
CATEGORIES = {
    rule: set(errors.split())
    for rules, errors in [
        ("R1 R4 R5 R6 R9 R10 R14 R24", "MalformedError"),
        ("R2 R12 R25", "UnsupportedError"),
        ("R3 R8 R11", "MalformedError LimitError"),
        ("R7", "LimitError"),
        ("R13", "NoMatchingKeyError"),
        ("R15 R16 R17 R18 R19 R20 R21 R22", "AuthenticationError"),
        ("R23", "InvalidKeyError"),
        ("R26 R27", "SignatureError"),
        ("R28", "SignerError"),
        ("R29", "MalformedError UnsupportedError"),
        ("R30 R31", "MalformedError LimitError"),
        ("R32 R33 R34", "MalformedError"),
        ("R45 R47 R49", "MalformedError"),
        ("R46 R50", "AuthenticationError"),
        ("R48", "LimitError"),
        ("R35", "MalformedError"),
        ("R36 R37", "AuthenticationError"),
        ("R38 R40", "InvalidKeyError"),
        ("R39 R41", "MalformedError"),
    ]
    for rule in rules.split()
}
# What a stream reader says tells truncated (R18) and extended (R22) files apart (FORMAT.md 7.4).
STREAM_MESSAGES = {"R18": "truncated", "R22": "follow the end"}


def untag(value: Any) -> Any:
    """Tagged JSON (spec/vectors/README.md) to Python values."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)).startswith("$"):
        ((kind, raw),) = value.items()
        if kind == "$map":  # a map whose only key begins with "$": its keys are literal
            if not isinstance(raw, dict) or len(raw) != 1 or not next(iter(raw)).startswith("$"):
                raise ValueError("a $map holds exactly one key, which begins with $")
            return {k: untag(v) for k, v in raw.items()}
        if kind == "$bin":
            return bytes.fromhex(raw)
        if kind == "$int":
            return int(raw)
        if kind == "$float":
            return float(raw)  # a number, or "NaN" / "Infinity" / "-Infinity"
        raise ValueError(f"unknown tag {kind}")
    return {k: untag(v) for k, v in value.items()}


def same(a: Any, b: Any) -> bool:
    """Equality that keeps floats and ints apart (1.0 is not 1 in metadata)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# --- the vectors' keys and files --------------------------------------------------------------------


def key_file(name: str) -> Path:
    """keys/NAME.pem, NAME.age (an age identity file) or NAME.openssh (spec/vectors/README.md)."""
    for suffix in (".age", ".openssh"):
        if (VECTORS / "keys" / f"{name}{suffix}").exists():
            return VECTORS / "keys" / f"{name}{suffix}"
    return VECTORS / "keys" / f"{name}.pem"


@functools.cache
def private_keys(name: str) -> tuple[Any, ...]:
    """The keys of keys/NAME.pem, NAME.age or NAME.openssh, or a shared Fernet key (NAME.fernet) or
    a passphrase (NAME.passphrase)."""
    keys = VECTORS / "keys"
    if (keys / f"{name}.fernet").exists():
        return (envelope.FernetKey((keys / f"{name}.fernet").read_text()),)
    if (keys / f"{name}.passphrase").exists():
        return (envelope.Passphrase((keys / f"{name}.passphrase").read_text(encoding="utf-8")),)
    path = key_file(name)
    if path.suffix in (".age", ".openssh"):
        return tuple(envelope.key_file_identities(path))
    return (envelope.load_private_key(path),)


@functools.cache
def verifying_key(name: str) -> Any:
    return envelope.load_verifying_key(VECTORS / "keys" / f"{name}.pub.pem")


def reader_keys(spec: dict[str, Any]) -> list[Any]:
    """The keys a reader holds. Where a key breaks the policy (R23), the reader is given the key
    files, so that it is the reader that loads them and refuses."""
    if spec.get("rule") in ("R23", "R38", "R40"):
        return [key_file(name) for name in spec["keys"]]
    return [key for name in spec["keys"] for key in private_keys(name)]


@functools.cache
def raw_key(name: str) -> tuple[Any, bytes]:
    """A private key loaded by `cryptography` alone (not the SDK), and its key id."""
    key: Any = serialization.load_pem_private_key((VECTORS / "keys" / f"{name}.pem").read_bytes(), None)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, hashlib.sha256(spki).digest()


def symmetric_unwrap(name: str, entries: list[dict[str, Any]]) -> bytes | None:
    """FORMAT.md 4.5 and 4.6 with `cryptography` alone: the data key from the entry of a shared
    Fernet key or a passphrase of keys/, or None when ``name`` is neither or matches no entry."""
    keys = VECTORS / "keys"
    for entry in entries:
        if (keys / f"{name}.fernet").exists() and entry.get("type") == "fernet":
            shared = base64.urlsafe_b64decode((keys / f"{name}.fernet").read_bytes())
            kid = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 fernet key id").derive(shared)
            if entry["kid"] == kid:
                wrap_key = HKDF(hashes.SHA256(), 32, salt=entry["salt"], info=b"envelope v1 fernet wrap").derive(shared)
                return ChaCha20Poly1305(wrap_key).decrypt(bytes(12), entry["key"], None)
        if (keys / f"{name}.passphrase").exists() and entry.get("type") == "scrypt":
            passphrase = unicodedata.normalize("NFC", (keys / f"{name}.passphrase").read_text("utf-8")).encode()
            kdf = Scrypt(salt=b"envelope v1 scrypt" + entry["salt"], length=32, n=1 << entry["ln"], r=8, p=1)
            return ChaCha20Poly1305(kdf.derive(passphrase)).decrypt(bytes(12), entry["key"], None)
    return None


X25519_KINDS = {"x25519": b"envelope v1 x25519", "ssh-ed25519": b"envelope v1 ssh-ed25519"}  # FORMAT.md 4.2, 4.3


def x25519_secrets(name: str) -> list[tuple[str, bytes, x25519.X25519PrivateKey]]:
    """(type, kid, X25519 secret) of each key of a key file, derived as FORMAT.md 4.2 and 4.3 say."""
    path = key_file(name)
    if path.suffix == ".openssh":
        key: Any = serialization.load_ssh_private_key(path.read_bytes(), None)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        scalar = hashlib.sha512(key.private_bytes_raw()).digest()[:32]
        return [("ssh-ed25519", hashlib.sha256(spki).digest(), x25519.X25519PrivateKey.from_private_bytes(scalar))]
    found = []
    for identity in private_keys(name):
        if not isinstance(identity, envelope.X25519Identity):
            continue
        secret = identity.private_key
        spki = bytes.fromhex("302a300506032b656e032100") + secret.public_key().public_bytes_raw()
        found.append(("x25519", hashlib.sha256(spki).digest(), secret))
    return found


def pinned(spec: dict[str, Any]) -> list[Any] | None:
    return None if "signed_by" not in spec else [verifying_key(name) for name in spec["signed_by"]]


def sealed_bytes(name: str) -> bytes:
    return (VECTORS / "v1" / f"{name}.envelope").read_bytes()


# --- the readers: (plaintext, metadata, signer), each read to the end -------------------------------

Read = Callable[[bytes, list[Any], Any], tuple[bytes, dict[str, Any], Any]]


def read_open(sealed: bytes, keys: list[Any], signed_by: Any) -> tuple[bytes, dict[str, Any], Any]:
    plaintext = envelope.open(sealed, keys, signed_by=signed_by)
    opened = envelope.open_with_metadata(sealed, keys, signed_by=signed_by)
    assert opened.plaintext == plaintext
    return plaintext, opened.metadata, opened.signer


def read_open_stream(sealed: bytes, keys: list[Any], signed_by: Any) -> tuple[bytes, dict[str, Any], Any]:
    out = io.BytesIO()
    result = envelope.open_stream(io.BytesIO(sealed), out, keys, signed_by=signed_by)
    assert result.plaintext_len == len(out.getvalue())
    return out.getvalue(), result.metadata, result.signer


def read_envelope_reader(sealed: bytes, keys: list[Any], signed_by: Any) -> tuple[bytes, dict[str, Any], Any]:
    with envelope.EnvelopeReader(io.BytesIO(sealed), keys, signed_by=signed_by) as reader:
        return reader.read(), reader.metadata, reader.signer


def read_stream_reader(sealed: bytes, keys: list[Any], signed_by: Any) -> tuple[bytes, dict[str, Any], Any]:
    with envelope.EnvelopeStreamReader(io.BytesIO(sealed), keys, signed_by=signed_by) as reader:
        data = reader.read()
        return data, reader.metadata, reader.signer


def read_open_pipe(sealed: bytes, keys: list[Any], signed_by: Any) -> tuple[bytes, dict[str, Any], Any]:
    out = io.BytesIO()
    result = envelope.open_stream(io.BufferedReader(Pipe(sealed)), out, keys, signed_by=signed_by)
    return out.getvalue(), result.metadata, result.signer


def read_stream_reader_pipe(sealed: bytes, keys: list[Any], signed_by: Any) -> tuple[bytes, dict[str, Any], Any]:
    with envelope.EnvelopeStreamReader(io.BufferedReader(Pipe(sealed)), keys, signed_by=signed_by) as reader:
        return reader.read(), reader.metadata, reader.signer


# Each reader, and how it finds the tokens: from the file's length (FORMAT.md 7.3), or in order
# from their timestamp fields (7.4). The stream readers read a signed file's footer first where the
# source can seek, and from a pipe when signers are pinned (after spooling the ciphertext).
READERS: dict[str, tuple[Read, str]] = {
    "open": (read_open, "length"),
    "EnvelopeReader": (read_envelope_reader, "length"),
    "open_stream": (read_open_stream, "seekable"),
    "EnvelopeStreamReader": (read_stream_reader, "seekable"),
    "open_stream-pipe": (read_open_pipe, "pipe"),
    "EnvelopeStreamReader-pipe": (read_stream_reader_pipe, "pipe"),
}


def finds_tokens_by(reader: str, spec: dict[str, Any], sealed: bytes) -> str:
    """ "length" or "stream": how ``reader`` finds the tokens of this vector."""
    kind = READERS[reader][1]
    if kind == "length":
        return kind
    try:
        header = msgpack.unpackb(sealed[13 : 13 + int.from_bytes(sealed[9:13], "big")], raw=False)
    except Exception:
        return "stream"  # refused before the payload: either way
    signed = isinstance(header, dict) and "signer" in header
    footer_first = signed and (kind == "seekable" or spec.get("signed_by") is not None)
    return "length" if footer_first else "stream"


CASES = [pytest.param(name, reader, id=f"{name}-{reader}") for name in SPECS for reader in READERS]


@pytest.mark.parametrize(("name", "reader"), CASES)
def test_vector(name: str, reader: str) -> None:
    spec = SPECS[name]
    read = READERS[reader][0]
    sealed = sealed_bytes(name)
    finds_tokens = finds_tokens_by(reader, spec, sealed)
    if spec["expect"] == "error":
        expected = spec["from_length"] if finds_tokens == "length" and "from_length" in spec else spec
        with pytest.raises(envelope.EnvelopeError) as caught:
            read(sealed, reader_keys(spec), pinned(spec))
        assert type(caught.value).__name__ == expected["error"], f"{expected['rule']}: {caught.value}"
        if finds_tokens == "stream" and expected["rule"] in STREAM_MESSAGES:
            assert STREAM_MESSAGES[expected["rule"]] in str(caught.value)
        return
    plaintext, metadata, signer = read(sealed, reader_keys(spec), pinned(spec))
    assert len(plaintext) == spec["plaintext_length"]
    assert hashlib.sha256(plaintext).hexdigest() == spec["plaintext_sha256"]
    assert plaintext.hex() == spec.get("plaintext_hex", plaintext.hex())
    assert same(metadata, untag(spec["metadata"]))
    if spec["signer"] is None:
        assert signer is None
    else:
        assert signer is not None and signer.verified
        assert (signer.algorithm, signer.key_id) == (spec["signer"]["algorithm"], spec["signer"]["key_id"])


def split(sealed: bytes, spec: dict[str, Any]) -> tuple[list[bytes], bytes]:
    """The tokens and the footer, cut with the arithmetic of FORMAT.md 7.3 alone."""
    payload = sealed[13 + int.from_bytes(sealed[9:13], "big") + 32 :]
    size = 57 + 16 * ((9 + spec["chunk_size"]) // 16 + 1)
    signature_len = SIGNATURE_LEN[spec["signer"]["algorithm"]] if spec["signer"] else 0
    if signature_len:
        count, final = divmod(len(payload) - signature_len + size, size + 32)
    else:
        count = -(-len(payload) // size)
        final = len(payload) - (count - 1) * size
    end = (count - 1) * size + final
    return [payload[i * size : min((i + 1) * size, end)] for i in range(count)], payload[end:]


@pytest.mark.parametrize("name", SUCCESSES)
def test_every_chunk_is_a_fernet_token_and_the_footer_lists_their_tags(name: str) -> None:
    spec = SPECS[name]
    sealed = sealed_bytes(name)
    tokens, footer = split(sealed, spec)
    assert len(tokens) == spec["chunk_count"]
    fernet = Fernet(base64.urlsafe_b64encode(bytes.fromhex(spec["data_key"])))
    messages = [fernet.decrypt(base64.urlsafe_b64encode(token)) for token in tokens]  # no TTL
    assert [m[:9] for m in messages] == [
        i.to_bytes(8, "big") + bytes([i == len(tokens) - 1]) for i in range(len(tokens))
    ]
    assert hashlib.sha256(b"".join(m[9:] for m in messages)).hexdigest() == spec["plaintext_sha256"]
    stamps = [int.from_bytes(token[1:9], "big") for token in tokens]
    assert stamps == [0] * (len(tokens) - 1) + [len(tokens[-1])]  # FORMAT.md 7.2
    if spec["signer"] is None:
        assert footer == b""
        return
    assert footer[: 32 * len(tokens)] == b"".join(token[-32:] for token in tokens)
    assert len(footer) == 32 * len(tokens) + SIGNATURE_LEN[spec["signer"]["algorithm"]]
    checked = envelope.check_signature(sealed, signed_by=pinned(spec))  # no private key needed
    assert checked.key_id == spec["signer"]["key_id"]


# --- which rule a file breaks: the payload checks of FORMAT.md 7.3, 7.4 and 8.3, from the text alone

PAYLOAD_RULES = {"R17", "R18", "R19", "R20", "R21", "R22", "R26", "R27"}
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class PayloadModel:
    """A reader of the payload written from FORMAT.md alone, which names the rule a check fails
    instead of raising. It finds the tokens either in order from their timestamp fields (a stream
    reader, 7.4) or from the file's length (7.3); the second then checks every token, since a
    random-access reader may open them in any order. It uses `cryptography` only, not the SDK."""

    def __init__(self, sealed: bytes, key_names: list[str]) -> None:
        header_len = int.from_bytes(sealed[9:13], "big")
        self.header_bytes = sealed[13 : 13 + header_len]
        self.header = msgpack.unpackb(self.header_bytes, raw=False)
        self.payload = sealed[13 + header_len + 32 :]
        self.chunk_size = self.header["chunk_size"]
        self.size = self.token_len(self.chunk_size)
        signer = self.header.get("signer")
        self.signature_len = SIGNATURE_LEN[signer["alg"]] if signer else 0
        wrapped = {e["kid"]: e["key"] for e in self.header["recipients"] if e.get("type") == "rsa-oaep-sha256"}
        shares = {(e["type"], e["kid"]): e for e in self.header["recipients"] if e.get("type") in X25519_KINDS}
        hybrid = {e["kid"]: e for e in self.header["recipients"] if e.get("type") == "mlkem768x25519"}
        for name in key_names:  # the first key that matches an entry (section 4.1)
            if key_file(name).suffix in (".age", ".openssh"):
                if self.x25519_unwrap(name, shares) or self.hybrid_unwrap(name, hybrid):
                    break
                continue
            symmetric = symmetric_unwrap(name, self.header["recipients"])
            if symmetric is not None:
                self.data_key = symmetric
                break
            if not (VECTORS / "keys" / f"{name}.pem").exists():
                continue  # a shared key or passphrase that matches no entry
            key, kid = raw_key(name)
            if kid in wrapped:
                self.data_key = key.decrypt(
                    wrapped[kid], padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
                )
                break

    def x25519_unwrap(self, name: str, entries: dict[tuple[str, bytes], dict[str, Any]]) -> bool:
        """Sections 4.2 and 4.3 with `cryptography` alone (the SDK only decodes age identity files)."""
        for kind, kid, secret in x25519_secrets(name):
            entry = entries.get((kind, kid))
            if entry is not None:
                share = secret.public_key().public_bytes_raw()
                shared = secret.exchange(x25519.X25519PublicKey.from_public_bytes(entry["epk"]))
                label = X25519_KINDS[kind]
                wrap_key = HKDF(hashes.SHA256(), 32, salt=entry["epk"] + share, info=label).derive(shared)
                self.data_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), entry["key"], None)
                return True
        return False

    def hybrid_unwrap(self, name: str, entries: dict[bytes, dict[str, Any]]) -> bool:
        """Section 4.4 with cryptography's ML-KEM and X25519 and hashlib's SHA-3 (the SDK only
        decodes the age identity file)."""
        for identity in private_keys(name):
            if not isinstance(identity, envelope.MlKem768X25519Identity):
                continue
            seed = _bech32.decode(identity.to_age(), 2000)[1]
            expanded = hashlib.shake_256(seed).digest(96)
            kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
            secret = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
            pk_x = secret.public_key().public_bytes_raw()
            entry = entries.get(hashlib.sha256(kem.public_key().public_bytes_raw() + pk_x).digest())
            if entry is None:
                continue
            ss_m = kem.decapsulate(entry["enc"][:1088])
            ss_x = secret.exchange(x25519.X25519PublicKey.from_public_bytes(entry["enc"][1088:]))
            ss = hashlib.sha3_256(ss_m + ss_x + entry["enc"][1088:] + pk_x + b"\\.//^\\").digest()
            wrap_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 mlkem768x25519").derive(ss)
            self.data_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), entry["key"], None)
            return True
        return False

    @staticmethod
    def token_len(data_len: int) -> int:
        return 57 + 16 * ((9 + data_len) // 16 + 1)

    def valid_len(self, length: int) -> bool:
        return 73 <= length <= self.size and (length - 57) % 16 == 0

    def token_rule(self, token: bytes, index: int, last: bool) -> str | None:
        """Section 7.4, checks 1 to 6."""
        stamp = int.from_bytes(token[1:9], "big")
        if not self.valid_len(len(token)) or token[0] != 0x80 or stamp != (len(token) if last else 0):
            return "R19"
        mac = hmac.HMAC(self.data_key[:16], hashes.SHA256())
        mac.update(token[:-32])
        try:
            mac.verify(token[-32:])
        except InvalidSignature:
            return "R19"
        decryptor = Cipher(algorithms.AES(self.data_key[16:]), modes.CBC(token[9:25])).decryptor()
        padded = decryptor.update(token[25:-32]) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad or len(padded) - pad < 9:
            return "R19"
        message = padded[:-pad]
        if int.from_bytes(message[:8], "big") != index or message[8] != (1 if last else 0):
            return "R20"
        data_len = len(message) - 9
        if (last and data_len >= self.chunk_size) or (not last and data_len != self.chunk_size):
            return "R21"
        return None

    def footer_rule(self, tags: list[bytes], footer: bytes) -> str | None:
        """Section 8.3, steps 1 to 3."""
        if len(footer) != 32 * len(tags) + self.signature_len:
            return "R26"
        if footer[: 32 * len(tags)] != b"".join(tags):
            return "R27"
        signer = self.header["signer"]
        signed = self.signed_header()
        message = b"".join([
            b"envelope v1 signature\x00", len(signed).to_bytes(4, "big"), signed, len(tags).to_bytes(8, "big"),
            hashlib.sha256(b"".join(tags)).digest(),
        ])  # fmt: skip
        signature = footer[32 * len(tags) :]
        public: Any = serialization.load_der_public_key(signer["key"])
        try:
            if signer["alg"] == "ecdsa-p256-sha256":
                r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                if s > P256_ORDER // 2:
                    return "R27"
                public.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
            else:
                public.verify(signature, message)  # Ed25519 in cryptography refuses a non-canonical S
        except InvalidSignature:
            return "R27"
        return None

    def signed_header(self) -> bytes:
        """H of section 8.3: the header's top-level entries but ``recipients``, as encoded."""
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(self.header_bytes)
        entries = []
        for _ in range(unpacker.read_map_header()):
            start = unpacker.tell()
            if unpacker.unpack() == "recipients":
                unpacker.skip()
            else:
                unpacker.skip()
                entries.append(self.header_bytes[start : unpacker.tell()])
        return b"".join(entries)

    def stream_rule(self) -> str | None:
        """Tokens found in order: a timestamp field of 0 announces a full token, any other value
        the final token and its length."""
        if not self.payload:
            return "R17"
        position, tags = 0, []
        while True:
            if len(self.payload) - position < 9:
                return "R18"
            stamp = int.from_bytes(self.payload[position + 1 : position + 9], "big")
            if stamp and not self.valid_len(stamp):
                return "R19"
            length = stamp or self.size
            if len(self.payload) - position < length:
                return "R18"
            token = self.payload[position : position + length]
            rule = self.token_rule(token, len(tags), last=stamp != 0)
            if rule is not None:
                return rule
            tags.append(token[-32:])
            position += length
            if stamp:
                break
        rest = self.payload[position:]
        if not self.signature_len:
            return "R22" if rest else None
        return self.footer_rule(tags, rest)

    def length_rules(self) -> set[str]:
        """Tokens found from the length: every rule that some check, in any order, reports; a signed
        file's footer is checked before the payload (FORMAT.md 9)."""
        if not self.payload:
            return {"R17"}
        found = layout(len(self.payload), self.chunk_size, self.signature_len)
        if found is None:
            return {"R18"}
        count, final = found
        end = (count - 1) * self.size + final
        tokens = [self.payload[i * self.size : min((i + 1) * self.size, end)] for i in range(count)]
        if self.signature_len:
            footer = self.footer_rule([token[-32:] for token in tokens], self.payload[end:])
            if footer is not None:
                return {footer}
        rules = {self.token_rule(token, i, i == count - 1) for i, token in enumerate(tokens)}
        return rules - {None}  # type: ignore[arg-type]


def layout(payload_len: int, chunk_size: int, signature_len: int) -> tuple[int, int] | None:
    """Section 7.3: the token count n and the final token's length f, or None if impossible."""
    size = PayloadModel.token_len(chunk_size)
    if signature_len:
        count, final = divmod(payload_len - signature_len + size, size + 32)
    else:
        count = -(-payload_len // size)
        final = payload_len - (count - 1) * size
    valid = count >= 1 and 73 <= final <= size and (final - 57) % 16 == 0
    return (count, final) if valid else None


@pytest.mark.parametrize(
    "name", [n for n, spec in SPECS.items() if spec["expect"] == "success" or spec["rule"] in PAYLOAD_RULES]
)
def test_a_payload_vector_breaks_its_rule_and_no_other(name: str) -> None:
    """FORMAT.md 9: "each negative vector breaks one rule only", for both ways of finding tokens."""
    spec = SPECS[name]
    model = PayloadModel(sealed_bytes(name), spec["keys"])
    if spec["expect"] == "success":
        assert model.stream_rule() is None and model.length_rules() == set()
        return
    assert model.stream_rule() == spec["rule"]
    assert model.length_rules() == {spec.get("from_length", spec)["rule"]}


def test_the_vector_set_is_complete() -> None:
    """Every MUST-reject rule (R1-R41, R45-R50; R42 binds writers) has a negative vector; every
    signature algorithm a positive one."""
    errors = [spec for spec in ALL_SPECS.values() if spec["expect"] == "error"]
    assert {spec["rule"] for spec in errors} == set(CATEGORIES)
    assert len(SUCCESSES) >= 40
    algorithms = {SPECS[name]["signer"]["algorithm"] for name in SUCCESSES if SPECS[name]["signer"]}
    assert algorithms == set(SIGNATURE_LEN)


def test_every_error_is_in_its_rules_category() -> None:
    for name, spec in ALL_SPECS.items():
        for expected in [spec, spec.get("from_length")] if spec["expect"] == "error" else []:
            if expected is not None:
                assert expected["error"] in CATEGORIES[expected["rule"]], name


def test_a_rewrap_keeps_the_payload_and_the_signature() -> None:
    """FORMAT.md 10: signed-ed25519-rewrapped is signed-ed25519 with other recipients."""
    original, rewrapped = sealed_bytes("signed-ed25519"), sealed_bytes("signed-ed25519-rewrapped")

    def payload(sealed: bytes) -> bytes:
        return sealed[13 + int.from_bytes(sealed[9:13], "big") + 32 :]

    assert original[:13] != rewrapped[:13] or original != rewrapped
    assert payload(original) == payload(rewrapped)
    assert SPECS["signed-ed25519"]["signer"] == SPECS["signed-ed25519-rewrapped"]["signer"]


@pytest.mark.parametrize(
    "value",
    [
        {"$int": 5},
        {"$bin": "00"},
        {"$float": {"$float": 1.5}},
        {"$map": {}},
        {"$": None},
        {"$other": [1, {"$int": b"\x01"}]},
        {"$int": 1, "$bin": 2},
        {"a": {"$map": {"$map": 2**64 - 1}}},
        {"big": -(2**63), "nan": float("nan"), "f": 1.0, "i": 1, "b": b""},
    ],
)
def test_tagged_json_round_trips_maps_with_dollar_keys(value: dict[str, Any]) -> None:
    """A map whose only key begins with "$" is written {"$map": ...}, so it is not read as a tag."""
    assert same(untag(json.loads(json.dumps(tagged(value)))), value)


def test_tagged_json_escapes_only_maps_with_a_single_dollar_key() -> None:
    assert tagged({"$int": 5}) == {"$map": {"$int": 5}}
    assert tagged({"x": {"$bin": b"\x01"}}) == {"x": {"$map": {"$bin": {"$bin": "01"}}}}
    assert tagged({"$int": 1, "$bin": 2}) == {"$int": 1, "$bin": 2}
    assert tagged({"int": 1}) == {"int": 1}
    with pytest.raises(ValueError, match="unknown tag"):
        untag({"$set": [1]})


@pytest.mark.parametrize("wrapped", [{}, {"a": 1}, {"$int": 1, "$bin": "00"}, [1], 5])
def test_tagged_json_refuses_a_map_tag_that_wraps_anything_but_one_dollar_key(wrapped: Any) -> None:
    """spec/vectors/README.md: a writer wraps only maps whose one key begins with "$"; a reader
    refuses any other $map (issue 17 item 12), so that one JSON text has one meaning."""
    with pytest.raises(ValueError, match=r"\$map"):
        untag({"$map": wrapped})


def test_format_appendix_a_walkthrough_is_true() -> None:
    """FORMAT.md appendix A describes this vector byte by byte; keep the two in step."""
    sealed = sealed_bytes("size-1-chunk-16")
    data_key = bytes.fromhex(SPECS["size-1-chunk-16"]["data_key"])
    assert len(sealed) == 515 and sealed[:13].hex() == "89454e560d0a1a0a010000018d"
    assert sealed[13:14] == b"\x84" and sealed[14:26] == b"\xaachunk_size\x10"
    assert sealed[26:39] == b"\xaarecipients\x91\x83" and sealed[361:369] == b"\xa4meta\xc4\x01\x80"
    assert sealed[369:378] == b"\xa6commit\xc4\x20"
    commitment = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 key commitment").derive(data_key)
    assert sealed[378:410] == commitment and commitment.hex().startswith("223a0ac6")
    assert commitment.hex().endswith("8205bc9")
    token = sealed[410 + 32 :]
    assert token[:9].hex() == "800000000000000049" and len(token) == 73  # timestamp field: its length
    fernet = Fernet(base64.urlsafe_b64encode(data_key))
    assert fernet.decrypt(base64.urlsafe_b64encode(token)).hex() == "000000000000000001a3"
    assert data_key.hex().startswith("409a0524") and data_key.hex().endswith("5c19b64a06")


def test_the_counts_the_documents_give_are_the_vectors_there() -> None:
    expected = {"success": 0, "error": 0}
    for spec in ALL_SPECS.values():
        expected[spec["expect"]] += 1
    total, good, bad = len(ALL_SPECS), expected["success"], expected["error"]
    readme = " ".join((VECTORS / "README.md").read_text().split())
    assert f"{total} files, {good} that must open and {bad} that must be refused" in readme
    top = " ".join((VECTORS.parent.parent / "README.md").read_text().split())
    assert f"holds {total} vectors ({good} that must open, {bad} that must be rejected" in top


@pytest.mark.parametrize("name", sorted(FOLDER_SPECS))
def test_folder_vectors(name: str) -> None:
    """FORMAT.md 11: each folder vector read as a folder, from the bytes and from a file."""
    spec = FOLDER_SPECS[name]
    keys = reader_keys(spec)
    if spec["expect"] == "error":
        with (  # the whole folder read: a pad byte is checked where it is read (R34)
            pytest.raises(getattr(envelope, spec["error"]), match=spec["rule"]),
            envelope.open_folder(sealed_bytes(name), keys, signed_by=pinned(spec)) as folder,
        ):
            folder.verify()
        return
    with envelope.open_folder(VECTORS / "v1" / f"{name}.envelope", keys, signed_by=pinned(spec)) as folder:
        folder.verify()
        found = [
            {
                "name": member.name,
                "size": member.size,
                "sha256": hashlib.sha256(folder.read(member.name)).hexdigest(),
                "executable": member.executable,
            }
            for member in folder.members
        ]
    assert found == spec["folder"]
