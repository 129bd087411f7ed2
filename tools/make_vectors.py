#!/usr/bin/env python3
"""Generate the test vectors in spec/vectors/ (layout: spec/vectors/README.md).

Everything is deterministic except RSA-OAEP, whose padding is randomised by design and cannot be
seeded through `cryptography`: to keep regeneration byte-stable, a wrapped key already present in an
existing vector is reused when it still unwraps to the same data key. Data keys, IVs and timestamps
come from fixed seeds through the internal building blocks (`envelope.core.build_header`,
`envelope._stream.ChunkSealer`); the public API never exposes them.

    python tools/make_vectors.py            # write spec/vectors/{keys,v1}
    python tools/make_vectors.py --check    # regenerate in memory and fail if anything differs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import envelope
from envelope._datakey import DataKey
from envelope._format import MAGIC, decode_header, decode_metadata
from envelope.cli.render import tagged as tag  # the tagged JSON of spec/vectors/README.md

ROOT = Path(__file__).resolve().parent.parent / "spec" / "vectors"
SEAL_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z: what the first draft put in the timestamp field
KEY_SPECS = {"rsa2048-a": 2048, "rsa2048-b": 2048, "rsa3072-a": 3072, "rsa4096-a": 4096, "rsa2048-stranger": 2048}
OAEP_LABEL = None  # the empty label (FORMAT.md 4.1)
FIRST_DRAFT_LABEL = b"envelope v1 rsa-oaep-sha256"


# --- deterministic material ------------------------------------------------------------------


def seeded(name: str, purpose: str, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"envelope-vectors/{name}/{purpose}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def load_keys(write: bool) -> dict[str, rsa.RSAPrivateKey]:
    keys = {}
    for name, bits in KEY_SPECS.items():
        path = ROOT / "keys" / f"{name}.pem"
        if path.exists():
            keys[name] = envelope.load_private_key(path)
        else:
            if not write:
                raise SystemExit(f"missing {path}; run without --check first")
            keys[name] = envelope.generate_private_key(bits)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(envelope.private_key_pem(keys[name]))
            (ROOT / "keys" / f"{name}.pub.pem").write_bytes(envelope.public_key_pem(keys[name]))
    return keys


class WrapCache:
    """Remembers every RSA-OAEP wrap in spec/vectors/oaep-wraps.json so regeneration is byte-stable.

    OAEP padding is randomised and `cryptography` offers no way to seed it; a recorded wrap is
    reused only after checking that it still unwraps to the same data key.
    """

    PATH = ROOT / "oaep-wraps.json"

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey]) -> None:
        self.by_kid = {envelope.key_id(k): k for k in keys.values()}
        self.known: dict[str, str] = json.loads(self.PATH.read_text()) if self.PATH.exists() else {}
        self.used: dict[str, str] = {}

    def wrap(self, public: rsa.RSAPublicKey, data_key: bytes, label: bytes | None = OAEP_LABEL) -> bytes:
        kid = envelope.key_id(public)
        slot = f"{kid}:{data_key.hex()}:{(label or b'').hex()}"
        if slot in self.used:
            return bytes.fromhex(self.used[slot])
        oaep = _oaep(label)
        wrapped = bytes.fromhex(self.known.get(slot, ""))
        try:
            valid = bool(wrapped) and self.by_kid[kid].decrypt(wrapped, oaep) == data_key
        except ValueError:
            valid = False
        if not valid:
            wrapped = public.encrypt(data_key, oaep)
        self.used[slot] = wrapped.hex()
        return wrapped

    def save(self) -> None:
        self.PATH.write_text(json.dumps(dict(sorted(self.used.items())), indent=1) + "\n")


def _oaep(label: bytes | None = OAEP_LABEL) -> padding.OAEP:
    return padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), label)


def spec_timestamp(message: bytes) -> int:
    """FORMAT.md 7.2: 0, or in a final token (flag byte 1) the token's own length."""
    return 57 + 16 * (len(message) // 16 + 1) if len(message) > 8 and message[8] == 1 else 0


def token(data_key: bytes, message: bytes, iv: bytes, timestamp: int | None = None, version: int = 0x80) -> bytes:
    """A raw Fernet token of an arbitrary message (the generator must be able to forge bad ones)."""
    timestamp = spec_timestamp(message) if timestamp is None else timestamp
    pad = 16 - len(message) % 16
    encryptor = Cipher(algorithms.AES(data_key[16:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(message + bytes([pad]) * pad) + encryptor.finalize()
    body = bytes([version]) + struct.pack(">Q", timestamp) + iv + ciphertext
    mac = hmac.HMAC(data_key[:16], hashes.SHA256())
    mac.update(body)
    return body + mac.finalize()


def frame(index: int, final: bool | int, data: bytes) -> bytes:
    return struct.pack(">QB", index, int(final)) + data


# --- one vector ------------------------------------------------------------------------------


@dataclass
class Vector:
    name: str
    description: str
    keys: list[str]
    data: bytes
    plaintext: bytes | None = None  # for success vectors
    error: str | None = None
    rule: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Builder:
    """Builds a file from parts; each hook lets a negative vector break exactly one thing."""

    def __init__(self, name: str, keys: dict[str, rsa.RSAPrivateKey], wraps: WrapCache) -> None:
        self.name = name
        self.keys = keys
        self.wraps = wraps
        self.data_key = seeded(name, "data-key", 32)
        self._iv_counter = 0

    def iv(self) -> bytes:
        self._iv_counter += 1
        return seeded(self.name, f"iv{self._iv_counter}", 16)

    def entry(self, key_name: str) -> dict[str, Any]:
        public = self.keys[key_name].public_key()
        return {
            "type": "rsa-oaep-sha256",
            "kid": bytes.fromhex(envelope.key_id(public)),
            "key": self.wraps.wrap(public, self.data_key),
        }

    def header(self, recipients: list[str], chunk_size: int, meta: bytes = b"\x80", **extra: Any) -> bytes:
        fields: dict[str, Any] = {
            "chunk_size": chunk_size,
            "recipients": [self.entry(r) for r in recipients],
            "meta": meta,
        }
        fields.update(extra)
        return msgpack.packb(fields, use_bin_type=True)

    def tokens(self, plaintext: bytes, chunk_size: int) -> list[bytes]:
        full = len(plaintext) // chunk_size
        return [
            token(self.data_key, frame(i, i == full, plaintext[i * chunk_size : (i + 1) * chunk_size]), self.iv())
            for i in range(full + 1)
        ]

    def file(
        self,
        header: bytes,
        tokens: list[bytes],
        *,
        version: int = 1,
        header_len: int | None = None,
        mac_key: bytes | None = None,
    ) -> bytes:
        prefix = MAGIC + struct.pack(">BI", version, len(header) if header_len is None else header_len)
        mac = DataKey(mac_key or self.data_key).header_mac(prefix + header)
        return prefix + header + mac + b"".join(tokens)

    def sealed(self, plaintext: bytes, recipients: list[str], chunk_size: int, meta: bytes = b"\x80") -> bytes:
        return self.file(self.header(recipients, chunk_size, meta), self.tokens(plaintext, chunk_size))


def meta_of(mapping: dict[str, Any]) -> bytes:
    return envelope._format.encode_metadata(mapping)


def all_types_meta() -> bytes:
    """Every allowed metadata type, including a float32 that msgpack-python would not write."""
    items = [
        ("nil", None),
        ("true", True),
        ("false", False),
        ("int", 42),
        ("negative", -17),
        ("int64-min", -(2**63)),
        ("uint64-max", 2**64 - 1),
        ("float64", 3.141592653589793),
        ("text", "ünïcødé ✓"),
        ("bytes", b"\x00\xff\x10"),
        ("array", [1, "two", None, [3.5]]),
        ("map", {"inner": {"deeper": [True]}}),
        ("depth-8", {"a": [[[[[[0]]]]]]}),
        ("", "empty key"),
    ]
    body = b"".join(msgpack.packb(k) + msgpack.packb(v, use_bin_type=True) for k, v in items)
    body += msgpack.packb("float32") + msgpack.packb(1.5, use_single_float=True)
    return bytes([0xDE]) + struct.pack(">H", len(items) + 1) + body


# --- the catalogue -------------------------------------------------------------------------


def catalogue(keys: dict[str, rsa.RSAPrivateKey], wraps: WrapCache) -> list[Vector]:
    vectors: list[Vector] = []

    def ok(
        name: str, description: str, plaintext: bytes, make: Callable[[Builder], bytes], keys_: list[str] | None = None
    ) -> None:
        vectors.append(Vector(name, description, keys_ or ["rsa2048-a"], make(Builder(name, keys, wraps)), plaintext))

    def bad(
        name: str,
        rule: str,
        error: str,
        description: str,
        make: Callable[[Builder], bytes],
        keys_: list[str] | None = None,
    ) -> None:
        vectors.append(
            Vector(name, description, keys_ or ["rsa2048-a"], make(Builder(name, keys, wraps)), error=error, rule=rule)
        )

    text = bytes(seeded("payload", "text", 200_000))
    a = ["rsa2048-a"]

    # Positive: sizes at and around chunk boundaries, several chunk sizes.
    for size, chunk in [
        (0, 16),
        (1, 16),
        (15, 16),
        (16, 16),
        (17, 16),
        (64, 16),
        (100, 1000),
        (999, 1000),
        (1000, 1000),
        (2500, 1000),
        (70_000, 65536),
        (131_072, 65536),
        (200_000, 65536),
    ]:
        ok(
            f"size-{size}-chunk-{chunk}",
            f"{size} plaintext bytes in chunks of {chunk}",
            text[:size],
            lambda b, s=size, c=chunk: b.sealed(text[:s], a, c),
        )
    for key in ("rsa2048-a", "rsa3072-a", "rsa4096-a"):
        ok(
            f"key-{key}",
            f"a single {key} recipient",
            text[:300],
            lambda b, k=key: b.sealed(text[:300], [k], 128),
            [key],
        )
    for key in ("rsa2048-a", "rsa3072-a", "rsa4096-a"):
        ok(
            f"three-recipients-opened-by-{key}",
            "sealed to 2048, 3072 and 4096-bit keys; opened by one of them",
            text[:500],
            lambda b: b.sealed(text[:500], ["rsa2048-a", "rsa3072-a", "rsa4096-a"], 64),
            [key],
        )
    ok(
        "holder-has-several-keys",
        "the reader holds a stranger's key and a recipient's, in that order",
        text[:50],
        lambda b: b.sealed(text[:50], ["rsa2048-b"], 16),
        ["rsa2048-stranger", "rsa2048-b"],
    )
    ok(
        "metadata-all-types",
        "metadata with every allowed type, float32 included, nested to depth 8",
        text[:40],
        lambda b: b.sealed(text[:40], a, 16, all_types_meta()),
    )
    ok(
        "metadata-model",
        "typical model metadata",
        text[:1000],
        lambda b: b.sealed(
            text[:1000], a, 256, meta_of({"envelope.framework": "keras", "name": "resnet", "version": 3})
        ),
    )
    ok(
        "forward-compatible-header",
        "an unknown recipient type before ours, an unknown top-level key, an empty critical array",
        text[:20],
        lambda b: b.file(
            msgpack.packb(
                {
                    "chunk_size": 16,
                    "recipients": [{"type": "pq-kem-2031", "blob": b"\x01" * 40}, b.entry("rsa2048-a")],
                    "meta": b"\x80",
                    "future": {"hint": [1, 2]},
                    "critical": [],
                },
                use_bin_type=True,
            ),
            b.tokens(text[:20], 16),
        ),
    )
    ok(
        "non-canonical-header",
        "valid but not canonical: keys out of order, chunk_size as uint32; readers accept it",
        text[:20],
        lambda b: b.file(
            b"\x83"
            + msgpack.packb("meta")
            + msgpack.packb(b"\x80", use_bin_type=True)
            + msgpack.packb("recipients")
            + msgpack.packb([b.entry("rsa2048-a")], use_bin_type=True)
            + msgpack.packb("chunk_size")
            + b"\xce"
            + struct.pack(">I", 16),
            b.tokens(text[:20], 16),
        ),
    )
    bad(
        "r19-timestamp-seal-time",
        "R19",
        "AuthenticationError",
        "the final token's timestamp field holds a seal time (the first draft's rule), not its length",
        lambda b: b.file(b.header(a, 16), [token(b.data_key, frame(0, True, b"old"), b.iv(), timestamp=SEAL_TIME)]),
    )
    ok(
        "final-token-as-long-as-full",
        "a final chunk of chunk_size-1 bytes whose token is as long as a full one",
        text[:31],
        lambda b: b.sealed(text[:31], a, 16),
    )

    # Negative, rule by rule.
    def good(b: Builder, size: int = 40, chunk: int = 16) -> bytes:
        return b.sealed(text[:size], a, chunk)

    bad("r1-empty-file", "R1", "MalformedError", "an empty file", lambda b: b"")
    bad("r1-short", "R1", "MalformedError", "five bytes", lambda b: good(b)[:5])
    bad("r1-bad-magic", "R1", "MalformedError", "a zip file's magic", lambda b: b"PK\x03\x04" + good(b)[4:])
    bad(
        "r1-line-ending-conversion",
        "R1",
        "MalformedError",
        "CRLF turned into LF by a text-mode transfer",
        lambda b: good(b).replace(b"\r\n", b"\n", 1),
    )
    bad(
        "r2-version-2",
        "R2",
        "UnsupportedError",
        "major version 2",
        lambda b: b.file(b.header(a, 16), b.tokens(b"x", 16), version=2),
    )
    bad(
        "r2-version-0",
        "R2",
        "UnsupportedError",
        "major version 0",
        lambda b: b.file(b.header(a, 16), b.tokens(b"x", 16), version=0),
    )
    bad(
        "r3-header-len-zero",
        "R3",
        "MalformedError",
        "header_len 0",
        lambda b: MAGIC + b"\x01\x00\x00\x00\x00" + b"\x80" * 40,
    )
    bad(
        "r3-header-len-4gib",
        "R3",
        "LimitError",
        "header_len 0xFFFFFFFF: refused before allocating",
        lambda b: MAGIC + b"\x01\xff\xff\xff\xff" + b"\x80" * 40,
    )
    bad(
        "r3-header-len-over-limit",
        "R3",
        "LimitError",
        "header_len 1 MiB + 1",
        lambda b: MAGIC + b"\x01\x00\x10\x00\x01" + b"\x80" * 40,
    )
    bad("r4-truncated-in-header", "R4", "MalformedError", "file ends inside the header", lambda b: good(b)[:100])
    bad(
        "r4-truncated-in-mac",
        "R4",
        "MalformedError",
        "file ends inside the header MAC",
        lambda b: good(b)[: envelope.inspect(good(b)).header_size - 10],
    )

    def raw_header(b: Builder, header: bytes) -> bytes:
        return b.file(header, b.tokens(b"x", 16))

    entry_bytes = lambda b: msgpack.packb([b.entry("rsa2048-a")], use_bin_type=True)  # noqa: E731
    map3 = lambda b, *pairs: bytes([0x80 + len(pairs)]) + b"".join(pairs)  # noqa: E731
    kv = lambda k, v: msgpack.packb(k) + msgpack.packb(v, use_bin_type=True)  # noqa: E731
    base_pairs = lambda b: [kv("chunk_size", 16), msgpack.packb("recipients") + entry_bytes(b), kv("meta", b"\x80")]  # noqa: E731

    bad("r5-not-a-map", "R5", "MalformedError", "the header is an array", lambda b: raw_header(b, msgpack.packb([16])))
    bad(
        "r5-trailing-byte-in-header",
        "R5",
        "MalformedError",
        "one byte after the map, inside header_len",
        lambda b: raw_header(b, b.header(a, 16) + b"\xc0"),
    )
    bad(
        "r5-duplicate-key",
        "R5",
        "MalformedError",
        "'chunk_size' twice",
        lambda b: raw_header(b, map3(b, *base_pairs(b), kv("chunk_size", 16))),
    )
    bad(
        "r5-duplicate-key-in-entry",
        "R5",
        "MalformedError",
        "'kid' twice in a recipient entry",
        lambda b: raw_header(
            b,
            map3(
                b,
                kv("chunk_size", 16),
                msgpack.packb("recipients")
                + b"\x91\x84"
                + b"".join(kv(k, v) for k, v in b.entry("rsa2048-a").items())
                + kv("kid", b"k" * 32),
                kv("meta", b"\x80"),
            ),
        ),
    )
    bad(
        "r5-integer-key",
        "R5",
        "MalformedError",
        "a map key that is an integer",
        lambda b: raw_header(b, map3(b, *base_pairs(b), msgpack.packb(7) + msgpack.packb(1))),
    )
    bad(
        "r5-invalid-utf8",
        "R5",
        "MalformedError",
        "a key that is not UTF-8",
        lambda b: raw_header(b, map3(b, *base_pairs(b), b"\xa2\xff\xfe" + msgpack.packb(1))),
    )
    bad(
        "r5-ext-type",
        "R5",
        "MalformedError",
        "an ext value under an unknown key",
        lambda b: raw_header(b, map3(b, *base_pairs(b), msgpack.packb("x") + b"\xd4\x05\x00")),
    )
    bad(
        "r5-timestamp",
        "R5",
        "MalformedError",
        "a msgpack timestamp under an unknown key",
        lambda b: raw_header(b, map3(b, *base_pairs(b), msgpack.packb("x") + b"\xd6\xff\x00\x00\x00\x01")),
    )
    bad(
        "r5-too-deep",
        "R5",
        "MalformedError",
        "an unknown key nesting 17 levels",
        lambda b: raw_header(b, map3(b, *base_pairs(b), msgpack.packb("x") + b"\x91" * 16 + b"\xc0")),
    )
    bad(
        "r6-chunk-size-missing",
        "R6",
        "MalformedError",
        "no chunk_size",
        lambda b: raw_header(b, map3(b, *base_pairs(b)[1:])),
    )
    bad(
        "r6-chunk-size-string",
        "R6",
        "MalformedError",
        "chunk_size is a string",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": "16", "recipients": [b.entry("rsa2048-a")], "meta": b"\x80"}, use_bin_type=True
            ),
        ),
    )
    bad(
        "r6-chunk-size-float",
        "R6",
        "MalformedError",
        "chunk_size is 16.0",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16.0, "recipients": [b.entry("rsa2048-a")], "meta": b"\x80"}, use_bin_type=True
            ),
        ),
    )
    bad(
        "r6-meta-string",
        "R6",
        "MalformedError",
        "meta is a str, not bin",
        lambda b: raw_header(
            b,
            msgpack.packb({"chunk_size": 16, "recipients": [b.entry("rsa2048-a")], "meta": "\x80"}, use_bin_type=True),
        ),
    )
    bad(
        "r6-recipients-map",
        "R6",
        "MalformedError",
        "recipients is a map",
        lambda b: raw_header(
            b, msgpack.packb({"chunk_size": 16, "recipients": b.entry("rsa2048-a"), "meta": b"\x80"}, use_bin_type=True)
        ),
    )
    bad(
        "r6-critical-not-array",
        "R6",
        "MalformedError",
        "critical is a string",
        lambda b: raw_header(b, b.header(a, 16, critical="x")),
    )
    bad("r7-chunk-size-15", "R7", "LimitError", "chunk_size 15", lambda b: raw_header(b, b.header(a, 15)))
    bad(
        "r7-chunk-size-too-big",
        "R7",
        "LimitError",
        "chunk_size 16 MiB + 1",
        lambda b: raw_header(b, b.header(a, 16 * 2**20 + 1)),
    )
    bad(
        "r8-no-recipients",
        "R8",
        "MalformedError",
        "an empty recipients array",
        lambda b: raw_header(
            b, msgpack.packb({"chunk_size": 16, "recipients": [], "meta": b"\x80"}, use_bin_type=True)
        ),
    )
    bad(
        "r8-too-many-recipients",
        "R8",
        "LimitError",
        "1025 recipient entries",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {
                    "chunk_size": 16,
                    "recipients": [b.entry("rsa2048-a")] + [{"type": "x", "n": i} for i in range(1024)],
                    "meta": b"\x80",
                },
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r9-entry-not-map",
        "R9",
        "MalformedError",
        "a recipient entry that is a string",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16, "recipients": [b.entry("rsa2048-a"), "x"], "meta": b"\x80"}, use_bin_type=True
            ),
        ),
    )
    bad(
        "r9-type-missing",
        "R9",
        "MalformedError",
        "a recipient entry without type",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16, "recipients": [b.entry("rsa2048-a"), {"kid": b"k" * 32}], "meta": b"\x80"},
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r9-type-empty",
        "R9",
        "MalformedError",
        "an empty type",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16, "recipients": [b.entry("rsa2048-a"), {"type": ""}], "meta": b"\x80"},
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r10-short-kid",
        "R10",
        "MalformedError",
        "a 31-byte kid",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16, "recipients": [{**b.entry("rsa2048-a"), "kid": b"k" * 31}], "meta": b"\x80"},
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r10-key-not-bin",
        "R10",
        "MalformedError",
        "a wrapped key that is a string",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16, "recipients": [{**b.entry("rsa2048-a"), "key": "x"}], "meta": b"\x80"},
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r10-duplicate-kid",
        "R10",
        "MalformedError",
        "the same kid twice",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16, "recipients": [b.entry("rsa2048-a"), b.entry("rsa2048-a")], "meta": b"\x80"},
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r11-meta-too-long",
        "R11",
        "LimitError",
        "meta of 64 KiB + 1 bytes",
        lambda b: raw_header(b, b.header(a, 16, b"\x81\xa1k\xc6" + struct.pack(">I", 65537 - 8) + b"\0" * (65537 - 8))),
    )
    bad(
        "r11-meta-too-deep",
        "R11",
        "LimitError",
        "metadata nested 9 deep",
        lambda b: raw_header(b, b.header(a, 16, b"\x81\xa1k" + b"\x91" * 7 + b"\x90")),
    )
    bad(
        "r11-meta-not-map",
        "R11",
        "MalformedError",
        "meta holds an array",
        lambda b: raw_header(b, b.header(a, 16, b"\x90")),
    )
    bad(
        "r11-meta-trailing",
        "R11",
        "MalformedError",
        "meta has a byte after its map",
        lambda b: raw_header(b, b.header(a, 16, b"\x80\xc0")),
    )
    bad("r11-meta-empty", "R11", "MalformedError", "meta is empty", lambda b: raw_header(b, b.header(a, 16, b"")))
    bad(
        "r12-unknown-critical",
        "R12",
        "UnsupportedError",
        "critical names 'sender-signature'",
        lambda b: raw_header(b, b.header(a, 16, critical=["sender-signature"])),
    )
    bad(
        "r13-stranger",
        "R13",
        "NoMatchingKeyError",
        "the reader's key is not a recipient",
        lambda b: good(b),
        ["rsa2048-stranger"],
    )
    bad(
        "r13-only-unknown-types",
        "R13",
        "NoMatchingKeyError",
        "the only entry is of an unknown type",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {"chunk_size": 16, "recipients": [{"type": "kms", "arn": "x"}], "meta": b"\x80"}, use_bin_type=True
            ),
        ),
    )
    bad(
        "r14-wrapped-key-short",
        "R14",
        "MalformedError",
        "a wrapped key one byte short of the modulus",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {
                    "chunk_size": 16,
                    "recipients": [{**b.entry("rsa2048-a"), "key": b.entry("rsa2048-a")["key"][:-1]}],
                    "meta": b"\x80",
                },
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r15-unwrap-fails",
        "R15",
        "AuthenticationError",
        "a wrapped key that is not an OAEP ciphertext for this key",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {
                    "chunk_size": 16,
                    "recipients": [{**b.entry("rsa2048-a"), "key": seeded(b.name, "junk", 255).rjust(256, b"\0")}],
                    "meta": b"\x80",
                },
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r15-unwrapped-31-bytes",
        "R15",
        "AuthenticationError",
        "OAEP decrypts to 31 bytes",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {
                    "chunk_size": 16,
                    "recipients": [
                        {**b.entry("rsa2048-a"), "key": b.wraps.wrap(keys["rsa2048-a"].public_key(), b.data_key[:31])}
                    ],
                    "meta": b"\x80",
                },
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r15-wrong-label",
        "R15",
        "AuthenticationError",
        "wrapped with the first draft's OAEP label instead of the empty one",
        lambda b: raw_header(
            b,
            msgpack.packb(
                {
                    "chunk_size": 16,
                    "recipients": [
                        {
                            **b.entry("rsa2048-a"),
                            "key": b.wraps.wrap(keys["rsa2048-a"].public_key(), b.data_key, FIRST_DRAFT_LABEL),
                        }
                    ],
                    "meta": b"\x80",
                },
                use_bin_type=True,
            ),
        ),
    )
    bad(
        "r16-mac-flipped",
        "R16",
        "AuthenticationError",
        "one bit of the header MAC flipped",
        lambda b: _flip(good(b), envelope.inspect(good(b)).header_size - 1),
    )
    bad(
        "r16-mac-other-key",
        "R16",
        "AuthenticationError",
        "header MAC made under another data key",
        lambda b: b.file(b.header(a, 16), b.tokens(b"x", 16), mac_key=seeded(b.name, "other", 32)),
    )
    bad(
        "r16-metadata-edited",
        "R16",
        "AuthenticationError",
        "metadata value changed after sealing",
        lambda b: b.sealed(b"x", a, 16, meta_of({"stage": "prod"})).replace(b"prod", b"test"),
    )
    bad(
        "r16-chunk-size-edited",
        "R16",
        "AuthenticationError",
        "chunk_size changed from 32 to 16 after sealing",
        lambda b: b.sealed(text[:40], a, 32).replace(b"chunk_size\x20", b"chunk_size\x10", 1),
    )
    bad(
        "r17-no-payload",
        "R17",
        "AuthenticationError",
        "the file ends after the header MAC",
        lambda b: b.file(b.header(a, 16), []),
    )
    bad("r18-final-token-cut", "R18", "AuthenticationError", "the last byte removed", lambda b: good(b)[:-1])
    bad(
        "r18-cut-mid-token",
        "R18",
        "AuthenticationError",
        "cut in the middle of the second token",
        lambda b: good(b)[:-120],
    )
    bad(
        "r19-chunk-flipped",
        "R19",
        "AuthenticationError",
        "one ciphertext bit flipped in chunk 1",
        lambda b: _flip(good(b), envelope.inspect(good(b)).header_size + envelope.inspect(good(b)).token_size + 40),
    )
    bad(
        "r19-version-byte",
        "R19",
        "AuthenticationError",
        "token version 0x81 (with a valid HMAC)",
        lambda b: b.file(b.header(a, 16), [token(b.data_key, frame(0, True, b"x"), b.iv(), version=0x81)]),
    )
    bad(
        "r19-message-too-short",
        "R19",
        "AuthenticationError",
        "a token whose message is 8 bytes",
        lambda b: b.file(b.header(a, 16), [token(b.data_key, b"\0" * 8, b.iv())]),
    )
    bad(
        "r19-other-key",
        "R19",
        "AuthenticationError",
        "a token made under another key",
        lambda b: b.file(b.header(a, 16), [token(seeded(b.name, "other", 32), frame(0, True, b"x"), b.iv())]),
    )

    def chunks(b: Builder, spec: list[tuple[int, int, bytes]]) -> bytes:
        return b.file(b.header(a, 16), [token(b.data_key, frame(i, f, d), b.iv()) for i, f, d in spec])

    A, B = b"A" * 16, b"B" * 16
    bad(
        "r20-swapped",
        "R20",
        "AuthenticationError",
        "chunks 0 and 1 swapped",
        lambda b: chunks(b, [(1, 0, B), (0, 0, A), (2, 1, b"c")]),
    )
    bad(
        "r20-dropped-middle",
        "R20",
        "AuthenticationError",
        "chunk 1 dropped",
        lambda b: chunks(b, [(0, 0, A), (2, 1, b"c")]),
    )
    bad(
        "r20-duplicated",
        "R20",
        "AuthenticationError",
        "chunk 0 twice",
        lambda b: chunks(b, [(0, 0, A), (0, 0, A), (1, 1, b"c")]),
    )
    bad(
        "r20-missing-final",
        "R20",
        "AuthenticationError",
        "ends with a full non-final chunk (cut at a chunk boundary)",
        lambda b: chunks(b, [(0, 0, A), (1, 0, B)]),
    )
    bad(
        "r20-final-not-last",
        "R20",
        "AuthenticationError",
        "a final chunk followed by another",
        lambda b: chunks(b, [(0, 1, b"a"), (1, 1, b"b")]),
    )
    bad(
        "r20-starts-at-1",
        "R20",
        "AuthenticationError",
        "the first chunk has index 1",
        lambda b: chunks(b, [(1, 1, b"a")]),
    )
    bad("r20-flag-2", "R20", "AuthenticationError", "final flag value 2", lambda b: chunks(b, [(0, 2, b"a")]))
    bad(
        "r21-short-non-final",
        "R21",
        "AuthenticationError",
        "a 15-byte non-final chunk",
        lambda b: chunks(b, [(0, 0, A[:15]), (1, 1, b"c")]),
    )
    bad(
        "r21-empty-non-final",
        "R21",
        "AuthenticationError",
        "an empty non-final chunk",
        lambda b: chunks(b, [(0, 0, b""), (1, 1, b"c")]),
    )
    bad(
        "r21-full-final",
        "R21",
        "AuthenticationError",
        "a final chunk of exactly chunk_size bytes",
        lambda b: chunks(b, [(0, 1, A)]),
    )
    bad("r22-trailing-byte", "R22", "AuthenticationError", "one byte after the final token", lambda b: good(b) + b"\0")
    bad(
        "r22-trailing-token",
        "R22",
        "AuthenticationError",
        "a valid final-chunk token appended again",
        lambda b: good(b, 32) + good(b, 32)[-73:],
    )
    return vectors


def _flip(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0x01
    return bytes(out)


# --- output ----------------------------------------------------------------------------------


def describe(vector: Vector) -> dict[str, Any]:
    out: dict[str, Any] = {"name": vector.name, "description": vector.description, "keys": vector.keys}
    if vector.plaintext is None:
        out.update(expect="error", error=vector.error, rule=vector.rule)
        return out
    length = int.from_bytes(vector.data[9:13], "big")
    header = decode_header(vector.data[13 : 13 + length])
    info = envelope.inspect(vector.data)
    out.update(
        expect="success",
        plaintext_length=len(vector.plaintext),
        plaintext_sha256=hashlib.sha256(vector.plaintext).hexdigest(),
        chunk_size=header.chunk_size,
        chunk_count=info.chunk_count,
        metadata=tag(decode_metadata(header.meta)),
        data_key=seeded(vector.name, "data-key", 32).hex(),
    )
    if len(vector.plaintext) <= 64:
        out["plaintext_hex"] = vector.plaintext.hex()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed vectors differ from a regeneration")
    args = parser.parse_args()
    keys = load_keys(write=not args.check)
    wraps = WrapCache(keys)
    vectors = catalogue(keys, wraps)
    names = [v.name for v in vectors]
    assert len(set(names)) == len(names), "duplicate vector names"
    out_dir = ROOT / "v1"
    expected: dict[str, bytes] = {}
    for vector in vectors:
        expected[f"{vector.name}.envelope"] = vector.data
        expected[f"{vector.name}.json"] = (json.dumps(describe(vector), indent=2, ensure_ascii=False) + "\n").encode()
    if args.check:
        present = {p.name: p.read_bytes() for p in out_dir.iterdir()} if out_dir.exists() else {}
        differ = sorted(set(present) ^ set(expected) | {n for n in expected if present.get(n) != expected[n]})
        for name in differ:
            print(f"differs: {name}", file=sys.stderr)
        print(f"{len(vectors)} vectors, {len(differ)} files differ")
        return 1 if differ else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    wraps.save()
    for stale in set(os.listdir(out_dir)) - set(expected):
        (out_dir / stale).unlink()
    for name, data in expected.items():
        (out_dir / name).write_bytes(data)
    positive = sum(v.plaintext is not None for v in vectors)
    print(f"wrote {len(vectors)} vectors ({positive} positive, {len(vectors) - positive} negative) to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
