"""Verified plaintext at any offset of a sealed file, read straight into the caller's memory: the
random-access opening (spec/FORMAT.md 7.3) of a path, the sealed bytes, a file object or a URL.

What the model adapters build tensors on: a tensor's bytes are decrypted by the workers into the
memory that ends up holding it, and only the chunks a read spans are opened (and, from a URL,
fetched, in one ranged read per window). Like every random-access opening, opening one verifies
the header, a signed file's signature and the final chunk first.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from ._header import UnlockedHeader, read_and_unlock, unlock_bytes
from ._pipeline import open_memory, positional_opening, seekable
from ._seekable import Seekable
from ._stream import FileSource, PositionalOpening, Prefault, StreamSource
from ._urls import LOCAL, locate, refuse_options_without_url
from .errors import UsageError
from .inspection import SignerInfo
from .recipients import IdentityLike
from .signing import SignedBy

if TYPE_CHECKING:
    from ._ranged import RangedSource

__all__ = ["PlaintextAt", "Prefault", "open_at"]

_WINDOW = 16 << 20  # most ciphertext one ranged read of a URL fetches (the next one is read ahead)


class PlaintextAt:
    """A sealed file opened for reads at offsets (:meth:`read_into`); ``metadata`` and ``signer``
    are verified, and ``size`` is the plaintext length. Close it (or use ``with``)."""

    def __init__(
        self,
        unlocked: UnlockedHeader,
        opening: PositionalOpening,
        *,
        closing: IO[bytes] | None = None,
        ranged: RangedSource | None = None,
    ) -> None:
        self.metadata: dict[str, Any] = unlocked.metadata
        self.signer: SignerInfo | None = unlocked.signer()
        self.chunk_size = unlocked.header.chunk_size
        self._payload_start = unlocked.size
        self._opening = opening
        self._closing = closing
        self._ranged = ranged

    @property
    def size(self) -> int:
        return self._opening.plaintext_len

    @property
    def fetched(self) -> int | None:
        """Bytes fetched from a URL so far (``None``: not a URL)."""
        return None if self._ranged is None else self._ranged.fetched

    def read_into(
        self, offset: int, out: memoryview, *, threads: int | None = None, prefault: Prefault | None = None
    ) -> None:
        """Plaintext ``[offset, offset + len(out))`` into ``out``; only the chunks it spans are
        opened, on ``threads`` workers. Raises :class:`UsageError` for a range past the end.
        ``prefault(low, high)``, where given, runs in a worker before it writes ``out[low:high]``."""
        if offset < 0 or offset + len(out) > self.size:
            raise UsageError(f"bytes {offset}..{offset + len(out)} are outside the plaintext ({self.size} bytes)")
        for low, high in self._windows(offset, offset + len(out)):
            shifted = None if prefault is None else _shifted(prefault, low - offset)
            self._opening.read_into(low, out[low - offset : high - offset], threads=threads, prefault=shifted)

    def write_to(self, fd: int, *, threads: int | None = None) -> None:
        """The whole plaintext into the regular file ``fd``, at the same offsets, each chunk written by
        the worker that opened it (``os.pwrite``). Nothing else is written to ``fd``; a chunk
        failing to verify stops it with the file part-written, so the caller must show the file to
        nobody until this returns."""
        for low, high in self._windows(0, self.size):
            self._opening.write_to(fd, low, high, threads=threads)

    def _windows(self, offset: int, end: int) -> Iterator[tuple[int, int]]:
        """``[offset, end)`` cut into the ranges to open one after the other: the whole of it from a
        file or memory; from a URL, window by window, each fetched in one ranged read (the final
        token was fetched and opened with the opening) while the next one downloads."""
        if self._ranged is None:
            yield offset, end
            return
        layout, size = self._opening.layout, self.chunk_size
        last = layout.chunk_count - 1
        per_window = max(1, _WINDOW // layout.token_size)
        index = offset // size
        while True:
            stop = min(index + per_window, last, -(-end // size))  # tokens fetched now: [index, stop)
            low, high = max(offset, index * size), min(end, stop * size) if stop > index else end
            if stop > index:
                self._ranged.fetch(self._at(index), self._at(stop))
                if high < end and stop < last:
                    following = min(stop + per_window, last)
                    self._ranged.fetch_ahead(self._at(stop), self._at(following) - self._at(stop))
            yield low, high
            if high >= end:
                return
            index = stop

    def reader(self) -> IO[bytes]:
        """A seekable binary file of the plaintext (each read opens the chunks it spans)."""
        return io.BufferedReader(_File(self), buffer_size=self.chunk_size)

    def _at(self, index: int) -> int:
        """Where token ``index`` starts in the object."""
        return self._payload_start + self._opening.layout.token_offset(index)

    def close(self) -> None:
        for resource in (self._ranged, self._closing):
            if resource is not None:
                resource.close()
        self._ranged = self._closing = None

    def __enter__(self) -> PlaintextAt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shifted(prefault: Prefault, by: int) -> Prefault:
    return lambda low, high: prefault(low + by, high + by)


class _File(Seekable, io.RawIOBase):
    def __init__(self, plain: PlaintextAt) -> None:
        super().__init__()
        self._plain, self._position = plain, 0

    def _extent(self) -> int:
        return self._plain.size

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as raw, raw.cast("B") as view:
            count = max(0, min(len(view), self._plain.size - self._position))
            self._plain.read_into(self._position, view[:count])
        self._position += count
        return count


def open_at(
    source: Any,
    identities: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> PlaintextAt:
    """Open ``source`` (a path, a URL, the sealed bytes or a binary file object) for reads at
    offsets. A local file is read by each worker with ``pread``; a URL in ranged reads; a file
    object that cannot seek is read into memory first."""
    refuse_options_without_url(storage_options, source)
    if isinstance(source, (str, os.PathLike)):
        located = locate(source, storage_options, sealed=True)
        if not isinstance(located, LOCAL):
            return _open_ranged(located.ranged_source(), identities, signed_by)
        f = open(located, "rb")
        try:
            unlocked = read_and_unlock(f, identities, signed_by)
            fd = f.fileno()
            opening = positional_opening(unlocked, FileSource(fd, unlocked.size), os.fstat(fd).st_size - unlocked.size)
            return PlaintextAt(unlocked, opening, closing=f)
        except BaseException:
            f.close()
            raise
    if not isinstance(source, (bytes, bytearray, memoryview)) and not seekable(source):
        source = source.read()  # a pipe: its bytes are needed at offsets
    if isinstance(source, (bytes, bytearray, memoryview)):
        sealed = memoryview(source).cast("B")
        unlocked = unlock_bytes(sealed, identities, signed_by)
        return PlaintextAt(unlocked, open_memory(unlocked, sealed))
    start = source.tell()
    unlocked = read_and_unlock(source, identities, signed_by)
    payload_start = start + unlocked.size
    payload_len = source.seek(0, os.SEEK_END) - payload_start
    return PlaintextAt(unlocked, positional_opening(unlocked, StreamSource(source, payload_start), payload_len))


def _open_ranged(
    ranged: RangedSource, identities: IdentityLike | Iterable[IdentityLike], signed_by: SignedBy | None
) -> PlaintextAt:
    from ._ranged import hold_header  # fsspec is installed: this is a URL

    try:
        hold_header(ranged)
        unlocked = read_and_unlock(ranged, identities, signed_by)  # type: ignore[arg-type]
        source = StreamSource(ranged, unlocked.size)  # type: ignore[arg-type]
        opening = positional_opening(unlocked, source, ranged.size - unlocked.size)
        return PlaintextAt(unlocked, opening, ranged=ranged)
    except BaseException:
        ranged.close()
        raise
