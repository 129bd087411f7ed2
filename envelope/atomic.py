"""Outputs that appear whole or not at all: :func:`atomic_output`.

What happens depends on what the output path names (docs/CLI.md, "How outputs appear", says the
same for users of the command line; spec/SECURITY.md states the guarantees):

- nothing: a new file is written in the destination folder, synced to the disk, and only then
  given the name. On Linux it has no name at all until then (``O_TMPFILE``); elsewhere it is a
  hidden ``.NAME.*.partial`` file.
- a regular file: the same, replacing it (only with ``overwrite=True``).
- a symbolic link to a regular file: the file it points to is replaced; the link stays.
- a descriptor (``/dev/stdout``, ``/dev/fd/N``), a character device, a FIFO or a socket: not a
  file at rest, so there is nothing to replace: the data go straight into it as they are written,
  with no temporary file and no ``overwrite`` needed. Only where it is safe: a FIFO, a socket or a
  device that another user owns (planted in a shared folder such as /tmp) would hand the data to
  them, and raises ``UnsafeOutputError``, whatever ``overwrite`` says; descriptor paths, the null
  device and terminals are exempt (spec/SECURITY.md, section 3).
- a block device (a disk, a partition): data at rest, so ``overwrite`` is needed
  (``OutputExistsError`` otherwise); then the data go straight into it (it is never replaced).
- a directory: ``IsADirectoryError``.

Platforms: Linux has all of the above. Other POSIX systems (macOS, the BSDs) use the hidden
``.partial`` file, ``fsync`` for the background write-back and ``F_FULLFSYNC`` where it exists.
Windows is not supported (no file modes, no descriptor paths); the calls that it lacks are
guarded all the same.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Union

from .errors import OutputExistsError, UnsafeOutputError

__all__ = ["PathLike", "atomic_output", "named_output", "sync_folder"]

PathLike = Union[str, "os.PathLike[str]"]

_WRITEBACK_INTERVAL_S = 0.25
_PROC_FD = "/proc/self/fd"  # where an unnamed (O_TMPFILE) file can be linked from
_NAME_ROOM = 200  # a hidden name adds up to 22 bytes to the output's; most file systems allow 255
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
# Paths that name one of this process's descriptors rather than a file (bash treats them alike).
_DESCRIPTOR_PATH = re.compile(
    r"/dev/(?:std(?P<std>out|err)|fd/(?P<fd>\d+))|/proc/(?P<pid>self|thread-self|\d+)/fd/(?P<n>\d+)"
)


def atomic_output(
    path: PathLike, *, overwrite: bool = False, private: bool = False, mode: int | None = None
) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Yield a binary file object whose content appears at ``path`` only if the block completes.

    The new file gets ``mode`` if given, else 0600 when ``private`` (for plaintext), else the
    mode any new file gets there (0666 less the umask; on Linux a folder's default ACL applies
    instead, where it has one). An existing file at ``path`` raises :class:`envelope.OutputExistsError`
    unless ``overwrite``; a symbolic link to a file is written through (the file it points to is
    replaced, the link stays), one to a missing file is refused. A descriptor path, a character
    device, a FIFO or a socket gets the data as they are written, with no temporary file and no
    ``overwrite`` needed, and a block device too, with ``overwrite``; ``mode`` and ``private`` do
    not apply to them. One that another user owns raises :class:`envelope.UnsafeOutputError`
    (whoever reads it would get the data), unless it is a descriptor path, the null device or a
    terminal.

    The data are synced to the disk before the file gets its name, and a write-back error seen
    at any time fails the block. On Linux the file has no name until then (``O_TMPFILE``): a
    process killed at any point, even by SIGKILL, leaves nothing behind. Replacing a file with
    ``private`` removes the old one and then names the new one: a kill between the two leaves
    no file at ``path`` and no plaintext anywhere. Replacing one without ``private`` names the
    new file ``.NAME.*.partial`` for the instant before it is renamed over the old one, so that
    readers always see one or the other. Without ``O_TMPFILE`` the data go to that hidden name
    from the start; it is removed on every failure but SIGKILL or a power cut.

    Errors are ``OSError`` subclasses naming ``path`` (never a temporary name), among them
    ``OutputExistsError`` and ``UnsafeOutputError``; whatever the block raises is left as it is.
    """
    # _output itself, not a generator around it: each level costs a few microseconds per output,
    # and a batch of small files has thousands of outputs.
    return _output(path, overwrite=overwrite, private=private, mode=mode, folder_sync=True)


def named_output(
    path: PathLike, *, overwrite: bool = False, private: bool = False
) -> contextlib.AbstractContextManager[IO[bytes]]:
    """:func:`atomic_output` less the last step: the file's data are synced before it gets its
    name, but the folder that holds the name is not. The caller syncs it with :func:`sync_folder`
    once it has named every output there (one folder sync for many files: envelope.batch)."""
    return _output(path, overwrite=overwrite, private=private, mode=None, folder_sync=False)


def sync_folder(directory: str) -> None:
    """Make the names created in ``directory`` durable; raises the ``OSError`` of a failed sync
    (a file system that cannot sync a folder, EINVAL, is not one)."""
    fd = os.open(directory, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def _output(
    path: PathLike, *, overwrite: bool, private: bool, mode: int | None, folder_sync: bool
) -> Iterator[IO[bytes]]:
    name = os.fspath(path)
    absolute = os.path.abspath(name)
    stream = _open_stream(name, overwrite, absolute)
    if stream is not None:
        with os.fdopen(stream, "wb") as out:
            yield out
        return
    target = _regular_target(name, overwrite)
    directory = os.path.dirname(absolute if target == name else os.path.abspath(target))
    default_mode = mode is None and not private
    fd, temp = _create(name, target, directory, 0o666 if default_mode else 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            if not (default_mode and temp is None):  # an unnamed file got the umask from the kernel
                final_mode = mode if mode is not None else 0o600 if private else 0o666 & ~_umask()
                with _naming(name):
                    _set_mode(out.fileno(), temp, final_mode)
            with _background_writeback(out.fileno()) as failures:
                yield out
                with _naming(name):
                    out.flush()
            _sync(name, out.fileno(), failures)
            if temp is None:
                temp = _name_unnamed(name, out.fileno(), target, overwrite=overwrite, private=private)
        if temp is not None:
            _move_into_place(name, temp, target, overwrite)
        if folder_sync:
            _fsync_directory(directory)
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise


def _open_stream(name: str, overwrite: bool, absolute: str) -> int | None:
    """A descriptor to write straight into, when ``name`` is not a file at rest; else None.

    A special file is checked by its path before it is opened (a FIFO that another user planted is
    never opened: its reader would learn that someone did), then, but for a socket, as opened (the
    name may have changed meanwhile)."""
    number = _descriptor_number(absolute)
    if number is not None:
        with _naming(name):
            return os.dup(number)
    info = _output_stat(name)
    if info is None or stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
        return None
    _check_special(name, info, overwrite)
    if stat.S_ISSOCK(info.st_mode):
        return _connect(name)
    fd = os.open(name, os.O_WRONLY | _O_NOCTTY | _O_CLOEXEC)  # a FIFO waits here for its reader
    try:
        opened = os.fstat(fd)
        if stat.S_ISREG(opened.st_mode):  # replaced meanwhile: a file is never written in place
            os.close(fd)
            return None
        _check_special(name, opened, overwrite, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _output_stat(name: str) -> os.stat_result | None:
    """What ``name`` is now (following links); None when it cannot be told: absent, a dangling link
    or unreachable (:func:`_regular_target` says which)."""
    try:
        return os.stat(name)
    except OSError:
        return None


def _check_special(name: str, info: os.stat_result, overwrite: bool, fd: int | None = None) -> None:
    """Refuse to write into the special file ``info`` describes: a block device without
    ``overwrite`` (data at rest, as a regular file is), and a FIFO, a socket or a device that
    another user owns (whoever reads it would get the data), unless it is the null device or a
    terminal. ``fd`` is the file as opened; before it is, a character device passes (only an open
    one tells whether it is a terminal)."""
    mode = info.st_mode
    if stat.S_ISBLK(mode) and not overwrite:
        raise OutputExistsError(name, device=True)
    geteuid = getattr(os, "geteuid", None)  # Windows has no uids (and no FIFOs)
    if geteuid is None or info.st_uid == geteuid():
        return
    if stat.S_ISCHR(mode) and (fd is None or _is_null_device(info) or os.isatty(fd)):
        return
    raise UnsafeOutputError(name, _kind(mode), info.st_uid)


def _is_null_device(info: os.stat_result) -> bool:
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and stat.S_ISCHR(null.st_mode) and info.st_rdev == null.st_rdev


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a special file"


def _descriptor_number(absolute: str) -> int | None:
    if os.name != "posix":
        return None
    match = _DESCRIPTOR_PATH.fullmatch(absolute)
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


def _regular_target(name: str, overwrite: bool) -> str:
    """The regular file to create or replace for ``name``: itself, or what its link points to."""
    try:
        info = os.stat(name)
    except FileNotFoundError:
        if not os.path.islink(name):
            return name  # nothing there yet (a missing folder is reported when creating the file)
        if not overwrite:
            raise OutputExistsError(name) from None
        # Writing through would create a file wherever the link points; replacing the link
        # would lose it. Neither is what "replace it" means: refuse, as cp does.
        raise FileNotFoundError(errno.ENOENT, "a symbolic link to a missing file (not replaced)", name) from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", name)
    if not overwrite:
        raise OutputExistsError(name)
    return os.path.realpath(name) if os.path.islink(name) else name


def _create(name: str, target: str, directory: str, unnamed_mode: int) -> tuple[int, str | None]:
    """A new, empty, writable file in ``directory``: unnamed where possible (no name: None), created
    with ``unnamed_mode`` less the umask; the named fallback is created with mode 0600."""
    fd = _open_unnamed(directory, unnamed_mode)
    if fd is not None:
        return fd, None
    prefix = f".{os.path.basename(target)[:_NAME_ROOM]}."
    try:
        return tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".partial")
    except FileNotFoundError as exc:
        raise FileNotFoundError(errno.ENOENT, f"the folder {directory} does not exist", name) from exc
    except OSError as exc:
        raise _about(name, exc, f"cannot create a file in {directory}") from exc


def _open_unnamed(directory: str, mode: int) -> int | None:
    """An unnamed, writable file in ``directory`` (Linux O_TMPFILE), or None where unsupported.
    Nobody else can open a file without a name, whatever its mode."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not _is_folder(_PROC_FD):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | _O_CLOEXEC, mode)
    except OSError:  # unsupported here (EOPNOTSUPP, EISDIR...), or a real error mkstemp will name
        return None


@functools.lru_cache(maxsize=4)
def _is_folder(path: str) -> bool:
    """Whether ``path`` (/proc/self/fd) is a folder: asked once per process, not once per output."""
    return os.path.isdir(path)


def _set_mode(fd: int, temp: str | None, mode: int) -> None:
    if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
        os.fchmod(fd, mode)
    elif temp is not None:
        os.chmod(temp, mode)


class _WriteBack:
    """One thread for the whole process that pushes the outputs being written to the disk, every
    ``_WRITEBACK_INTERVAL_S``, so that each final sync waits for its tail only: writing to the
    disk overlaps with the encryption.

    One thread rather than one per output: starting and joining a thread cost about 0.3 ms here,
    half the time of writing a 64 KiB output (tools/bench_scaling.py --only small). The thread
    starts with the first output and then sleeps while none is open. An output is synced only
    while it is registered; :meth:`remove` returns once no sync of it is running, so its
    descriptor can be closed (and its number reused) safely. Outputs are synced one after the
    other: a slow sync of one (a network file system) delays the background syncs of the others,
    never their correctness (each final sync still runs, and errors stay with their output).

    A new output wakes the thread only when it sleeps for want of outputs: while it waits for its
    next round it finds the new one then. Waking it for each output cost a switch of the GIL per
    file, a third of opening a 64 KiB file one by one.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._changed = threading.Condition()
        self._outputs: dict[int, list[OSError]] = {}  # descriptor: the errors its syncs raised
        self._syncing: int | None = None
        self._thread: threading.Thread | None = None
        self._idle = False  # the thread waits for an output to be added (not for its next round)

    def add(self, fd: int) -> list[OSError]:
        failures: list[OSError] = []
        with self._changed:
            if self._idle:
                self._changed.notify_all()  # the thread sleeps while no output is open
                self._idle = False
            self._outputs[fd] = failures
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="envelope-writeback", daemon=True)
                self._thread.start()
        return failures

    def remove(self, fd: int, failures: list[OSError]) -> None:
        if os.getpid() != self._pid:
            # Forked inside the block: the lock may be held and the thread does not exist here
            # (the child has a new _WriteBack for its own outputs). Nothing syncs this copy.
            return
        with self._changed:
            if self._outputs.get(fd) is failures:  # not if a failed sync removed it already
                del self._outputs[fd]
            while self._syncing == fd:
                self._changed.wait()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._outputs:
                    self._idle = True
                    self._changed.wait()
                self._idle = False
                due_at = time.monotonic() + _WRITEBACK_INTERVAL_S  # not sooner when outputs come and go
                while (left := due_at - time.monotonic()) > 0:
                    self._changed.wait(left)
                due = list(self._outputs.items())
            for fd, failures in due:
                self._sync(fd, failures)

    def _sync(self, fd: int, failures: list[OSError]) -> None:
        with self._changed:
            if self._outputs.get(fd) is not failures:  # removed meanwhile, or a new output's number
                return
            self._syncing = fd
        try:
            getattr(os, "fdatasync", os.fsync)(fd)  # macOS has no fdatasync
        except OSError as exc:
            failures.append(exc)
        finally:
            with self._changed:
                self._syncing = None
                if failures and self._outputs.get(fd) is failures:
                    del self._outputs[fd]  # failed: the final sync reports it; no more tries
                self._changed.notify_all()


_write_back = _WriteBack()
if hasattr(os, "register_at_fork"):  # the thread does not exist in a forked child
    os.register_at_fork(after_in_child=lambda: globals().update(_write_back=_WriteBack()))


@contextlib.contextmanager
def _background_writeback(fd: int) -> Iterator[list[OSError]]:
    """Register ``fd`` with the write-back thread for the block; yields the list that receives
    its first error. Linux reports a write-back error once per open file: if that thread saw it,
    the final fsync returns success, so the error must be kept and acted on."""
    write_back = _write_back
    failures = write_back.add(fd)
    try:
        yield failures
    finally:
        write_back.remove(fd, failures)


def _sync(name: str, fd: int, failures: list[OSError]) -> None:
    """Make the data durable, or raise the first write-back error, naming the output."""
    if failures:
        raise _about(name, failures[0], "writing it to the disk failed") from failures[0]
    command = _full_sync_command()
    with _naming(name, "writing it to the disk failed"):
        if command is not None:
            import fcntl

            try:
                fcntl.fcntl(fd, command)
                return
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTTY):
                    raise  # a real error, which a plain fsync would no longer report
        os.fsync(fd)


def _full_sync_command() -> int | None:
    """macOS's F_FULLFSYNC: there fsync leaves the data in the drive's cache (as Go and libuv do)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    command: int | None = getattr(fcntl, "F_FULLFSYNC", None)
    return command


def _name_unnamed(name: str, fd: int, target: str, *, overwrite: bool, private: bool) -> str | None:
    """Give the finished unnamed file its name. Returns a hidden name still to be renamed over
    ``target`` (replacing a non-private output), else None."""
    if not overwrite:
        _link_fd(name, fd, target)  # fails, atomically, if target appeared meanwhile
        return None
    if private:
        # linkat cannot replace a name, and a named copy of the plaintext could outlive a
        # SIGKILL. So remove the old file, then link: a kill in between leaves neither.
        removed = True
        try:
            with _naming(name):
                os.unlink(target)
        except FileNotFoundError:
            removed = False
        try:
            _link_fd(name, fd, target)
        except OutputExistsError:
            raise FileExistsError(errno.EEXIST, "created by another process while being replaced", name) from None
        except OSError as exc:
            if removed:
                raise _about(name, exc, "the old file was removed; the new one could not take its place") from exc
            raise
        return None
    # Ciphertext: readers must see the old file or the new one, never none, so a hidden name
    # first and a rename over the old file. A kill between the two leaves that hidden file.
    hidden = os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)[:_NAME_ROOM]}.{os.urandom(6).hex()}.partial"
    )
    _link_fd(name, fd, hidden)
    return hidden


def _link_fd(name: str, fd: int, path: str) -> None:
    """Name an unnamed (O_TMPFILE) file: linkat through /proc/self/fd with AT_SYMLINK_FOLLOW."""
    with _naming(name):
        # os.link only calls linkat (and so honours follow_symlinks) when given a directory fd.
        proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
        except FileExistsError:
            raise OutputExistsError(name) from None
        finally:
            os.close(proc)


def _move_into_place(name: str, temp: str, target: str, overwrite: bool) -> None:
    """Give the finished, named temporary file its final name, atomically."""
    with _naming(name):
        if overwrite:
            os.replace(temp, target)
            return
        try:
            os.link(temp, target)  # fails, atomically, if target appeared meanwhile
        except FileExistsError:
            raise OutputExistsError(name) from None
        except OSError:  # a file system without hard links
            if os.path.lexists(target):
                raise OutputExistsError(name) from None
            os.replace(temp, target)
            return
        os.unlink(temp)


class _naming:  # named as the function it replaces: "with _naming(name):"
    """Report an OSError of the block as one about ``name``, the caller's path, whatever
    internal name (a temporary file, /proc) the failing call was given. A class rather than a
    generator: four of them wrap every output, and a generator costs several times more."""

    __slots__ = ("_detail", "_name")

    def __init__(self, name: str, detail: str = "") -> None:
        self._name, self._detail = name, detail

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, OSError) and not isinstance(exc, OutputExistsError):
            raise _about(self._name, exc, self._detail) from exc


def _about(name: str, exc: OSError, detail: str = "") -> OSError:
    """``exc``'s error (same errno, so the same OSError subclass) about ``name``."""
    reason = exc.strerror or str(exc)
    return OSError(exc.errno, f"{reason} ({detail})" if detail else reason, name)


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
    """Make the new name durable (not possible everywhere: Windows cannot open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
