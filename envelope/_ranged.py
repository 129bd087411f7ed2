"""The verified ranged reader of a sealed object on an fsspec filesystem: the object as a seekable
raw file whose misses are ranged reads (:class:`RangedSource`), and the reader of verified
plaintext over it (:class:`SealedObjectReader`), which plans those reads chunk by chunk."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, cast

from ._format import HEADER_MAC_LEN, PREFIX_LEN, decode_prefix
from ._layout import token_len
from ._sdkoptions import options_for
from ._seekable import Seekable
from ._storage import storage
from .errors import ObjectChangedError
from .fileio import EnvelopeReader
from .inspection import SignerInfo
from .inspection import inspect as inspect_header

__all__ = [
    "DEFAULT_READ_AHEAD",
    "HEADER_WINDOW",
    "RangedSource",
    "SealedObjectReader",
    "WindowedSource",
    "hold_header",
    "open_object",
    "open_sealed",
    "open_windowed",
]

HEADER_WINDOW = 4 << 10  # first ranged read: the prefix, a header of a few recipients and its MAC
DEFAULT_READ_AHEAD = 16 << 20  # largest ranged read of a sequential reader (two may be held at once)
_FIRST_READ_AHEAD = 4 << 20  # the read-ahead window starts here and doubles up to read_ahead


class RangedSource(Seekable, io.RawIOBase):
    """The sealed object as a seekable raw file whose misses are ranged reads of the underlying one.

    One segment of the object is held (as the pieces it was fetched in: a segment that continues
    into the read-ahead is not copied into one buffer), plus at most one range being fetched ahead.
    Every read of the underlying file runs on one background thread, in order, so the underlying
    file is never used by two threads. The reader above says which ranges it needs (:meth:`fetch`,
    one ranged read for all the chunks a read touches) and which it will need next
    (:meth:`fetch_ahead`).
    """

    def __init__(self, raw: Any, size: int, path: str) -> None:
        super().__init__()
        self._raw = raw
        self._size = size
        self._path = path
        self._position = 0
        self._start = 0
        self._pieces: list[memoryview] = []  # the held segment from _start, in order, none empty
        self._held = 0  # their total length
        self._ahead: tuple[int, int, Future[bytes]] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="envelope-fetch")
        self.fetched = 0  # bytes the underlying file returned, for tests and benchmarks

    @property
    def size(self) -> int:
        return self._size

    def _extent(self) -> int:
        return self._size

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start = self._position
        end = min(start + len(view), self._size)
        if end <= start:
            return 0
        self.fetch(start, end)  # a no-op when planned; else exactly what is asked
        count = end - start
        self._copy(start - self._start, view[:count])
        self._position = end
        return count

    def _copy(self, offset: int, out: memoryview) -> None:
        """Held bytes ``[offset, offset + len(out))`` of the segment into ``out`` (a read may span
        two pieces)."""
        done = 0
        for piece in self._pieces:
            if offset >= len(piece):
                offset -= len(piece)
                continue
            part = piece[offset : offset + len(out) - done]
            out[done : done + len(part)] = part
            done += len(part)
            offset = 0
            if done == len(out):
                return

    def _held_from(self, offset: int) -> list[memoryview]:
        """The held pieces from ``offset`` (in the segment) on, as views (nothing copied)."""
        kept: list[memoryview] = []
        for piece in self._pieces:
            if offset >= len(piece):
                offset -= len(piece)
                continue
            kept.append(piece[offset:])
            offset = 0
        return kept

    def _segment_end(self) -> int:
        return self._start + self._held

    def _get(self, start: int, end: int) -> bytes:
        """One ranged read of the underlying file (on the background thread)."""
        with storage("a ranged read", self._path, opened=True):
            self._raw.seek(start)
            parts, got = [], 0
            while got < end - start:
                piece = self._raw.read(end - start - got)
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
        self.fetched += got
        if got < end - start:
            raise ObjectChangedError(f"{self._path}: the object is shorter than when it was opened")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _wait(self, future: Future[bytes]) -> memoryview:
        return memoryview(future.result())

    def fetch(self, start: int, end: int) -> None:
        """Hold ``[start, end)`` (clipped to the object), reading what is missing in one ranged read
        (two when a read-ahead covers its middle). The held segment keeps what follows ``end`` in
        the old segment or the read-ahead: a sequential reader finds its next chunks there."""
        end = min(end, self._size)
        if start >= end or (self._start <= start and end <= self._segment_end()):
            return
        pieces: list[memoryview] = []
        position = start
        if self._start <= start < self._segment_end():
            pieces.extend(self._held_from(start - self._start))
            position = self._segment_end()
        while position < end:
            ahead = self._ahead
            if ahead is not None and ahead[0] <= position < ahead[1]:
                self._ahead = None
                pieces.append(self._wait(ahead[2])[position - ahead[0] :])
                position = ahead[1]
            else:
                stop = ahead[0] if ahead is not None and position < ahead[0] < end else end
                pieces.append(self._wait(self._pool.submit(self._get, position, stop)))
                position = stop
        self._start = start
        self._pieces = [piece for piece in pieces if len(piece)]
        self._held = sum(len(piece) for piece in self._pieces)
        if self._ahead is not None and self._ahead[0] != self._segment_end():
            self._drop_ahead()  # a jump: what was read ahead is not next

    def fetch_ahead(self, start: int, length: int) -> bool:
        """Start reading ``length`` bytes from ``start``, or from the end of the held segment when
        that is further, in the background; unless a read-ahead is under way. True: it started."""
        if self._start <= start < self._segment_end():
            start = self._segment_end()
        end = min(start + length, self._size)
        if start >= end or self._ahead is not None:
            return False
        self._ahead = (start, end, self._pool.submit(self._get, start, end))
        return True

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead[2].cancel()  # a running read completes; its result is dropped
            self._ahead = None

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._drop_ahead()
            self._pool.shutdown(wait=True)
            self._pieces, self._held = [], 0
            with storage("closing", self._path, opened=True):
                self._raw.close()
        finally:
            super().close()


class WindowedSource(RangedSource):
    """The object for a reader that does not plan its ranges (a header parser, a copy, the keyless
    signature check): a read that misses fetches at least ``window`` bytes from where it starts,
    and with ``ahead`` the next window downloads in the background while this one is used."""

    def __init__(self, raw: Any, size: int, path: str, *, window: int, ahead: bool) -> None:
        super().__init__(raw, size, path)
        self._window = window
        self._read_ahead = ahead

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view:
            start, count = self._position, view.nbytes
        end = min(start + count, self._size)
        if start < end and not (self._start <= start and end <= self._segment_end()):
            self.fetch(start, max(end, start + self._window))
        if self._read_ahead and start < end:
            self.fetch_ahead(self._segment_end(), self._window)
        return super().readinto(buffer)


class SealedObjectReader(io.BufferedIOBase):
    """A sealed object opened for reading: a seekable binary file of verified plaintext.

    Made by :meth:`EnvelopeFileSystem.open` (mode ``"rb"``). Opening fetches the header and the
    final chunk (so truncation is caught before the first byte, and :attr:`size` is known). Each
    read then fetches the chunks it touches in one ranged read; from the second consecutive read
    on, the next range is fetched in the background while this one is decrypted, in windows that
    double from 4 MiB up to ``read_ahead``. A seek elsewhere drops what was read ahead.
    """

    def __init__(self, source: RangedSource, identities: list[Any], options: Mapping[str, Any], read_ahead: int):
        super().__init__()
        self._source = source
        try:
            hold_header(source)
            src = cast(IO[bytes], source)
            layout = inspect_header(src)  # where chunks sit: it plans reads, from the bytes verified next
            source.seek(0)
            # prefetch=False: this class plans the ranged reads (and reads ahead) itself.
            reader_options = {k: v for k, v in options_for(EnvelopeReader, options).items() if k != "prefetch"}
            self._reader = EnvelopeReader(src, identities, prefetch=False, **reader_options)
        except BaseException:
            io.BufferedIOBase.close(self)  # nothing to close but the source, which the caller owns
            raise
        self._header_size = layout.header_size
        self._chunk_size = self._reader.chunk_size  # verified (and the same bytes as the layout's)
        self._token_size = token_len(self._chunk_size)
        assert layout.chunk_count is not None  # the reader opened the final chunk: the length is possible
        # The final chunk was opened (and its plaintext kept) by the SDK reader: reads never fetch it again.
        self._final_token = self._header_size + (layout.chunk_count - 1) * self._token_size
        self._read_ahead = max(read_ahead, self._token_size)
        self._window = 0
        self._next = -1  # where the previous read ended: a read starting there is sequential

    @property
    def metadata(self) -> dict[str, Any]:
        """The file's authenticated metadata."""
        return self._reader.metadata

    @property
    def chunk_size(self) -> int:
        """The file's chunk size: a read of this many bytes at a multiple of it is one chunk."""
        return self._chunk_size

    @property
    def signer(self) -> SignerInfo | None:
        """Who signed the file, verified when the reader was made (``None``: unsigned)."""
        return self._reader.signer

    @property
    def size(self) -> int:
        """The plaintext length."""
        size = self._reader.size
        assert size is not None  # the source is seekable
        return size

    @property
    def fetched(self) -> int:
        """Bytes read from the underlying file so far."""
        return self._source.fetched

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._reader.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._reader.seek(offset, whence)

    def _cipher_range(self, start: int, end: int) -> tuple[int, int]:
        """The bytes of the tokens that hold plaintext ``[start, end)`` (spec/FORMAT.md 7.3), up to
        the final token at most (empty when only the final chunk is read)."""
        first, last = start // self._chunk_size, (end - 1) // self._chunk_size
        low = self._header_size + first * self._token_size
        return low, min(self._header_size + (last + 1) * self._token_size, self._final_token)

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed file")
        position = self._reader.tell()
        count = max(0, self.size - position)
        if size is not None and 0 <= size < count:
            count = size
        if count <= self._chunk_size - position % self._chunk_size:  # within one chunk: no copy
            self._plan(position, position + count, more=False)
            return self._reader.read(count)
        # One output buffer, filled chunk by chunk (aligned reads of the SDK reader return its
        # verified chunk without a copy); BytesIO hands a buffer it alone holds back uncopied.
        holder = io.BytesIO(bytes(count))
        with holder.getbuffer() as view:
            filled = self._read_into(view)
        return holder.getvalue() if filled == count else holder.getvalue()[:filled]

    def _read_into(self, view: memoryview) -> int:
        position, filled, count = self._reader.tell(), 0, len(view)
        count = min(count, max(0, self.size - position))
        while filled < count:
            piece_end = min(count, filled + self._read_ahead)
            self._plan(position + filled, position + piece_end, more=piece_end < count)
            while filled < piece_end:
                step = min(piece_end - filled, self._chunk_size - (position + filled) % self._chunk_size)
                data = self._reader.read(step)
                if not data:
                    return filled
                view[filled : filled + len(data)] = data
                filled += len(data)
        return filled

    def _plan(self, start: int, end: int, *, more: bool) -> None:
        """Fetch the chunks of plaintext ``[start, end)``; when reading on from the previous read
        (or when this read goes on past ``end``), fetch the next window in the background."""
        sequential = start == self._next or more
        self._next = end
        low, high = self._cipher_range(start, end)
        self._source.fetch(low, high)
        if not sequential:
            self._window = 0
            return
        window = min(self._read_ahead, max(_FIRST_READ_AHEAD, 2 * self._window, end - start))
        chunks = -(-window // self._chunk_size)
        ahead = min(chunks * self._token_size, self._final_token - high)
        if ahead > 0 and self._source.fetch_ahead(high, ahead):
            self._window = window  # the next window is twice as large, up to read_ahead

    read1 = read

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed file")
        with memoryview(buffer) as raw, raw.cast("B") as view:
            return self._read_into(view)

    readinto1 = readinto

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._reader.close()
            self._source.close()
        finally:
            super().close()

    def __repr__(self) -> str:
        return f"<SealedObjectReader position={self._reader.tell()} size={self.size} closed={self.closed}>"


def hold_header(source: RangedSource) -> None:
    """Fetch the whole header once and hold it: the layout and the verified reader both parse
    these bytes, so a store that answers a second read with other bytes cannot get a header it
    did not have verified used for anything. One ranged read covers most headers; a larger one
    (its length is in the prefix) gets a second read of the rest, never of the start again."""
    source.fetch(0, HEADER_WINDOW)
    prefix = source.read(PREFIX_LEN)
    if len(prefix) == PREFIX_LEN:  # else the parse below says what is wrong
        source.fetch(0, PREFIX_LEN + decode_prefix(prefix) + HEADER_MAC_LEN)
    source.seek(0)


def open_object(fs: Any, path: str, name: str, **open_options: Any) -> tuple[Any, int]:
    """The underlying file opened for reading, and its length. ``name``: the object in messages."""
    with storage("opening", name, opened=False):
        raw = fs.open(path, "rb", **open_options)
        try:
            size = getattr(raw, "size", None)
            if not isinstance(size, int):
                size = raw.seek(0, os.SEEK_END)
        except BaseException:
            raw.close()
            raise
    return raw, size


def open_sealed(
    fs: Any,
    path: str,
    identities: Any,
    options: Mapping[str, Any],
    *,
    read_ahead: int = DEFAULT_READ_AHEAD,
    name: str | None = None,
    **open_options: Any,
) -> SealedObjectReader:
    """The verified reader of the sealed object ``path`` of ``fs`` (``open_options``: those of
    ``fs.open``; ``cache_type="none"`` for ranged reads this module plans)."""
    raw, size = open_object(fs, path, name or path, **open_options)
    source = RangedSource(raw, size, name or path)
    try:
        return SealedObjectReader(source, identities, options, read_ahead)
    except BaseException:
        source.close()
        raise


def open_windowed(fs: Any, path: str, name: str, *, window: int, ahead: bool) -> WindowedSource:
    """The object ``path`` of ``fs`` as a seekable raw file read in windows (see WindowedSource)."""
    raw, size = open_object(fs, path, name, cache_type="none")
    return WindowedSource(raw, size, name, window=window, ahead=ahead)
