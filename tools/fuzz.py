#!/usr/bin/env python3
"""Coverage-guided fuzzing of every envelope parser entry point (atheris / libFuzzer).

The rule under test: for any input, a parser either succeeds with the exact original plaintext or
raises a documented ``envelope.EnvelopeError`` subclass (key loading: ``InvalidKeyError``). Any
other exception, a wrong plaintext, a disagreement between readers, or one input taking more than
``--slow`` seconds (2 s) is a *finding*: its input is saved and the script exits non-zero.

Targets (all by default; ``--targets a,b``):

  header   format.decode_prefix / decode_header / decode_metadata / read_header (+ round trips)
  open     envelope.open_with_metadata on mutated sealed files, with fixed test keys
  stream   envelope.open_stream over a pipe-like source with short reads, 1 or 2 threads
  reader   EnvelopeReader with seeks and reads driven by the input (seekable and pipe)
  inspect  envelope.inspect
  info     envelope.cli.info.main(["--json", FILE]): must return an exit code, never 70 (a bug)
  keys     parse_public_key(s) / parse_private_key on PEM, DER, OpenSSH, X.509 (seeded with real keys)
  agekeys  age key text (FORMAT.md 4.2-4.4: age1, age1pq1, ssh-ed25519 lines, identity files):
           age_recipient, age_recipients, age_identities; what parses re-encodes to the same key
  forge    structure-aware: the harness holds the data key, so it re-computes the header MAC and
           re-encrypts + re-MACs every token from the *plaintext form* the fuzzer mutates. This
           reaches what lies behind the MACs (the files an insider, or anyone sealing to you, can
           craft) and checks open / open_stream / EnvelopeReader against each other and against
           a small reference model of FORMAT.md section 7.

Seeds: spec/vectors/v1/*.envelope (sealed to the fixed test keys in spec/vectors/keys), files
sealed at start-up to spec/vectors/keys/rsa2048-a.pem, tests/fuzz_corpus/*, real keys and
certificates. Success outputs are checked against the plaintexts of those seeds.

    python tools/fuzz.py --seconds 60                     # CI smoke run: 60 s split over all targets
    python tools/fuzz.py --seconds 600 --per-target --jobs 2 --work-dir /var/tmp/envelope-fuzz
    python tools/fuzz.py --targets header,forge --seconds 120
    python tools/fuzz.py --reproduce open path/to/crash-input   # run one input, show the outcome
    python tools/fuzz.py --line-coverage --work-dir DIR          # replay a corpus: envelope lines reached

Each target runs in its own process (libFuzzer never returns); its log is in WORK/logs/. Findings
go to WORK/findings/TARGET/ (input + traceback). The corpus in WORK/corpus/ grows across runs.
Without atheris (``pip install atheris``), ``--engine mutate`` runs the same targets with a plain
random mutator (no coverage feedback) so the script still works as a smoke test.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors"
KEYS_DIR = VECTORS / "keys"
EXTRA_SEEDS = ROOT / "tests" / "fuzz_corpus"
TARGET_NAMES = ("header", "open", "stream", "reader", "inspect", "info", "keys", "agekeys", "forge", "fernet-token")
MAX_SEED_LEN = 16 << 10  # larger vectors slow mutation down without adding coverage
PASSPHRASE = b"fuzz-passphrase"
DICTIONARY = [
    b"\x89ENV\r\n\x1a\n",
    b"\x89ENV\r\n\x1a\n\x01",
    b"\xaachunk_size",
    b"\xaarecipients",
    b"\xa4meta",
    b"\xa8critical",
    b"\xa4type",
    b"\xa3kid",
    b"\xa3key",
    b"\xafrsa-oaep-sha256",
    b"\xc4\x20",
    b"\xc5\x01\x00",
    b"\xd2\x00\x00\x00\x10",
    b"\xce\x01\x00\x00\x00",
    b"\xcd\x01\x00",
    b"\xde\x00\x01",
    b"\xdc\x00\x01",
    b"\xc7\x0c\xff",
    b"\xd6\xff",
    b"-----BEGIN ",
    b"-----END ",
    b"PUBLIC KEY-----",
    b"PRIVATE KEY-----",
    b"CERTIFICATE-----",
    b"ssh-rsa ",
    b"openssh-key-v1\x00",
    b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01",
    b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a",
]


class Finding(Exception):
    """An oracle violation: wrong plaintext, readers that disagree, an impossible decoded value."""


# --- worker side: the test keys, seeds and known plaintexts --------------------------------------------


@dataclass
class World:
    """Everything a target needs, built once per process."""

    identities: list[Any]
    key_a: Any
    seeds: list[bytes]  # sealed files: vectors, files sealed at start-up, tests/fuzz_corpus
    known: list[bytes] = field(default_factory=list)  # plaintexts of the seeds that open
    known_hashes: set[bytes] = field(default_factory=set)
    # Per seed, the data of every chunk that verifies at its position, at its plaintext offset: any
    # byte a reader releases (even from a file that fails later) must come from one of these.
    material: list[bytes] = field(default_factory=list)


def build_world() -> World:
    import envelope

    names = ["rsa2048-a", "rsa2048-b", "rsa3072-a", "rsa4096-a"]
    private = {n: envelope.load_private_key(KEYS_DIR / f"{n}.pem") for n in names}
    identities: list[Any] = [envelope.RsaIdentity(private[n]) for n in names]
    # The vectors' shared Fernet key and passphrase (FORMAT.md 4.5, 4.6), with a low work-factor
    # limit so that a mutated file costs no more than 4 MiB of scrypt (R48 refuses the rest).
    identities.append(envelope.FernetKey((KEYS_DIR / "fernet-a.fernet").read_bytes()))
    passphrase = (KEYS_DIR / "passphrase-a.passphrase").read_text("utf-8")
    identities.append(envelope.Passphrase(passphrase, max_work_factor=12))
    # The vectors of the other recipient kinds open too (FORMAT.md 4.2-4.4).
    for name in ("x25519-a", "x25519-b", "mlkem768x25519-a", "ssh-ed25519-a.openssh"):
        path = KEYS_DIR / (name if name.endswith(".openssh") else f"{name}.age")
        identities += envelope.key_file_identities(path)
    seeds = [p.read_bytes() for p in sorted((VECTORS / "v1").glob("*.envelope")) if p.stat().st_size <= MAX_SEED_LEN]
    seeds += sealed_seeds(private["rsa2048-a"], private["rsa2048-b"])
    if EXTRA_SEEDS.is_dir():
        seeds += [p.read_bytes() for p in sorted(EXTRA_SEEDS.glob("*.envelope"))]
    world = World(identities=identities, key_a=private["rsa2048-a"], seeds=seeds)
    for seed in seeds:
        with contextlib.suppress(envelope.EnvelopeError):
            plaintext = envelope.open(seed, identities)
            if hashlib.sha256(plaintext).digest() not in world.known_hashes:
                world.known.append(plaintext)
                world.known_hashes.add(hashlib.sha256(plaintext).digest())
        world.material.append(authentic_chunks(seed, identities))
    return world


def authentic_chunks(seed: bytes, identities: list[Any]) -> bytes:
    """The chunks of ``seed`` that verify at their position, each at its offset (holes: 0xA5...)."""
    import envelope
    from envelope._header import read_and_unlock
    from envelope._layout import token_len
    from envelope._stream import ChunkOpener

    try:
        unlocked = read_and_unlock(io.BytesIO(seed), identities)
    except envelope.EnvelopeError:
        return b""
    chunk_size = unlocked.header.chunk_size
    opener = ChunkOpener(unlocked.data_key, chunk_size)
    size = token_len(chunk_size)
    out = bytearray()
    for index, start in enumerate(range(unlocked.size, len(seed), size)):
        data = b"\xa5" * chunk_size
        for is_last in (False, True):
            with contextlib.suppress(envelope.EnvelopeError):
                data = bytes(opener.open_into(index, is_last, seed[start : start + size], bytearray(size + 16)))
        out += data
    return bytes(out)


def sealed_seeds(key_a: Any, key_b: Any) -> list[bytes]:
    """Small files of many shapes, sealed to the fixed test keys (fresh data keys each run)."""
    import envelope

    pattern = bytes(range(256)) * 2
    shapes: list[tuple[int, int, dict[str, Any] | None]] = [
        (0, 16, None),
        (15, 16, {"a": 1}),
        (16, 16, {"name": "tiny", "v": [1, 2.5, None, True, b"\x00"]}),
        (33, 16, {"nested": {"x": {"y": [[], {}]}}}),
        (100, 32, {"envelope.framework": "keras", "n": -(1 << 63), "u": (1 << 64) - 1}),
        (500, 64, None),
    ]
    out = [
        envelope.seal(pattern[:size], key_a.public_key(), metadata=meta, chunk_size=chunk)
        for size, chunk, meta in shapes
    ]
    out.append(envelope.seal(pattern[:40], [key_b.public_key(), key_a.public_key()], chunk_size=16))
    return out


def key_seeds(world: World) -> list[bytes]:
    """Public and private keys in every supported format, plus keys the policy refuses."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    ser = serialization
    key = world.key_a
    pub = key.public_key()
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    fmt = ser.PrivateFormat
    pkcs8_encrypted = ser.BestAvailableEncryption(PASSPHRASE)
    public = [
        pub.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo),
        pub.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1),
        pub.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo),
        pub.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH) + b" user@host",
        small.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo),
        ec_key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo),
        ed_key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH),
        *certificates(key),
    ]
    private = [
        key.private_bytes(ser.Encoding.PEM, fmt.PKCS8, ser.NoEncryption()),
        key.private_bytes(ser.Encoding.PEM, fmt.TraditionalOpenSSL, ser.NoEncryption()),
        key.private_bytes(ser.Encoding.DER, fmt.PKCS8, ser.NoEncryption()),
        key.private_bytes(ser.Encoding.PEM, fmt.OpenSSH, ser.NoEncryption()),
        key.private_bytes(ser.Encoding.PEM, fmt.PKCS8, pkcs8_encrypted),
        small.private_bytes(ser.Encoding.PEM, fmt.PKCS8, ser.NoEncryption()),
        ec_key.private_bytes(ser.Encoding.PEM, fmt.PKCS8, ser.NoEncryption()),
    ]
    with contextlib.suppress(UnsupportedAlgorithm):  # encrypted OpenSSH keys need the bcrypt module
        cheap_ssh = fmt.OpenSSH.encryption_builder().kdf_rounds(1).build(PASSPHRASE)
        private.append(key.private_bytes(ser.Encoding.PEM, fmt.OpenSSH, cheap_ssh))
    pss = ROOT / "tests" / "data"
    if pss.is_dir():
        public += [p.read_bytes() for p in sorted(pss.glob("*.pub.pem"))]
        private += [p.read_bytes() for p in sorted(pss.glob("*.pem")) if not p.name.endswith(".pub.pem")]
    if EXTRA_SEEDS.is_dir():  # e.g. RSA-PSS certificates and encrypted keys made with openssl
        public += [p.read_bytes() for p in sorted(EXTRA_SEEDS.glob("keys-*certificate*.pem"))]
        private += [p.read_bytes() for p in sorted(EXTRA_SEEDS.glob("keys-*encrypted*.pem"))]
    team = b"# recipients\n" + public[0] + b"\n" + public[3] + b"\n" + certificates(key)[0]
    # Mode byte: bit 0 private, bit 1 with passphrase, bit 2 as str, bit 3 a recipients list.
    return (
        [bytes((0,)) + k for k in public]
        + [bytes((1,)) + k for k in private]
        + [bytes((3,)) + private[4], bytes((8,)) + team, bytes((12,)) + team]
    )


def certificates(key: Any) -> list[bytes]:
    """Self-signed X.509 certificates of ``key`` (PEM and DER)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envelope fuzz")])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=36500))  # seeds that stay valid: expiry is refused
        .sign(key, hashes.SHA256())
    )
    return [cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)]


# --- sources with short reads -------------------------------------------------------------------------


class ShortReads(io.RawIOBase):
    """A non-seekable source (a pipe) that returns at most ``cap`` bytes per read."""

    def __init__(self, data: bytes, cap: int = 0) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._cap = cap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        size = len(view) if self._cap <= 0 else min(len(view), self._cap)
        piece = self._data[self._pos : self._pos + size]
        view[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)


# --- targets ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    run: Callable[[bytes], str]  # returns an outcome label; raises on a finding
    seeds: Callable[[], list[bytes]]
    allowed: tuple[type[BaseException], ...]
    max_len: int = MAX_SEED_LEN + 4096


def outcome(exc: BaseException) -> str:
    return type(exc).__name__


def make_targets(world: World) -> dict[str, Target]:
    import msgpack

    import envelope
    from envelope import _format as fmt
    from envelope.cli import info

    errors: tuple[type[BaseException], ...] = (envelope.EnvelopeError,)
    ids = world.identities

    def is_known(plaintext: bytes) -> bool:
        return hashlib.sha256(plaintext).digest() in world.known_hashes

    def released_prefix_ok(released: bytes) -> bool:
        return any(p.startswith(released) for p in world.known + world.material)

    # -- header ------------------------------------------------------------------------------------
    def run_header(data: bytes) -> str:
        mode, body = (data[0] % 4, data[1:]) if data else (0, b"")
        try:
            if mode == 0:
                cap = body[0] % 16 if body else 0
                _prefix_and_header, header, _mac = fmt.read_header(ShortReads(body[1:], cap))
                check_header(header)
            elif mode == 1:
                check_header(fmt.decode_header(body))
            elif mode == 2:
                meta = fmt.decode_metadata(body)
                if not isinstance(meta, dict):
                    raise Finding("decode_metadata returned a non-dict")
                with contextlib.suppress(envelope.LimitError):  # float32 widens on re-encoding
                    again = fmt.encode_metadata(meta)
                    if fmt.encode_metadata(fmt.decode_metadata(again)) != again:
                        raise Finding("metadata does not survive a decode/encode round trip")
            else:
                header_len = fmt.decode_prefix(body)
                if not 1 <= header_len <= fmt.MAX_HEADER_LEN:
                    raise Finding(f"decode_prefix accepted header_len {header_len}")
        except envelope.EnvelopeError as exc:
            return outcome(exc)
        return "ok"

    def check_header(header: Any) -> None:
        if not fmt.MIN_CHUNK_SIZE <= header.chunk_size <= fmt.MAX_CHUNK_SIZE or isinstance(header.chunk_size, bool):
            raise Finding(f"accepted chunk_size {header.chunk_size!r}")
        if not 1 <= len(header.recipients) <= fmt.MAX_RECIPIENTS or set(header.critical) - fmt.KNOWN_EXTENSIONS:
            raise Finding("accepted a recipient count or critical list outside the rules")
        if (header.signer is not None) != (fmt.SIGNATURE in header.critical):
            raise Finding("a signer without 'signature' in critical, or the reverse")
        if len(header.meta) > fmt.MAX_METADATA_LEN:
            raise Finding("accepted oversized metadata")
        encoded = fmt.encode_header(header)  # a decoded header must re-encode, and survive a round trip
        if fmt.encode_header(fmt.decode_header(encoded)) != encoded:
            raise Finding("header does not survive a decode/encode round trip")

    # -- open ----------------------------------------------------------------------------------------
    def run_open(data: bytes) -> str:
        try:
            plaintext, metadata, signer = envelope.open_with_metadata(data, ids)
        except envelope.EnvelopeError as exc:
            return outcome(exc)
        if not is_known(plaintext):
            raise Finding("open succeeded with a plaintext no seed holds")
        out = io.BytesIO()
        if (
            envelope.open_stream(io.BytesIO(data), out, ids, threads=1) != (len(plaintext), metadata, signer)
            or out.getvalue() != plaintext
        ):
            raise Finding("open_stream disagrees with open on a file open accepts")
        return "ok"

    # -- stream --------------------------------------------------------------------------------------
    def run_stream(data: bytes) -> str:
        flags, body = (data[0], data[1:]) if data else (0, b"")
        threads = 2 if flags & 1 else 1
        cap = 0 if flags >> 1 == 0 else (flags >> 1) * 7 + 1
        out = io.BytesIO()
        try:
            result = envelope.open_stream(ShortReads(body, cap), out, ids, threads=threads)
        except envelope.EnvelopeError as exc:
            if not released_prefix_ok(out.getvalue()):
                raise Finding("open_stream released bytes that are not an authentic prefix") from exc
            return outcome(exc)
        if not is_known(out.getvalue()):
            raise Finding("open_stream succeeded with a plaintext no seed holds")
        if envelope.open_with_metadata(body, ids) != (out.getvalue(), result.metadata, result.signer):
            raise Finding("open disagrees with open_stream on a file open_stream accepts")
        return "ok"

    # -- reader --------------------------------------------------------------------------------------
    def run_reader(data: bytes) -> str:
        if len(data) < 2:
            return "short"
        flags, count = data[0], data[1] % 16
        ops = [struct.unpack_from(">BI", data, 2 + 5 * i) for i in range(count) if 2 + 5 * i + 5 <= len(data)]
        body = data[2 + 5 * count :]
        seekable = not flags & 1
        source: Any = io.BytesIO(body) if seekable else io.BufferedReader(ShortReads(body, flags >> 1))
        candidates = world.known + world.material
        try:
            reader = envelope.open_reader(source, ids)
            if seekable != isinstance(reader, envelope.EnvelopeReader):
                raise Finding("open_reader picked the wrong reader for the source")
            for kind, arg in ops:
                position = reader.tell()
                kind %= 6 if seekable else 3
                if seekable and kind >= 3:
                    size = reader.size or 0
                    if kind == 3:
                        new = reader.seek(arg % (size + 100))
                    elif kind == 4:
                        new = reader.seek(-(arg % (position + 1)), os.SEEK_CUR)
                    else:
                        new = reader.seek(-(arg % (size + 1)), os.SEEK_END)
                    if new != reader.tell() or new < 0:
                        raise Finding("seek and tell disagree")
                    continue
                if kind == 0:
                    piece = reader.read(arg % 5000)
                elif kind == 1:
                    piece = reader.read()
                else:
                    buffer = bytearray(arg % 3000)
                    piece = bytes(buffer[: reader.readinto(buffer)])
                if reader.tell() != position + len(piece):
                    raise Finding("tell does not advance by the bytes read")
                candidates = [p for p in candidates if p[position : position + len(piece)] == piece]
                if not candidates:
                    raise Finding("EnvelopeReader returned bytes that no seed holds at that position")
            if seekable:
                reader.seek(0)
            whole = reader.read() if seekable or not ops else None
        except envelope.EnvelopeError as exc:
            return outcome(exc)
        if whole is not None and not is_known(whole):
            raise Finding("EnvelopeReader read a plaintext no seed holds")
        if seekable and whole is not None and reader.size != len(whole):
            raise Finding("EnvelopeReader.size differs from the plaintext length")
        return "ok"

    # -- inspect -------------------------------------------------------------------------------------
    def run_inspect(data: bytes) -> str:
        try:
            found = envelope.inspect(data)
        except envelope.EnvelopeError as exc:
            return outcome(exc)
        if found.complete and found.plaintext_size_min is not None and found.plaintext_size_max is not None:
            if not 0 <= found.plaintext_size_min <= found.plaintext_size_max:
                raise Finding("inspect reports an impossible plaintext size range")
        return "ok" if found.complete else "incomplete"

    # -- info ----------------------------------------------------------------------------------------
    scratch_dir = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path(tempfile.gettempdir())
    info_path = scratch_dir / f"envelope-fuzz-info-{os.getpid()}.env"

    def run_info(data: bytes) -> str:
        info_path.write_bytes(data)
        stdout, stderr = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = info.main(["--json", str(info_path)])
        finally:  # libFuzzer ends the process without Python's clean-up: leave nothing behind
            info_path.unlink(missing_ok=True)
        if not isinstance(code, int) or code not in (0, 3):
            raise Finding(f"envelope-info --json exited {code!r}: {stderr.getvalue().strip()}")
        document = json.loads(stdout.getvalue())
        if len(document["files"]) != 1 or (code == 0) != (document["files"][0]["error"] is None):
            raise Finding("envelope-info --json output disagrees with its exit code")
        return f"exit {code}"

    # -- keys ----------------------------------------------------------------------------------------
    def run_keys(data: bytes) -> str:
        from cryptography.hazmat.primitives.asymmetric import rsa

        mode, body = (data[0], data[1:]) if data else (0, b"")
        source: bytes | str = body.decode("utf-8", "replace") if mode & 4 else body  # parse_* take text too
        try:
            if mode & 1:
                key: Any = envelope.parse_private_key(source, PASSPHRASE if mode & 2 else None)
                kind: type = rsa.RSAPrivateKey
            elif mode & 8:
                keys = envelope.parse_public_keys(source)
                if not keys or any(not isinstance(k, rsa.RSAPublicKey) for k in keys):
                    raise Finding("parse_public_keys returned no key or a key of another kind")
                key, kind = keys[0], rsa.RSAPublicKey
            else:
                key = envelope.parse_public_key(source)
                kind = rsa.RSAPublicKey
        except envelope.InvalidKeyError as exc:
            return outcome(exc)
        if not isinstance(key, kind) or not 2048 <= key.key_size <= 16384:
            raise Finding(f"loaded a key the policy refuses: {type(key).__name__}, {key.key_size} bits")
        envelope.key_id(key)
        return "ok"

    # -- agekeys ------------------------------------------------------------------------------------
    def run_agekeys(data: bytes) -> str:
        mode, body = (data[0] % 3, data[1:]) if data else (0, b"")
        try:
            if mode == 0:
                text = body.decode("utf-8", "replace")
                recipient: Any = envelope.age_recipient(text)
                if hasattr(recipient, "to_age") and recipient.to_age() != text.strip():
                    raise Finding("an age recipient parsed but does not re-encode to its text")
            elif mode == 1:
                for recipient in envelope.age_recipients(body):
                    if hasattr(recipient, "to_age"):
                        envelope.age_recipient(recipient.to_age())
            else:
                for identity in envelope.age_identities(body):
                    if identity.to_age() not in body.decode("utf-8"):
                        raise Finding("an age identity parsed but is not in the file as age writes it")
        except envelope.InvalidKeyError as exc:
            return outcome(exc)
        return "ok"

    def agekey_seeds() -> list[bytes]:
        texts = [p.read_bytes() for p in sorted(KEYS_DIR.glob("*.age")) + sorted(KEYS_DIR.glob("*.openssh.pub"))]
        return [bytes([mode]) + text for text in texts for mode in range(3)]

    # -- forge ---------------------------------------------------------------------------------------
    forge = Forge(world)

    def run_forge(data: bytes) -> str:
        return forge.run(data)

    # -- fernet-token: envelope.migrate_fernet_token against cryptography's Fernet -------------------
    fernet_text = (KEYS_DIR / "fernet-a.fernet").read_bytes()
    fernet_identity = envelope.FernetKey(fernet_text)

    def run_fernet_token(data: bytes) -> str:
        """Whatever the migration accepts, Fernet.decrypt accepts too and gives the same plaintext
        (the migration is stricter: Fernet skips characters outside the alphabet)."""
        from cryptography.fernet import Fernet, InvalidToken

        out = io.BytesIO()
        try:
            envelope.migrate_fernet_token(io.BytesIO(data), out, fernet_text, fernet_identity, chunk_size=64)
        except envelope.EnvelopeError as exc:
            return outcome(exc)
        try:
            expected = Fernet(fernet_text).decrypt(data.rstrip(b" \t\r\n"))
        except InvalidToken:
            raise Finding("migrated a token that Fernet refuses") from None
        if envelope.open(out.getvalue(), fernet_identity) != expected:
            raise Finding("the migrated plaintext is not Fernet's")
        return "ok"

    def fernet_token_seeds() -> list[bytes]:
        from cryptography.fernet import Fernet

        f = Fernet(fernet_text)
        return [f.encrypt(p) + end for p in (b"", b"x", bytes(100), bytes(range(256)) * 8) for end in (b"", b"\n")]

    def header_seeds() -> list[bytes]:
        out = []
        for seed in world.seeds:
            out.append(b"\x00\x00" + seed[:4096])
            out.append(b"\x00\x05" + seed[:4096])
            if len(seed) >= 13:
                header_len = int.from_bytes(seed[9:13], "big")
                header = seed[13 : 13 + header_len]
                out.append(b"\x01" + header)
                with contextlib.suppress(envelope.EnvelopeError, msgpack.UnpackException, ValueError):
                    out.append(b"\x02" + fmt.decode_header(header).meta)
                out.append(b"\x03" + seed[:13])
        return out

    def stream_seeds() -> list[bytes]:
        return [flags + seed for seed in world.seeds for flags in (b"\x00", b"\x03")]

    def reader_seeds() -> list[bytes]:
        patterns = [
            b"\x00\x00",
            b"\x00\x04" + b"\x03\x00\x00\x00\x05" + b"\x00\x00\x00\x00\x11" + b"\x05\x00\x00\x00\x07"
            b"\x02\x00\x00\x00\x20",
            b"\x01\x03" + b"\x00\x00\x00\x00\x03" + b"\x02\x00\x00\x00\x21" + b"\x01\x00\x00\x00\x00",
            b"\x0a\x01" + b"\x01\x00\x00\x00\x00",
        ]
        return [p + s for s in world.seeds for p in patterns]

    return {
        "header": Target("header", run_header, header_seeds, errors),
        "open": Target("open", run_open, lambda: list(world.seeds), errors),
        "stream": Target("stream", run_stream, stream_seeds, errors),
        "reader": Target("reader", run_reader, reader_seeds, errors),
        "inspect": Target("inspect", run_inspect, lambda: list(world.seeds), errors),
        "info": Target("info", run_info, lambda: list(world.seeds), errors),
        "keys": Target("keys", run_keys, lambda: key_seeds(world), (envelope.InvalidKeyError,)),
        "agekeys": Target("agekeys", run_agekeys, agekey_seeds, (envelope.InvalidKeyError,)),
        "forge": Target("forge", run_forge, forge.seeds, errors),
        "fernet-token": Target("fernet-token", run_fernet_token, fernet_token_seeds, errors),
    }


class Forge:
    """The ``forge`` target: authenticated mutations.

    Input: one flag byte, then a file whose tokens hold their *padded chunk messages in plaintext*
    instead of ciphertext. With the data key unwrapped by the test key, the harness re-computes the
    header MAC (flag bit 0) and encrypts and MACs every token of a valid length (bit 1), so
    mutations of indexes, flags, padding, chunk sizes and header fields reach the checks behind
    the MACs. open, open_stream (bit 2: two threads) and EnvelopeReader (seekable and pipe) must
    agree; with both bits set, the outcome must also match a reference model of section 7.4.
    """

    def __init__(self, world: World) -> None:
        import envelope

        self.world = world
        self.envelope = envelope
        self.kid = bytes.fromhex(envelope.key_id(world.key_a))
        self._keys: dict[bytes, bytes | None] = {}

    def data_key(self, entries: Sequence[Any]) -> bytes | None:
        """The data key the test key unwraps from its entry, with cryptography directly: envelope's
        own unwrap answers a failed OAEP decryption with a random key (R15 reads like R16)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        from envelope._format import RSA_OAEP_SHA256

        for entry in entries:
            if entry.type == RSA_OAEP_SHA256 and entry.kid == self.kid:
                wrapped = entry.fields["key"]
                if wrapped not in self._keys:
                    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
                    try:
                        raw = self.world.key_a.decrypt(wrapped, oaep)
                    except ValueError:
                        raw = b""
                    self._keys[wrapped] = raw if len(raw) == 32 else None
                return self._keys[wrapped]
        return None

    def seeds(self) -> list[bytes]:
        """The seeds sealed to rsa2048-a, their tokens decrypted in place (plaintext form)."""
        out = []
        for seed in self.world.seeds:
            split = self.split(seed)
            if split is None:
                continue
            head, tokens, key, _chunk_size, _signed = split
            plain = []
            for token in tokens:
                if self.valid_body(token):
                    token = token[:25] + cbc(key, token[9:25], token[25:-32], decrypt=True) + token[-32:]
                plain.append(token)
            for flags in (3, 7):
                out.append(bytes((flags,)) + head + b"".join(plain))
        return out

    def split(self, file: bytes) -> tuple[bytes, list[bytes], bytes, int, bool] | None:
        """The file cut into its header and tokens, with the data key, chunk size, and whether it is
        signed; None where the header does not parse, is not sealed to the test key, or commits to
        another key (FORMAT.md 6: re-MACing cannot repair that, so there is no reference verdict)."""
        import hmac

        from envelope._datakey import DataKey
        from envelope._format import read_header
        from envelope._layout import token_len

        try:
            authenticated, header, mac = read_header(io.BytesIO(file))
        except self.envelope.EnvelopeError:
            return None
        key = self.data_key(header.recipients)
        if key is None or not hmac.compare_digest(header.commit, DataKey(key).commitment()):
            return None
        start = len(authenticated) + len(mac)
        size = token_len(header.chunk_size)
        payload = file[start:]
        tokens = [payload[i : i + size] for i in range(0, len(payload), size)]
        return file[:start], tokens, key, header.chunk_size, header.signer is not None

    @staticmethod
    def valid_body(token: bytes) -> bool:
        return len(token) >= 73 and (len(token) - 57) % 16 == 0

    def run(self, data: bytes) -> str:
        from envelope._datakey import DataKey
        from envelope._format import HEADER_MAC_LEN

        flags, file = (data[0], data[1:]) if data else (0, b"")
        split = self.split(file)
        expected: bytes | bool | None = False  # False: no reference verdict
        signed = False
        if split is not None:
            head, tokens, key, chunk_size, signed = split
            if flags & 1:
                authenticated = head[:-HEADER_MAC_LEN]
                head = authenticated + DataKey(key).header_mac(authenticated)
            if flags & 2:
                if flags & 1 and not signed:  # the model knows no footer (section 8.3)
                    expected = reference_payload(tokens, chunk_size)
                tokens = [self.seal_token(key, t) if self.valid_body(t) else t for t in tokens]
            file = head + b"".join(tokens)
        results = self.all_readers(file, threads=2 if flags & 4 else 1)
        if len(set(results.values())) != 1:
            raise Finding(f"readers disagree: {results}")
        verdict = next(iter(results.values()))
        if expected is not False:
            got = None if verdict[0] != "ok" else verdict[1]
            if got != expected:
                raise Finding(f"reference model expects {expected!r}, readers gave {verdict}")
        if signed and verdict[0] == "ok":
            if not verdict[3]:
                raise Finding("a file announcing a signature opened without a verified signer")
            if hashlib.sha256(verdict[1]).digest() not in self.world.known_hashes:
                raise Finding("a signed file opened with a plaintext no seed holds")
        return verdict[0] if verdict[0] == "ok" else f"{verdict[0]}{'+mac' if flags & 1 else ''}"

    @staticmethod
    def seal_token(key: bytes, token: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes, hmac

        body = token[:9] + token[9:25] + cbc(key, token[9:25], token[25:-32], decrypt=False)
        mac = hmac.HMAC(key[:16], hashes.SHA256())
        mac.update(body)
        return body + mac.finalize()

    def all_readers(self, file: bytes, threads: int) -> dict[str, tuple[str, bytes, bytes, str]]:
        """Every reader's verdict on ``file``: ("ok" or "error", plaintext, metadata, signer key id)."""
        import msgpack

        envelope = self.envelope
        ids = self.world.identities
        results: dict[str, tuple[str, bytes, bytes, str]] = {}

        def record(name: str, action: Callable[[], tuple[bytes, dict[str, Any], Any]]) -> None:
            try:
                plaintext, metadata, signer = action()
            except envelope.EnvelopeError:
                results[name] = ("error", b"", b"", "")
            else:
                signed_by = signer.key_id if signer is not None and signer.verified else ""
                results[name] = ("ok", plaintext, msgpack.packb(metadata, use_bin_type=True), signed_by)

        def stream() -> tuple[bytes, dict[str, Any], Any]:
            out = io.BytesIO()
            result = envelope.open_stream(ShortReads(file, 61), out, ids, threads=threads)
            return out.getvalue(), result.metadata, result.signer

        def reader(source: Any) -> tuple[bytes, dict[str, Any], Any]:
            with envelope.open_reader(source, ids) as r:
                return r.read(), r.metadata, r.signer

        record("open", lambda: tuple(envelope.open_with_metadata(file, ids, threads=threads)))  # type: ignore[arg-type]
        record("open_stream", stream)
        record("reader", lambda: reader(io.BytesIO(file)))
        record("reader_pipe", lambda: reader(io.BufferedReader(ShortReads(file, 100))))
        return results


def cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool) -> bytes:
    """Raw AES-128-CBC under the Fernet encryption key ``key[16:]``, no padding."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key[16:]), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def reference_payload(tokens: list[bytes], chunk_size: int) -> bytes | None:
    """FORMAT.md section 7.3-7.4, written independently of envelope: the plaintext a reader must
    return for these plaintext-form tokens, or None if it must fail."""
    full = 57 + 16 * ((9 + chunk_size) // 16 + 1)
    if not tokens or any(len(t) != full for t in tokens[:-1]) or not 73 <= len(tokens[-1]) <= full:
        return None
    out = []
    for index, token in enumerate(tokens):
        last = index == len(tokens) - 1
        if (len(token) - 57) % 16 or token[0] != 0x80:
            return None
        if int.from_bytes(token[1:9], "big") != (len(token) if last else 0):  # section 7.2: t_i
            return None
        message = token[25:-32]
        pad = message[-1]
        if not 1 <= pad <= 16 or message[-pad:] != bytes([pad]) * pad or len(message) - pad < 9:
            return None
        message = message[:-pad]
        found_index, flag, data = int.from_bytes(message[:8], "big"), message[8], message[9:]
        if found_index != index or flag != int(last):
            return None
        if (last and len(data) >= chunk_size) or (not last and len(data) != chunk_size):
            return None
        out.append(data)
    return b"".join(out)


# --- running one target in this process -------------------------------------------------------------


class Recorder:
    """Counts outcomes, saves findings (one input per distinct signature), writes stats to disk."""

    def __init__(self, target: Target, findings_dir: Path, stats_path: Path, slow: float) -> None:
        self.target = target
        self.findings_dir = findings_dir
        self.stats_path = stats_path
        self.slow = slow
        self.outcomes: Counter[str] = Counter()
        self.findings: dict[str, dict[str, Any]] = {}
        self.executions = 0
        self.slowest = 0.0
        self._last_flush = 0.0

    def __call__(self, data: bytes) -> None:
        start = time.perf_counter()
        try:
            label = self.target.run(data)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # everything the target did not classify is a finding
            label = "FINDING"
            self.finding(data, exc)
        elapsed = time.perf_counter() - start
        self.slowest = max(self.slowest, elapsed)
        if elapsed > self.slow:
            self.finding(data, Finding(f"one input took {elapsed:.2f} s (limit {self.slow} s)"), kind="slow")
        self.executions += 1
        self.outcomes[label] += 1
        if start - self._last_flush > 2:
            self.flush()

    def finding(self, data: bytes, exc: BaseException, kind: str = "crash") -> None:
        signature = f"{kind}:{type(exc).__name__}:{where(exc)}"
        entry = self.findings.setdefault(signature, {"signature": signature, "count": 0})
        entry["count"] += 1
        if entry["count"] == 1:
            self.findings_dir.mkdir(parents=True, exist_ok=True)
            name = f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}"
            (self.findings_dir / name).write_bytes(data)
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            (self.findings_dir / f"{name}.txt").write_text(f"{signature}\n\n{text}")
            entry.update(input=str(self.findings_dir / name), message=str(exc)[:300])
            print(f"\n=== FINDING {signature}\n{text}input saved to {self.findings_dir / name}", file=sys.stderr)
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.perf_counter()
        stats = {
            "target": self.target.name,
            "executions": self.executions,
            "outcomes": dict(self.outcomes.most_common()),
            "slowest_seconds": round(self.slowest, 3),
            "findings": list(self.findings.values()),
        }
        self.stats_path.write_text(json.dumps(stats, indent=1))


def where(exc: BaseException) -> str:
    """The innermost frame in envelope (else the innermost frame): how findings are deduplicated."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if f"{os.sep}envelope{os.sep}" in f.filename]
    frame = (inside or frames or [None])[-1]
    return "?" if frame is None else f"{Path(frame.filename).name}:{frame.lineno}"


def worker(args: argparse.Namespace) -> int:
    """Run one target under atheris until libFuzzer's time budget ends (this never returns)."""
    work = Path(args.work_dir)
    name = args.worker
    if args.engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["envelope"]):
            import envelope
            import envelope._format
            import envelope.cli.info
            import envelope.core
            import envelope.fileio
            import envelope.files
            import envelope.inspection
            import envelope.keys
            import envelope.recipients  # noqa: F401
    world = build_world()
    target = make_targets(world)[name]
    seeds_dir, corpus_dir = work / "seeds" / name, work / "corpus" / name
    for folder in (seeds_dir, corpus_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds():
        (seeds_dir / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    recorder = Recorder(target, work / "findings" / name, work / "stats" / f"{name}.json", args.slow)
    recorder.stats_path.parent.mkdir(parents=True, exist_ok=True)
    recorder.flush()
    if args.engine == "mutate":
        return mutate_loop(recorder, [p.read_bytes() for p in sorted(seeds_dir.iterdir())], args.seconds)
    dictionary = work / "envelope.dict"
    dictionary.write_text("".join(f'"{escaped(word)}"\n' for word in DICTIONARY))
    libfuzzer_args = [
        sys.argv[0],
        f"-max_total_time={max(1, int(args.seconds))}",
        f"-timeout={args.hang}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-max_len={target.max_len}",
        f"-artifact_prefix={work / 'findings' / name}/",
        f"-dict={dictionary}",
        "-print_final_stats=1",
        "-print_pcs=0",
        str(corpus_dir),
        str(seeds_dir),
    ]
    (work / "findings" / name).mkdir(parents=True, exist_ok=True)
    import atheris

    atheris.Setup(libfuzzer_args, recorder)
    atheris.Fuzz()
    return 0


def escaped(word: bytes) -> str:
    """A libFuzzer dictionary entry: every byte as \\xNN."""
    return "".join(f"\\x{b:02x}" for b in word)


def mutate_loop(recorder: Recorder, seeds: list[bytes], seconds: float) -> int:
    """Fallback engine without coverage feedback: random byte-level mutations of the seeds."""
    rng = random.Random(0x5EED)
    deadline = time.monotonic() + seconds
    for seed in seeds:
        recorder(seed)
    while time.monotonic() < deadline:
        blob = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(blob) + 1)
            action = rng.randrange(5)
            if action == 0 and blob:
                blob[min(position, len(blob) - 1)] ^= 1 << rng.randrange(8)
            elif action == 1:
                del blob[position : position + rng.randint(1, 64)]
            elif action == 2:
                blob[position:position] = rng.randbytes(rng.randint(1, 16))
            elif action == 3 and blob:
                start = rng.randrange(len(blob))
                blob[position:position] = blob[start : start + rng.randint(1, 64)]
            elif blob:
                blob[min(position, len(blob) - 1)] = rng.choice((0, 0xFF, 0x7F, 0x80, 0xC1, 0xDC, 0xDE))
        recorder(bytes(blob))
    recorder.flush()
    print(f"#{recorder.executions} DONE (mutate engine, no coverage)", file=sys.stderr)
    return 0


# --- the campaign: one process per target ------------------------------------------------------------


@dataclass
class Result:
    target: str
    seconds: float
    returncode: int
    executions: int | None
    cov: int | None
    ft: int | None
    corpus: str | None
    stats: dict[str, Any]
    log: Path
    extra_findings: list[str]

    @property
    def findings(self) -> list[str]:
        return [f["signature"] for f in self.stats.get("findings", [])] + self.extra_findings


def run_target(name: str, seconds: float, args: argparse.Namespace) -> Result:
    work = Path(args.work_dir)
    log = work / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    stats_path = work / "stats" / f"{name}.json"
    stats_path.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--seconds", str(seconds)]
    command += ["--work-dir", str(work), "--slow", str(args.slow), "--hang", str(args.hang), "--engine", args.engine]
    command += ["--rss-limit-mb", str(args.rss_limit_mb)]
    started = time.monotonic()
    with log.open("w") as out:
        # The worker's own time limit stops it; the wall-clock limit here only guards against a stuck start-up.
        process = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=seconds + 600, check=False)
    text = log.read_text(errors="replace")
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    executions = last_int(r"stat::number_of_executed_units:\s*(\d+)", text) or last_int(r"^#(\d+)", text)
    extra = []
    if process.returncode != 0:  # libFuzzer stopped on something the harness could not catch
        cause = re.findall(r"==\d+== ERROR: libFuzzer: ([^\n]+)|(Test unit written to [^\n]+)", text)
        extra.append(f"worker exited {process.returncode}: " + "; ".join(a or b for a, b in cause)[:300])
    status = re.findall(r"cov: (\d+) ft: (\d+) corp: (\S+)", text)
    cov, ft, corpus = (int(status[-1][0]), int(status[-1][1]), status[-1][2]) if status else (None, None, None)
    return Result(name, time.monotonic() - started, process.returncode, executions, cov, ft, corpus, stats, log, extra)


def last_int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text, flags=re.MULTILINE)
    return int(found[-1]) if found else None


def campaign(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.targets.split(",") if n.strip()] if args.targets else list(TARGET_NAMES)
    unknown = sorted(set(names) - set(TARGET_NAMES))
    if unknown:
        sys.exit(f"unknown target(s): {', '.join(unknown)} (choose from {', '.join(TARGET_NAMES)})")
    if args.engine == "atheris":
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed (pip install atheris): using --engine mutate", file=sys.stderr)
            args.engine = "mutate"
    per_target = args.seconds if args.per_target else max(5.0, args.seconds * args.jobs / len(names))
    work = Path(args.work_dir)
    print(f"fuzzing {', '.join(names)}: {per_target:.0f} s each, {args.jobs} at a time, engine {args.engine}")
    print(f"work folder {work} (corpus, logs, findings)")
    results: list[Result] = []
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda n: run_target(n, per_target, args), names):
            results.append(result)
            print(summary_line(result), flush=True)
    return report(results)


def summary_line(r: Result) -> str:
    coverage = "cov n/a" if r.cov is None else f"cov {r.cov} ft {r.ft} corpus {r.corpus}"
    outcomes = ", ".join(f"{k} {v}" for k, v in list(r.stats.get("outcomes", {}).items())[:6])
    found = f"{len(r.findings)} FINDING(S)" if r.findings else "no findings"
    return f"  {r.target:<8} {r.executions or 0:>9} execs  {coverage:<32} {found}  [{outcomes}]"


def report(results: list[Result]) -> int:
    total = sum(r.executions or 0 for r in results)
    findings = [(r.target, f) for r in results for f in r.findings]
    print(f"\ntotal: {total} executions in {len(results)} targets; {len(findings)} finding(s)")
    table = {
        r.target: {
            "executions": r.executions,
            "cov": r.cov,
            "ft": r.ft,
            "corpus": r.corpus,
            "seconds": round(r.seconds),
            "slowest_seconds": r.stats.get("slowest_seconds"),
            "outcomes": r.stats.get("outcomes"),
            "findings": r.findings,
        }
        for r in results
    }
    print(json.dumps(table, indent=1))
    for target, finding in findings:
        print(f"FINDING [{target}] {finding}")
    for r in results:
        for f in r.stats.get("findings", []):
            print(f"  reproduce: python tools/fuzz.py --reproduce {r.target} {f.get('input')}")
    return 1 if findings else 0


def reproduce(name: str, paths: Iterable[str]) -> int:
    """Run inputs through one target, outside libFuzzer, and show what happens."""
    target = make_targets(build_world())[name]
    status = 0
    for path in paths:
        data = Path(path).read_bytes()
        start = time.perf_counter()
        try:
            label = target.run(data)
        except BaseException:
            traceback.print_exc()
            label, status = "FINDING", 1
        print(f"{path}: {label} ({time.perf_counter() - start:.3f} s)")
    return status


FUZZED_MODULES = ("_format", "_layout", "_stream", "_pipeline", "_header", "_datakey", "recipients", "keys",
                  "_keypolicy", "_keyformat", "signing", "core", "fileio", "inspection",
                  "cli/info", "cli/errors", "cli/render")  # fmt: skip


def line_coverage(names: Sequence[str], work: Path) -> int:
    """Replay each target's corpus and seeds under a line tracer; print the envelope lines reached."""
    import threading
    import types

    package = ROOT / "envelope"
    files = {str(package / f"{m}.py"): m for m in FUZZED_MODULES}
    hit: dict[str, set[int]] = {f: set() for f in files}

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            hit[frame.f_code.co_filename].add(frame.f_lineno)
        return local

    def tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename in hit:
            hit[frame.f_code.co_filename].add(frame.f_lineno)
            return local
        return None

    targets = make_targets(build_world())
    from envelope import _stream

    for pool in _stream._POOLS.values():  # threading.settrace reaches only threads started after it
        pool.shutdown()
    _stream._POOLS.clear()
    replayed = 0
    sys.settrace(tracer)
    threading.settrace(tracer)
    try:
        for name in names:
            for folder in (work / "seeds" / name, work / "corpus" / name):
                for path in sorted(folder.iterdir()) if folder.is_dir() else []:
                    with contextlib.suppress(Exception):
                        targets[name].run(path.read_bytes())
                    replayed += 1
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
    print(f"line coverage of envelope after replaying {replayed} inputs ({', '.join(names)}):")
    total_hit = total_lines = 0
    for path, module in files.items():
        lines = executable_lines(Path(path))
        reached = len(hit[path] & lines)
        total_hit, total_lines = total_hit + reached, total_lines + len(lines)
        share = 100 * reached / max(1, len(lines))
        print(f"  envelope/{module + '.py':<18} {reached:>4} / {len(lines):<4} {share:5.1f} %")
    print(f"  {'total':<27} {total_hit:>4} / {total_lines:<4} {100 * total_hit / max(1, total_lines):5.1f} %")
    return 0


def executable_lines(path: Path) -> set[int]:
    """Lines that hold code inside functions (module-level statements run at import, not per input)."""
    import types

    lines: set[int] = set()
    pending = [c for c in compile(path.read_text(), str(path), "exec").co_consts if isinstance(c, types.CodeType)]
    while pending:
        code = pending.pop()
        lines.update(line for _, _, line in code.co_lines() if line is not None and line != code.co_firstlineno)
        pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="time budget, total (default) or per target")
    parser.add_argument("--per-target", action="store_true", help="--seconds is per target, not the total")
    parser.add_argument("--targets", help=f"comma-separated subset of: {', '.join(TARGET_NAMES)}")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time (default 1)")
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "envelope-fuzz"))
    parser.add_argument("--slow", type=float, default=2.0, help="seconds after which one input is a finding")
    parser.add_argument("--hang", type=int, default=20, help="libFuzzer -timeout: seconds before a hang aborts")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="libFuzzer -rss_limit_mb")
    parser.add_argument("--engine", choices=("atheris", "mutate"), default="atheris")
    parser.add_argument("--reproduce", metavar="TARGET", help="run the given input files through TARGET")
    parser.add_argument(
        "--line-coverage", action="store_true", help="replay the corpus of --targets and print envelope line coverage"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("inputs", nargs="*", help="input files for --reproduce")
    args, _libfuzzer_flags = parser.parse_known_args(argv)
    if args.reproduce:
        return reproduce(args.reproduce, args.inputs)
    if args.line_coverage:
        names = [n.strip() for n in args.targets.split(",")] if args.targets else list(TARGET_NAMES)
        return line_coverage(names, Path(args.work_dir))
    if args.worker:
        return worker(args)
    return campaign(args)


if __name__ == "__main__":
    sys.exit(main())
