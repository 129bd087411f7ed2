"""Round trips: one-shot, streaming and file-like paths agree, at and around chunk boundaries."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope
from envelope._format import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

CHUNK_SIZES = [16, 17, 64, 1000, 4096]


def boundary_sizes(chunk: int) -> list[int]:
    return [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 5]


def seal_all_ways(data: bytes, key, chunk: int, metadata) -> list[bytes]:  # type: ignore[no-untyped-def]
    one_shot = envelope.seal(data, key.public_key(), metadata=metadata, chunk_size=chunk)
    streamed = io.BytesIO()
    envelope.seal_stream(io.BytesIO(data), streamed, key.public_key(), metadata=metadata, chunk_size=chunk)
    written = io.BytesIO()
    with envelope.EnvelopeWriter(written, key.public_key(), metadata=metadata, chunk_size=chunk) as writer:
        for start in range(0, len(data), 7):  # odd-sized writes
            writer.write(data[start : start + 7])
    return [one_shot, streamed.getvalue(), written.getvalue()]


def open_all_ways(sealed: bytes, key) -> list[tuple[bytes, dict]]:  # type: ignore[no-untyped-def]
    results = [tuple(envelope.open_with_metadata(sealed, key))[:2]]
    out = io.BytesIO()
    result = envelope.open_stream(io.BytesIO(sealed), out, key)
    assert result.plaintext_len == len(out.getvalue())
    results.append((out.getvalue(), result.metadata))
    reader = envelope.EnvelopeReader(io.BytesIO(sealed), key)
    results.append((reader.read(), reader.metadata))
    pipe = envelope.EnvelopeStreamReader(_Unseekable(sealed), key)
    pieces = []
    while piece := pipe.read(5):
        pieces.append(piece)
    results.append((b"".join(pieces), pipe.metadata))
    return results  # type: ignore[return-value]


class _Unseekable(io.RawIOBase):
    """A pipe-like source: readable, not seekable, and returning short reads."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), 13, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_boundary_sizes_every_path(alice, chunk):
    for size in boundary_sizes(chunk):
        data = bytes((i * 7 + size) % 256 for i in range(size))
        sealed_versions = seal_all_ways(data, alice, chunk, {"size": size})
        assert len({len(s) for s in sealed_versions}) == 1  # same layout, different random keys
        for sealed in sealed_versions:
            info = envelope.inspect(sealed)
            assert info.chunk_count == size // chunk + 1
            assert info.file_size == len(sealed)
            for plaintext, metadata in open_all_ways(sealed, alice):
                assert plaintext == data
                assert metadata == {"size": size}


@settings(max_examples=60)
@given(
    data=st.binary(max_size=3000),
    chunk=st.integers(MIN_CHUNK_SIZE, 600),
    metadata=st.dictionaries(
        st.text(max_size=10), st.integers() | st.text(max_size=10) | st.binary(max_size=10), max_size=4
    ),
)
def test_any_bytes_roundtrip(alice, data, chunk, metadata):
    metadata = {k: v for k, v in metadata.items() if not (isinstance(v, int) and not -(2**63) <= v < 2**64)}
    for sealed in seal_all_ways(data, alice, chunk, metadata):
        for plaintext, got_metadata in open_all_ways(sealed, alice):
            assert plaintext == data and got_metadata == metadata


def test_default_chunk_size_and_large_payload(alice):
    data = bytes(range(256)) * (3 * 4096 + 17)  # a little over 3 MiB: several 1 MiB chunks
    sealed = envelope.seal(data, alice.public_key())
    assert envelope.inspect(sealed).chunk_size == envelope.DEFAULT_CHUNK_SIZE
    assert envelope.open(sealed, alice) == data


def test_accepts_any_bytes_like(alice):
    import array

    for data in (bytearray(b"abc"), memoryview(b"abc"), array.array("H", [0x6261, 0x63])):
        assert envelope.open(envelope.seal(data, alice.public_key()), alice) == bytes(memoryview(data).cast("B"))
    with pytest.raises(envelope.UsageError, match="bytes-like"):
        envelope.seal("text", alice.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, 15, MAX_CHUNK_SIZE + 1, 1.5, True])
def test_bad_chunk_size_is_a_usage_error(alice, bad):
    with pytest.raises(envelope.UsageError):
        envelope.seal(b"x", alice.public_key(), chunk_size=bad)


def test_writer_feeds_zipfile_and_reader_serves_it_back(alice):
    """The writer is a plain file object to libraries like zipfile (as torch.save and np.save use)."""
    sealed = io.BytesIO()
    with envelope.EnvelopeWriter(sealed, alice.public_key(), chunk_size=4096) as writer:
        with zipfile.ZipFile(writer, "w") as archive:
            archive.writestr("weights.bin", bytes(range(256)) * 100)
            archive.writestr("config.json", b'{"layers": 3}')
    sealed.seek(0)
    with envelope.EnvelopeReader(sealed, alice) as reader, zipfile.ZipFile(reader) as archive:
        assert archive.read("config.json") == b'{"layers": 3}'
        assert archive.read("weights.bin") == bytes(range(256)) * 100


def test_writer_left_by_an_exception_is_detectably_incomplete(alice):
    out = io.BytesIO()
    with pytest.raises(RuntimeError):
        with envelope.EnvelopeWriter(out, alice.public_key(), chunk_size=16) as writer:
            writer.write(b"a" * 40)
            raise RuntimeError("crash mid-save")
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(out.getvalue(), alice)


def test_writer_tell_and_closed_behaviour(alice):
    writer = envelope.EnvelopeWriter(io.BytesIO(), alice.public_key())
    writer.write(b"abc")
    assert writer.tell() == 3 and writer.writable() and not writer.seekable()
    writer.close()
    with pytest.raises(ValueError):
        writer.write(b"more")
