"""FORMAT.md 6 and 8 after the review of issue 17: what a signature binds (the key commitment, the
signed header), which signer keys are valid (R24), the memory a verifier needs, and when plaintext
may leave a reader of a signed file."""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from forge import Pipe

import envelope
from envelope._format import encode_header, encode_prefix, read_header, signed_header
from envelope._header import read_and_unlock

DATA = os.urandom(5000)


@pytest.fixture(scope="module")
def signer() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def sealed_signed(alice, signer, **options) -> bytes:  # type: ignore[no-untyped-def]
    return envelope.seal(DATA, alice.public_key(), sign_with=signer, chunk_size=1024, **options)


def every_reader_refuses(sealed: bytes, key, error: type[Exception], signed_by=None) -> None:  # type: ignore[no-untyped-def]
    for read in (
        lambda: envelope.open(sealed, key, signed_by=signed_by),
        lambda: envelope.open_stream(io.BytesIO(sealed), io.BytesIO(), key, signed_by=signed_by),
        lambda: envelope.open_stream(io.BufferedReader(Pipe(sealed)), io.BytesIO(), key, signed_by=signed_by),
        lambda: envelope.EnvelopeReader(io.BytesIO(sealed), key, signed_by=signed_by).read(),
    ):
        with pytest.raises(error):
            read()


def rewritten(sealed: bytes, key, change) -> bytes:  # type: ignore[no-untyped-def]
    """What a recipient (who holds K) can make: the header changed by ``change(header, data_key)``
    (which returns the new header and data key), re-MACed; tokens and footer as they were."""
    unlocked = read_and_unlock(io.BytesIO(sealed), key)
    header, data_key = change(unlocked.header, unlocked.data_key)
    encoded = encode_header(header)
    authenticated = encode_prefix(len(encoded)) + encoded
    return authenticated + data_key.header_mac(authenticated) + sealed[unlocked.size :]


# --- item 9: key commitment ---------------------------------------------------------------------------------


def test_a_rekeyed_signed_file_is_refused(alice, signer):
    """A recipient keeps K[0:16] (so every token's tag, and the footer, still verify) and swaps the
    encryption half, with a commitment and header MAC that match its new key: the signature covers
    the original commitment, so every reader refuses the file, and those that can read the footer
    first do so before opening any chunk."""
    from envelope._datakey import DataKey

    sealed = sealed_signed(alice, signer)

    def rekey(header, data_key):  # type: ignore[no-untyped-def]
        rekeyed = DataKey(data_key.raw()[:16] + os.urandom(16))
        entries = (envelope.RsaRecipient(alice.public_key()).wrap(rekeyed),)
        return dataclasses.replace(header, recipients=entries, commit=rekeyed.commitment()), rekeyed

    forged = rewritten(sealed, alice, rekey)
    every_reader_refuses(forged, alice, envelope.AuthenticationError)
    for read in (
        lambda: envelope.open(forged, alice),
        lambda: envelope.open_stream(io.BytesIO(forged), io.BytesIO(), alice),
        lambda: envelope.open_stream(
            io.BufferedReader(Pipe(forged)), io.BytesIO(), alice, signed_by=signer.public_key()
        ),
    ):
        with pytest.raises(envelope.SignatureError):
            read()
    with pytest.raises(envelope.SignatureError):
        envelope.check_signature(forged, signed_by=signer.public_key())


def test_a_commitment_of_another_key_is_r16_with_the_mac_failures_message(alice):
    sealed = envelope.seal(DATA, alice.public_key())

    def other_commitment(header, data_key):  # type: ignore[no-untyped-def]
        from envelope._datakey import DataKey

        return dataclasses.replace(header, commit=DataKey.generate().commitment()), data_key

    forged = rewritten(sealed, alice, other_commitment)
    with pytest.raises(envelope.AuthenticationError) as commit_failure:
        envelope.open(forged, alice)
    flipped = bytearray(sealed)
    flipped[envelope.inspect(sealed).header_size - 1] ^= 1
    with pytest.raises(envelope.AuthenticationError) as mac_failure:
        envelope.open(bytes(flipped), alice)
    assert str(commit_failure.value) == str(mac_failure.value)


# --- item 10: what the signature covers ---------------------------------------------------------------------


def test_the_signature_covers_unknown_keys_and_not_the_recipients(alice, bob, signer):
    sealed = sealed_signed(alice, signer)
    extended = rewritten(sealed, alice, lambda h, k: (dataclasses.replace(h, extensions={"x-note": 1}), k))
    every_reader_refuses(extended, alice, envelope.SignatureError)
    rewrapped = envelope.rewrap(sealed, alice, add=bob.public_key())
    assert envelope.open(rewrapped, bob, signed_by=signer.public_key()) == DATA
    header = read_header(io.BytesIO(rewrapped))[1]
    assert header.signed == read_header(io.BytesIO(sealed))[1].signed  # H unchanged by a rewrap


def test_a_rewrap_keeps_every_other_entry_byte_for_byte(alice, bob, signer):
    """FORMAT.md 10: a header written by another implementation, not in canonical form (here an
    unknown key holding a float32, which this SDK would write as a float64), keeps its signature
    through a rewrap."""
    import msgpack

    sealed = sealed_signed(alice, signer)
    unlocked = read_and_unlock(io.BytesIO(sealed), alice)
    odd = msgpack.packb("x-ratio") + b"\xca" + bytes.fromhex("3fc00000")  # float32 1.5
    encoded = unlocked.encoded
    map_prefix = encoded[:1]
    assert map_prefix[0] & 0xF0 == 0x80 and map_prefix[0] < 0x8F
    header_bytes = bytes([map_prefix[0] + 1]) + encoded[1:] + odd
    authenticated = encode_prefix(len(header_bytes)) + header_bytes
    # The signer signs this header (it is its own writer): rebuild the footer over the new H.
    from envelope.signing import KeySigner, to_be_signed

    payload = sealed[unlocked.size :]
    info = envelope.inspect(sealed)
    assert info.chunk_count is not None
    footer_start = len(payload) - (32 * info.chunk_count + 64)
    tags = payload[footer_start : footer_start + 32 * info.chunk_count]
    import hashlib

    message = to_be_signed(signed_header(header_bytes), info.chunk_count, hashlib.sha256(tags).digest())
    signature = KeySigner(signer).sign(message)
    own = (
        authenticated
        + unlocked.data_key.header_mac(authenticated)
        + payload[: footer_start + 32 * info.chunk_count]
        + signature
    )
    assert envelope.open(own, alice, signed_by=signer.public_key()) == DATA
    rewrapped = envelope.rewrap(own, alice, add=bob.public_key())
    assert b"\xca\x3f\xc0\x00\x00" in rewrapped[: envelope.inspect(rewrapped).header_size]
    assert envelope.open(rewrapped, bob, signed_by=signer.public_key()) == DATA


# --- item 12: signer keys (R24) ---------------------------------------------------------------------------

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P


def edwards_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Twisted Edwards addition on edwards25519 (RFC 8032 5.1.4, affine): test arithmetic only."""
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P


def recover_x(y: int, odd: int) -> int | None:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if x * x % P != x2:
        x = x * pow(2, (P - 1) // 4, P) % P
    if x * x % P != x2:
        return None
    return P - x if (x & 1) != odd and x else x


L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point's group


def multiply(k: int, point: tuple[int, int]) -> tuple[int, int]:
    result, addend = (0, 1), point
    while k:
        if k & 1:
            result = edwards_add(result, addend)
        addend = edwards_add(addend, addend)
        k >>= 1
    return result


@functools.cache
def small_order_points() -> frozenset[tuple[int, int]]:
    """The eight points whose order divides 8, derived: the curve has 8·L points, so [L]Q lies in
    that subgroup for every point Q, and random points Q reach all eight."""
    found: set[tuple[int, int]] = set()
    y = 2
    while len(found) < 8:
        y += 1
        x = recover_x(y, 0)
        if x is not None:
            found.add(multiply(L, (x, y)))
        assert y < 2000, "the subgroup has eight points"
    assert all(multiply(8, point) == (0, 1) for point in found)
    return frozenset(found)


def encoding(point: tuple[int, int]) -> bytes:
    x, y = point
    return (y | (x & 1) << 255).to_bytes(32, "little")


ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")


def with_signer_key(sealed: bytes, key, raw: bytes) -> bytes:  # type: ignore[no-untyped-def]
    """The file's signer replaced by the Ed25519 key of these 32 bytes (kid to match), re-MACed."""
    import hashlib

    der = ED25519_SPKI + raw
    entry = envelope._format.SignerEntry("ed25519", hashlib.sha256(der).digest(), der)
    return rewritten(sealed, key, lambda h, k: (dataclasses.replace(h, signer=entry), k))


def test_the_small_order_list_is_the_derived_one():
    from envelope._edwards import _ED25519_SMALL_ORDER_Y

    assert {y for _, y in small_order_points()} == set(_ED25519_SMALL_ORDER_Y)


def test_r24_ed25519_keys_must_be_canonical_points_of_large_order(alice, signer):
    """Issue 17 item 12, found by an implementation written from the spec alone: y >= p was
    reduced (one key, two key ids), a non-point was reported as a bad signature (R27), and
    small-order keys, for which anyone can make a verifying signature, were accepted."""
    sealed = sealed_signed(alice, signer)
    good = signer.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    y3 = (3).to_bytes(32, "little")
    assert recover_x(3, 0) is not None
    bad = {
        "y + p": (3 + P).to_bytes(32, "little"),
        "not a point": (2).to_bytes(32, "little"),
        "x = 0, odd": (1 | 1 << 255).to_bytes(32, "little"),
        **{f"small order {i}": encoding(point) for i, point in enumerate(sorted(small_order_points()))},
    }
    assert with_signer_key(sealed, alice, y3)  # y = 3 itself is a valid encoding
    for name, raw in bad.items():
        forged = with_signer_key(sealed, alice, raw)
        for read in (
            lambda: envelope.open(forged, alice),
            lambda: envelope.check_signature(forged),
            lambda: envelope.open_stream(io.BufferedReader(Pipe(forged)), io.BytesIO(), alice),
        ):
            with pytest.raises(envelope.MalformedError, match="signer's key"):
                read()
    # the control: the signer's own key, put back the same way, opens
    assert envelope.open(with_signer_key(sealed, alice, good), alice) == DATA


def test_a_forged_signature_under_the_identity_key_is_refused_as_r24(alice, signer):
    """R = identity, S = 0 verifies under the identity key for any message: refused as a key."""
    identity = (1).to_bytes(32, "little")
    forged = bytearray(with_signer_key(sealed_signed(alice, signer), alice, identity))
    forged[-64:] = identity + bytes(32)
    with pytest.raises(envelope.MalformedError, match="small order"):
        envelope.check_signature(bytes(forged))


# --- items 3 and 11: a verifier's memory does not grow with the footer --------------------------------------


@pytest.fixture(scope="module")
def hostile_signed(tmp_path_factory, signer) -> tuple[Path, object]:  # type: ignore[no-untyped-def]
    """Issue 17 item 3: a tiny sparse file that claims a pinned signer, with chunks of 16 bytes and
    an apparent length of 2 GiB: about 18 million tags, a 560 MB footer if it were read whole."""
    alice = envelope.generate_private_key(2048)
    sealed = envelope.seal(b"x" * 100, alice.public_key(), sign_with=signer, chunk_size=16)
    path = tmp_path_factory.mktemp("hostile") / "huge.env"
    header_size = envelope.inspect(sealed).header_size
    count = (2 << 30) // (89 + 32)  # tokens of a 16-byte chunk are 89 bytes, the last one 73 here
    with open(path, "wb") as f:
        f.write(sealed[:header_size])
        f.truncate(header_size + (count - 1) * 89 + 73 + 32 * count + 64)  # a possible layout (7.3)
    assert envelope.inspect(path).chunk_count == count
    return path, alice


def peak_traced(work) -> tuple[int, BaseException]:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        with pytest.raises(envelope.EnvelopeError) as caught:
            work()
        return tracemalloc.get_traced_memory()[1], caught.value
    finally:
        tracemalloc.stop()


def test_a_hostile_signed_file_is_refused_in_a_few_mib(hostile_signed, signer):
    path, alice = hostile_signed
    pins = signer.public_key()
    for name, work in {
        "open_file": lambda: envelope.open_file(path, path.with_suffix(".out"), alice, signed_by=pins),
        "verify_file": lambda: envelope.verify_file(path, alice, signed_by=pins),
        "EnvelopeReader": lambda: envelope.EnvelopeReader(open(path, "rb"), alice, signed_by=pins, close_src=True),
        "check_signature": lambda: envelope.check_signature(path, signed_by=pins),
        "inspect_signed": lambda: envelope.inspect_signed(path, signed_by=pins),
    }.items():
        peak, error = peak_traced(work)
        assert peak < 8 << 20, f"{name}: {peak >> 20} MiB"
        # the footer was reached: the signature (or, keyless, the first token's head) fails
        assert isinstance(error, (envelope.SignatureError, envelope.AuthenticationError)), (name, error)
    assert not path.with_suffix(".out").exists()


def test_envelope_info_signed_by_on_a_hostile_file_stays_small(hostile_signed, signer, tmp_path):
    path, _ = hostile_signed
    pub = tmp_path / "signer.pub"
    envelope.save_public_key(pub, signer)
    code = (
        "import tracemalloc\n"
        "from envelope.cli import info\n"
        "tracemalloc.start()\n"
        f"try:\n    status = info.main(['--signed-by', {str(pub)!r}, {str(path)!r}])\n"
        "except SystemExit as e:\n    status = e.code\n"
        "print(status, tracemalloc.get_traced_memory()[1])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    status, peak = done.stdout.strip().splitlines()[-1].split()
    assert status != "0" and "payload authentication failed" in done.stderr
    assert int(peak) < 32 << 20, done.stdout  # the command's allocations, imports included


def test_a_long_signed_file_verifies_with_its_tags_read_in_blocks(alice, signer, monkeypatch):
    """More tags than one block of the footer (limits.FOOTER_TAG_BLOCK): every reader still checks
    each token against its own tag, and a tag edited far from the first block is found."""
    monkeypatch.setattr(envelope._stream, "FOOTER_TAG_BLOCK", 64)
    monkeypatch.setattr(envelope.files, "FOOTER_TAG_BLOCK", 64)
    data = os.urandom(16 * 1000)
    sealed = envelope.seal(data, alice.public_key(), sign_with=signer, chunk_size=16)
    assert envelope.open(sealed, alice, signed_by=signer.public_key()) == data
    with envelope.EnvelopeReader(io.BytesIO(sealed), alice) as reader:
        reader.seek(16 * 900)
        assert reader.read(32) == data[16 * 900 : 16 * 902]
    assert envelope.check_signature(sealed, signed_by=signer.public_key()).verified
    tampered = bytearray(sealed)
    tampered[len(sealed) - 64 - 32 * 100 + 3] ^= 1  # the tag of token 900, in the footer's 15th block
    for read in (
        lambda: envelope.open(bytes(tampered), alice),
        lambda: envelope.check_signature(bytes(tampered)),
    ):
        with pytest.raises(envelope.SignatureError):
            read()


def test_a_footer_block_that_changes_after_the_signature_check_is_refused(alice, signer, monkeypatch):
    """A random-access reader re-reads footer blocks it no longer holds: what it re-reads must be
    what the signature covered (FORMAT.md 8.3), even if the source changed since."""
    monkeypatch.setattr(envelope._stream, "FOOTER_TAG_BLOCK", 64)
    monkeypatch.setattr(envelope._stream.FooterTags, "_HELD", 1)
    data = os.urandom(16 * 1000)
    sealed = bytearray(envelope.seal(data, alice.public_key(), sign_with=signer, chunk_size=16))
    source = io.BytesIO(sealed)
    reader = envelope.EnvelopeReader(source, alice)
    reader.seek(16 * 10)
    assert reader.read(16) == data[160:176]
    view = source.getbuffer()
    view[len(sealed) - 64 - 32 * 100 + 3] ^= 1  # the footer changes under the open reader
    del view
    reader.seek(16 * 900)
    with pytest.raises(envelope.SignatureError):
        reader.read(16)


# --- item 13: no plaintext before the signature, with pinned signers --------------------------------------


class CountingOutput(io.RawIOBase):
    def __init__(self) -> None:
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        self.written += len(data)
        return len(data)


def test_nothing_reaches_an_output_before_the_signature_verified(alice, signer):
    """Issue 17 item 13: a bad signature at the end of a file read as a stream (seekable or a pipe,
    with the signer pinned) used to let every chunk through before the footer was read."""
    sealed = bytearray(envelope.seal(os.urandom(1 << 20), alice.public_key(), sign_with=signer, chunk_size=4096))
    sealed[-1] ^= 1  # the last byte of the signature
    for source in (io.BytesIO(bytes(sealed)), io.BufferedReader(Pipe(bytes(sealed)))):
        out = CountingOutput()
        with pytest.raises(envelope.SignatureError):
            envelope.open_stream(source, out, alice, signed_by=signer.public_key())
        assert out.written == 0
    with pytest.raises(envelope.SignatureError):
        envelope.EnvelopeStreamReader(
            io.BufferedReader(Pipe(bytes(sealed))), alice, signed_by=signer.public_key()
        ).read(1)


def test_the_cli_writes_nothing_to_a_pipe_before_the_signature_verified(alice, signer, tmp_path):
    sealed = bytearray(envelope.seal(os.urandom(1 << 20), alice.public_key(), sign_with=signer, chunk_size=4096))
    sealed[-1] ^= 1
    envelope.save_private_key(tmp_path / "alice.key", alice)
    envelope.save_public_key(tmp_path / "signer.pub", signer)
    for stdin in (bytes(sealed), None):  # a pipe, and a file given by path
        path = tmp_path / "bad.env"
        path.write_bytes(bytes(sealed))
        argv = [sys.executable, "-m", "envelope", "open", "-i", str(tmp_path / "alice.key")]
        argv += ["--signed-by", str(tmp_path / "signer.pub"), "-o", "-"]
        argv += [] if stdin is not None else [str(path)]
        done = subprocess.run(argv, input=stdin, capture_output=True, check=False)
        assert done.returncode != 0 and done.stdout == b"", (done.returncode, len(done.stdout), done.stderr)


# --- item 4: what envelope-info shows is what it checked -----------------------------------------------------


def test_envelope_info_signed_by_shows_the_header_it_checked_from_one_read(  # type: ignore[no-untyped-def]
    alice, signer, tmp_path, monkeypatch, capsys
):
    """Issue 17 item 4: `envelope-info --signed-by` inspected the file, then read it again to check
    the signature, and printed the first read's metadata beside "verified". It now reads once."""
    from envelope.cli import info

    path = tmp_path / "m.env"
    path.write_bytes(envelope.seal(b"w" * 100, alice.public_key(), metadata={"stage": "prod"}, sign_with=signer))
    envelope.save_public_key(tmp_path / "signer.pub", signer)

    def no_second_read(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the file was inspected apart from its signature check")

    monkeypatch.setattr(envelope, "inspect", no_second_read)
    assert info.main(["--json", "--signed-by", str(tmp_path / "signer.pub"), str(path)]) == 0
    record = json.loads(capsys.readouterr().out)["files"][0]
    assert record["signer"]["verified"] is True and record["metadata"] == {"stage": "prod"}


def test_envelope_info_verify_refuses_a_url_that_changed_between_its_reads(alice, tmp_path, monkeypatch, capsys):
    """A URL is read once to be shown and once to be verified: a store that serves another object
    the second time must not get the first one's metadata shown as verified."""
    from envelope.cli import info

    pytest.importorskip("fsspec")  # URLs need the fsspec extra (the core-dependency runs lack it)
    shown = envelope.inspect(envelope.seal(b"x", alice.public_key(), metadata={"stage": "prod"}))
    served = tmp_path / "served.env"
    served.write_bytes(envelope.seal(b"x", alice.public_key(), metadata={"stage": "test"}))
    envelope.save_private_key(tmp_path / "alice.key", alice)
    url = f"file://{served}"
    assert envelope.is_url(url)
    monkeypatch.setattr(envelope, "inspect", lambda source, **options: shown)
    status = info.main(["--json", "--verify", str(tmp_path / "alice.key"), url])
    record = json.loads(capsys.readouterr().out)["files"][0]
    assert status != 0 and "changed between two reads" in record["error"]["message"]


def test_r24_ecdsa_keys_off_the_curve_or_with_a_coordinate_over_p(alice):
    """FORMAT.md 8.1: a P-256 point must lie on the curve, each coordinate below p (one encoding)."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import ec

    signer = ec.generate_private_key(ec.SECP256R1())
    sealed = envelope.seal(DATA, alice.public_key(), sign_with=signer, chunk_size=1024)
    der = signer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    p256 = 2**256 - 2**224 + 2**192 + 2**96 - 1
    x, y = int.from_bytes(der[-64:-32], "big"), int.from_bytes(der[-32:], "big")
    variants = {"y + 1": (x, y + 1), "x + p": (x + p256, y)}
    for name, (vx, vy) in variants.items():
        if vx >= 2**256 or vy >= 2**256:
            continue  # no 32-byte encoding: the coordinate was too close to 2^256 for this case
        bad = der[:-64] + vx.to_bytes(32, "big") + vy.to_bytes(32, "big")
        entry = envelope._format.SignerEntry("ecdsa-p256-sha256", hashlib.sha256(bad).digest(), bad)
        forged = rewritten(sealed, alice, lambda h, k, entry=entry: (dataclasses.replace(h, signer=entry), k))
        with pytest.raises(envelope.MalformedError, match="signer's key"):
            envelope.open(forged, alice)
        with pytest.raises(envelope.MalformedError, match="signer's key"):
            envelope.check_signature(forged)
