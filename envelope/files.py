"""Path-based helpers with atomic outputs: the data go to a temporary (on Linux, unnamed) file in
the destination folder, are fsynced, and only then get their name. On any failure nothing is left
behind, no partial or unverified output, and the source is never modified.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, Union

from . import _pipeline
from ._header import new_header, read_and_unlock
from ._stream import Progress
from .core import StreamResult, rewrap_stream
from .errors import UsageError
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike
from .signing import SignedBy, Signer, SigningKey

__all__ = ["PathLike", "atomic_output", "open_file", "rewrap_file", "seal_file", "verify_file"]

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_output(
    path: PathLike, *, overwrite: bool = False, private: bool = False, mode: int | None = None
) -> Iterator[IO[bytes]]:
    """Yield a file object whose content appears at ``path`` only if the block completes.

    The file gets ``mode`` if given, else 0600 when ``private`` (for plaintext), else the usual
    0666 less the umask. Without ``overwrite`` an existing ``path`` raises FileExistsError.

    On Linux the data go to an unnamed file (``O_TMPFILE``) in the destination folder, linked into
    place only after the block completed and the data were fsynced: a process killed at any point,
    even by SIGKILL, leaves nothing behind. Where that is not available, a hidden
    ``.NAME.*.partial`` file is used and removed on any failure (but not after SIGKILL).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    final_mode = mode if mode is not None else 0o600 if private else 0o666 & ~_umask()
    fd = _open_unnamed(directory)
    temp = None
    if fd is None:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    try:
        os.fchmod(fd, final_mode)
        with os.fdopen(fd, "wb") as out, _background_writeback(out.fileno()):
            yield out
            out.flush()
            os.fsync(out.fileno())
            if temp is None and not overwrite:
                _link_fd(out.fileno(), path)  # fails, atomically, if path appeared meanwhile
            elif temp is None:  # a hidden name first, then the rename that replaces path
                temp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}.partial")
                _link_fd(out.fileno(), temp)
        if temp is not None:
            _move_into_place(temp, path, overwrite)
        _fsync_directory(directory)
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise


@contextlib.contextmanager
def _background_writeback(fd: int, interval: float = 0.25) -> Iterator[None]:
    """While a large output is written, push it to the disk in the background (fdatasync on a
    thread, every ``interval`` s), so the final fsync waits for the tail only instead of the whole
    file: writing to disk overlaps with the encryption instead of following it."""
    import threading

    done = threading.Event()

    def flush() -> None:
        while not done.wait(interval):
            with contextlib.suppress(OSError):
                os.fdatasync(fd)

    flusher = threading.Thread(target=flush, name="envelope-writeback", daemon=True)
    flusher.start()
    try:
        yield
    finally:
        done.set()
        flusher.join()


def _open_unnamed(directory: str) -> int | None:
    """An unnamed, writable file in ``directory`` (Linux O_TMPFILE), or None where unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError:  # the file system does not support it (EOPNOTSUPP, EISDIR, ...)
        return None


def _link_fd(fd: int, path: str) -> None:
    """Name an unnamed (O_TMPFILE) file: linkat through /proc/self/fd with AT_SYMLINK_FOLLOW."""
    # os.link only calls linkat (and so honours follow_symlinks) when given a directory fd.
    proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
    except FileExistsError:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)") from None
    finally:
        os.close(proc)


def _move_into_place(temp: str, path: str, overwrite: bool) -> None:
    """Give the finished, named temporary file its final name, atomically."""
    if overwrite:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # fails, atomically, if path appeared meanwhile
    except FileExistsError:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)") from None
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)") from None
        os.replace(temp, path)
        return
    os.unlink(temp)


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, briefly, for every thread)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o077)  # fallback where /proc is missing: restore at once
    os.umask(current)
    return current


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
