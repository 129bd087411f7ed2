"""The kit every vector generator uses: fixed test keys, seeded randomness, the records of randomised
operations, and :class:`TestFile`, which writes one envelope file from its parts (spec/FORMAT.md)
so that a negative vector can break exactly one rule.

Every byte comes from FORMAT.md and `cryptography`, not from the SDK: the vectors check the SDK, so
they must not be made by it. The one thing shared is the tagged JSON of the metadata
(``envelope.cli.render.tagged``), which spec/vectors/README.md defines and ``envelope-info`` writes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.cli.render import tagged

ROOT = Path(__file__).resolve().parents[2] / "spec" / "vectors"
MAGIC = b"\x89ENV\r\n\x1a\n"  # section 2
MAX_HEADER_LEN = 1 << 20
FIRST_DRAFT_LABEL = b"envelope v1 rsa-oaep-sha256"  # the OAEP label of the first draft (appendix B)

RSA_KEYS = {"rsa2048-a": 2048, "rsa2048-b": 2048, "rsa3072-a": 3072, "rsa4096-a": 4096, "rsa2048-stranger": 2048,
            "rsa1024-a": 1024}  # fmt: skip
RSA_PSS_KEY = "rsa2048-pss"  # an RSA-PSS-restricted key (id-RSASSA-PSS), made by `openssl genpkey`
SIGNING_KEYS = {"ed25519-a": "ed25519", "ecdsa-p256-a": "ecdsa-p256-sha256", "ml-dsa-65-a": "ml-dsa-65"}
SIGNATURE_LEN = {"ed25519": 64, "ecdsa-p256-sha256": 64, "ml-dsa-65": 3309}  # section 8.2
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493

# Section 9: the error category of each rule. Rules with two categories are given explicitly.
RULE_ERRORS = {
    "R1": "MalformedError", "R2": "UnsupportedError", "R4": "MalformedError", "R5": "MalformedError",
    "R6": "MalformedError", "R7": "LimitError", "R9": "MalformedError", "R10": "MalformedError",
    "R12": "UnsupportedError", "R13": "NoMatchingKeyError", "R14": "MalformedError",
    **{f"R{i}": "AuthenticationError" for i in range(15, 23)},
    "R23": "InvalidKeyError", "R24": "MalformedError", "R25": "UnsupportedError", "R26": "SignatureError",
    "R27": "SignatureError", "R28": "SignerError", "R35": "MalformedError", "R36": "AuthenticationError",
    "R37": "AuthenticationError", "R38": "InvalidKeyError", "R39": "MalformedError", "R40": "InvalidKeyError",
    "R41": "MalformedError",
}  # fmt: skip
# Section 4.4: ML-KEM-768 + X25519 keys, age identity files NAME.age from a seed. mlkem768x25519-age
# is the key of age's own test data (FiloSottile/age, cmd/age/testdata/hybrid.txt).
PQ_KEYS = ("mlkem768x25519-a", "mlkem768x25519-b", "mlkem768x25519-age")
AGE_PQ_SECRET = "AGE-SECRET-KEY-PQ-16XDSLZ3XCSZ3236YJ5J0T9NAPLZTP96LJKQCVHJYUDTQVJR5J5PQTDPQCX"
PQ_LABEL = b"envelope v1 mlkem768x25519"
XWING_LABEL = b"\\.//^\\"
X25519_KEYS = ("x25519-a", "x25519-b", "x25519-stranger")  # section 4.2; age identity files NAME.age
X25519_SPKI_PREFIX = bytes.fromhex("302a300506032b656e032100")  # section 4.2: the DER before the key
X25519_LABEL = b"envelope v1 x25519"
AGE_X25519_LABEL = b"age-encryption.org/v1/X25519"
# Section 4.3: OpenSSH Ed25519 keys, keys/NAME.openssh (made once, committed: OpenSSH's format holds a
# random check value). ssh-ed25519-age is the key of age's own test data (FiloSottile/age,
# cmd/age/testdata/ed25519.txt), so that a vector is sealed to a key age's tests use.
SSH_KEYS = ("ssh-ed25519-a", "ssh-ed25519-b", "ssh-ed25519-age")
SSH_BAD_KEY = "ssh-ed25519-bad-public"  # ssh-ed25519-a's file with ssh-ed25519-b's clear public key (R40)
SSH_LABEL = b"envelope v1 ssh-ed25519"
AGE_SSH_PRIVATE = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACB/aTuac9tiWRGrKEtixFlryYlGCPTOpdbmXN9RRmDF2gAAAKDgV/GC4Ffx
ggAAAAtzc2gtZWQyNTUxOQAAACB/aTuac9tiWRGrKEtixFlryYlGCPTOpdbmXN9RRmDF2g
AAAECvFoQXQzXgJLQ+Gz4PfEcfyZwC2gUjOiWTD//mTPyD8H9pO5pz22JZEasoS2LEWWvJ
iUYI9M6l1uZc31FGYMXaAAAAG2ZpbGlwcG9AQmlzdHJvbWF0aC1NMS5sb2NhbAEC
-----END OPENSSH PRIVATE KEY-----
"""  # age's label (C2SP age), for cross-protocol vectors


def seeded(name: str, purpose: str, size: int) -> bytes:
    """Deterministic bytes for one vector and one purpose (data keys, IVs, junk)."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"envelope-vectors/{name}/{purpose}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


TEXT = seeded("payload", "text", 200_000)  # the plaintext the vectors seal, or a prefix of it


def token_len(data_len: int) -> int:
    """Section 7.3: 57 + pad(9 + d)."""
    return 57 + 16 * ((9 + data_len) // 16 + 1)


def layout(payload_len: int, chunk_size: int, signature_len: int) -> tuple[int, int] | None:
    """Section 7.3 from the length alone: (n, f), or None when the layout is impossible (R17, R18)."""
    size = token_len(chunk_size)
    if payload_len <= 0:
        return None
    if signature_len:
        count, final = divmod(payload_len - signature_len + size, size + 32)
    else:
        count = -(-payload_len // size)
        final = payload_len - (count - 1) * size
    valid = count >= 1 and 73 <= final <= size and (final - 57) % 16 == 0
    return (count, final) if valid else None


def metadata(mapping: dict[str, Any]) -> bytes:
    """The canonical `meta` bytes of a map (section 3.1; msgpack writes the shortest forms)."""
    packed: bytes = msgpack.packb(mapping, use_bin_type=True)
    return packed


def kv(key: Any, value: Any) -> bytes:
    """One encoded map entry, for headers that a dict cannot express (duplicate or odd keys)."""
    return bytes(msgpack.packb(key, use_bin_type=True) + msgpack.packb(value, use_bin_type=True))


def raw_map(*entries: bytes) -> bytes:
    assert len(entries) < 16
    return bytes([0x80 + len(entries)]) + b"".join(entries)


def commitment(data_key: bytes) -> bytes:
    """Section 6: the header's `commit`."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 key commitment").derive(data_key)


def signed_header(header: bytes) -> bytes:
    """Section 8.3: H, every top-level entry of the header but `recipients`, as encoded, in order."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(header)
    entries = []
    start = None
    for _ in range(unpacker.read_map_header()):
        start = unpacker.tell()
        key = unpacker.unpack()
        unpacker.skip()
        if key != "recipients":
            entries.append(header[start : unpacker.tell()])
    return b"".join(entries)


def header_mac(data_key: bytes, authenticated: bytes) -> bytes:
    """Section 6."""
    mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 header").derive(data_key)
    mac = hmac.HMAC(mac_key, hashes.SHA256())
    mac.update(authenticated)
    return mac.finalize()


def fernet_token(data_key: bytes, message: bytes, iv: bytes, timestamp: int, version: int = 0x80) -> bytes:
    """Section 7.2: a raw Fernet token of any message, so that generators can forge bad ones."""
    pad = 16 - len(message) % 16
    encryptor = Cipher(algorithms.AES(data_key[16:]), modes.CBC(iv)).encryptor()
    body = bytes([version]) + struct.pack(">Q", timestamp) + iv
    body += encryptor.update(message + bytes([pad]) * pad) + encryptor.finalize()
    mac = hmac.HMAC(data_key[:16], hashes.SHA256())
    mac.update(body)
    return body + mac.finalize()


# --- age's key encoding (section 4.2), written from BIP-173 -------------------------------------

BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32(hrp: str, data: bytes) -> str:
    """BIP-173 Bech32 (checksum constant 1) of 8-bit data, lower case."""

    def polymod(values: list[int]) -> int:
        check = 1
        for value in values:
            top, check = check >> 25, (check & 0x1FFFFFF) << 5 ^ value
            for i, g in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
                check ^= g if (top >> i) & 1 else 0
        return check

    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    words = [int(bits[i : i + 5], 2) for i in range(0, len(bits), 5)]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    check = polymod(expanded + words + [0] * 6) ^ 1
    words += [(check >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32[w] for w in words)


def age_secret(secret: bytes) -> str:
    return bech32("age-secret-key-", secret).upper()


def age_public(share: bytes) -> str:
    return bech32("age", share)


def age_key_files() -> dict[str, str]:
    """The age identity files of keys/ (NAME.age) and their recipients (NAME.pub.age). Derived from
    seeds, so they are checked like the vectors. The files whose names begin with ``x25519-bad-``
    break R38 (section 4.2) in one way each."""
    secrets = {name: seeded(name, "x25519-secret", 32) for name in X25519_KEYS}
    shares = {
        n: x25519.X25519PrivateKey.from_private_bytes(k).public_key().public_bytes_raw() for n, k in secrets.items()
    }
    files: dict[str, str] = {}
    for name in X25519_KEYS:
        public = age_public(shares[name])
        files[f"{name}.age"] = f"# created: 2026-12-07T00:00:00Z\n# public key: {public}\n{age_secret(secrets[name])}\n"
        files[f"{name}.pub.age"] = public + "\n"
    for name in PQ_KEYS:
        seed = pq_seed(name)
        public = bech32("age1pq", pq_public(seed))
        secret = AGE_PQ_SECRET if name == "mlkem768x25519-age" else bech32("age-secret-key-pq-", seed).upper()
        files[f"{name}.age"] = f"# public key: {public}\n{secret}\n"
        files[f"{name}.pub.age"] = public + "\n"
    a, b = age_secret(secrets["x25519-a"]), age_secret(secrets["x25519-b"])
    files["x25519-several.age"] = f"# two keys, as age-keygen >> file writes them\n\n{b}\n\n  # indented comment\n{a}\n"
    last = BECH32[(BECH32.index(a[-1].lower()) + 1) % 32].upper()
    files["x25519-bad-checksum.age"] = a[:-1] + last + "\n"
    files["x25519-bad-mixed-case.age"] = a[:-8] + a[-8:].lower() + "\n"
    files["x25519-bad-lower-case.age"] = a.lower() + "\n"
    files["x25519-bad-short.age"] = age_secret(secrets["x25519-a"][:31]) + "\n"
    files["x25519-bad-prefix.age"] = bech32("age-secret-key-pq-x", secrets["x25519-a"]).upper() + "\n"
    files["x25519-bad-line.age"] = f"{a}\nage-secret-key\n"
    files["x25519-bad-form-feed.age"] = f"{a}\f# a comment after a form feed: not a line of its own\n"
    return files


def pq_seed(name: str) -> bytes:
    if name == "mlkem768x25519-age":
        seed = bytes.fromhex("d19b0f8a26c4051547449524f5967d0fc4b0975f9581865e44e3560648749502")  # AGE_PQ_SECRET's
        assert bech32("age-secret-key-pq-", seed).upper() == AGE_PQ_SECRET
        return seed
    return seeded(name, "mlkem768x25519-seed", 32)


def pq_keys(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    """Section 4.4: the ML-KEM-768 and X25519 halves of a seed."""
    expanded = hashlib.shake_256(seed).digest(96)
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]), x25519.X25519PrivateKey.from_private_bytes(
        expanded[64:]
    )


def pq_public(seed: bytes) -> bytes:
    m, x = pq_keys(seed)
    return m.public_key().public_bytes_raw() + x.public_key().public_bytes_raw()


def x25519_kid(share: bytes) -> bytes:
    return hashlib.sha256(X25519_SPKI_PREFIX + share).digest()


def x25519_wrap(share: bytes, esk: bytes, data_key: bytes, label: bytes = X25519_LABEL) -> tuple[bytes, bytes]:
    """Section 4.2: (epk, key) for the X25519 public key ``share`` and the ephemeral secret ``esk``."""
    ephemeral = x25519.X25519PrivateKey.from_private_bytes(esk)
    epk = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(share))
    wrap_key = HKDF(hashes.SHA256(), 32, salt=epk + share, info=label).derive(shared)
    return epk, ChaCha20Poly1305(wrap_key).encrypt(bytes(12), data_key, None)


# --- keys and the records of randomised operations ---------------------------------------------


class Keys:
    """The test keys of spec/vectors/keys/: PKCS#8 PEM and SubjectPublicKeyInfo PEM. Made once (when
    missing and not checking) and committed; loaded with `cryptography` alone, since the SDK would
    refuse the keys that break the policy on purpose (R23)."""

    def __init__(self, create: bool) -> None:
        self.private: dict[str, Any] = {}
        for name in [*RSA_KEYS, RSA_PSS_KEY, *SIGNING_KEYS]:
            path = ROOT / "keys" / f"{name}.pem"
            if not path.exists():
                if not create:
                    raise SystemExit(f"missing {path}; run tools/make_vectors.py without --check first")
                _create_key(name, path)
            self.private[name] = serialization.load_pem_private_key(path.read_bytes(), None)
        for filename, text in age_key_files().items():
            path = ROOT / "keys" / filename
            if create:
                path.write_text(text)
            elif not path.exists() or path.read_text() != text:
                raise SystemExit(f"{path} differs; run tools/make_vectors.py")
        self.x25519 = {name: seeded(name, "x25519-secret", 32) for name in X25519_KEYS}
        self.ssh: dict[str, ed25519.Ed25519PrivateKey] = {}
        for name in SSH_KEYS:
            path = ROOT / "keys" / f"{name}.openssh"
            if not path.exists():
                if not create:
                    raise SystemExit(f"missing {path}; run tools/make_vectors.py without --check first")
                _create_ssh_key(name, path)
            key = serialization.load_ssh_private_key(path.read_bytes(), None)
            assert isinstance(key, ed25519.Ed25519PrivateKey)
            self.ssh[name] = key
        bad = ROOT / "keys" / f"{SSH_BAD_KEY}.openssh"
        text = _swap_clear_public_key(ROOT / "keys" / "ssh-ed25519-a.openssh", self.ssh["ssh-ed25519-b"])
        if create:
            bad.write_text(text)
        elif not bad.exists() or bad.read_text() != text:
            raise SystemExit(f"{bad} differs; run tools/make_vectors.py")

    def ssh_share(self, name: str) -> bytes:
        """Section 4.3, from the private key: the X25519 public key of SHA-512(seed)[0:32]."""
        scalar = hashlib.sha512(self.ssh[name].private_bytes_raw()).digest()[:32]
        return x25519.X25519PrivateKey.from_private_bytes(scalar).public_key().public_bytes_raw()

    def ssh_kid(self, name: str) -> bytes:
        public = self.ssh[name].public_key()
        return hashlib.sha256(
            public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).digest()

    def x25519_share(self, name: str) -> bytes:
        return x25519.X25519PrivateKey.from_private_bytes(self.x25519[name]).public_key().public_bytes_raw()

    def spki(self, name: str) -> bytes:
        """DER SubjectPublicKeyInfo; an RSA-PSS key gives its rsaEncryption form (section 4.1)."""
        der: bytes = (
            self.private[name]
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return der

    def kid(self, name: str) -> bytes:
        return hashlib.sha256(self.spki(name)).digest()


def _create_key(name: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    public = path.with_name(f"{name}.pub.pem")
    if name == RSA_PSS_KEY:  # cryptography cannot write the id-RSASSA-PSS encoding
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", str(path)], check=True)  # fmt: skip
        subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout", "-out", str(public)], check=True)
        return
    key: Any
    if name in RSA_KEYS:
        key = rsa.generate_private_key(65537, RSA_KEYS[name])
    else:
        key = {
            "ed25519": ed25519.Ed25519PrivateKey.generate,
            "ecdsa-p256-sha256": functools.partial(ec.generate_private_key, ec.SECP256R1()),
            "ml-dsa-65": mldsa.MLDSA65PrivateKey.generate,
        }[SIGNING_KEYS[name]]()
    pem = serialization.Encoding.PEM
    path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))


def _create_ssh_key(name: str, path: Path) -> None:
    if name == "ssh-ed25519-age":
        text = AGE_SSH_PRIVATE
        public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH9pO5pz22JZEasoS2LEWWvJiUYI9M6l1uZc31FGYMXa\n"
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                 serialization.NoEncryption()).decode()  # fmt: skip
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        public = public.decode() + "\n"
    path.write_text(text)
    path.with_name(f"{name}.openssh.pub").write_text(public)


def _swap_clear_public_key(path: Path, other: ed25519.Ed25519PrivateKey) -> str:
    """The OpenSSH private key file at ``path`` with the public key stored in the clear (the first
    copy; the private section keeps its own) replaced by ``other``'s."""
    import base64

    lines = path.read_text().splitlines()
    raw = base64.b64decode("".join(lines[1:-1]))
    key = serialization.load_ssh_private_key(path.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    mine, theirs = key.public_key().public_bytes_raw(), other.public_key().public_bytes_raw()
    at = raw.index(mine)
    raw = raw[:at] + theirs + raw[at + 32 :]
    body = base64.b64encode(raw).decode()
    return "\n".join([lines[0], *(body[i : i + 70] for i in range(0, len(body), 70)), lines[-1]]) + "\n"


class Recorded:
    """Outputs of randomised operations, recorded in a JSON file of spec/vectors/ so that the
    vectors regenerate byte for byte: RSA-OAEP (randomised padding) and ECDSA and ML-DSA signatures
    (randomised nonces); `cryptography` cannot seed them. A recorded value is reused only after it
    is checked (it still unwraps to the data key, it still verifies); the file keeps only the
    values the vectors use."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        path = ROOT / filename
        self.known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        self.used: dict[str, str] = {}

    def get(self, slot: str, valid: Callable[[bytes], bool], make: Callable[[], bytes]) -> bytes:
        if slot not in self.used:
            recorded = bytes.fromhex(self.known.get(slot, ""))
            self.used[slot] = (recorded if recorded and valid(recorded) else make()).hex()
        return bytes.fromhex(self.used[slot])

    def render(self) -> bytes:
        return (json.dumps(dict(sorted(self.used.items())), indent=1) + "\n").encode()


class Kit:
    """What every generator shares: the keys and the two records."""

    def __init__(self, create: bool) -> None:
        self.keys = Keys(create)
        self.wraps = Recorded("oaep-wraps.json")  # slot: "kid:data key:label", hex
        self.signatures = Recorded("signatures.json")  # slot: "alg:kid:SHA-256(tbs)", hex
        self.encaps = Recorded("mlkem-encaps.json")  # slot: "kid:data key:purpose", ML-KEM-768 ciphertext hex

    def pq_entry(self, key_name: str, data_key: bytes, esk: bytes, purpose: str = "") -> dict[str, Any]:
        """Section 4.4: the mlkem768x25519 entry of ``data_key`` for a key. ML-KEM encapsulation is
        randomised and cryptography cannot seed it: its ciphertext is recorded (checked to be one)."""
        seed = pq_seed(key_name)
        public = pq_public(seed)
        kid = hashlib.sha256(public).digest()
        private_m, _ = pq_keys(seed)
        slot = f"{kid.hex()}:{data_key.hex()}:{purpose}"
        ct_m = self.encaps.get(slot, lambda ct: len(ct) == 1088, lambda: private_m.public_key().encapsulate()[1])
        ss_m = private_m.decapsulate(ct_m)
        ephemeral = x25519.X25519PrivateKey.from_private_bytes(esk)
        ct_x = ephemeral.public_key().public_bytes_raw()
        ss_x = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(public[1184:]))
        ss = hashlib.sha3_256(ss_m + ss_x + ct_x + public[1184:] + XWING_LABEL).digest()
        wrap_key = HKDF(hashes.SHA256(), 32, salt=None, info=PQ_LABEL).derive(ss)
        key = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), data_key, None)
        return {"type": "mlkem768x25519", "kid": kid, "enc": ct_m + ct_x, "key": key}

    def wrap(self, key_name: str, data_key: bytes, label: bytes = b"") -> bytes:
        """RSA-OAEP-SHA256 of `data_key` to a key (section 4.1; the empty label unless told)."""
        private = self.keys.private[key_name]
        oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), label or None)

        def valid(wrapped: bytes) -> bool:
            try:
                return bool(private.decrypt(wrapped, oaep) == data_key)
            except ValueError:
                return False

        slot = f"{self.keys.kid(key_name).hex()}:{data_key.hex()}:{label.hex()}"
        return self.wraps.get(slot, valid, lambda: private.public_key().encrypt(data_key, oaep))

    def sign(self, key_name: str, message: bytes) -> bytes:
        """A signature in the encoding of section 8.2 (ECDSA: r || s, low s)."""
        key = self.keys.private[key_name]
        alg = SIGNING_KEYS[key_name]
        if alg == "ed25519":  # deterministic: nothing to record
            return bytes(key.sign(message))
        slot = f"{alg}:{self.keys.kid(key_name).hex()}:{hashlib.sha256(message).hexdigest()}"
        public = key.public_key()
        return self.signatures.get(slot, lambda s: verifies(public, message, s), lambda: _sign(key, message))


def _sign(key: Any, message: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + min(s, P256_ORDER - s).to_bytes(32, "big")
    return bytes(key.sign(message))


def verifies(public: Any, message: bytes, signature: bytes) -> bool:
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            if len(signature) != 64 or s > P256_ORDER // 2:
                return False
            public.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        else:
            public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


# --- one file ------------------------------------------------------------------------------------


class TestFile:
    """One vector: the file, written part after part, and what a reader must make of it.

    ``header`` holds the top-level header fields in order; a recipient given as a key name becomes
    that key's ``rsa-oaep-sha256`` entry when the header is written. The data key and the IVs come
    from the vector's seed, so the file is the same at every run.
    """

    def __init__(self, kit: Kit, name: str, seed: str | None = None) -> None:
        self.kit = kit
        self.name = name
        self.seed = seed or name
        self.data_key = seeded(self.seed, "data-key", 32)
        self.header: dict[str, Any] = {
            "chunk_size": 16,
            "recipients": ["rsa2048-a"],
            "meta": b"\x80",
            "commit": commitment(self.data_key),
        }
        self.written_header = b""  # the header's bytes, as last written (what a signature covers)
        self.out = bytearray()
        self.payload_start = 0  # set when the header is written
        self.tags: list[bytes] = []  # of the tokens written, in order
        self.plaintext = b""
        self.keys = ["rsa2048-a"]  # what the reader holds, in order
        self.signed_by: list[str] | None = None  # the signers the reader requires
        self.description = ""
        self.expected: dict[str, Any] = {"expect": "success"}
        self._signer: tuple[str, str, bytes] | None = None  # key name, alg, key as signed
        self._ivs = 0

    # header -----------------------------------------------------------------------------------

    def entry(self, key_name: str, **change: Any) -> dict[str, Any]:
        """The `rsa-oaep-sha256` entry of a key (section 4.1), or the `x25519` entry (4.2), with
        fields changed or added."""
        if key_name in X25519_KEYS:
            share = self.kit.keys.x25519_share(key_name)
            epk, key = x25519_wrap(share, seeded(self.seed, f"esk/{key_name}", 32), self.data_key)
            return {"type": "x25519", "kid": x25519_kid(share), "epk": epk, "key": key, **change}
        if key_name in PQ_KEYS:
            return {**self.kit.pq_entry(key_name, self.data_key, seeded(self.seed, f"esk/{key_name}", 32)), **change}
        if key_name in SSH_KEYS:
            share = self.kit.keys.ssh_share(key_name)
            esk = seeded(self.seed, f"esk/{key_name}", 32)
            epk, key = x25519_wrap(share, esk, self.data_key, SSH_LABEL)
            return {"type": "ssh-ed25519", "kid": self.kit.keys.ssh_kid(key_name), "epk": epk, "key": key, **change}
        entry = {"type": "rsa-oaep-sha256", "kid": self.kit.keys.kid(key_name)}
        if "key" not in change:
            entry["key"] = self.kit.wrap(key_name, self.data_key)
        return {**entry, **change}

    def encode_header(self) -> bytes:
        fields = dict(self.header)
        if isinstance(fields.get("recipients"), list):
            fields["recipients"] = [self.entry(r) if isinstance(r, str) else r for r in fields["recipients"]]
        return bytes(msgpack.packb(fields, use_bin_type=True))

    def header_pairs(self) -> list[bytes]:
        """The header's entries, encoded one by one (to build maps a dict cannot hold)."""
        encoded = self.encode_header()
        fields = msgpack.unpackb(encoded, raw=False)
        return [kv(k, v) for k, v in fields.items()]

    def sign(self, key_name: str, *, alg: str | None = None, key: bytes | None = None) -> None:
        """Make this a signed file (section 8.1): `critical` names `signature`, `signer` names the key.
        `alg` and `key` replace what the header says (and what is signed)."""
        alg = alg or SIGNING_KEYS[key_name]
        key = self.kit.keys.spki(key_name) if key is None else key
        self._signer = (key_name, alg, key)
        self.header["critical"] = ["signature"]
        self.header["signer"] = {"alg": alg, "kid": hashlib.sha256(key).digest(), "key": key}

    def write_header(
        self, header: bytes | None = None, *, version: int = 1, header_len: int | None = None, mac_key: bytes = b""
    ) -> None:
        """Prefix, header (``header``, or ``self.header`` encoded) and header MAC (sections 2, 3, 6)."""
        header = self.encode_header() if header is None else header
        self.written_header = header
        prefix = MAGIC + struct.pack(">BI", version, len(header) if header_len is None else header_len)
        self.out += prefix + header + header_mac(mac_key or self.data_key, prefix + header)
        self.payload_start = len(self.out)

    # payload ----------------------------------------------------------------------------------

    def iv(self) -> bytes:
        self._ivs += 1
        return seeded(self.seed, f"iv{self._ivs}", 16)

    def make_token(
        self,
        index: int,
        flag: int,
        data: bytes,
        *,
        last: bool | None = None,
        timestamp: int | None = None,
        message: bytes | None = None,
        version: int = 0x80,
        key: bytes = b"",
    ) -> bytes:
        """The token of chunk message ``u64be(index) || u8(flag) || data`` (or of ``message``).
        Its timestamp field is what section 7.2 asks for a token that is ``last`` (by default: the
        flag is 1) or not, unless ``timestamp`` says otherwise."""
        message = struct.pack(">QB", index, flag) + data if message is None else message
        length = 57 + 16 * (len(message) // 16 + 1)
        last = flag == 1 if last is None else last
        stamp = (length if last else 0) if timestamp is None else timestamp
        return fernet_token(key or self.data_key, message, self.iv(), stamp, version)

    def append_token(self, token: bytes) -> None:
        self.out += token
        self.tags.append(token[-32:])

    def token(self, index: int, flag: int, data: bytes, **options: Any) -> None:
        self.append_token(self.make_token(index, flag, data, **options))

    def payload(self, plaintext: bytes) -> None:
        """Every chunk of ``plaintext`` as section 7.1 cuts it."""
        size = self.header["chunk_size"]
        full = len(plaintext) // size
        for index in range(full + 1):
            self.token(index, int(index == full), plaintext[index * size : (index + 1) * size])
        self.plaintext = plaintext

    def to_be_signed(self, tags: list[bytes], header: bytes | None = None) -> bytes:
        """Section 8.3, over the header as written (or ``header``, to sign another than the file's)."""
        signed = signed_header(self.written_header if header is None else header)
        return b"".join([
            b"envelope v1 signature\x00",
            struct.pack(">I", len(signed)),
            signed,
            struct.pack(">Q", len(tags)),
            hashlib.sha256(b"".join(tags)).digest(),
        ])  # fmt: skip

    def footer(self, tags: list[bytes] | None = None, *, signed: bytes | None = None) -> None:
        """Section 8.3: the tags (those of the tokens written, unless given) and their signature,
        over the header written (or over the header bytes ``signed``: what the signer saw)."""
        assert self._signer is not None
        tags = self.tags if tags is None else tags
        self.out += b"".join(tags) + self.kit.sign(self._signer[0], self.to_be_signed(tags, signed))

    @property
    def signature_len(self) -> int:
        return SIGNATURE_LEN[SIGNING_KEYS[self._signer[0]]] if self._signer else 0  # as signed

    def seal(self, plaintext: bytes = b"x") -> None:
        """A whole valid file: header, every chunk, and the footer when signed."""
        self.write_header()
        self.payload(plaintext)
        if self._signer is not None:
            self.footer()

    # changes after the fact ------------------------------------------------------------------

    def flip(self, offset: int, bits: int = 0x01) -> None:
        self.out[offset] ^= bits

    def cut(self, count: int) -> None:
        del self.out[len(self.out) - count :]

    def replace(self, old: bytes, new: bytes) -> None:
        """Replace the first ``old`` (which must be there)."""
        at = self.out.index(old)
        self.out[at : at + len(old)] = new

    # expectations -----------------------------------------------------------------------------

    def expect_error(self, rule: str, error: str | None = None, *, from_length: str | None = None) -> None:
        """A reader must refuse the file under ``rule``. ``from_length``: the rule that a reader
        deriving the layout from the file's length (section 7.3) reports instead."""
        self.expected = {"expect": "error", "error": error or RULE_ERRORS[rule], "rule": rule}
        if from_length is not None:
            self.expected["from_length"] = {"rule": from_length, "error": RULE_ERRORS[from_length]}

    def check(self) -> None:
        """What the generator claims about the file holds (a wrong claim is a generator bug)."""
        from_length = self.expected.get("from_length", {}).get("rule")
        if from_length == "R18":
            found = layout(len(self.out) - self.payload_start, self.header["chunk_size"], self.signature_len)
            assert found is None, f"{self.name}: the layout is possible, so R18 is not what a length reader sees"
        if self.expected["expect"] == "success":
            found = layout(len(self.out) - self.payload_start, self.header["chunk_size"], self.signature_len)
            assert found is not None and found[0] == len(self.tags), f"{self.name}: layout"

    def describe(self) -> dict[str, Any]:
        """The vector's JSON (spec/vectors/README.md)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "keys": self.keys}
        if self.signed_by is not None:
            out["signed_by"] = self.signed_by
        out.update(self.expected)
        if self.expected["expect"] == "error":
            return out
        header_len = int.from_bytes(self.out[9:13], "big")
        header = msgpack.unpackb(bytes(self.out[13 : 13 + header_len]), raw=False)
        signer = header.get("signer")
        out.update(
            plaintext_length=len(self.plaintext),
            plaintext_sha256=hashlib.sha256(self.plaintext).hexdigest(),
            chunk_size=header["chunk_size"],
            chunk_count=len(self.tags),
            metadata=tagged(msgpack.unpackb(header["meta"], raw=False)),
            data_key=self.data_key.hex(),
            signer=None if signer is None else {"algorithm": signer["alg"], "key_id": signer["kid"].hex()},
        )
        if len(self.plaintext) <= 64:
            out["plaintext_hex"] = self.plaintext.hex()
        return out


# --- the registry of generators -------------------------------------------------------------------


@dataclass(frozen=True)
class Generator:
    name: str
    description: str
    make: Callable[[TestFile], None]
    seed: str | None = None

    def build(self, kit: Kit) -> tuple[bytes, dict[str, Any]]:
        f = TestFile(kit, self.name, self.seed)
        f.description = self.description
        self.make(f)
        f.check()
        return bytes(f.out), f.describe()


GENERATORS: list[Generator] = []


def vector(
    make: Callable[[TestFile], None] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    seed: str | None = None,
) -> Any:
    """Register a generator: its name is the function's (``_`` as ``-``), its description the
    docstring. ``seed``: another vector's name, to share its data key and IVs."""

    def register(make: Callable[[TestFile], None]) -> Callable[[TestFile], None]:
        text = description if description is not None else " ".join((make.__doc__ or "").split())
        GENERATORS.append(Generator(name or make.__name__.replace("_", "-"), text, make, seed))
        return make

    return register(make) if make is not None else register
