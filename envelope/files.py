"""Path-based helpers with atomic outputs: the data go to a temporary (on Linux, unnamed) file in
the destination folder, are fsynced, and only then get their name. On any failure nothing is left
behind, no partial or unverified output, and the source is never modified.

Any path may be a URL instead (``s3://bucket/model.env``; :func:`is_url` says which strings are),
with fsspec installed: a sealed object is read through the verified ranged reader of
:mod:`envelope.fsspec`, and an output is uploaded and appears only once complete (docs/REMOTE.md,
"URLs in the SDK"). ``storage_options`` configure the filesystems of the URL arguments, as
``fsspec.open`` takes them; they apply to each URL argument of the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from . import _pipeline
from ._header import check_signer, new_header, read_and_unlock
from ._layout import CHUNK_FAILED, FOOTER_TRUNCATED, TAG_LEN, TAGS_DIFFER, PayloadLayout
from ._stream import Progress, timestamp_field
from ._urls import LOCAL, Location, is_url, locate, refuse_options_without_url
from .atomic import PathLike, atomic_output
from .core import StreamResult, rewrap_stream
from .errors import AuthenticationError, SignatureError, SignerError, UsageError
from .inspection import Inspection, SignerInfo, read_inspection, signer_info
from .limits import DEFAULT_CHUNK_SIZE, FOOTER_TAG_BLOCK
from .recipients import IdentityLike, RecipientLike
from .signing import SignedBy, Signer, SigningKey, to_be_signed, verify

if TYPE_CHECKING:
    from .fsspec import SealedObjectReader

__all__ = [
    "PathLike",
    "atomic_output",
    "check_signature",
    "inspect_signed",
    "is_url",
    "open_file",
    "rewrap_file",
    "seal_file",
    "verify_file",
]


def _refuse_same_file(src: Location, dst: Location) -> None:
    if not isinstance(src, LOCAL):
        if src.same_object(dst):
            raise UsageError("the output object is the input object")
        return
    if not isinstance(dst, LOCAL):
        return
    with contextlib.suppress(OSError):
        if os.path.samefile(src, dst):
            raise UsageError("the output file is the input file")


@contextlib.contextmanager
def _reading(location: Location) -> Iterator[IO[bytes]]:
    if isinstance(location, LOCAL):
        with open(location, "rb") as local:
            yield local
    else:
        with location.reading() as remote:
            yield cast(IO[bytes], remote)


def _writing(
    location: Location, *, overwrite: bool, private: bool = False, mode: int | None = None
) -> contextlib.AbstractContextManager[IO[bytes]]:
    if isinstance(location, LOCAL):
        return atomic_output(location, overwrite=overwrite, private=private, mode=mode)
    return location.writing(overwrite=overwrite, private=private)


def _read_verified(reader: SealedObjectReader, out: IO[bytes] | None, progress: Progress | None) -> _pipeline.Done:
    """Read a remote sealed object through its verified reader, one chunk per read (each chunk is
    verified before a byte of it is returned), into ``out`` (``None``: verify only)."""
    total = 0
    while data := reader.read(reader.chunk_size):
        if out is not None:
            out.write(data)
        total += len(data)
        if progress is not None:
            progress(len(data))
    return _pipeline.Done(total, reader.metadata, reader.signer)


def seal_file(
    src: PathLike,
    dst: PathLike,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sign_with: Signer | SigningKey | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> StreamResult:
    """Seal the file ``src`` into ``dst`` (atomically). Returns the plaintext length, the metadata
    and the signer (``sign_with``, as for :func:`~envelope.seal`). Either may be a URL."""
    refuse_options_without_url(storage_options, src, dst)
    source_at = locate(src, storage_options, sealed=False)
    target_at = locate(dst, storage_options, sealed=True)
    _refuse_same_file(source_at, target_at)
    head = new_header(recipients, metadata, chunk_size, sign_with)
    with _reading(source_at) as source, _writing(target_at, overwrite=overwrite) as out:
        done = _pipeline.seal_to(head, source, out, own_files=True, progress=progress, threads=threads)
    return StreamResult(*done)


def open_file(
    src: PathLike,
    dst: PathLike,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> StreamResult:
    """Open the envelope file ``src`` into ``dst`` (mode 0600). ``dst`` appears only once every
    chunk (and a signed file's signature) verified; on any failure nothing is left behind. Returns
    the plaintext length, the verified metadata and the verified signer; ``signed_by`` as for
    :func:`~envelope.open_with_metadata`. Either may be a URL: a URL ``dst`` puts the plaintext
    in that store."""
    refuse_options_without_url(storage_options, src, dst)
    source_at = locate(src, storage_options, sealed=True)
    target_at = locate(dst, storage_options, sealed=False)
    _refuse_same_file(source_at, target_at)
    if not isinstance(source_at, LOCAL):
        with (
            source_at.sealed_reader(private_key, signed_by) as reader,
            _writing(target_at, overwrite=overwrite, private=True) as out,
        ):
            done = _read_verified(reader, out, progress)
        return StreamResult(*done)
    with open(source_at, "rb") as source:
        unlocked = read_and_unlock(source, private_key, signed_by)
        with _writing(target_at, overwrite=overwrite, private=True) as out:
            done = _pipeline.open_to(unlocked, source, out, own_files=True, progress=progress, threads=threads)
    return StreamResult(*done)


def verify_file(
    src: PathLike,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> StreamResult:
    """Authenticate all of ``src`` (and its signature) without writing any plaintext; return the
    plaintext length, the verified metadata and the verified signer. ``src`` may be a URL."""
    refuse_options_without_url(storage_options, src)
    source_at = locate(src, storage_options, sealed=True)
    if not isinstance(source_at, LOCAL):
        with source_at.sealed_reader(private_key, signed_by) as reader:
            done = _read_verified(reader, None, progress)
        return StreamResult(*done)
    with open(source_at, "rb") as source:
        unlocked = read_and_unlock(source, private_key, signed_by)
        done = _pipeline.open_to(unlocked, source, None, own_files=True, progress=progress, threads=threads)
    return StreamResult(*done)


def rewrap_file(
    src: PathLike,
    dst: PathLike,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    add: RecipientLike | Iterable[RecipientLike] = (),
    remove: Iterable[bytes | str] = (),
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write ``src`` with recipients changed to ``dst``; the payload is copied unchanged, and so is
    the file mode. ``dst`` may be ``src`` itself when ``overwrite`` is true (replaced atomically).
    Either may be a URL (an object has no mode: a local copy of one gets the default)."""
    refuse_options_without_url(storage_options, src, dst)
    source_at = locate(src, storage_options, sealed=True)
    target_at = locate(dst, storage_options, sealed=True)
    mode = os.stat(source_at).st_mode & 0o7777 if isinstance(source_at, LOCAL) else None
    with _reading(source_at) as source, _writing(target_at, overwrite=overwrite, mode=mode) as out:
        rewrap_stream(source, out, private_key, add=add, remove=remove)


# --- checking a signature without any private key (spec/FORMAT.md 8.3) ---------------------------


def check_signature(
    source: Any, *, signed_by: SignedBy | None = None, storage_options: Mapping[str, Any] | None = None
) -> SignerInfo:
    """Check a file's signature without a private key: the footer's tags are the tokens' tags and
    the signer signed them and every header field but the recipients (spec/FORMAT.md 8.3).

    ``source``: a path, a URL (``s3://...``, with fsspec; ``storage_options`` as ``fsspec.open``
    takes them), the file's bytes, or a seekable binary file object. Returns the verified
    signer; raises :class:`~envelope.SignerError` for an unsigned file (or one signed by a key not
    in ``signed_by``) and :class:`~envelope.SignatureError` when the check fails. Without the data
    key this cannot tell whether the token *bodies* are intact (their HMAC needs it): opening the
    file checks that too. Memory stays flat however long the file: the footer is read in blocks.
    """
    signer = inspect_signed(source, signed_by=signed_by, storage_options=storage_options).signer
    assert signer is not None
    return signer


def inspect_signed(
    source: Any, *, signed_by: SignedBy | None = None, storage_options: Mapping[str, Any] | None = None
) -> Inspection:
    """:func:`envelope.inspect` and :func:`check_signature` in one read: what the header says, as
    the signer signed it. The header shown is the one whose signature was checked, so a source that
    changes between two reads cannot pass its own header off as signed. Its ``signer`` is verified,
    and its metadata is the signer's; the recipient list is not covered by any signature."""
    refuse_options_without_url(storage_options, source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        located = locate(source, storage_options, sealed=True)
        # A remote object: every token's first and last bytes are read, in order, through windows
        # of 16 MiB, the next fetched while this one is checked.
        with _reading(located) as f:
            return inspect_signed(f, signed_by=signed_by)
    inspection, header, start = read_inspection(source)
    check_signer(header, signed_by)
    if header.signer is None:
        raise SignerError("the file is not signed")
    if start is None:
        raise UsageError("checking a signature without a key reads the end of the file first: give a seekable source")
    payload_start = start + inspection.header_size
    layout = PayloadLayout(header.chunk_size, source.seek(0, os.SEEK_END) - payload_start, header.signer.signature_len)

    def read_at(offset: int, size: int) -> bytes:
        source.seek(payload_start + offset)
        data: bytes = source.read(size)
        return data

    tags_digest = hashlib.sha256()
    last = layout.chunk_count - 1
    for first in range(0, layout.chunk_count, FOOTER_TAG_BLOCK):
        count = min(FOOTER_TAG_BLOCK, layout.chunk_count - first)
        tags = read_at(layout.footer_offset + first * TAG_LEN, count * TAG_LEN)
        if len(tags) != count * TAG_LEN:
            raise SignatureError(FOOTER_TRUNCATED)  # the source shrank while being read
        tags_digest.update(tags)
        for index in range(first, first + count):
            at, length = layout.token_offset(index), layout.token_length(index)
            # Check 1 of section 7.4, what can be checked without the data key: version byte and
            # timestamp field (the signature covers the tags, not these).
            if read_at(at, 9) != b"\x80" + timestamp_field(index == last, length):
                raise AuthenticationError(CHUNK_FAILED)  # R19
            if (
                read_at(at + length - TAG_LEN, TAG_LEN)
                != tags[(index - first) * TAG_LEN : (index - first + 1) * TAG_LEN]
            ):
                raise SignatureError(TAGS_DIFFER)  # R27
    signature = read_at(layout.footer_offset + layout.chunk_count * TAG_LEN, layout.signature_len)
    if len(signature) != layout.signature_len:
        raise SignatureError(FOOTER_TRUNCATED)
    message = to_be_signed(header.signed, layout.chunk_count, tags_digest.digest())
    verify(header.signer.alg, header.signer.key, message, signature)
    return dataclasses.replace(inspection, signer=signer_info(header, verified=True))
