"""The chunk stream: payload chunks as raw Fernet tokens (spec section 7).

Knows nothing of headers or recipients: it is given a :class:`~envelope.datakey.DataKey` and a
chunk size. Tokens are built with the hazmat primitives straight into reusable buffers (no base64,
no per-chunk copies of the plaintext); ``tests/test_stream.py`` proves them genuine Fernet tokens.
"""

from __future__ import annotations

import os
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import AuthenticationError
from .layout import (
    CHUNK_FAILED,
    FERNET_VERSION,
    FRAME,
    HEAD_LEN,
    MAC_LEN,
    MIN_TOKEN_LEN,
    TRUNCATED,
    PayloadLayout,
    token_len,
    valid_token_len,
)

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from .datakey import DataKey

__all__ = [
    "MIN_TOKEN_LEN",
    "ChunkOpener",
    "ChunkPipeline",
    "ChunkSealer",
    "PayloadLayout",
    "default_threads",
    "open_chunks",
    "read_full",
    "read_token",
    "run_parallel",
    "scratch_for",
    "seal_chunks",
    "token_len",
]

Progress = Callable[[int], Any]


class ChunkSealer:
    """Seals chunk messages ``u64be(i) || u8(final) || data`` as Fernet tokens under one key."""

    def __init__(
        self,
        key: DataKey,
        chunk_size: int,
        *,
        timestamp: int | None = None,
        iv_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._aes = algorithms.AES(key.encryption_key)
        self._signing_key = key.signing_key
        self.chunk_size = chunk_size
        self.token_size = token_len(chunk_size)
        self._timestamp = struct.pack(">Q", int(time.time()) if timestamp is None else timestamp)
        self._iv_source = iv_source

    def new_iv(self) -> bytes:
        return self._iv_source(16)

    def seal_into(
        self, index: int, final: bool, data: memoryview | bytes, out: memoryview, iv: bytes | None = None
    ) -> int:
        """Write the token of chunk ``index`` at the start of ``out``; return its length.

        Thread-safe. Parallel callers draw the IVs in chunk order (``new_iv``) and pass them in,
        so that the output never depends on thread timing.
        """
        size = len(data)
        if (final and size >= self.chunk_size) or (not final and size != self.chunk_size):
            raise ValueError("chunk size does not match its position")  # an SDK bug, never input
        length = token_len(size)
        if iv is None:
            iv = self._iv_source(16)
        out[0] = FERNET_VERSION
        out[1:9] = self._timestamp
        out[9:HEAD_LEN] = iv
        padding = 16 - (FRAME.size + size) % 16
        encryptor = Cipher(self._aes, modes.CBC(iv)).encryptor()
        # update_into needs 15 spare bytes past each write; the 32-byte MAC slot provides them.
        written = HEAD_LEN
        written += encryptor.update_into(FRAME.pack(index, 1 if final else 0), out[written:])
        written += encryptor.update_into(data, out[written:])
        written += encryptor.update_into(bytes((padding,)) * padding, out[written:])
        encryptor.finalize()
        mac = hmac.HMAC(self._signing_key, hashes.SHA256())
        mac.update(out[:written])
        out[written:length] = mac.finalize()
        return length

    def seal(self, index: int, final: bool, data: memoryview | bytes) -> bytes:
        out = bytearray(token_len(len(data)))
        self.seal_into(index, final, data, memoryview(out))
        return bytes(out)


class ChunkOpener:
    """Verifies and decrypts tokens (section 7.4)."""

    def __init__(self, key: DataKey, chunk_size: int) -> None:
        self._aes = algorithms.AES(key.encryption_key)
        self._signing_key = key.signing_key
        self.chunk_size = chunk_size
        self.token_size = token_len(chunk_size)
        self._scratch = bytearray()

    def open(self, index: int, is_last: bool, token: memoryview | bytes) -> memoryview:
        """Return the chunk data of ``token``, valid until the next call (not thread-safe). Fails
        with :class:`AuthenticationError` unless every check of section 7.4 passes."""
        self._scratch = scratch_for(len(token), self._scratch)
        return self.open_into(index, is_last, token, self._scratch)

    def open_into(self, index: int, is_last: bool, token: memoryview | bytes, scratch: bytearray) -> memoryview:
        """Like :meth:`open`, decrypting into ``scratch`` (see :func:`scratch_for`): thread-safe."""
        token = memoryview(token)
        length = len(token)
        if not valid_token_len(length, self.token_size) or token[0] != FERNET_VERSION:
            raise AuthenticationError(CHUNK_FAILED)
        mac = hmac.HMAC(self._signing_key, hashes.SHA256())
        mac.update(token[: length - MAC_LEN])
        try:
            mac.verify(token[length - MAC_LEN :].tobytes())
        except InvalidSignature:
            raise AuthenticationError(CHUNK_FAILED) from None
        decryptor = Cipher(self._aes, modes.CBC(token[9:HEAD_LEN].tobytes())).decryptor()
        size = decryptor.update_into(token[HEAD_LEN : length - MAC_LEN], scratch)
        decryptor.finalize()
        message = memoryview(scratch)[:size]
        padding = message[-1]
        if not 1 <= padding <= 16 or message[size - padding :] != bytes((padding,)) * padding:
            raise AuthenticationError(CHUNK_FAILED)
        end = size - padding
        if end < FRAME.size:
            raise AuthenticationError(CHUNK_FAILED)
        found_index, flag = FRAME.unpack_from(message)
        data_len = end - FRAME.size
        if (
            found_index != index
            or flag != (1 if is_last else 0)
            or (is_last and data_len >= self.chunk_size)
            or (not is_last and data_len != self.chunk_size)
        ):
            raise AuthenticationError(CHUNK_FAILED)
        return message[FRAME.size : end]


def read_full(src: IO[bytes], buffer: memoryview) -> int:
    """Fill ``buffer`` from ``src`` until it is full or the source ends; return the bytes read."""
    total, size = 0, len(buffer)
    readinto = getattr(src, "readinto", None)
    while total < size:
        if readinto is not None:
            got = readinto(buffer[total:])
        else:
            piece = src.read(size - total)
            got = len(piece) if piece is not None else None
            if got:
                buffer[total : total + got] = piece
        if got is None:
            raise BlockingIOError("non-blocking sources are not supported")
        if got == 0:
            break
        total += got
    return total


def default_threads() -> int:
    """Worker threads for chunk work: one per core available to this process, at most 8.

    ``cryptography`` releases the GIL while it encrypts and MACs a large buffer, so chunks sealed on
    several threads run in parallel (spec/FORMAT.md needs nothing of the kind: order is restored).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


class ChunkPipeline:
    """Runs chunk jobs on a thread pool and hands the results back in submission order.

    At most ``depth`` jobs are in flight, so memory stays bounded by ``depth`` buffer sets whatever
    the payload size. With one thread, jobs run inline. ``threads=None``: :func:`default_threads`.
    """

    def __init__(self, threads: int | None, deliver: Callable[[Any], None]) -> None:
        threads = default_threads() if threads is None else threads
        self._deliver = deliver
        self._pool: ThreadPoolExecutor | None = None
        if threads > 1:
            from concurrent.futures import ThreadPoolExecutor  # only when there is parallel work

            self._pool = ThreadPoolExecutor(threads)
        self._pending: deque[Future[Any]] = deque()
        self.depth = threads + 2 if threads > 1 else 1

    def submit(self, job: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            self._deliver(job(*args))
            return
        self._pending.append(self._pool.submit(job, *args))

    def wait_for_room(self) -> None:
        """Deliver finished results, in order, until another job may be submitted."""
        while len(self._pending) >= self.depth:
            self.deliver_one()

    def deliver_one(self) -> None:
        """Deliver the oldest result (waiting for it)."""
        self._deliver(self._pending.popleft().result())

    def drain(self) -> None:
        while self._pending:
            self.deliver_one()

    def close(self) -> None:
        """Stop: results not yet delivered are dropped (after a failure, or an abort)."""
        if self._pool is not None:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending.clear()

    def __enter__(self) -> ChunkPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_parallel(job: Callable[[int], Any], count: int, threads: int | None = None) -> None:
    """Run ``job(0) ... job(count - 1)`` on a thread pool (inline with one thread); re-raise the
    first failure. For in-memory work whose jobs write disjoint parts of one buffer."""
    threads = default_threads() if threads is None else threads
    if threads <= 1 or count <= 1:
        for index in range(count):
            job(index)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(job, range(count)):
            pass


def seal_chunks(
    src: IO[bytes],
    write: Callable[[memoryview], Any],
    sealer: ChunkSealer,
    progress: Progress | None = None,
    threads: int | None = None,
) -> int:
    """Read ``src`` to its end and write its tokens; return the plaintext length (section 7.1).

    Reading and writing stay on the calling thread, in order; sealing runs on ``threads`` workers.
    """
    free: list[tuple[memoryview, memoryview]] = []
    total = 0

    def deliver(result: tuple[memoryview, memoryview, int, int]) -> None:
        nonlocal total
        chunk, token, length, got = result
        write(token[:length])
        total += got
        if progress is not None:
            progress(got)
        free.append((chunk, token))

    def job(index: int, final: bool, chunk: memoryview, token: memoryview, got: int, iv: bytes) -> Any:
        return chunk, token, sealer.seal_into(index, final, chunk[:got], token, iv), got

    with ChunkPipeline(threads, deliver) as pipeline:
        for _ in range(pipeline.depth):
            free.append((memoryview(bytearray(sealer.chunk_size)), memoryview(bytearray(sealer.token_size))))
        index = 0
        while True:
            pipeline.wait_for_room()
            chunk, token = free.pop()
            got = read_full(src, chunk)
            final = got < sealer.chunk_size
            pipeline.submit(job, index, final, chunk, token, got, sealer.new_iv())
            if final:
                break
            index += 1
        pipeline.drain()
    return total


def open_chunks(
    src: IO[bytes],
    write: Callable[[memoryview], Any],
    opener: ChunkOpener,
    progress: Progress | None = None,
    threads: int | None = None,
) -> int:
    """Read tokens from ``src`` to its end, writing each chunk once it verified, in order; return
    the plaintext length. Reads one token ahead to know which is the last one (section 7.4).

    Buffers grow with the data actually read, so a tiny file that declares 16 MiB chunks costs
    kilobytes, not the declared chunk size times the pipeline depth."""
    size = opener.token_size
    free: list[tuple[bytearray, bytearray]] = []
    total = 0

    def deliver(result: tuple[bytearray, bytearray, memoryview]) -> None:
        nonlocal total
        token, scratch, data = result
        write(data)
        total += len(data)
        if progress is not None:
            progress(len(data))
        free.append((token, scratch))

    def job(index: int, is_last: bool, token: bytearray, got: int, scratch: bytearray) -> Any:
        return token, scratch, opener.open_into(index, is_last, memoryview(token)[:got], scratch)

    with ChunkPipeline(threads, deliver) as pipeline:
        free.extend((bytearray(), bytearray()) for _ in range(pipeline.depth + 1))  # +1: the read-ahead
        current, current_scratch = free.pop()
        current, got = read_token(src, size, current)
        if got == 0:
            raise AuthenticationError(TRUNCATED)  # R17
        index = 0
        while True:
            pipeline.wait_for_room()
            ahead, ahead_scratch = free.pop()
            ahead, got_ahead = read_token(src, size, ahead) if got == size else (ahead, 0)
            is_last = got_ahead == 0
            current_scratch = scratch_for(got, current_scratch)
            pipeline.submit(job, index, is_last, current, got, current_scratch)
            if is_last:
                free.append((ahead, ahead_scratch))
                break
            current, current_scratch, got = ahead, ahead_scratch, got_ahead
            index += 1
        pipeline.drain()
    return total


_FIRST_READ = 1 << 20


def read_token(src: IO[bytes], limit: int, buffer: bytearray) -> tuple[bytearray, int]:
    """Read up to ``limit`` bytes (one token) from ``src``; return the buffer holding them and their
    count. ``buffer`` is reused when large enough, else replaced by one grown only as data arrives
    (1 MiB, then doubling): memory follows the bytes read, never just the declared chunk size."""
    total = 0
    while True:
        if total == len(buffer):
            if total >= limit:
                return buffer, total
            grown = bytearray(min(limit, max(_FIRST_READ, 2 * len(buffer))))
            grown[:total] = memoryview(buffer)[:total]
            buffer = grown  # a new object: views of the old one stay valid
        got = read_full(src, memoryview(buffer)[total:limit])
        total += got
        if total < min(len(buffer), limit):  # the source ended
            return buffer, total


def scratch_for(token_length: int, scratch: bytearray) -> bytearray:
    """A decryption buffer for a token of this length (update_into wants 15 bytes to spare)."""
    return scratch if len(scratch) >= token_length + 16 else bytearray(token_length + 16)
