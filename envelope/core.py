"""Composition: recipients -> header -> chunk stream -> bytes, and back. The public functions."""

from __future__ import annotations

import io
import shutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from .datakey import DataKey
from .errors import NoMatchingKeyError, UsageError
from .format import (
    HEADER_MAC_LEN,
    MAX_CHUNK_SIZE,
    MAX_HEADER_LEN,
    MIN_CHUNK_SIZE,
    PREFIX_LEN,
    RSA_OAEP_SHA256,
    Header,
    RecipientEntry,
    encode_header,
    encode_metadata,
    encode_prefix,
    read_header,
)
from .layout import PayloadLayout, token_len
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike, as_identities, as_list, as_recipients
from .stream import ChunkOpener, ChunkSealer, Progress, open_chunks, run_parallel, scratch_for, seal_chunks

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Opened",
    "open",
    "open_stream",
    "open_with_metadata",
    "rewrap",
    "rewrap_stream",
    "seal",
    "seal_stream",
]


class Opened(NamedTuple):
    """What :func:`open_with_metadata` returns: the plaintext and its authenticated metadata."""

    plaintext: bytes
    metadata: dict[str, Any]


@dataclass(frozen=True)
class SealedHeader:
    """A header read from a file and verified with a data key."""

    header: Header
    data_key: DataKey
    metadata: dict[str, Any]
    size: int  # prefix + header + MAC: where the payload starts, relative to the file's start


# --- header --------------------------------------------------------------------------------


def build_header(
    entries: Iterable[RecipientEntry], data_key: DataKey, chunk_size: int, meta: bytes, critical: tuple[str, ...] = ()
) -> bytes:
    """Prefix, header and header MAC for these recipient entries (sections 2, 3 and 6)."""
    header = encode_header(Header(chunk_size=chunk_size, recipients=tuple(entries), meta=meta, critical=critical))
    authenticated = encode_prefix(len(header)) + header
    return authenticated + data_key.header_mac(authenticated)


def _wrap_all(recipients: RecipientLike | Iterable[RecipientLike], data_key: DataKey) -> list[RecipientEntry]:
    return [r.wrap(data_key) for r in as_recipients(recipients)]


def unlock(
    authenticated: bytes, header: Header, mac: bytes, identities: IdentityLike | Iterable[IdentityLike]
) -> SealedHeader:
    """Find an identity among the recipients, unwrap the data key and verify the header MAC."""
    for identity in as_identities(identities):
        data_key = identity.unwrap(header.recipients)
        if data_key is not None:
            data_key.verify_header_mac(authenticated, mac)
            return SealedHeader(header, data_key, header.metadata, len(authenticated) + len(mac))
    raise NoMatchingKeyError("none of the given private keys is a recipient of this file")


def read_and_unlock(src: IO[bytes], identities: IdentityLike | Iterable[IdentityLike]) -> SealedHeader:
    return unlock(*read_header(src), identities)


def _check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise UsageError("chunk_size must be an integer")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise UsageError(f"chunk_size must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes, not {chunk_size}")


def _bytes_view(data: object, what: str) -> memoryview:
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise UsageError(f"{what} must be bytes-like, not {type(data).__name__}") from None
    if not view.contiguous:
        raise UsageError(f"{what} must be a contiguous buffer")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _exact_bytes(size: int) -> tuple[io.BytesIO, memoryview]:
    """A writable view over a fresh ``bytes`` object of ``size`` that ``getvalue`` hands back uncopied.

    BytesIO adopts a bytes object it alone references, and returns it from ``getvalue`` while the
    size is unchanged: one output buffer, no final copy.
    """
    holder = io.BytesIO(bytes(size))
    return holder, holder.getbuffer()


# --- one-shot ------------------------------------------------------------------------------


def seal(
    data: bytes | bytearray | memoryview,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    threads: int | None = None,
) -> bytes:
    """Seal ``data`` for one or more recipients (public keys). Returns the envelope file's bytes.

    ``metadata`` is stored in plaintext, authenticated: anyone can read it, nobody can alter it.
    """
    _check_chunk_size(chunk_size)
    view = _bytes_view(data, "data")
    data_key = DataKey.generate()
    head = build_header(_wrap_all(recipients, data_key), data_key, chunk_size, encode_metadata(metadata))
    full, rest = divmod(len(view), chunk_size)
    total = len(head) + full * token_len(chunk_size) + token_len(rest)
    holder, out = _exact_bytes(total)
    with out:
        out[: len(head)] = head
        sealer = ChunkSealer(data_key, chunk_size)
        ivs = [sealer.new_iv() for _ in range(full + 1)]  # drawn in order: output independent of threads
        token_size = token_len(chunk_size)

        def seal_one(index: int) -> None:
            start = len(head) + index * token_size
            chunk = view[index * chunk_size : (index + 1) * chunk_size]
            sealer.seal_into(index, index == full, chunk, out[start:], ivs[index])

        run_parallel(seal_one, full + 1, threads)
    return holder.getvalue()


def open_with_metadata(
    sealed: bytes | bytearray | memoryview,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    threads: int | None = None,
) -> Opened:
    """Open an envelope file held in memory; return the plaintext and its verified metadata."""
    view = _bytes_view(sealed, "sealed")
    # Only the header region is copied to parse it; the payload is read in place.
    unlocked = read_and_unlock(io.BytesIO(view[: PREFIX_LEN + MAX_HEADER_LEN + HEADER_MAC_LEN]), private_key)
    layout = PayloadLayout(unlocked.header.chunk_size, len(view) - unlocked.size)
    payload = view[unlocked.size :]
    opener = ChunkOpener(unlocked.data_key, layout.chunk_size)
    last = layout.chunk_count - 1

    def token(index: int) -> memoryview:
        start = layout.token_offset(index)
        return payload[start : start + layout.token_length(index)]

    final_len = len(opener.open(last, True, token(last)))  # authenticates the end first
    holder, out = _exact_bytes(last * layout.chunk_size + final_len)
    scratch = threading.local()

    def open_one(index: int) -> None:
        this = token(index)
        scratch.buffer = scratch_for(len(this), getattr(scratch, "buffer", bytearray()))
        chunk = opener.open_into(index, index == last, this, scratch.buffer)
        out[index * layout.chunk_size : index * layout.chunk_size + len(chunk)] = chunk

    with out:
        run_parallel(open_one, layout.chunk_count, threads)
    return Opened(holder.getvalue(), unlocked.metadata)


def open(  # noqa: A001
    sealed: bytes | bytearray | memoryview,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    threads: int | None = None,
) -> bytes:
    """Open an envelope file held in memory and return the plaintext, once all of it verified."""
    return open_with_metadata(sealed, private_key, threads=threads).plaintext


# --- streams -------------------------------------------------------------------------------


def seal_stream(
    src: IO[bytes],
    dst: IO[bytes],
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
    threads: int | None = None,
) -> int:
    """Seal everything readable from ``src`` into ``dst``, in constant memory. Returns the plaintext length.

    ``progress``, if given, is called with the number of plaintext bytes of each chunk processed.
    """
    _check_chunk_size(chunk_size)
    data_key = DataKey.generate()
    dst.write(build_header(_wrap_all(recipients, data_key), data_key, chunk_size, encode_metadata(metadata)))
    return seal_chunks(src, dst.write, ChunkSealer(data_key, chunk_size), progress, threads)


def open_stream(
    src: IO[bytes],
    dst: IO[bytes],
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    progress: Progress | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Open an envelope stream from ``src`` into ``dst`` in constant memory; return the metadata.

    Each chunk is written once it verified, so if the file is damaged part of the plaintext may
    already be in ``dst`` when :class:`AuthenticationError` is raised. Use :func:`open_file` for an
    all-or-nothing output file.
    """
    unlocked = read_and_unlock(src, private_key)
    open_chunks(src, dst.write, ChunkOpener(unlocked.data_key, unlocked.header.chunk_size), progress, threads)
    return unlocked.metadata


# --- changing recipients (section 9) -------------------------------------------------------


def _rewrapped_header(
    unlocked: SealedHeader, add: RecipientLike | Iterable[RecipientLike], remove: Iterable[bytes | str]
) -> bytes:
    removed = {_key_id_bytes(k) for k in _listify(remove)}
    kept = [
        e
        for e in unlocked.header.recipients
        if not (e.kid is not None and e.type == RSA_OAEP_SHA256 and e.kid in removed)
    ]
    present = {e.kid for e in unlocked.header.recipients}
    unknown = removed - present
    if unknown:
        raise UsageError(f"not a recipient of this file: {', '.join(sorted(k.hex() for k in unknown))}")
    added = as_recipients(add) if _listify(add) else []
    new_entries = [r.wrap(unlocked.data_key) for r in added]
    kids = {e.kid for e in kept}
    for entry in new_entries:
        if entry.kid in kids:
            raise UsageError(f"already a recipient: {entry.kid.hex() if entry.kid else entry.type}")
        kids.add(entry.kid)
    entries = kept + new_entries
    if not entries:
        raise UsageError("removing every recipient would leave a file nobody can open")
    return build_header(
        entries, unlocked.data_key, unlocked.header.chunk_size, unlocked.header.meta, unlocked.header.critical
    )


def _key_id_bytes(value: bytes | str) -> bytes:
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value.strip().lower().removeprefix("sha256:"))
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw
    raise UsageError("a key id is 32 bytes, or 64 hexadecimal digits")


def _listify(value: object) -> list[Any]:
    return [] if value is None else as_list(value)


def rewrap_stream(
    src: IO[bytes],
    dst: IO[bytes],
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    add: RecipientLike | Iterable[RecipientLike] = (),
    remove: Iterable[bytes | str] = (),
) -> None:
    """Copy an envelope stream with recipients added or removed. Only the header changes; the
    payload bytes are copied unchanged (section 9)."""
    unlocked = read_and_unlock(src, private_key)
    dst.write(_rewrapped_header(unlocked, add, remove))
    shutil.copyfileobj(src, dst, 1 << 20)


def rewrap(
    sealed: bytes | bytearray | memoryview,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    add: RecipientLike | Iterable[RecipientLike] = (),
    remove: Iterable[bytes | str] = (),
) -> bytes:
    """In-memory :func:`rewrap_stream`."""
    out = io.BytesIO()
    rewrap_stream(io.BytesIO(_bytes_view(sealed, "sealed")), out, private_key, add=add, remove=remove)
    return out.getvalue()
