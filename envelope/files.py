"""Path-based helpers with atomic outputs: a temporary file in the destination folder, fsync, then
a rename. On any failure the temporary file is removed, so no partial or unverified output is left
behind, and the source is never modified.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, Union

from .core import DEFAULT_CHUNK_SIZE, open_stream, rewrap_stream, seal_stream
from .errors import UsageError
from .recipients import IdentityLike, RecipientLike
from .stream import Progress

__all__ = ["PathLike", "atomic_output", "open_file", "rewrap_file", "seal_file", "verify_file"]

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_output(path: PathLike, *, overwrite: bool = False, private: bool = False) -> Iterator[IO[bytes]]:
    """Yield a file object whose content appears at ``path`` only if the block completes.

    ``private`` keeps the file at mode 0600 (for plaintext); otherwise it gets the usual mode
    (0666 less the umask). Without ``overwrite`` an existing ``path`` raises FileExistsError.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    try:
        if not private:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)  # fails, atomically, if path appeared meanwhile
            except FileExistsError:
                raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)") from None
            except OSError:  # a file system without hard links
                if os.path.lexists(path):
                    raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)") from None
                os.replace(temp, path)
            else:
                os.unlink(temp)
        _fsync_directory(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _fsync_directory(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
    """Write ``src`` with recipients changed to ``dst``; the payload is copied unchanged.
    ``dst`` may be ``src`` itself when ``overwrite`` is true (the file is replaced atomically)."""
    with open(src, "rb") as source, atomic_output(dst, overwrite=overwrite) as out:
        rewrap_stream(source, out, private_key, add=add, remove=remove)
