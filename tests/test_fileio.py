"""Random access (section 7.3): the seekable reader returns what a full open returns."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope

DATA = bytes((i * 31 + i // 7) % 256 for i in range(5000))


@pytest.fixture(scope="module")
def sealed_data(alice) -> bytes:
    return envelope.seal(DATA, alice.public_key(), chunk_size=100)


class CountingReads(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        n = super().readinto(buffer)
        self.bytes_read += n
        return n


@settings(max_examples=200)
@given(pairs=st.lists(st.tuples(st.integers(0, len(DATA) + 50), st.integers(0, 700)), min_size=1, max_size=8))
def test_random_reads_match_the_full_plaintext(alice, sealed_data, pairs):
    reader = envelope.EnvelopeReader(io.BytesIO(sealed_data), alice)
    assert reader.seekable() and reader.size == len(DATA)
    for offset, length in pairs:
        assert reader.seek(offset) == offset
        expected = DATA[offset : offset + length]
        assert reader.read(length) == expected
        assert reader.tell() == offset + len(expected)


def test_seek_whence_and_errors(alice, sealed_data):
    reader = envelope.EnvelopeReader(io.BytesIO(sealed_data), alice)
    reader.seek(-10, os.SEEK_END)
    assert reader.read() == DATA[-10:]
    reader.seek(100)
    reader.seek(5, os.SEEK_CUR)
    assert reader.read(3) == DATA[105:108]
    with pytest.raises(ValueError):
        reader.seek(-1)
    buffer = bytearray(10)
    reader.seek(0)
    assert reader.readinto(buffer) == 10 and bytes(buffer) == DATA[:10]


def test_random_access_reads_only_the_chunks_it_needs(alice, sealed_data):
    source = CountingReads(sealed_data)
    reader = envelope.EnvelopeReader(source, alice)
    before = source.bytes_read  # header and the final chunk
    reader.seek(2500)
    assert reader.read(10) == DATA[2500:2510]
    assert source.bytes_read - before == envelope.inspect(sealed_data).token_size  # one token


def test_reader_over_a_file_at_an_offset(alice, sealed_data):
    """The sealed bytes may start anywhere in the source (e.g. inside a bigger archive)."""
    source = io.BytesIO(b"JUNK" * 10 + sealed_data)
    source.seek(40)
    reader = envelope.EnvelopeReader(source, alice)
    reader.seek(4990)
    assert reader.read() == DATA[4990:]


def test_truncation_is_caught_when_opening_a_seekable_reader(alice, sealed_data):
    with pytest.raises(envelope.AuthenticationError):
        envelope.EnvelopeReader(io.BytesIO(sealed_data[:-1]), alice)
    with pytest.raises(envelope.AuthenticationError):
        envelope.EnvelopeReader(io.BytesIO(sealed_data[: -envelope.inspect(sealed_data).token_size]), alice)


def test_a_tampered_chunk_fails_only_when_read(alice, sealed_data):
    tampered = bytearray(sealed_data)
    info = envelope.inspect(sealed_data)
    tampered[info.header_size + 3 * info.token_size + 40] ^= 0x10  # inside chunk 3
    reader = envelope.EnvelopeReader(io.BytesIO(bytes(tampered)), alice)
    assert reader.read(300) == DATA[:300]  # chunks 0-2 are authentic
    with pytest.raises(envelope.AuthenticationError):
        reader.read(1)


def test_unseekable_reader_refuses_seek(alice, sealed_data):
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(sealed_data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            return self.inner.readinto(b)

    with pytest.raises(envelope.UsageError, match="EnvelopeStreamReader"):
        envelope.EnvelopeReader(Pipe(), alice)
    reader = envelope.open_reader(Pipe(), alice)
    assert isinstance(reader, envelope.EnvelopeStreamReader)
    assert not reader.seekable() and not hasattr(reader, "size")
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(0)
    assert reader.read() == DATA


def test_open_writer_and_open_reader_take_paths(alice, tmp_path):
    """The path forms the model adapters stand on: an output appears whole or not at all, and a
    reader over a path closes the file it opened."""
    target = tmp_path / "w.env"
    with pytest.raises(RuntimeError), envelope.open_writer(target, alice.public_key(), chunk_size=64) as w:
        w.write(DATA[:500])
        raise RuntimeError("the producer fails half way")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with envelope.open_writer(target, alice.public_key(), chunk_size=64, metadata={"k": 1}) as w:
        w.write(DATA)
    with pytest.raises(envelope.OutputExistsError):
        with envelope.open_writer(target, alice.public_key()):
            pass
    with envelope.open_reader(str(target), alice) as reader:
        assert reader.metadata == {"k": 1} and reader.signer is None
        reader.seek(4000)
        assert reader.read(10) == DATA[4000:4010]
    assert reader.closed
    with envelope.open_reader(target.read_bytes(), alice) as reader:
        assert reader.read() == DATA
    with pytest.raises(envelope.UsageError):
        envelope.open_reader(target, alice, storage_options={"anon": True})  # options without a URL
