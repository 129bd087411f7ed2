"""The public functions: seal and open bytes and streams, change recipients. Each is a thin wrapper
around the one pipeline (``_pipeline``): recipients -> header -> chunk stream -> bytes, and back."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Mapping
from typing import IO, Any, NamedTuple

from . import _pipeline
from ._header import new_header, read_and_unlock, rewrapped_header, unlock_bytes
from ._stream import Progress
from .errors import UsageError
from .inspection import SignerInfo
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike
from .signing import SignedBy, Signer, SigningKey

__all__ = [
    "Opened",
    "StreamResult",
    "open",
    "open_stream",
    "open_with_metadata",
    "rewrap",
    "rewrap_stream",
    "seal",
    "seal_stream",
]


class Opened(NamedTuple):
    """What :func:`open_with_metadata` returns: the plaintext, its authenticated metadata, and who
    signed the file (``None``: unsigned)."""

    plaintext: bytes
    metadata: dict[str, Any]
    signer: SignerInfo | None = None


class StreamResult(NamedTuple):
    """What the stream and file functions return: the plaintext length, the metadata (as sealed, or
    as verified when opening) and the signer (``None``: unsigned)."""

    plaintext_len: int
    metadata: dict[str, Any]
    signer: SignerInfo | None = None


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
    size is unchanged and no view of it is left: one output buffer, no final copy.
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
    sign_with: Signer | SigningKey | None = None,
    threads: int | None = None,
) -> bytes:
    """Seal ``data`` for one or more recipients (public keys). Returns the envelope file's bytes.

    ``metadata`` is stored in plaintext, authenticated: anyone can read it, nobody can alter it.
    ``sign_with`` (a signing key or a :class:`~envelope.signing.Signer`) signs the file: openers
    can then check who sealed it (spec/FORMAT.md section 8).
    """
    view = _bytes_view(data, "data")
    head = new_header(recipients, metadata, chunk_size, sign_with)
    holder, out = _exact_bytes(_pipeline.sealed_length(head, len(view)))
    with out:
        _pipeline.seal_memory(head, view, out, threads)
    return holder.getvalue()


def open_with_metadata(
    sealed: bytes | bytearray | memoryview,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    threads: int | None = None,
) -> Opened:
    """Open an envelope file held in memory; return the plaintext, its verified metadata and its
    verified signer. Nothing is returned unless every byte (and the signature) verified.

    ``signed_by``: the public keys (or key files) of the signers you accept; the file must be
    signed by one of them (:class:`~envelope.SignerError` otherwise). Without it a signed file still
    opens only if its signature verifies, and ``signer`` says who signed it.
    """
    view = _bytes_view(sealed, "sealed")
    unlocked = unlock_bytes(view, private_key, signed_by)
    opening = _pipeline.open_memory(unlocked, view)
    holder, out = _exact_bytes(opening.plaintext_len)
    with out:
        opening.open_into(out, threads=threads)
    return Opened(holder.getvalue(), unlocked.metadata, unlocked.signer())


def open(  # noqa: A001
    sealed: bytes | bytearray | memoryview,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    threads: int | None = None,
) -> bytes:
    """Open an envelope file held in memory and return the plaintext, once all of it (and its
    signature) verified. ``signed_by`` as for :func:`open_with_metadata`."""
    return open_with_metadata(sealed, private_key, signed_by=signed_by, threads=threads).plaintext


# --- streams -------------------------------------------------------------------------------


def seal_stream(
    src: IO[bytes],
    dst: IO[bytes],
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sign_with: Signer | SigningKey | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> StreamResult:
    """Seal everything readable from ``src`` into ``dst``, in constant memory (a signed file keeps
    32 bytes per chunk until its footer is written).

    ``progress``, if given, is called with the number of plaintext bytes of each chunk processed.
    """
    head = new_header(recipients, metadata, chunk_size, sign_with)
    return StreamResult(*_pipeline.seal_to(head, src, dst, progress=progress, threads=threads))


def open_stream(
    src: IO[bytes],
    dst: IO[bytes],
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> StreamResult:
    """Open an envelope stream from ``src`` into ``dst`` in constant memory; return the plaintext
    length, the verified metadata and the verified signer.

    Each chunk is written once it verified, so if the file is damaged (or, signed, its signature
    does not verify) part of the plaintext may already be in ``dst`` when
    :class:`AuthenticationError` is raised. Use :func:`open_file` for an all-or-nothing output file.
    ``signed_by`` as for :func:`open_with_metadata`: an unsigned file or another signer is refused
    before anything is read past the header.
    """
    unlocked = read_and_unlock(src, private_key, signed_by)
    return StreamResult(*_pipeline.open_to(unlocked, src, dst, progress=progress, threads=threads))


# --- changing recipients (section 9) -------------------------------------------------------


def rewrap_stream(
    src: IO[bytes],
    dst: IO[bytes],
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    add: RecipientLike | Iterable[RecipientLike] = (),
    remove: Iterable[bytes | str] = (),
) -> None:
    """Copy an envelope stream with recipients added or removed. Only the header changes; the
    payload bytes are copied unchanged (section 9). ``remove`` takes key ids (32 bytes, or 64 hex
    digits as ``envelope-info`` shows them)."""
    unlocked = read_and_unlock(src, private_key)
    dst.write(rewrapped_header(unlocked, add, remove))
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
