"""Parallel chunk work: results never depend on the number of threads or on their timing."""

from __future__ import annotations

import io
import itertools
import os
import threading

import pytest

import envelope
from envelope._datakey import DataKey
from envelope._stream import ChunkOpener, ChunkSealer, PayloadSealer, TokenSink, open_sequential, seal_stream_chunks


def deterministic_sealer(chunk_size: int) -> ChunkSealer:
    counter = itertools.count()
    return ChunkSealer(
        DataKey(b"\x07" * 32),
        chunk_size,
        iv_source=lambda n: next(counter).to_bytes(n, "big"),
    )


@pytest.mark.parametrize("size", [0, 1, 4096, 4096 * 7 + 3, 100_000])
def test_sealed_bytes_are_identical_for_any_thread_count(size):
    data = os.urandom(size)
    outputs = set()
    for threads in (1, 2, 3, 8):
        out = io.BytesIO()
        with PayloadSealer(deterministic_sealer(4096), TokenSink(out.write), threads=threads) as pipeline:
            seal_stream_chunks(io.BytesIO(data), pipeline)
        outputs.add(out.getvalue())
    assert len(outputs) == 1
    (sealed,) = outputs
    for threads in (1, 2, 8):
        opened = io.BytesIO()
        for chunk in open_sequential(io.BytesIO(sealed), ChunkOpener(DataKey(b"\x07" * 32), 4096), threads=threads):
            opened.write(chunk)
        assert opened.getvalue() == data


def test_one_shot_paths_agree_across_thread_counts(alice):
    data = os.urandom(300_000)
    for threads in (1, 2, 4):
        sealed = envelope.seal(data, alice.public_key(), chunk_size=4096, threads=threads)
        for open_threads in (1, 2, 4):
            assert envelope.open(sealed, alice, threads=open_threads) == data


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_a_tampered_chunk_fails_under_any_thread_count(alice, threads):
    sealed = bytearray(envelope.seal(os.urandom(50_000), alice.public_key(), chunk_size=1024))
    info = envelope.inspect(bytes(sealed))
    sealed[info.header_size + 20 * info.token_size + 100] ^= 1
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(bytes(sealed), alice, threads=threads)
    with pytest.raises(envelope.AuthenticationError):
        envelope.open_stream(io.BytesIO(bytes(sealed)), io.BytesIO(), alice, threads=threads)


def test_many_threads_sealing_and_opening_at_once(alice, bob):
    """No shared mutable state in the SDK: concurrent callers, shared and separate inputs."""
    shared = envelope.seal(os.urandom(20_000), [alice.public_key(), bob.public_key()], chunk_size=512)
    expected = envelope.open(shared, alice)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            own = os.urandom(5_000 + n)
            assert envelope.open(envelope.seal(own, alice.public_key(), chunk_size=256), alice) == own
            assert envelope.open(shared, bob if n % 2 else alice) == expected
            reader = envelope.EnvelopeReader(io.BytesIO(shared), alice)
            reader.seek(n * 100)
            assert reader.read(50) == expected[n * 100 : n * 100 + 50]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_writer_with_any_thread_count(alice, threads):
    data = os.urandom(70_000)
    out = io.BytesIO()
    with envelope.EnvelopeWriter(out, alice.public_key(), chunk_size=1000, threads=threads) as writer:
        position = 0
        for step in itertools.cycle([1, 999, 1000, 1001, 7000, 3]):
            if position >= len(data):
                break
            writer.write(data[position : position + step])
            position += step
        writer.flush()
        assert out.getvalue()  # flush wrote out everything sealed so far
    assert envelope.open(out.getvalue(), alice) == data


def test_writer_surfaces_a_failing_destination(alice):
    class Full(io.RawIOBase):
        writes = 0

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[no-untyped-def]
            self.writes += 1
            if self.writes > 3:  # the header and two tokens pass, then the disk is "full"
                raise OSError(28, "No space left on device")
            return len(b)

    destination = Full()
    writer = envelope.EnvelopeWriter(destination, alice.public_key(), chunk_size=1024, threads=2)
    with pytest.raises(OSError, match="No space"):
        with writer:
            for _ in range(50):
                writer.write(b"x" * 1000)
    assert writer.closed and destination.writes >= 4
