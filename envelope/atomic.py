"""Outputs that appear whole or not at all: :func:`atomic_output`.

The data go to a temporary (on Linux, unnamed) file in the destination folder, are fsynced, and
only then get their name. On any failure nothing is left behind, no partial or unverified output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Union

from .errors import OutputExistsError

__all__ = ["PathLike", "atomic_output"]

PathLike = Union[str, "os.PathLike[str]"]

_WRITEBACK_INTERVAL_S = 0.25
_PROC_FD = "/proc/self/fd"  # where an unnamed (O_TMPFILE) file can be linked from
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
# Paths that name one of this process's descriptors rather than a file (bash treats them alike).
_DESCRIPTOR_PATH = re.compile(
    r"/dev/(?:std(?P<std>out|err)|fd/(?P<fd>\d+))|/proc/(?P<pid>self|thread-self|\d+)/fd/(?P<n>\d+)"
)


@contextlib.contextmanager
def atomic_output(
    path: PathLike, *, overwrite: bool = False, private: bool = False, mode: int | None = None
) -> Iterator[IO[bytes]]:
    """Yield a file object whose content appears at ``path`` only if the block completes.

    The file gets ``mode`` if given, else 0600 when ``private`` (for plaintext), else the usual
    0666 less the umask. Without ``overwrite`` an existing ``path`` raises
    :class:`envelope.OutputExistsError`.

    On Linux the data go to an unnamed file (``O_TMPFILE``) in the destination folder, linked into
    place only after the block completed and the data were fsynced (a write-back error seen at any
    time fails the block, naming ``path``): a process killed at any point,
    even by SIGKILL, leaves nothing behind. Where that is not available, a hidden
    ``.NAME.*.partial`` file is used and removed on any failure (but not after SIGKILL).
    """
    path = os.fspath(path)
    stream = _open_stream(path)
    if stream is not None:
        with os.fdopen(stream, "wb") as out:
            yield out
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(path)
    final_mode = mode if mode is not None else 0o600 if private else 0o666 & ~_umask()
    fd = _open_unnamed(directory)
    temp = None
    if fd is None:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            _set_mode(out.fileno(), temp, final_mode)
            with _background_writeback(out.fileno()) as failures:
                yield out
                out.flush()
            _sync(path, out.fileno(), failures)
            if temp is None:
                temp = _name_unnamed(path, out.fileno(), overwrite=overwrite, private=private)
        if temp is not None:
            _move_into_place(temp, path, overwrite)
        _fsync_directory(directory)
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise


def _open_stream(name: str) -> int | None:
    """A descriptor to write straight into, when ``name`` is not a file at rest; else None."""
    number = _descriptor_number(name)
    if number is not None:
        try:
            return os.dup(number)
        except OSError as exc:
            raise _about(name, exc) from exc
    try:
        info = os.stat(name)
    except OSError:
        return None  # absent, a dangling link or unreachable: the regular path says which
    if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
        return None
    if stat.S_ISSOCK(info.st_mode):
        return _connect(name)
    fd = os.open(name, os.O_WRONLY | _O_NOCTTY | _O_CLOEXEC)  # a FIFO waits here for its reader
    if stat.S_ISREG(os.fstat(fd).st_mode):  # replaced meanwhile: a file is never written in place
        os.close(fd)
        return None
    return fd


def _descriptor_number(name: str) -> int | None:
    if os.name != "posix":
        return None
    match = _DESCRIPTOR_PATH.fullmatch(os.path.abspath(name))
    if match is None or match["pid"] not in (None, "self", "thread-self", str(os.getpid())):
        return None
    if match["std"]:
        return 1 if match["std"] == "out" else 2
    return int(match["fd"] or match["n"])


def _connect(name: str) -> int:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(name)
    except OSError as exc:
        sock.close()
        raise _about(name, exc, "a socket that takes no stream connection") from exc
    return sock.detach()


@contextlib.contextmanager
def _background_writeback(fd: int) -> Iterator[list[OSError]]:
    """While a large output is written, push it to the disk on a thread, so that the final sync
    waits for the tail only: writing to the disk overlaps with the encryption.

    Yields the list that receives the thread's first error. Linux reports a write-back error
    once per open file: if this thread saw it, the final fsync returns success, so the error
    must be kept and acted on."""
    failures: list[OSError] = []
    done = threading.Event()

    def flush() -> None:
        sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
        while not done.wait(_WRITEBACK_INTERVAL_S):
            try:
                sync(fd)
            except OSError as exc:
                failures.append(exc)
                return

    flusher = threading.Thread(target=flush, name="envelope-writeback", daemon=True)
    flusher.start()
    try:
        yield failures
    finally:
        done.set()
        flusher.join()


def _sync(name: str, fd: int, failures: list[OSError]) -> None:
    """Make the data durable, or raise the first write-back error, naming the output."""
    if failures:
        raise _about(name, failures[0], "writing it to the disk failed") from failures[0]
    command = _full_sync_command()
    try:
        if command is not None:
            import fcntl

            try:
                fcntl.fcntl(fd, command)
                return
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTTY):
                    raise  # a real error, which a plain fsync would no longer report
        os.fsync(fd)
    except OSError as exc:
        raise _about(name, exc, "writing it to the disk failed") from exc


def _full_sync_command() -> int | None:
    """macOS's F_FULLFSYNC: there fsync leaves the data in the drive's cache (as Go and libuv do)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    command: int | None = getattr(fcntl, "F_FULLFSYNC", None)
    return command


def _about(name: str, exc: OSError, detail: str = "") -> OSError:
    """``exc``'s error (same errno, so the same OSError subclass) about ``name``."""
    reason = exc.strerror or str(exc)
    return OSError(exc.errno, f"{reason} ({detail})" if detail else reason, name)


def _set_mode(fd: int, temp: str | None, mode: int) -> None:
    if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
        os.fchmod(fd, mode)
    elif temp is not None:
        os.chmod(temp, mode)


def _open_unnamed(directory: str) -> int | None:
    """An unnamed, writable file in ``directory`` (Linux O_TMPFILE), or None where unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir(_PROC_FD):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | _O_CLOEXEC, 0o600)
    except OSError:  # the file system does not support it (EOPNOTSUPP, EISDIR, ...)
        return None


def _name_unnamed(path: str, fd: int, *, overwrite: bool, private: bool) -> str | None:
    """Give the finished unnamed file its name. Returns a hidden name still to be renamed over
    ``path`` (when replacing an output that is not private), else None."""
    if not overwrite:
        _link_fd(fd, path)  # fails, atomically, if path appeared meanwhile
        return None
    if private:
        # linkat cannot replace a name, and a named copy of the plaintext could outlive a
        # SIGKILL. So remove the old file, then link: a kill in between leaves neither.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        try:
            _link_fd(fd, path)
        except OutputExistsError:
            raise FileExistsError(errno.EEXIST, "created by another process while being replaced", path) from None
        except OSError as exc:
            raise _about(path, exc, "the old file was removed; the new one could not take its place") from exc
        return None
    # Ciphertext: readers must see the old file or the new one, never none, so a hidden name
    # first and a rename over the old file. A kill between the two leaves that hidden file.
    hidden = os.path.join(
        os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{os.urandom(6).hex()}.partial"
    )
    _link_fd(fd, hidden)
    return hidden


def _link_fd(fd: int, path: str) -> None:
    """Name an unnamed (O_TMPFILE) file: linkat through /proc/self/fd with AT_SYMLINK_FOLLOW."""
    # os.link only calls linkat (and so honours follow_symlinks) when given a directory fd.
    proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
    except FileExistsError:
        raise OutputExistsError(path) from None
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
        raise OutputExistsError(path) from None
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            raise OutputExistsError(path) from None
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
