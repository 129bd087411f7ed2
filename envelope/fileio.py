"""File-like objects: a writer that seals what it is given, and two readers that open: one with
random access over a seekable source, one that reads a stream forward. Each wraps the one sealing
or opening pipeline (``envelope._stream``)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import IO, Any, Protocol, Union

from ._header import new_header, read_and_unlock
from ._pipeline import positional_opening, seekable, stream_chunks
from ._stream import (
    ChunkSealer,
    PayloadSealer,
    StreamSource,
    TokenBuffers,
    TokenSink,
)
from ._urls import LOCAL, locate, refuse_options_without_url
from .atomic import atomic_output
from .errors import UsageError
from .inspection import SignerInfo, signer_info
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike
from .signing import SignedBy, Signer, SigningKey

__all__ = ["EnvelopeReader", "EnvelopeStreamReader", "EnvelopeWriter", "PlaintextReader", "open_reader", "open_writer"]


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
        sign_with: Signer | SigningKey | None = None,
        close_dst: bool = False,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        head = new_header(recipients, metadata, chunk_size, sign_with)
        self._head = head
        self._dst = dst
        self._close_dst = close_dst
        self._pipeline = PayloadSealer(
            ChunkSealer(head.data_key, chunk_size),
            TokenSink(dst.write),
            threads=threads,
            keep_tags=head.signer is not None,
        )
        self._chunk_size = chunk_size
        self._position = 0
        self._aborted = False
        dst.write(head.encoded)
        self._slot = self._pipeline.slot()
        self._filled = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._position

    @property
    def signer(self) -> SignerInfo | None:
        """Who signs the file (``sign_with``), or ``None``."""
        return signer_info(self._head.header, verified=True)

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed EnvelopeWriter")
        view = memoryview(data).cast("B")
        size, taken = len(view), 0
        while taken < size:
            if self._filled == self._chunk_size:  # more data follows, so the buffered chunk is not last
                self._emit(final=False)
            room = min(self._chunk_size - self._filled, size - taken)
            chunk = self._slot.chunk
            assert chunk is not None
            chunk[self._filled : self._filled + room] = view[taken : taken + room]
            self._filled += room
            taken += room
        self._position += size
        return size

    def flush(self) -> None:
        """Write out every chunk sealed so far. A full buffered chunk is sealed at the next write or
        at close: only then is it known whether it is the last one."""
        if not self.closed:
            self._pipeline.flush()
        if hasattr(self._dst, "flush"):
            self._dst.flush()

    def _emit(self, *, final: bool) -> None:
        self._pipeline.submit(self._slot, self._filled, final)
        if not final:
            self._slot = self._pipeline.slot()
            self._filled = 0

    def abort(self) -> None:
        """Close without writing the final chunk: the output stays detectably incomplete."""
        self._aborted = True
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._aborted:
                if self._filled == self._chunk_size:
                    self._emit(final=False)
                self._emit(final=True)
                self._pipeline.finish()
                if self._pipeline.tags is not None:
                    self._dst.write(self._head.footer(self._pipeline.tags))
                if hasattr(self._dst, "flush"):
                    self._dst.flush()
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


class _ChunkedReader(io.BufferedIOBase):
    """``read``/``readinto`` over verified chunks of ``chunk_size`` bytes; subclasses say how chunk
    data is found (:meth:`_chunk_at`). Every byte returned comes from a chunk that verified."""

    metadata: dict[str, Any]
    """The file's metadata, authenticated before the reader was returned."""
    signer: SignerInfo | None
    """Who signed the file (``None``: unsigned). For :class:`EnvelopeReader` verified before the
    reader was returned; for :class:`EnvelopeStreamReader` only once the whole stream was read."""
    _position = 0  # class defaults: repr and close work on a reader whose __init__ failed

    def __init__(self, src: IO[bytes], close_src: bool, chunk_size: int) -> None:
        super().__init__()
        self._src = src
        self._close_src = close_src
        self.chunk_size = chunk_size
        self._position = 0
        self._chunk = memoryview(b"")
        self._chunk_start = 0

    def _chunk_at(self, index: int) -> memoryview | None:
        """The data of chunk ``index`` (valid until the next call), or None past the end."""
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def _current(self) -> memoryview:
        """The rest of the chunk holding the current position (empty at the end)."""
        within = self._position - self._chunk_start
        if not 0 <= within < len(self._chunk):
            index, within = divmod(self._position, self.chunk_size)
            chunk = self._chunk_at(index)
            if chunk is None:
                return memoryview(b"")
            self._chunk, self._chunk_start = chunk, index * self.chunk_size
        return self._chunk[within:]

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed reader")
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            piece = self._current()[: len(view) - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
            self._position += len(piece)
        return done

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed reader")
        if size is None or size < 0:
            return self._read_all()
        holder = io.BytesIO(bytes(size))
        with holder.getbuffer() as view:
            got = self.readinto(view)
        return holder.getvalue() if got == size else holder.getvalue()[:got]

    def _read_all(self) -> bytes:
        if self._remaining() is not None:
            return self.read(self._remaining())
        parts = bytearray()
        while piece := self._current():
            parts += piece
            self._position += len(piece)
        return bytes(parts)

    def _remaining(self) -> int | None:
        """Plaintext bytes left after the position, when known."""
        return None

    read1 = read
    readinto1 = readinto

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._release()
        finally:
            super().close()
            if self._close_src:
                self._src.close()

    def _release(self) -> None:
        """Stop any work in flight."""


class EnvelopeReader(_ChunkedReader):
    """A seekable, readable binary file object over an envelope file in a seekable source.

    The header is verified when the reader is made, and the final chunk too (so truncation is caught
    up front and ``size`` is known); ``metadata`` is then authentic. Random reads open only the
    chunks they touch; reads that go forward chunk after chunk switch to opening the following
    chunks ahead on the thread pool (``prefetch=False``: only the chunks reads touch, never more,
    for a source whose reads the caller plans, such as ranged reads of an object store). The
    envelope may start anywhere in ``src`` (its current position). For a source that cannot seek (a
    pipe), use :class:`EnvelopeStreamReader`, or :func:`open_reader`, which picks.
    """

    def __init__(
        self,
        src: IO[bytes],
        private_key: IdentityLike | Iterable[IdentityLike],
        *,
        signed_by: SignedBy | None = None,
        close_src: bool = False,
        threads: int | None = None,
        prefetch: bool = True,
    ) -> None:
        if not seekable(src):
            raise UsageError("EnvelopeReader needs a seekable source; read a stream with EnvelopeStreamReader")
        start = src.tell()
        unlocked = read_and_unlock(src, private_key, signed_by)
        super().__init__(src, close_src, unlocked.header.chunk_size)
        self.metadata = unlocked.metadata
        payload_start = start + unlocked.size
        payload_len = src.seek(0, os.SEEK_END) - payload_start
        self._opening = positional_opening(unlocked, StreamSource(src, payload_start), payload_len)
        self.signer = unlocked.signer()
        self._buffers = TokenBuffers()
        self._threads = threads
        self._prefetch = prefetch
        self._ahead = None
        self._ahead_next = -1  # index of the chunk the read-ahead yields next
        self._last_index = -2  # of the chunk read last (-2: none, so that chunk 0 is not "forward")

    @property
    def size(self) -> int:
        """The plaintext length, known (and authenticated) up front."""
        return self._opening.plaintext_len

    def _remaining(self) -> int:
        return max(0, self.size - self._position)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence ({whence})")
        position = base + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def _chunk_at(self, index: int) -> memoryview | None:
        last = self._opening.layout.chunk_count - 1
        if index > last:
            return None
        forward, self._last_index = index == self._last_index + 1, index
        if index == last:  # opened when the reader was made
            self._stop_ahead()
            return memoryview(self._opening.final_data)
        if self._ahead is not None and index == self._ahead_next:
            self._ahead_next += 1
            return next(self._ahead)
        self._stop_ahead()
        if not forward or not self._prefetch:
            return self._opening.open_chunk(index, self._buffers)
        # Two chunks in a row: open the following ones ahead, on the pool.
        self._ahead = self._opening.chunks(threads=self._threads, start=index)
        self._ahead_next = index + 1
        return next(self._ahead)

    _ahead: Generator[memoryview, None, None] | None = None

    def _stop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
        self._ahead, self._ahead_next = None, -1

    def _release(self) -> None:
        self._stop_ahead()

    def __repr__(self) -> str:
        return f"<EnvelopeReader position={self._position} size={self.size} closed={self.closed}>"


class EnvelopeStreamReader(_ChunkedReader):
    """A readable binary file object over an envelope stream (a pipe, a socket, any source), read
    forward. The header is verified when the reader is made (``metadata`` is then authentic);
    chunks are opened several ahead on the thread pool. Not seekable. Every byte returned comes
    from a chunk that verified at its position, but a damaged file is only found out when the
    reader gets there: treat the data as failed if a later read raises."""

    def __init__(
        self,
        src: IO[bytes],
        private_key: IdentityLike | Iterable[IdentityLike],
        *,
        signed_by: SignedBy | None = None,
        close_src: bool = False,
        threads: int | None = None,
    ) -> None:
        unlocked = read_and_unlock(src, private_key, signed_by)
        super().__init__(src, close_src, unlocked.header.chunk_size)
        self.metadata = unlocked.metadata
        self.signer = None
        self._unlocked = unlocked
        # Pinned signers and a pipe: the ciphertext is spooled, and the signature checked, first.
        self._chunks = stream_chunks(unlocked, src, threads=threads)
        self._next_index = 0

    def seekable(self) -> bool:
        return False

    def _chunk_at(self, index: int) -> memoryview | None:
        chunk = None
        assert self._chunks is not None
        while self._next_index <= index:  # reads only go forward: this skips nothing in practice
            chunk = next(self._chunks, None)
            if chunk is None:
                return None
            self._next_index += 1
            if len(chunk) < self.chunk_size:  # the final chunk: handed out only after the end (and
                self.signer = self._unlocked.signer()  # a signed file's footer) verified
        return chunk

    _chunks: Generator[memoryview, None, None] | None = None

    def _release(self) -> None:
        if self._chunks is not None:
            self._chunks.close()

    def __repr__(self) -> str:
        return f"<EnvelopeStreamReader position={self._position} closed={self.closed}>"


class PlaintextReader(Protocol):
    """What :func:`open_reader` returns: a readable binary file of verified plaintext, with the
    file's authenticated metadata and its signer (seekable, except over a stream)."""

    @property
    def metadata(self) -> dict[str, Any]: ...

    @property
    def signer(self) -> SignerInfo | None: ...

    def read(self, size: int | None = -1, /) -> bytes: ...

    def readinto(self, buffer: Any, /) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...

    def seekable(self) -> bool: ...

    def readable(self) -> bool: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, kind: Any, value: Any, traceback: Any, /) -> Any: ...


ReaderSource = Union[IO[bytes], bytes, bytearray, memoryview, str, "os.PathLike[str]"]
"""What :func:`open_reader` reads: a binary file object, the sealed bytes, or a path or URL."""


def open_reader(
    source: ReaderSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    storage_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> PlaintextReader:
    """A reader of verified plaintext, whatever the source: over a seekable file object or sealed
    bytes an :class:`EnvelopeReader`, over any other file object an :class:`EnvelopeStreamReader`;
    a path is opened here (and closed with the reader); a URL (with fsspec) gets the verified
    ranged reader of :mod:`envelope.fsspec`, seekable, fetching only the chunks reads touch.
    ``options`` are the readers' (``signed_by``, ``threads``...)."""
    refuse_options_without_url(storage_options, source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return EnvelopeReader(io.BytesIO(source), private_key, **options)
    if isinstance(source, (str, os.PathLike)):
        located = locate(source, storage_options, sealed=True)
        if not isinstance(located, LOCAL):
            unknown = set(options) - {"signed_by"}
            if unknown:
                raise UsageError(f"a sealed object at a URL is read with signed_by only, not {sorted(unknown)}")
            return located.sealed_reader(private_key, options.get("signed_by"))
        f = open(located, "rb")
        try:
            return EnvelopeReader(f, private_key, close_src=True, **options)
        except BaseException:
            f.close()
            raise
    cls = EnvelopeReader if seekable(source) else EnvelopeStreamReader
    return cls(source, private_key, **options)


@contextlib.contextmanager
def open_writer(
    target: IO[bytes] | str | os.PathLike[str],
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> Iterator[EnvelopeWriter]:
    """An :class:`EnvelopeWriter` whose sealed output appears at a path or URL only if the block
    completes (:func:`envelope.atomic_output`; on an object store, an upload committed at the end),
    or that writes into a binary file object. ``options`` are the writer's (``metadata``,
    ``chunk_size``, ``sign_with``...)."""
    refuse_options_without_url(storage_options, target)
    if not isinstance(target, (str, os.PathLike)):
        with EnvelopeWriter(target, recipients, **options) as writer:
            yield writer
        return
    located = locate(target, storage_options, sealed=True)
    output = (
        atomic_output(located, overwrite=overwrite)
        if isinstance(located, LOCAL)
        else located.writing(overwrite=overwrite, private=False)
    )
    with output as out, EnvelopeWriter(out, recipients, **options) as writer:
        yield writer
