"""Property 2, exhaustively on a small file: every bit flip and every truncation is detected, and
hostile bytes of any shape raise only documented errors."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope

PLAINTEXT = b"small model weights, three chunks"  # 33 bytes at chunk_size 16: chunks of 16, 16, 1


@pytest.fixture(scope="module")
def small_sealed(alice) -> bytes:
    sealed = envelope.seal(PLAINTEXT, [alice.public_key()], metadata={"name": "tiny", "v": 2}, chunk_size=16)
    assert envelope.inspect(sealed).chunk_count == 3
    return sealed


def test_every_single_bit_flip_is_rejected(alice, small_sealed):
    flips = 0
    for position in range(len(small_sealed)):
        for bit in range(8):
            tampered = bytearray(small_sealed)
            tampered[position] ^= 1 << bit
            with pytest.raises(envelope.EnvelopeError):
                envelope.open(bytes(tampered), alice)
            flips += 1
    assert flips == 8 * len(small_sealed) > 4000


def test_every_truncation_is_rejected_by_every_reader(alice, small_sealed):
    for length in range(len(small_sealed)):
        cut = small_sealed[:length]
        with pytest.raises(envelope.EnvelopeError):
            envelope.open(cut, alice)
        with pytest.raises(envelope.EnvelopeError):
            envelope.open_stream(io.BytesIO(cut), io.BytesIO(), alice)
        with pytest.raises(envelope.EnvelopeError):
            envelope.EnvelopeReader(io.BytesIO(cut), alice).read()


def test_appended_bytes_are_rejected(alice, small_sealed):
    for extra in (b"\0", b"\x80", small_sealed[-73:], b"x" * 500):
        with pytest.raises(envelope.AuthenticationError):
            envelope.open(small_sealed + extra, alice)


@settings(max_examples=300)
@given(data=st.data())
def test_mutated_files_fail_cleanly_or_open_to_the_original(alice, small_sealed, data):
    """Splices, duplicated regions, overwritten runs: success means the exact original plaintext."""
    blob = bytearray(small_sealed)
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(blob)))
        end = data.draw(st.integers(start, min(len(blob), start + 64)))
        kind = data.draw(st.sampled_from(["delete", "duplicate", "overwrite", "insert"]))
        if kind == "delete":
            del blob[start:end]
        elif kind == "duplicate":
            blob[start:start] = blob[start:end]
        elif kind == "overwrite":
            blob[start:end] = data.draw(st.binary(min_size=end - start, max_size=end - start))
        else:
            blob[start:start] = data.draw(st.binary(min_size=1, max_size=16))
    try:
        assert envelope.open(bytes(blob), alice) == PLAINTEXT
    except envelope.EnvelopeError:
        pass


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_garbage_raises_only_envelope_errors(alice, garbage):
    for candidate in (garbage, b"\x89ENV\r\n\x1a\n\x01" + garbage):
        with pytest.raises(envelope.EnvelopeError):
            envelope.open(candidate, alice)
        try:
            envelope.inspect(candidate)
        except envelope.EnvelopeError:
            pass
