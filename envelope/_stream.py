"""The chunk stream (spec section 7): payload chunks as raw Fernet tokens, sealed and opened on a
thread pool. Knows nothing of headers or recipients: it is given a data key and a chunk size.

There is one sealing pipeline, :class:`PayloadSealer`, and one opening pipeline with two ways of
finding the tokens: in order from a stream (:func:`open_sequential`), or at computed offsets
(:class:`PositionalOpening`: memory, regular files, random access). Every public entry point of the
SDK is a thin wrapper around them.

Where chunk ``i`` sits at a computable offset in the input and in the output (memory, regular
files), the workers read their own chunk and write their own token (or plaintext) themselves, so
the calling thread only hands out indices: that is what lets throughput grow with the cores. Where
one side is a stream, the calling thread reads or writes it in order and the workers only do the
cryptography. Tokens are built with the hazmat primitives straight into reused buffers;
``tests/test_stream.py`` proves them genuine Fernet tokens.
"""

from __future__ import annotations

import hashlib
import hmac as hmac_module
import math
import os
import stat
import struct
import threading
from collections import deque
from collections.abc import Callable, Generator
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._layout import (
    CHUNK_FAILED,
    FERNET_VERSION,
    FOOTER_EXTENDED,
    FOOTER_TRUNCATED,
    FRAME,
    HEAD_LEN,
    MAC_LEN,
    TAG_LEN,
    TAGS_DIFFER,
    TRAILING,
    TRUNCATED,
    PayloadLayout,
    token_len,
    valid_token_len,
)
from .errors import AuthenticationError, SignatureError, UsageError
from .limits import FOOTER_TAG_BLOCK

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from ._datakey import DataKey

__all__ = [
    "ChunkOpener",
    "ChunkSealer",
    "PayloadSealer",
    "PositionalOpening",
    "Progress",
    "TokenBuffers",
    "default_threads",
    "open_sequential",
    "read_full",
]

Progress = Callable[[int], Any]
"""Called on the calling thread, in order, with the plaintext length of each chunk processed."""

_TIMESTAMP = struct.Struct(">Q")


def timestamp_field(final: bool, length: int) -> bytes:
    """Fernet's timestamp field (section 7.2): 0 before the last token, the final token's length in
    the last. No time: a file does not tell when it was sealed; a stream reader learns from a token's
    first 9 bytes whether it is the last one and where it ends."""
    return _TIMESTAMP.pack(length if final else 0)


# --- one chunk ---------------------------------------------------------------------------------


class ChunkSealer:
    """Seals chunk messages ``u64be(i) || u8(final) || data`` as Fernet tokens under one key."""

    def __init__(
        self,
        key: DataKey,
        chunk_size: int,
        *,
        iv_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._aes = algorithms.AES(key.encryption_key)
        self._signing_key = key.signing_key
        self.chunk_size = chunk_size
        self.token_size = token_len(chunk_size)
        self._iv_source = iv_source
        self._ivs = b""

    def new_iv(self) -> bytes:
        """A fresh IV. Drawn 64 at a time (one getrandom call, not one per chunk); called on one
        thread only, in chunk order."""
        if not self._ivs:
            self._ivs = self._iv_source(16 * 64)
        iv, self._ivs = self._ivs[:16], self._ivs[16:]
        return iv

    def seal_into(self, index: int, final: bool, data: memoryview | bytes, out: memoryview, iv: bytes) -> int:
        """Write the token of chunk ``index`` at the start of ``out``; return its length.

        Thread-safe. Callers draw the IVs in chunk order (``new_iv``) and pass them in, so that
        the output never depends on thread timing.
        """
        size = len(data)
        if (final and size >= self.chunk_size) or (not final and size != self.chunk_size):
            raise ValueError("chunk size does not match its position")  # an SDK bug, never input
        length = token_len(size)
        out[0] = FERNET_VERSION
        out[1:9] = timestamp_field(final, length)
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
        self.seal_into(index, final, data, memoryview(out), self.new_iv())
        return bytes(out)


class ChunkOpener:
    """Verifies and decrypts tokens (section 7.4). Thread-safe."""

    def __init__(self, key: DataKey, chunk_size: int) -> None:
        self._aes = algorithms.AES(key.encryption_key)
        self._signing_key = key.signing_key
        self.chunk_size = chunk_size
        self.token_size = token_len(chunk_size)

    def open_into(self, index: int, is_last: bool, token: memoryview | bytes, scratch: bytearray) -> memoryview:
        """Verify ``token`` as chunk ``index`` and decrypt it into ``scratch`` (see :func:`scratch_for`);
        return the chunk's data, a view of ``scratch``. Fails with :class:`AuthenticationError` unless
        every check of section 7.4 passes."""
        token = memoryview(token)
        decryptor = self._verified_decryptor(token, is_last)
        size = decryptor.update_into(token[HEAD_LEN : len(token) - MAC_LEN], scratch)
        decryptor.finalize()
        message = memoryview(scratch)[:size]
        end = self._check_message(index, is_last, message[:16], message[-16:], size)
        return message[FRAME.size : end]

    def open_in_place(self, index: int, is_last: bool, token: memoryview, out: memoryview) -> int:
        """Like :meth:`open_into`, writing the chunk's data straight to ``out[:len(data)]``; return its
        length. Bytes past the data are never written, so workers can fill adjacent parts of one
        output. (In-memory ``open`` uses it: a copy per chunk would hold the GIL and cap the scaling.)
        """
        body = token[HEAD_LEN : len(token) - MAC_LEN]
        blocks = len(body) // 16
        if blocks < 4:  # too short to be worth splitting
            data = self.open_into(index, is_last, token, bytearray(len(token) + 16))
            out[: len(data)] = data
            return len(data)
        decryptor = self._verified_decryptor(token, is_last)
        # Block 0 holds the 9-byte frame and 7 data bytes; blocks 1 .. blocks-3 go straight to their
        # place (update_into wants 15 bytes of room, which the chunk's own later bytes provide); the
        # last two blocks hold the rest of the data and the padding.
        head = bytearray(32)
        decryptor.update_into(body[:16], head)
        middle = 16 * (blocks - 3)
        decryptor.update_into(body[16 : 16 + middle], out[7 : 7 + middle + 15])
        tail = bytearray(48)
        decryptor.update_into(body[16 + middle :], tail)
        decryptor.finalize()
        end = self._check_message(index, is_last, memoryview(head)[:16], memoryview(tail)[16:32], len(body))
        data_len = end - FRAME.size
        out[:7] = head[FRAME.size : 16]
        rest = data_len - 7 - middle
        out[7 + middle : 7 + middle + rest] = tail[:rest]
        return data_len

    def _verified_decryptor(self, token: memoryview, is_last: bool) -> Any:
        """Checks 1 and 2 of section 7.4 (length, version byte, timestamp field, HMAC before
        anything is decrypted)."""
        length = len(token)
        if (
            not valid_token_len(length, self.token_size)
            or token[0] != FERNET_VERSION
            or token[1:9] != timestamp_field(is_last, length)
        ):
            raise AuthenticationError(CHUNK_FAILED)
        mac = hmac.HMAC(self._signing_key, hashes.SHA256())
        mac.update(token[: length - MAC_LEN])
        try:
            mac.verify(token[length - MAC_LEN :].tobytes())
        except InvalidSignature:
            raise AuthenticationError(CHUNK_FAILED) from None
        return Cipher(self._aes, modes.CBC(token[9:HEAD_LEN].tobytes())).decryptor()

    def _check_message(self, index: int, is_last: bool, first: memoryview, last: memoryview, size: int) -> int:
        """Checks 3 to 6 of section 7.4 on the decrypted message's first and last blocks; return
        where the data ends within the message."""
        padding = last[-1]
        if not 1 <= padding <= 16 or last[16 - padding :] != bytes((padding,)) * padding:
            raise AuthenticationError(CHUNK_FAILED)
        end = size - padding
        if end < FRAME.size:
            raise AuthenticationError(CHUNK_FAILED)
        found_index, flag = FRAME.unpack_from(first)
        data_len = end - FRAME.size
        if (
            found_index != index
            or flag != (1 if is_last else 0)
            or (is_last and data_len >= self.chunk_size)
            or (not is_last and data_len != self.chunk_size)
        ):
            raise AuthenticationError(CHUNK_FAILED)
        return end


def scratch_for(token_length: int, scratch: bytearray) -> bytearray:
    """A decryption buffer for a token of this length (update_into wants 15 bytes to spare)."""
    return scratch if len(scratch) >= token_length + 16 else bytearray(token_length + 16)


# --- the thread pool ---------------------------------------------------------------------------


def default_threads() -> int:
    """Worker threads for chunk work: one per core available to this process.

    ``cryptography`` releases the GIL while it encrypts and MACs a large buffer, and positional
    reads and writes release it too, so chunks run in parallel (the spec needs nothing of the kind:
    order is restored).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(64, cores))


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _shared_pool(threads: int) -> ThreadPoolExecutor:
    """One pool per size for the whole process: a call sealing a small file should not pay for
    starting threads (it is most of the cost of a 64 KiB file)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="envelope")
        return pool


if hasattr(os, "register_at_fork"):  # a forked child (multiprocessing, Dask) has none of the threads
    os.register_at_fork(after_in_child=_POOLS.clear)


def resolve_threads(threads: int | None) -> int:
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"threads must be a positive integer or None, not {threads!r}")
    return threads


class _Done:
    """The result of a job run inline (one thread), shaped like a Future."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value

    def cancel(self) -> bool:
        return False


class Ordered:
    """Runs jobs on the shared pool and hands their results back in submission order.

    At most ``depth`` jobs are in flight, so memory stays bounded whatever the payload size. With
    one thread, jobs run inline. ``close`` cancels what has not started and waits for what has: a
    job must never write into a buffer or a file descriptor after its caller has moved on.
    """

    def __init__(self, threads: int | None, *, jobs: int | None = None) -> None:
        if threads is None and jobs is not None and jobs <= 1:
            threads = 1  # a one-chunk file: counting the cores is a system call it does not need
        threads = resolve_threads(threads)
        if jobs is not None:  # no point in more workers than jobs (a small file: inline)
            threads = max(1, min(threads, jobs))
        self._pool = _shared_pool(threads) if threads > 1 else None
        self.depth = threads + 2 if threads > 1 else 1
        self._pending: deque[Future[Any] | _Done] = deque()

    def submit(self, job: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            self._pending.append(_Done(job(*args)))
        else:
            self._pending.append(self._pool.submit(job, *args))

    def full(self) -> bool:
        return len(self._pending) >= self.depth

    def __len__(self) -> int:
        return len(self._pending)

    def next(self) -> Any:
        """The oldest result, waiting for it; re-raises the job's exception."""
        return self._pending.popleft().result()

    def close(self) -> None:
        pending, self._pending = self._pending, deque()
        for future in pending:
            future.cancel()
        for future in pending:
            try:
                future.result()
            except BaseException:  # noqa: S110 - a later job's failure after the first one's: dropped
                pass

    def __enter__(self) -> Ordered:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- where tokens go, where plaintext goes -----------------------------------------------------


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


def pread_full(fd: int, buffer: memoryview, offset: int) -> int:
    """``os.preadv`` until ``buffer`` is full or the file ends (releases the GIL while it copies)."""
    total = 0
    while total < len(buffer):
        got = os.preadv(fd, [buffer[total:]], offset + total)
        if got == 0:
            break
        total += got
    return total


def pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def positional_fd(stream: object) -> int | None:
    """The descriptor of a regular file that supports pread/pwrite, or None (pipes, BytesIO, ...).

    Only for files the SDK opened itself (paths, atomic outputs): a caller's file object may have
    its own buffering or position, which positional I/O would bypass."""
    if not hasattr(os, "preadv") or not hasattr(os, "pwrite"):
        return None
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


class TokenSink:
    """Where sealed tokens go. Base: to a stream, in order, on the calling thread."""

    needs_buffer = True  # tokens are built in a per-job buffer

    def __init__(self, write: Callable[[memoryview], Any]) -> None:
        self._write = write

    def target(self, index: int, buffer: memoryview | None) -> memoryview:
        assert buffer is not None
        return buffer

    def place(self, index: int, token: memoryview) -> None:
        """In the worker, once the token is built."""

    def deliver(self, token: memoryview) -> None:
        """On the calling thread, in order."""
        self._write(token)


class BufferTokenSink(TokenSink):
    """Tokens sealed straight into their place in one output buffer (in-memory ``seal``)."""

    needs_buffer = False

    def __init__(self, out: memoryview, token_size: int) -> None:
        self._out, self._token_size = out, token_size

    def target(self, index: int, buffer: memoryview | None) -> memoryview:
        return self._out[index * self._token_size :]

    def deliver(self, token: memoryview) -> None:
        pass


class FileTokenSink(TokenSink):
    """Tokens written by the workers at their offsets in a file (``os.pwrite``)."""

    def __init__(self, fd: int, payload_start: int, token_size: int) -> None:
        self._fd, self._start, self._token_size = fd, payload_start, token_size

    def place(self, index: int, token: memoryview) -> None:
        pwrite_all(self._fd, token, self._start + index * self._token_size)

    def deliver(self, token: memoryview) -> None:
        pass


# --- sealing -----------------------------------------------------------------------------------


class SealedPayload(NamedTuple):
    chunk_count: int
    plaintext_len: int


class _Slot:
    """The buffers of one job in flight, reused once its result is delivered."""

    __slots__ = ("chunk", "token")

    def __init__(self, chunk: memoryview | None, token: memoryview | None) -> None:
        self.chunk, self.token = chunk, token


ChunkFill = Callable[[int, memoryview], int]
"""``fill(index, buffer) -> length``: reads chunk ``index`` into ``buffer``, in the worker."""


class PayloadSealer:
    """The one sealing pipeline (section 7.1): chunks 0, 1, ... in, their tokens out.

    Chunks reach it in one of three ways: in its own buffers, filled by the caller (:meth:`slot`
    then :meth:`submit`: streams, :class:`~envelope.EnvelopeWriter`); as views of the caller's
    memory (:meth:`submit_view`: in-memory ``seal``); or read by the workers themselves
    (:meth:`submit_fill`: positional reads of a regular file). Tokens go to the :class:`TokenSink`.
    IVs are drawn in chunk order on the calling thread, so the bytes never depend on timing.
    """

    def __init__(
        self,
        sealer: ChunkSealer,
        sink: TokenSink,
        *,
        threads: int | None = None,
        progress: Progress | None = None,
        chunks_hint: int | None = None,
        keep_tags: bool = False,
    ) -> None:
        self._sealer = sealer
        self.tags = bytearray() if keep_tags else None  # of every token, in order: a signed file's footer
        self._sink = sink
        self._progress = progress
        self._jobs = Ordered(threads, jobs=chunks_hint)
        self._free: list[_Slot] = []
        self._slots = 0
        self._index = 0
        self._length = 0
        self._ended = False

    @property
    def chunk_size(self) -> int:
        return self._sealer.chunk_size

    def slot(self, *, with_chunk: bool = True, size: int | None = None) -> _Slot:
        """Free buffers for the next job (waiting for room in the pipeline). ``size``: the chunk's
        length where it is known, so that a small file gets small buffers: zeroing two buffers of
        1 MiB took 1.7 ms, five times the rest of sealing a 64 KiB file (tools/bench_scaling.py
        --only small)."""
        while self._jobs.full() or (not self._free and self._slots >= self._jobs.depth + 1):
            self._deliver(self._jobs.next())
        if self._free:
            slot = self._free.pop()
        else:
            self._slots += 1
            slot = _Slot(None, None)
        need = self._sealer.chunk_size if size is None else size
        if with_chunk and (slot.chunk is None or len(slot.chunk) < need):
            slot.chunk = memoryview(bytearray(need))
        if self._sink.needs_buffer and (slot.token is None or len(slot.token) < token_len(need)):
            slot.token = memoryview(bytearray(token_len(need)))
        return slot

    def submit(self, slot: _Slot, length: int, final: bool) -> None:
        """Seal the first ``length`` bytes of ``slot.chunk`` as the next chunk."""
        assert slot.chunk is not None
        self._submit(slot, slot.chunk[:length], None, final)

    def submit_view(self, chunk: memoryview, final: bool) -> None:
        """Seal ``chunk``, a view of the caller's memory that stays valid until :meth:`finish`."""
        self._submit(self.slot(with_chunk=False, size=len(chunk)), chunk, None, final)

    def submit_fill(self, fill: ChunkFill, length: int, final: bool) -> None:
        """Seal the next chunk, ``length`` bytes that ``fill`` reads in the worker."""
        slot = self.slot(size=length)
        assert slot.chunk is not None
        self._submit(slot, slot.chunk[:length], fill, final)

    def _submit(self, slot: _Slot, chunk: memoryview, fill: ChunkFill | None, final: bool) -> None:
        if self._ended:
            raise ValueError("the final chunk was already sealed")  # an SDK bug
        self._jobs.submit(self._job, self._index, final, slot, chunk, fill, self._sealer.new_iv())
        self._index += 1
        self._ended = final

    def _job(
        self, index: int, final: bool, slot: _Slot, chunk: memoryview, fill: ChunkFill | None, iv: bytes
    ) -> tuple[_Slot, memoryview, int]:
        if fill is not None and fill(index, chunk) != len(chunk):
            raise UsageError("the input changed (it shrank) while it was being sealed")
        out = self._sink.target(index, slot.token)
        length = self._sealer.seal_into(index, final, chunk, out, iv)
        self._sink.place(index, out[:length])
        return slot, out[:length], len(chunk)

    def _deliver(self, result: tuple[_Slot, memoryview, int]) -> None:
        slot, token, size = result
        self._sink.deliver(token)
        if self.tags is not None:
            self.tags += token[len(token) - TAG_LEN :]
        self._length += size
        if self._progress is not None:
            self._progress(size)
        self._free.append(slot)

    def flush(self) -> None:
        """Wait for every chunk submitted so far and deliver its token."""
        while len(self._jobs):
            self._deliver(self._jobs.next())

    def finish(self) -> SealedPayload:
        """Deliver every token. The final chunk must have been submitted."""
        if not self._ended:
            raise ValueError("no final chunk")  # an SDK bug
        self.flush()
        return SealedPayload(self._index, self._length)

    def close(self) -> None:
        """Stop; tokens not yet delivered are dropped (after a failure, or an abort)."""
        self._jobs.close()
        self._free.clear()

    def __enter__(self) -> PayloadSealer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def seal_stream_chunks(src: IO[bytes], pipeline: PayloadSealer) -> SealedPayload:
    """Read ``src`` to its end, in order on the calling thread, and seal it (section 7.1)."""
    while True:
        slot = pipeline.slot()
        assert slot.chunk is not None
        got = read_full(src, slot.chunk)
        final = got < pipeline.chunk_size
        pipeline.submit(slot, got, final)
        if final:
            return pipeline.finish()


def seal_file_chunks(fd: int, start: int, size: int, pipeline: PayloadSealer) -> SealedPayload:
    """Seal ``size`` bytes of a regular file from offset ``start``, each worker reading its own chunk."""
    chunk_size = pipeline.chunk_size
    full, rest = divmod(size, chunk_size)

    def fill(index: int, buffer: memoryview) -> int:
        return pread_full(fd, buffer, start + index * chunk_size)

    for index in range(full + 1):
        pipeline.submit_fill(fill, chunk_size if index < full else rest, index == full)
    sealed = pipeline.finish()
    if os.pread(fd, 1, start + size):
        raise UsageError("the input changed (it grew) while it was being sealed")
    return sealed


# --- opening -----------------------------------------------------------------------------------

_FIRST_READ = 1 << 20


class TokenBuffers:
    """A token buffer and a decryption buffer, reused from job to job."""

    __slots__ = ("scratch", "token")

    def __init__(self) -> None:
        self.token = bytearray()
        self.scratch = bytearray()

    def token_buffer(self, length: int) -> memoryview:
        """``token``, grown to at least ``length`` bytes (keeping what it holds)."""
        if len(self.token) < length:
            grown = bytearray(length)
            grown[: len(self.token)] = self.token
            self.token = grown  # a new object: views of the old one stay valid
        return memoryview(self.token)[:length]


_NO_BUFFERS = TokenBuffers()  # for fetches that view tokens in place


SignatureCheck = Callable[[int, bytes, bytes], None]
"""``check(chunk_count, tags_digest, signature)``: verifies a signed file's footer signature over the
SHA-256 of its tags (section 8.3), raising :class:`SignatureError`. The stream layer reads footers;
what a signature means is up to the caller."""


def _read_token(src: IO[bytes], buffers: TokenBuffers, index: int, token_size: int) -> tuple[int, bool]:
    """Read token ``index`` of a stream into ``buffers.token``; return its length and whether it is
    the final one, as its timestamp field says (section 7.4). Buffers grow with the bytes actually
    read (1 MiB, then doubling), never just with the declared chunk size."""
    head = buffers.token_buffer(HEAD_LEN)[:9]
    got = read_full(src, head)
    if got < 9:
        raise AuthenticationError(TRUNCATED)  # R17 (nothing at all) or R18
    (stamp,) = _TIMESTAMP.unpack_from(head, 1)
    final = stamp != 0
    length = stamp if final else token_size
    if final and not valid_token_len(length, token_size):
        raise AuthenticationError(CHUNK_FAILED)  # R19, before reading any further
    total = 9
    while total < length:
        room = min(length, max(_FIRST_READ, 2 * total))
        view = buffers.token_buffer(room)
        got = read_full(src, view[total:room])
        total += got
        if total < room:
            raise AuthenticationError(TRUNCATED)  # R18: the stream ends inside a token
    return length, final


def _expect_end(src: IO[bytes], *, signed: bool) -> None:
    if read_full(src, memoryview(bytearray(1))):
        if signed:
            raise SignatureError(FOOTER_EXTENDED)  # R26
        raise AuthenticationError(TRAILING)  # R22


def open_sequential(
    src: IO[bytes],
    opener: ChunkOpener,
    *,
    threads: int | None = None,
    signature_len: int = 0,
    check_signature: SignatureCheck | None = None,
) -> Generator[memoryview, None, None]:
    """The verified chunks of the token stream ``src``, in order (section 7.4), each view valid until
    the next one is asked for.

    Tokens are read in order on the calling thread and opened on the pool, several ahead. The end
    is checked as soon as the final token is read, before the chunks still in flight are handed
    out: nothing may follow it (unsigned), or exactly the footer of a signed file
    (``signature_len`` > 0), whose tags must be those of the tokens and whose signature
    ``check_signature`` verifies.
    """
    token_size = opener.token_size
    tags = hashlib.sha256() if signature_len else None

    def job(index: int, is_last: bool, buffers: TokenBuffers, length: int) -> tuple[TokenBuffers, memoryview]:
        buffers.scratch = scratch_for(length, buffers.scratch)
        return buffers, opener.open_into(index, is_last, memoryview(buffers.token)[:length], buffers.scratch)

    with Ordered(threads) as jobs:
        free = [TokenBuffers() for _ in range(jobs.depth)]
        index, final = 0, False
        while not final:
            while jobs.full():
                buffers, data = jobs.next()
                yield data
                free.append(buffers)
            buffers = free.pop()
            length, final = _read_token(src, buffers, index, token_size)
            if tags is not None:
                tags.update(memoryview(buffers.token)[length - TAG_LEN : length])
            jobs.submit(job, index, final, buffers, length)
            index += 1
        if tags is not None:
            assert check_signature is not None
            _read_footer(src, index, signature_len, tags.digest(), check_signature)
        _expect_end(src, signed=tags is not None)
        while len(jobs):
            buffers, data = jobs.next()
            yield data
            free.append(buffers)


def _read_footer(src: IO[bytes], count: int, signature_len: int, tags_digest: bytes, check: SignatureCheck) -> None:
    """Read a signed file's footer from a stream: its tags must hash to ``tags_digest`` (those of
    the tokens read), then the signature is checked (section 8.3). Memory stays flat: the footer's
    tags are hashed as they arrive."""
    footer_tags = hashlib.sha256()
    buffer = memoryview(bytearray(min(count * TAG_LEN, 1 << 16) or TAG_LEN))
    left = count * TAG_LEN
    while left:
        piece = buffer[: min(left, len(buffer))]
        if read_full(src, piece) < len(piece):
            raise SignatureError(FOOTER_TRUNCATED)  # R26
        footer_tags.update(piece)
        left -= len(piece)
    signature = bytearray(signature_len)
    if read_full(src, memoryview(signature)) < signature_len:
        raise SignatureError(FOOTER_TRUNCATED)  # R26
    if not hmac_module.compare_digest(footer_tags.digest(), tags_digest):
        raise SignatureError(TAGS_DIFFER)  # R27
    check(count, tags_digest, bytes(signature))


Prefault = Callable[[int, int], Any]
"""``prefault(low, high)``: make bytes ``[low, high)`` of an output writable without a page fault per
page, in the worker about to write them (see envelope.models._tensor_memory)."""


class PositionalOpening:
    """Opening where every token sits at a computed offset (section 7.3): memory, regular files,
    random access. A signed file's footer is read and its signature checked first; then the final
    token is opened: that authenticates the end of the payload and gives the plaintext's exact
    length before anything else is released. Every token opened is then checked against its footer
    tag, so each chunk returned is the signer's without reading the rest of the payload."""

    def __init__(
        self,
        layout: PayloadLayout,
        source: PayloadSource,
        opener: ChunkOpener,
        *,
        check_signature: SignatureCheck | None = None,
    ) -> None:
        self.layout = layout
        self._source = source
        self._opener = opener
        self._local = threading.local()  # each thread's TokenBuffers for read_into and write_to
        self._tags: FooterTags | None = None
        if layout.signed:
            assert check_signature is not None
            self._tags = FooterTags(layout, source, check_signature)
        last = layout.chunk_count - 1
        self.final_data = bytes(self.open_chunk(last, self._buffers()))
        self.plaintext_len = last * layout.chunk_size + len(self.final_data)

    def _buffers(self) -> TokenBuffers:
        """The calling thread's buffers, kept for as long as this opening: a fresh 1 MiB buffer
        costs 256 page faults (0.2 to 0.8 ms here), and a caller reading one tensor at a time would
        pay them again on every read."""
        buffers: TokenBuffers | None = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = TokenBuffers()
        return buffers

    def _token(self, index: int, buffers: TokenBuffers) -> memoryview:
        """Token ``index``, its length and (signed files) its tag checked."""
        length = self.layout.token_length(index)
        token = self._source.view(self.layout.token_offset(index), length, buffers)
        if len(token) != length:
            raise AuthenticationError(TRUNCATED)  # the source shrank while open
        if self._tags is not None and not hmac_module.compare_digest(token[length - TAG_LEN :], self._tags.tag(index)):
            raise SignatureError(TAGS_DIFFER)  # R27
        return token

    def open_chunk(self, index: int, buffers: TokenBuffers) -> memoryview:
        """The verified data of chunk ``index``, a view of ``buffers.scratch``."""
        token = self._token(index, buffers)
        buffers.scratch = scratch_for(len(token), buffers.scratch)
        return self._opener.open_into(index, index == self.layout.chunk_count - 1, token, buffers.scratch)

    def chunks(
        self, *, threads: int | None = None, place: Callable[[int, memoryview], None] | None = None, start: int = 0
    ) -> Generator[memoryview, None, None]:
        """The verified data of every chunk from ``start`` on, in order, each view valid until the
        next is asked for.

        ``place(index, data)``, if given, runs in the worker before the chunk is handed back (a
        positional write); the final chunk, opened first, is placed on the calling thread.
        """
        last = self.layout.chunk_count - 1

        def job(index: int, buffers: TokenBuffers) -> tuple[TokenBuffers, memoryview]:
            data = self.open_chunk(index, buffers)
            if place is not None:
                place(index, data)
            return buffers, data

        with Ordered(threads, jobs=last - start) as jobs:
            free = [TokenBuffers() for _ in range(jobs.depth)]
            for index in range(start, last):
                while jobs.full():
                    buffers, data = jobs.next()
                    yield data
                    free.append(buffers)
                jobs.submit(job, index, free.pop())
            while len(jobs):
                buffers, data = jobs.next()
                yield data
                free.append(buffers)
        final = memoryview(self.final_data)
        if place is not None:
            place(last, final)
        yield final

    def read_into(
        self, offset: int, out: memoryview, *, threads: int | None = None, prefault: Prefault | None = None
    ) -> None:
        """Plaintext ``[offset, offset + len(out))`` verified into ``out``, opening only the chunks
        it spans. Each worker reads its own token and decrypts a chunk that lies wholly inside
        ``out`` straight to its place (so the first write to fresh memory happens in the worker,
        after ``prefault`` on that part of ``out``, where given); the one or two chunks cut by the
        range's ends go through a scratch buffer."""
        size = self.layout.chunk_size

        def whole(index: int, start: int, buffers: TokenBuffers) -> None:
            if prefault is not None:
                prefault(start - offset, start - offset + size)
            self._opener.open_in_place(index, False, self._token(index, buffers), out[start - offset :])

        def part(low: int, high: int, data: memoryview) -> None:
            out[low - offset : high - offset] = data

        self._each_chunk(offset, offset + len(out), whole, part, threads)

    def write_to(self, fd: int, offset: int, end: int, *, threads: int | None = None) -> None:
        """Plaintext ``[offset, end)`` verified into the regular file ``fd``, at the same offsets:
        each worker decrypts a chunk into its scratch buffer (reused, so in cache) and writes it
        with ``os.pwrite``. Faster than writes through a shared mapping of a memory file: the
        kernel fills its pages without a page fault each (2 ms of faults per MiB here, against 0.8
        for the writes)."""

        def part(low: int, high: int, data: memoryview) -> None:
            pwrite_all(fd, data, low)

        self._each_chunk(offset, end, None, part, threads)

    def _each_chunk(
        self,
        offset: int,
        end: int,
        whole: Callable[[int, int, TokenBuffers], None] | None,
        part: Callable[[int, int, memoryview], None],
        threads: int | None,
    ) -> None:
        """Open every chunk of plaintext ``[offset, end)`` on the workers, each reading its own
        token into its own buffers: ``whole(index, start, buffers)`` for a chunk that lies wholly
        in the range (where given), else ``part(low, high, data)`` with the verified plaintext
        ``[low, high)``. The final chunk, opened when this opening was made, goes to ``part`` on
        the calling thread. Returns once every job is done (or re-raises the first failure)."""
        size = self.layout.chunk_size
        if offset < 0 or end > self.plaintext_len or end < offset:
            raise ValueError("read past the end of the plaintext")  # an SDK bug: callers check
        if end == offset:
            return
        last = self.layout.chunk_count - 1
        first, stop = offset // size, min(last, -(-end // size))

        def job(index: int) -> None:
            start, buffers = index * size, self._buffers()
            if whole is not None and offset <= start and start + size <= end:
                whole(index, start, buffers)
            else:
                data = self.open_chunk(index, buffers)
                low, high = max(offset, start), min(end, start + size)
                part(low, high, data[low - start : high - start])

        with Ordered(threads, jobs=stop - first) as jobs:
            for index in range(first, stop):
                while jobs.full():
                    jobs.next()
                jobs.submit(job, index)
            while len(jobs):
                jobs.next()
        start = last * size
        if end > start:  # the final chunk, opened when this opening was made
            low = max(offset, start)
            part(low, end, memoryview(self.final_data)[low - start : end - start])

    def open_into(self, out: memoryview, *, threads: int | None = None) -> None:
        """Every chunk decrypted straight to its place in ``out`` (``plaintext_len`` bytes): for a
        source in memory, whose tokens are viewed in place."""
        layout, last = self.layout, self.layout.chunk_count - 1

        def job(index: int) -> None:
            start = index * layout.chunk_size
            self._opener.open_in_place(index, False, self._token(index, _NO_BUFFERS), out[start:])

        with Ordered(threads, jobs=last) as jobs:
            for index in range(last):
                while jobs.full():
                    jobs.next()
                jobs.submit(job, index)
            while len(jobs):
                jobs.next()
        out[last * layout.chunk_size : self.plaintext_len] = self.final_data


class FooterTags:
    """A signed file's footer tags, for a reader that compares each token it opens with its tag
    (section 8.3), in memory that grows with the square root of the chunk count, not with it.

    The footer is read once, in blocks, to check the signature over all its tags; only each block's
    SHA-256 is kept. A tag is then looked up in its block, read again when not among the few held,
    and that block must hash as it did: the source may have changed since the signature was checked.
    """

    _HELD = 4  # blocks kept, for readers that move around (threads open nearby chunks)

    def __init__(self, layout: PayloadLayout, source: PayloadSource, check: SignatureCheck) -> None:
        count = self._count = layout.chunk_count
        self._source, self._start = source, layout.footer_offset
        # sqrt(n) tags per block at least, so that the block hashes (32 bytes per block) and the
        # blocks held stay within a few MiB even for a file of a million million chunks.
        self._per_block = max(FOOTER_TAG_BLOCK, math.isqrt(count) + 1)
        self._digests: list[bytes] = []
        self._held: dict[int, bytes] = {}
        self._lock = threading.Lock()
        whole = hashlib.sha256()
        buffers = TokenBuffers()
        for block in range(-(-count // self._per_block)):
            tags = self._read(block, buffers)
            whole.update(tags)
            self._digests.append(hashlib.sha256(tags).digest())
            if block < self._HELD:
                self._held[block] = bytes(tags)
        signature = bytes(source.view(self._start + count * TAG_LEN, layout.signature_len, buffers))
        if len(signature) != layout.signature_len:
            raise SignatureError(FOOTER_TRUNCATED)  # the source shrank while open
        check(count, whole.digest(), signature)

    def _read(self, block: int, buffers: TokenBuffers) -> memoryview:
        first = block * self._per_block
        size = min(self._per_block, self._count - first) * TAG_LEN
        tags = self._source.view(self._start + first * TAG_LEN, size, buffers)
        if len(tags) != size:
            raise SignatureError(FOOTER_TRUNCATED)  # the source shrank while open
        return tags

    def tag(self, index: int) -> bytes:
        """The footer's tag of token ``index``, as the signature covered it."""
        block, at = divmod(index, self._per_block)
        with self._lock:
            tags = self._held.get(block)
        if tags is None:
            tags = bytes(self._read(block, TokenBuffers()))
            if not hmac_module.compare_digest(hashlib.sha256(tags).digest(), self._digests[block]):
                raise SignatureError(TAGS_DIFFER)  # the footer changed since its signature was checked
            with self._lock:
                if len(self._held) >= self._HELD:
                    del self._held[next(iter(self._held))]
                self._held[block] = tags
        return tags[at * TAG_LEN : (at + 1) * TAG_LEN]


class PayloadSource:
    """Positional reads of what follows the header MAC (tokens and footer)."""

    def view(self, offset: int, length: int, buffers: TokenBuffers) -> memoryview:
        """``length`` bytes at ``offset``: a view of ``buffers.token`` (grown to fit) or of the
        source's own memory. Shorter when the source ends first. Thread-safe."""
        raise NotImplementedError


class MemorySource(PayloadSource):
    """A payload held in memory: views in place, no copy."""

    def __init__(self, payload: memoryview) -> None:
        self._payload = payload

    def view(self, offset: int, length: int, buffers: TokenBuffers) -> memoryview:
        return self._payload[offset : offset + length]


class FileSource(PayloadSource):
    """A regular file read with ``os.preadv`` by whichever thread needs the bytes."""

    def __init__(self, fd: int, start: int) -> None:
        self._fd, self._start = fd, start

    def view(self, offset: int, length: int, buffers: TokenBuffers) -> memoryview:
        target = buffers.token_buffer(length)
        return target[: pread_full(self._fd, target, self._start + offset)]


class StreamSource(PayloadSource):
    """A seekable file object, read with seek + read (one thread at a time: the position is shared)."""

    def __init__(self, src: IO[bytes], start: int) -> None:
        self._src, self._start = src, start
        self._lock = threading.Lock()

    def view(self, offset: int, length: int, buffers: TokenBuffers) -> memoryview:
        target = buffers.token_buffer(length)
        with self._lock:
            self._src.seek(self._start + offset)
            return target[: read_full(self._src, target)]
