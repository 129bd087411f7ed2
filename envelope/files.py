"""Path-based helpers with atomic outputs: the data go to a temporary (on Linux, unnamed) file in
the destination folder, are fsynced, and only then get their name. On any failure nothing is left
behind, no partial or unverified output, and the source is never modified.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .atomic import PathLike, atomic_output
from .core import DEFAULT_CHUNK_SIZE, open_stream, rewrap_stream, seal_stream
from .errors import UsageError
from .recipients import IdentityLike, RecipientLike
from .stream import Progress

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
    overwrite: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> int:
    """Seal the file ``src`` into ``dst`` (atomically). Returns the plaintext length."""
    _refuse_same_file(src, dst)
    with open(src, "rb") as source, atomic_output(dst, overwrite=overwrite) as out:
        return seal_stream(
            source, out, recipients, metadata=metadata, chunk_size=chunk_size, progress=progress, threads=threads
        )


def open_file(
    src: PathLike,
    dst: PathLike,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Open the envelope file ``src`` into ``dst`` (mode 0600). ``dst`` appears only once every
    chunk verified; on any failure nothing is left behind. Returns the verified metadata."""
    _refuse_same_file(src, dst)
    with open(src, "rb") as source, atomic_output(dst, overwrite=overwrite, private=True) as out:
        return open_stream(source, out, private_key, progress=progress, threads=threads)


class _Discard:
    def write(self, data: Any) -> int:
        return len(data)


def verify_file(
    src: PathLike, private_key: IdentityLike | Iterable[IdentityLike], *, progress: Progress | None = None
) -> dict[str, Any]:
    """Authenticate all of ``src`` without writing any plaintext; return the verified metadata."""
    with open(src, "rb") as source:
        return open_stream(source, _Discard(), private_key, progress=progress)  # type: ignore[arg-type]


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
