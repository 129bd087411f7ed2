"""Passphrases: from an environment variable, a file, or the terminal. Never from argv.

Every passphrase that cannot serve (empty, not repeated the same, wrong, none to be had) is a key
problem, exit code 4; only an unset ``--passphrase-env`` variable is a usage error (2).
"""

from __future__ import annotations

import os

from envelope.limits import MAX_PASSPHRASE_FILE_LEN

from .errors import EXIT_KEY, EXIT_USAGE, CliError, report

MAX_TRIES = 3  # passphrases typed at the terminal for one key, as sudo and ssh allow
GENERATED_GROUPS = 5  # of a generated passphrase: 5 groups of 5 letters or digits, 125 bits
_GENERATED_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols (5 bits), no l/1/o/0 to misread


def from_environment(variable: str) -> bytes:
    value = os.environ.get(variable)
    if value is None:
        raise CliError(f"environment variable {variable} (for --passphrase-env) is not set", EXIT_USAGE)
    return _non_empty(value.encode(), f"environment variable {variable}")


def from_file(path: str) -> bytes:
    """The first line of ``path``, without its line ending."""
    with open(path, "rb") as f:
        first_line = f.readline(MAX_PASSPHRASE_FILE_LEN)
    return _non_empty(first_line.rstrip(b"\r\n"), f"passphrase file {path}")


def from_terminal(prompt: str, *, confirm: bool = False) -> bytes:
    """Ask on the controlling terminal (/dev/tty), never on stdin, which may carry the data."""
    first = _ask(prompt)
    if confirm and _ask("Repeat the passphrase: ") != first:
        raise CliError("the passphrases do not match", EXIT_KEY)
    return _non_empty(first, "the passphrase entered")


class Prompt:
    """The passphrase of one key, asked on the terminal when the key is needed (a callable for the
    SDK's RsaKeyFileIdentity). An empty answer is asked again; after a wrong one, :meth:`again`
    says whether a try is left, ``MAX_TRIES`` in all."""

    def __init__(self, prompt: str, tool: str) -> None:
        self._prompt = prompt
        self._tool = tool
        self._tries = 0
        self._tries_seen = 0  # by the last again(): a failure with no new try asked is final

    def __call__(self) -> bytes:
        while True:
            self._tries += 1
            secret = _ask(self._prompt)
            if secret:
                return secret
            if self._tries >= MAX_TRIES:
                raise CliError("no passphrase entered", EXIT_KEY)
            report(self._tool, "no passphrase entered, try again", kind="note")

    def again(self) -> bool:
        """After a wrong passphrase: True (and a line saying so) if another try is left."""
        if self._tries >= MAX_TRIES or self._tries == self._tries_seen:
            return False
        self._tries_seen = self._tries
        report(self._tool, "wrong passphrase, try again", kind="note")
        return True


def _ask(prompt: str) -> bytes:
    import getpass

    from .render import printable

    _require_terminal()
    try:
        return getpass.getpass(printable(prompt)).encode()  # the prompt names a key file
    except EOFError:
        raise CliError("no passphrase entered", EXIT_KEY) from None


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


def _non_empty(passphrase: bytes, what: str) -> bytes:
    if not passphrase:
        raise CliError(f"{what} is an empty passphrase", EXIT_KEY)
    return passphrase


def generate() -> str:
    """A strong passphrase for a file (``seal --generate-passphrase``): 125 bits from the OS's
    CSPRNG, as five groups of five letters or digits, so that it can be read out and typed."""
    import secrets

    groups = ("".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(5)) for _ in range(GENERATED_GROUPS))
    return "-".join(groups)


def as_text(secret: bytes) -> str | bytes:
    """A file's passphrase as the SDK takes it: text (normalised to NFC, spec/FORMAT.md 4.5) when
    it is UTF-8, so that the same words typed anywhere open the file; other bytes as given."""
    try:
        return secret.decode("utf-8")
    except UnicodeDecodeError:
        return secret
