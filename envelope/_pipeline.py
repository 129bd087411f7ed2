"""The one path every public function takes: a header (``_header``), then the payload through the
chunk pipeline (``_stream``), with the I/O chosen for the source and destination at hand.

A source or destination the SDK opened itself on a regular file gets positional I/O (each worker
reads its own chunk and writes its own token or plaintext); anything else is read or written in
order on the calling thread. Memory gets in-place views.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from typing import IO, Any, NamedTuple

from ._header import NewHeader, UnlockedHeader
from ._layout import PayloadLayout, sealed_payload_len, token_len
from ._stream import (
    BufferTokenSink,
    ChunkOpener,
    ChunkSealer,
    FileSource,
    FileTokenSink,
    MemorySource,
    PayloadSealer,
    PayloadSource,
    PositionalOpening,
    Progress,
    StreamSource,
    TokenSink,
    open_sequential,
    positional_fd,
    pwrite_all,
    seal_file_chunks,
    seal_stream_chunks,
)
from .inspection import SignerInfo, signer_info

__all__ = [
    "Done",
    "open_memory",
    "open_to",
    "positional_opening",
    "seal_memory",
    "seal_to",
    "sealed_length",
    "seekable",
    "stream_chunks",
]


class Done(NamedTuple):
    """What a sealing or opening pass over a whole payload reports."""

    plaintext_len: int
    metadata: dict[str, Any]
    signer: SignerInfo | None


def sealed_length(head: NewHeader, plaintext_len: int) -> int:
    return len(head.encoded) + sealed_payload_len(head.chunk_size, plaintext_len, head.signature_len)


def _sealer(head: NewHeader, sink: TokenSink, threads: int | None, **options: Any) -> PayloadSealer:
    sealer = ChunkSealer(head.data_key, head.chunk_size)
    return PayloadSealer(sealer, sink, threads=threads, keep_tags=head.signer is not None, **options)


def _done(head: NewHeader, plaintext_len: int) -> Done:
    return Done(plaintext_len, head.metadata, signer_info(head.header, verified=True))


def seal_memory(head: NewHeader, data: memoryview, out: memoryview, threads: int | None) -> Done:
    """Seal ``data`` into ``out`` (exactly :func:`sealed_length` bytes): header, then every token
    sealed by the workers straight into its place, then a signed file's footer."""
    start = len(head.encoded)
    out[:start] = head.encoded
    size = head.chunk_size
    full = len(data) // size
    sink = BufferTokenSink(out[start:], token_len(size))
    with _sealer(head, sink, threads, chunks_hint=full + 1) as pipeline:
        for index in range(full + 1):
            pipeline.submit_view(data[index * size : (index + 1) * size], index == full)
        pipeline.finish()
        if pipeline.tags is not None:
            footer = head.footer(pipeline.tags)
            out[len(out) - len(footer) :] = footer
    return _done(head, len(data))


def seal_to(
    head: NewHeader,
    src: IO[bytes],
    dst: IO[bytes],
    *,
    own_files: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> Done:
    """Write ``head`` and then the tokens of everything readable from ``src`` into ``dst``.

    ``own_files``: the SDK opened both files itself (a path helper), so positional I/O is allowed
    where they are regular files; a caller's file objects are always read and written in order.
    """
    dst.write(head.encoded)
    size = head.chunk_size
    fd_in = positional_fd(src) if own_files else None
    fd_out = positional_fd(dst) if own_files else None
    sink = TokenSink(dst.write)
    payload_start = 0
    if fd_out is not None:
        dst.flush()
        payload_start = dst.tell()
        sink = FileTokenSink(fd_out, payload_start, token_len(size))
    hint = os.fstat(fd_in).st_size // size + 1 if fd_in is not None else None
    with _sealer(head, sink, threads, progress=progress, chunks_hint=hint) as pipeline:
        if fd_in is not None:
            start = src.tell()
            sealed = seal_file_chunks(fd_in, start, os.fstat(fd_in).st_size - start, pipeline)
        else:
            sealed = seal_stream_chunks(src, pipeline)
        if pipeline.tags is not None:
            footer = head.footer(pipeline.tags)
            if fd_out is None:
                dst.write(footer)
            else:
                tokens_len = sealed_payload_len(size, sealed.plaintext_len)
                pwrite_all(fd_out, memoryview(footer), payload_start + tokens_len)
    return _done(head, sealed.plaintext_len)


def positional_opening(unlocked: UnlockedHeader, source: PayloadSource, payload_len: int) -> PositionalOpening:
    """The opening of a payload read at offsets; a signed file's signature is checked first."""
    layout = PayloadLayout(unlocked.header.chunk_size, payload_len, unlocked.signature_len)
    opener = ChunkOpener(unlocked.data_key, layout.chunk_size)
    check = unlocked.check_signature if layout.signed else None
    return PositionalOpening(layout, source, opener, check_signature=check)


def open_memory(unlocked: UnlockedHeader, sealed: memoryview) -> PositionalOpening:
    """The opening of a file held in memory; ``open_into`` then decrypts each chunk in place."""
    return positional_opening(unlocked, MemorySource(sealed[unlocked.size :]), len(sealed) - unlocked.size)


def open_to(
    unlocked: UnlockedHeader,
    src: IO[bytes],
    dst: IO[bytes] | None,
    *,
    own_files: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> Done:
    """Open the payload that follows the header ``unlocked`` in ``src`` into ``dst`` (``None``:
    verify only). Each chunk reaches ``dst`` only once it verified.

    ``own_files`` as for :func:`seal_to`. With positional I/O the final token is opened first and
    chunks are written at their offsets in any order: only for destinations that nobody sees
    before the whole payload verified (atomic outputs).
    """
    fd_in = positional_fd(src) if own_files else None
    if fd_in is not None:
        start = src.tell()
        opening = positional_opening(unlocked, FileSource(fd_in, start), os.fstat(fd_in).st_size - start)
        layout = opening.layout
        fd_out = positional_fd(dst) if own_files and dst is not None else None
        place = None
        if fd_out is not None:
            dst_start = dst.tell() if dst is not None else 0

            def place(index: int, data: memoryview) -> None:
                pwrite_all(fd_out, data, dst_start + index * layout.chunk_size)

        chunks = opening.chunks(threads=threads, place=place)
        write = None if place is not None or dst is None else dst.write
    else:
        chunks = stream_chunks(unlocked, src, threads=threads)
        write = None if dst is None else dst.write
    total = 0
    with contextlib.closing(chunks):
        for data in chunks:
            if write is not None:
                write(data)
            total += len(data)
            if progress is not None:
                progress(len(data))
    return Done(total, unlocked.metadata, unlocked.signer())


def stream_chunks(
    unlocked: UnlockedHeader, src: IO[bytes], *, threads: int | None
) -> Generator[memoryview, None, None]:
    """The verified chunks of the payload that follows ``unlocked`` in a caller's stream, in order.

    An unsigned file is read in one pass, each chunk handed out once it verified (section 7.4). A
    signed file whose source can seek has its footer read and its signature checked first; a signed
    file read from a pipe with the signers pinned (``signed_by``) has its ciphertext spooled to an
    unnamed temporary file first, so that no plaintext is handed out before the signature verified.
    """
    if unlocked.signature_len and seekable(src):
        start = src.tell()
        opening = positional_opening(unlocked, StreamSource(src, start), src.seek(0, os.SEEK_END) - start)
        yield from opening.chunks(threads=threads)
    elif unlocked.signature_len and unlocked.pinned:
        with _spooled(src) as spool:
            fd = spool.fileno()
            yield from positional_opening(unlocked, FileSource(fd, 0), os.fstat(fd).st_size).chunks(threads=threads)
    else:
        opener = ChunkOpener(unlocked.data_key, unlocked.header.chunk_size)
        check = unlocked.check_signature if unlocked.signature_len else None
        yield from open_sequential(
            src, opener, threads=threads, signature_len=unlocked.signature_len, check_signature=check
        )


@contextlib.contextmanager
def _spooled(src: IO[bytes]) -> Iterator[IO[bytes]]:
    """The rest of ``src`` (ciphertext) in a temporary file that has no name (on Linux; elsewhere it
    is unlinked at once) and is gone when closed."""
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(src, spool, 1 << 20)
        spool.flush()
        yield spool


def seekable(src: IO[bytes]) -> bool:
    """Whether a caller's stream can seek (a pipe cannot; some wrappers say so by raising)."""
    try:
        if not src.seekable():
            return False
        src.tell()
    except (AttributeError, OSError, ValueError):
        return False
    return True
