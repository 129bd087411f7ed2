"""Passphrases: from an environment variable, a file, or the terminal. Never from argv."""

from __future__ import annotations

import os

from envelope.limits import MAX_PASSPHRASE_FILE_LEN

from .errors import EXIT_KEY, EXIT_USAGE, CliError


def from_environment(variable: str) -> bytes:
    value = os.environ.get(variable)
    if value is None:
        raise CliError(f"environment variable {variable} (for --passphrase-env) is not set", EXIT_USAGE)
    return _non_empty(value.encode(), f"environment variable {variable}", EXIT_USAGE)


def from_file(path: str) -> bytes:
    """The first line of ``path``, without its line ending."""
    with open(path, "rb") as f:
        first_line = f.readline(MAX_PASSPHRASE_FILE_LEN)
    return _non_empty(first_line.rstrip(b"\r\n"), f"passphrase file {path}", EXIT_USAGE)


def from_terminal(prompt: str, *, confirm: bool = False) -> bytes:
    """Ask on the controlling terminal (/dev/tty), never on stdin, which may carry the data."""
    import getpass

    _require_terminal()
    try:
        first = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            raise CliError("the passphrases do not match", EXIT_USAGE)
    except EOFError:
        raise CliError("no passphrase entered", EXIT_KEY) from None
    return _non_empty(first.encode(), "the passphrase entered", EXIT_KEY)


def _require_terminal() -> None:
    """Without a terminal getpass would read stdin, which may carry the data. It reads the
    controlling terminal, /dev/tty, or on Windows the console, CONIN$ (no O_NOCTTY there)."""
    device = "CONIN$" if os.name == "nt" else "/dev/tty"
    try:
        os.close(os.open(device, os.O_RDWR | getattr(os, "O_NOCTTY", 0)))
    except OSError:
        raise CliError(
            "a passphrase is needed but there is no terminal to ask it on: use --passphrase-env or --passphrase-file",
            EXIT_KEY,
        ) from None


def _non_empty(passphrase: bytes, what: str, exit_code: int) -> bytes:
    if not passphrase:
        raise CliError(f"{what} is an empty passphrase", exit_code)
    return passphrase
