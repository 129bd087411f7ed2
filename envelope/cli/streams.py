"""Inputs and outputs: a path, a URL (``s3://...``, through the SDK's path functions) or ``-``
(stdin/stdout). Output files appear atomically, only when the command succeeded; checks that can
fail run before any work is done."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .errors import EXIT_IO, EXIT_USAGE, CliError, exists_message

STDIO = "-"
STDIN_NAME = "stdin"  # how messages name an input read from stdin


def is_stdio(path: str | None) -> bool:
    """An INPUT or -o value that means stdin or stdout: omitted, or ``-``."""
    return path is None or path == STDIO


def is_url(path: str | None) -> bool:
    """An INPUT or -o value that names an object through fsspec (``envelope.is_url``): the SDK's
    path functions read and write it, and refuse an existing output object without --force."""
    from envelope import is_url as url

    return path is not None and url(path)


def is_stdin(value: str) -> bool:
    """A key or file option's value that means stdin (``-R -``, ``-i -``, ...)."""
    return value == STDIO


def one_stdin(*uses: tuple[str, Iterable[str | None]]) -> None:
    """Refuse two inputs read from stdin. ``uses``: (how to name an argument, its values), where
    ``-`` reads stdin; ``None`` (an omitted INPUT) does too."""
    readers = [name for name, values in uses for value in values if is_stdio(value)]
    if len(readers) > 1:
        raise CliError(
            f"only one input can be stdin ('-'): {' and '.join(readers)} both read it (an omitted INPUT means stdin)",
            EXIT_USAGE,
        )


def name_of(path: str | None) -> str:
    """How messages name an input: its path, or ``stdin``."""
    return STDIN_NAME if is_stdio(path) else str(path)


def check_output(path: str | None, *, force: bool, binary: bool) -> None:
    """Fail early when the output cannot be written: a terminal for binary data, an existing file
    without --force, a directory, a missing folder. Other errors (a component that is not a
    folder, no permission) propagate as OSError naming the path.

    A character device, FIFO or socket is written into, as stdout is: no --force needed; a block
    device needs it. One that another user owns is refused by the SDK (UnsafeOutputError), before
    anything is written."""
    if is_stdio(path):
        if binary and sys.stdout.isatty():
            raise CliError("refusing to write binary data to a terminal: use -o FILE or redirect stdout", EXIT_USAGE)
        return
    assert path is not None
    if is_url(path):
        return  # the SDK checks the object before anything is written
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):  # as atomic_output: never replace the link, never create its target
            if not force:
                raise CliError(exists_message(path), EXIT_IO) from None
            raise CliError(f"{path} is a symbolic link to a missing file (not replaced)", EXIT_IO) from None
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise CliError(f"{path}: the folder {directory} does not exist", EXIT_IO) from None
        return
    if stat.S_ISDIR(info.st_mode):
        raise CliError(f"{path} is a directory", EXIT_IO)
    if stat.S_ISBLK(info.st_mode) and not force:
        raise CliError(exists_message(path, device=True), EXIT_IO)
    if not stat.S_ISREG(info.st_mode):
        if binary and stat.S_ISCHR(info.st_mode) and _is_terminal(path):
            raise CliError(f"refusing to write binary data to a terminal ({path})", EXIT_USAGE)
        return
    if not force:
        raise CliError(exists_message(path), EXIT_IO)


def refuse_plaintext_to_terminal(path: str | None) -> None:
    """``open`` without -o on a terminal: plaintext (often binary) would land on the screen. An
    explicit ``-o -`` (or ``-o /dev/tty``) says that is wanted."""
    if path is None and sys.stdout.isatty():
        raise CliError(
            "refusing to write the plaintext to a terminal: use -o FILE, redirect stdout, or -o - to print it",
            EXIT_USAGE,
        )


def _is_terminal(path: str) -> bool:
    try:  # O_NONBLOCK: a serial line without carrier would block the open
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False  # writing will fail too, and say why
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def refuse_same_file(source: str | None, destination: str | None) -> None:
    """The input is never modified: refuse an output path that is the input file (the SDK refuses
    an output object that is the input object)."""
    if is_stdio(source) or is_stdio(destination) or is_url(source) or is_url(destination):
        return
    assert source is not None and destination is not None
    with contextlib.suppress(OSError):
        if os.path.samefile(source, destination):
            raise CliError(f"the output file {destination} is the input file", EXIT_USAGE)


@contextlib.contextmanager
def input_stream(path: str | None) -> Iterator[IO[bytes]]:
    if is_stdio(path):
        yield io.BufferedReader(_TerminalInput(sys.stdin.buffer)) if sys.stdin.isatty() else sys.stdin.buffer
        return
    assert path is not None
    with open(path, "rb") as f:
        yield f


@contextlib.contextmanager
def output_stream(
    path: str | None, *, force: bool, private: bool = False, mode: int | None = None
) -> Iterator[IO[bytes]]:
    """stdout, or a file that appears (atomically) only if the block completes, or a device,
    FIFO or socket written into as the data come (envelope.atomic_output).

    ``private`` gives the file mode 0600, for plaintext; ``mode`` sets it explicitly.
    """
    if is_stdio(path):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    from envelope import atomic_output

    assert path is not None
    with atomic_output(path, overwrite=force, private=private, mode=mode) as out:
        yield out


class _TerminalInput(io.RawIOBase):
    """Typed input that ends at the first end of file (Ctrl-D), as cat's does. A terminal reports
    it once, to one read: a buffered reader that got data before it in the same call returns the
    data, and its next call would wait for a second Ctrl-D."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._ended:
            return 0
        data = self._stream.read1(len(buffer)) if hasattr(self._stream, "read1") else self._stream.read(len(buffer))
        self._ended = not data
        buffer[: len(data)] = data
        return len(data)


def path_size(path: str) -> int | None:
    """The size of a regular file (None for a FIFO, a device, a URL...)."""
    if is_url(path):
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None  # the command says why when it opens it
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def plaintext_size(path: str | None) -> int | None:
    """What opening a regular envelope file will produce, at most (the progress bar's 100 %): the
    progress callback counts plaintext bytes, which the file's size overstates. A URL's header is
    fetched for it (one ranged read)."""
    if path is None or (path_size(path) is None and not is_url(path)):
        return None
    import envelope

    try:
        return envelope.inspect(path).plaintext_size_max
    except (envelope.EnvelopeError, OSError):
        return None  # the command says why when it opens it


def input_size(stream: IO[bytes]) -> int | None:
    """Bytes left to read, when the input is a regular file."""
    try:
        info = os.fstat(stream.fileno())
        if stat.S_ISREG(info.st_mode):
            return max(0, info.st_size - stream.tell())
    except (OSError, ValueError, AttributeError):
        pass
    return None
