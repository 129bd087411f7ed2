"""Path-based helpers with atomic outputs: the data go to a temporary (on Linux, unnamed) file in
the destination folder, are fsynced, and only then get their name. On any failure nothing is left
behind, no partial or unverified output, and the source is never modified.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from . import _pipeline
from ._header import new_header, read_and_unlock
from ._stream import Progress
from .atomic import PathLike, atomic_output
from .core import StreamResult, rewrap_stream
from .errors import UsageError
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike
from .signing import SignedBy, Signer, SigningKey

__all__ = ["PathLike", "atomic_output", "open_file", "rewrap_file", "seal_file", "verify_file"]


def _refuse_same_file(src: PathLike, dst: PathLike) -> None:
    with contextlib.suppress(OSError):
        if os.path.samefile(src, dst):
            raise UsageError("the output file is the input file")


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
) -> StreamResult:
    """Seal the file ``src`` into ``dst`` (atomically). Returns the plaintext length, the metadata
    and the signer (``sign_with``, as for :func:`~envelope.seal`)."""
    _refuse_same_file(src, dst)
    head = new_header(recipients, metadata, chunk_size, sign_with)
    with open(src, "rb") as source, atomic_output(dst, overwrite=overwrite) as out:
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
) -> StreamResult:
    """Open the envelope file ``src`` into ``dst`` (mode 0600). ``dst`` appears only once every
    chunk (and a signed file's signature) verified; on any failure nothing is left behind. Returns
    the plaintext length, the verified metadata and the verified signer; ``signed_by`` as for
    :func:`~envelope.open_with_metadata`."""
    _refuse_same_file(src, dst)
    with open(src, "rb") as source:
        unlocked = read_and_unlock(source, private_key, signed_by)
        with atomic_output(dst, overwrite=overwrite, private=True) as out:
            done = _pipeline.open_to(unlocked, source, out, own_files=True, progress=progress, threads=threads)
    return StreamResult(*done)


def verify_file(
    src: PathLike,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> StreamResult:
    """Authenticate all of ``src`` (and its signature) without writing any plaintext; return the
    plaintext length, the verified metadata and the verified signer."""
    with open(src, "rb") as source:
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
) -> None:
    """Write ``src`` with recipients changed to ``dst``; the payload is copied unchanged, and so is
    the file mode. ``dst`` may be ``src`` itself when ``overwrite`` is true (replaced atomically)."""
    mode = os.stat(src).st_mode & 0o7777
    with open(src, "rb") as source, atomic_output(dst, overwrite=overwrite, mode=mode) as out:
        rewrap_stream(source, out, private_key, add=add, remove=remove)
