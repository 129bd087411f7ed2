"""File-like objects: a writer that seals what it is given, a reader that opens (and seeks)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from .core import DEFAULT_CHUNK_SIZE, _check_chunk_size, _wrap_all, build_header, read_and_unlock
from .datakey import DataKey
from .errors import AuthenticationError
from .format import encode_metadata
from .layout import TRUNCATED, PayloadLayout
from .recipients import IdentityLike, RecipientLike
from .stream import ChunkOpener, ChunkPipeline, ChunkSealer, read_full, read_token

__all__ = ["EnvelopeReader", "EnvelopeWriter"]


class EnvelopeWriter(io.BufferedIOBase):
    """A writable binary file object that seals everything written to it into ``dst``.

    Hand it to ``torch.save``, ``numpy.save``, ``zipfile.ZipFile(w, "w")`` and the like. Closing it
    writes the final chunk; until then the output is an incomplete (and so invalid) file. Used as a
    context manager, an exception inside the block leaves the output without its final chunk, so
    the partial file can never be mistaken for a complete one. ``dst`` is not closed unless
    ``close_dst`` is true. Full chunks are sealed on ``threads`` workers (default: one per core)
    while the caller goes on writing; tokens reach ``dst`` in order.
    """

    def __init__(
        self,
        dst: IO[bytes],
        recipients: RecipientLike | Iterable[RecipientLike],
        *,
        metadata: Mapping[str, Any] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        close_dst: bool = False,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        _check_chunk_size(chunk_size)
        data_key = DataKey.generate()
        header = build_header(_wrap_all(recipients, data_key), data_key, chunk_size, encode_metadata(metadata))
        self._dst = dst
        self._close_dst = close_dst
        self._sealer = ChunkSealer(data_key, chunk_size)
        self._pipeline = ChunkPipeline(threads, self._deliver)
        self._free: list[tuple[bytearray, memoryview]] = []
        self._allocated = 0
        self._chunk, self._token = self._take_buffers()
        self._filled = 0
        self._index = 0
        self._position = 0
        self._aborted = False
        dst.write(header)

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._position

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed EnvelopeWriter")
        view = memoryview(data).cast("B")
        size, taken = len(view), 0
        chunk_size = self._sealer.chunk_size
        while taken < size:
            if self._filled == chunk_size:  # more data follows, so the buffered chunk is not last
                self._emit(final=False)
            room = min(chunk_size - self._filled, size - taken)
            self._chunk[self._filled : self._filled + room] = view[taken : taken + room]
            self._filled += room
            taken += room
        self._position += size
        return size

    def flush(self) -> None:
        """Write out every chunk sealed so far. A full buffered chunk is sealed at the next write or
        at close: only then is it known whether it is the last one."""
        self._pipeline.drain()
        if hasattr(self._dst, "flush"):
            self._dst.flush()

    def _take_buffers(self) -> tuple[bytearray, memoryview]:
        self._pipeline.wait_for_room()
        if not self._free and self._allocated < self._pipeline.depth + 1:
            self._allocated += 1
            return bytearray(self._sealer.chunk_size), memoryview(bytearray(self._sealer.token_size))
        while not self._free:  # every set is in flight: deliver the oldest
            self._pipeline.deliver_one()
        return self._free.pop()

    def _emit(self, *, final: bool) -> None:
        chunk, token, filled = self._chunk, self._token, self._filled
        iv = self._sealer.new_iv()
        self._pipeline.submit(self._seal_job, self._index, final, chunk, token, filled, iv)
        self._index += 1
        if not final:
            self._chunk, self._token = self._take_buffers()
            self._filled = 0

    def _seal_job(
        self, index: int, final: bool, chunk: bytearray, token: memoryview, filled: int, iv: bytes
    ) -> tuple[bytearray, memoryview, int]:
        return chunk, token, self._sealer.seal_into(index, final, memoryview(chunk)[:filled], token, iv)

    def _deliver(self, result: tuple[bytearray, memoryview, int]) -> None:
        chunk, token, length = result
        self._dst.write(token[:length])
        self._free.append((chunk, token))

    def abort(self) -> None:
        """Close without writing the final chunk: the output stays detectably incomplete."""
        self._aborted = True
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._aborted:
                if self._filled == self._sealer.chunk_size:
                    self._emit(final=False)
                self._emit(final=True)
                self.flush()
        finally:
            self._pipeline.close()
            super().close()
            if self._close_dst:
                self._dst.close()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __repr__(self) -> str:
        return f"<EnvelopeWriter written={self._position} closed={self.closed}>"


class EnvelopeReader(io.BufferedIOBase):
    """A readable binary file object over an envelope file.

    The header is verified when the reader is made; ``metadata`` is then authentic. Over a seekable
    source the reader is seekable: it verifies the final chunk at once (so truncation is caught up
    front and ``size`` is known) and then opens only the chunks that reads touch. Over a
    non-seekable source (a pipe) it reads forward, one chunk ahead. Every byte returned comes from a
    chunk that verified at its position.
    """

    def __init__(
        self,
        src: IO[bytes],
        private_key: IdentityLike | Iterable[IdentityLike],
        *,
        close_src: bool = False,
    ) -> None:
        super().__init__()
        self._src = src
        self._close_src = close_src
        try:
            random_access = bool(src.seekable())
        except (AttributeError, OSError, ValueError):
            random_access = False
        start = src.tell() if random_access else 0
        unlocked = read_and_unlock(src, private_key)
        self.metadata: dict[str, Any] = unlocked.metadata
        self.chunk_size = unlocked.header.chunk_size
        self._opener = ChunkOpener(unlocked.data_key, self.chunk_size)
        self._position = 0
        self._cached_index = -1
        self._cached: bytes = b""
        self._layout: PayloadLayout | None = None
        self._sequential: Iterator[bytes] | None = None
        self._sequential_done = False
        self._payload_start = start + unlocked.size
        if random_access:
            end = src.seek(0, os.SEEK_END)
            self._layout = PayloadLayout(self.chunk_size, end - self._payload_start)
            last = self._layout.chunk_count - 1
            self._size: int | None = last * self.chunk_size + len(self._chunk(last))
        else:
            self._size = None
            self._sequential = self._forward_chunks()

    @property
    def size(self) -> int | None:
        """The plaintext length, known up front over a seekable source."""
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._layout is not None

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self._layout is None or self._size is None:
            raise io.UnsupportedOperation("the source is not seekable")
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence ({whence})")
        position = base + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def _chunk(self, index: int) -> bytes:
        """The verified data of chunk ``index`` (random access)."""
        assert self._layout is not None
        if index != self._cached_index:
            length = self._layout.token_length(index)
            self._src.seek(self._payload_start + self._layout.token_offset(index))
            token = bytearray(length)
            if read_full(self._src, memoryview(token)) != length:
                raise AuthenticationError(TRUNCATED)  # the file shrank while open
            is_last = index == self._layout.chunk_count - 1
            self._cached = bytes(self._opener.open(index, is_last, memoryview(token)))
            self._cached_index = index
        return self._cached

    def _forward_chunks(self) -> Iterator[bytes]:
        size = self._opener.token_size
        current, got = read_token(self._src, size, bytearray())
        if got == 0:
            raise AuthenticationError(TRUNCATED)
        ahead = bytearray()
        index = 0
        while True:
            ahead, got_ahead = read_token(self._src, size, ahead) if got == size else (ahead, 0)
            is_last = got_ahead == 0
            yield bytes(self._opener.open(index, is_last, memoryview(current)[:got]))
            if is_last:
                return
            current, ahead, got = ahead, current, got_ahead
            index += 1

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed EnvelopeReader")
        if size is None or size < 0:
            parts = []
            while piece := self.read(1 << 24):
                parts.append(piece)
            return b"".join(parts)
        if self._layout is not None:
            return self._read_random(size)
        return self._read_forward(size)

    def _read_random(self, size: int) -> bytes:
        assert self._size is not None
        parts: list[bytes] = []
        while size > 0 and self._position < self._size:
            index, within = divmod(self._position, self.chunk_size)
            piece = self._chunk(index)[within : within + size]
            parts.append(piece)
            self._position += len(piece)
            size -= len(piece)
        return b"".join(parts)

    def _read_forward(self, size: int) -> bytes:
        assert self._sequential is not None
        parts: list[bytes] = []
        while size > 0:
            within = self._position - max(self._cached_index, 0) * self.chunk_size
            if self._cached_index < 0 or within >= len(self._cached):
                if self._sequential_done:
                    break
                try:
                    self._cached = next(self._sequential)
                except StopIteration:
                    self._sequential_done = True
                    break
                self._cached_index += 1
                continue
            piece = self._cached[within : within + size]
            parts.append(piece)
            self._position += len(piece)
            size -= len(piece)
        return b"".join(parts)

    read1 = read

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    readinto1 = readinto

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._close_src:
            self._src.close()

    def __repr__(self) -> str:
        return f"<EnvelopeReader position={self._position} size={self._size} closed={self.closed}>"
