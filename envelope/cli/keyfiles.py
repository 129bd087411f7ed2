"""Keys named on the command line: private keys (with passphrases and a permission check),
recipients (``-r``, ``-R`` files) and key ids (``--remove``). The SDK parses every key; this module
decides what each argument is, asks for passphrases, and maps key errors to exit codes."""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from . import passphrase
from .errors import EXIT_IO, EXIT_KEY, EXIT_USAGE, CliError, report

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from envelope import Identity

_KEY_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})", re.IGNORECASE)
# A literal OpenSSH public key line given to -r, as age accepts one: a key type, then base64 that
# always starts "AAAA" (the length of the type name). Anything else is a file name.
_OPENSSH_LINE = re.compile(r"(?:ssh-|ecdsa-sha2-|sk-)\S+\s+AAAA")

T = TypeVar("T")


def _key_call(function: Callable[[], T], where: str | None = None) -> T:
    """Run an SDK key function; its InvalidKeyError becomes exit code 5 when the file could not be
    read (missing, a directory, no permission), 4 otherwise. SDK key errors name the file; ``where``
    names a key that is not a file."""
    from envelope import InvalidKeyError

    try:
        return function()
    except InvalidKeyError as exc:
        code = EXIT_IO if isinstance(exc.__cause__, OSError) else EXIT_KEY
        raise CliError(f"{where}: {exc}" if where else str(exc), code) from None


# --- private keys ---------------------------------------------------------------------------


def explicit_passphrase(env: str | None, file: str | None) -> bytes | None:
    """The passphrase given with --passphrase-env or --passphrase-file, if any."""
    if env is not None:
        return passphrase.from_environment(env)
    if file is not None:
        return passphrase.from_file(file)
    return None


def load_identities(paths: Iterable[str], given_passphrase: bytes | None, tool: str) -> list[Identity]:
    """One identity per ``-i`` file. An encrypted key is unlocked only when a file needs it, with the
    given passphrase or else one asked on the terminal then (the SDK's RsaKeyFileIdentity)."""
    return [load_identity(path, given_passphrase, tool) for path in paths]


def load_identity(path: str, given_passphrase: bytes | None, tool: str) -> Identity:
    from envelope import RsaKeyFileIdentity

    def ask() -> bytes:
        return passphrase.from_terminal(f"Passphrase for {path}: ")

    secret: bytes | Callable[[], bytes] = given_passphrase if given_passphrase is not None else ask
    identity = _key_call(lambda: RsaKeyFileIdentity(path, secret))
    _warn_if_readable_by_others(path, tool)  # only once the file is known to be a private key
    return identity


def _warn_if_readable_by_others(path: str, tool: str) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if mode & 0o077:
        # As ssh does, but a warning: the key may live on a file system without Unix modes.
        report(
            tool,
            f"private key file {path} is accessible by other users (mode {mode:04o}); run: chmod 600 {path}",
            kind="warning",
        )


# --- public keys (recipients) ---------------------------------------------------------------


def load_recipients(values: Iterable[str], files: Iterable[str]) -> list[RSAPublicKey]:
    """Every ``-r`` key and every key of every ``-R`` file, each key once."""
    from envelope import load_public_keys

    keys = [load_recipient(value) for value in values]
    for path in files:
        keys.extend(_key_call(functools.partial(load_public_keys, path)))
    return unique(keys)


def load_recipient(value: str) -> RSAPublicKey:
    """``-r``: a public key file (PEM, ssh-rsa line, DER, X.509 certificate), or a literal OpenSSH
    public key line (``-r "ssh-rsa AAAA..."``). A file of several keys is refused: that is -R."""
    from envelope import load_public_key, parse_public_key

    if _OPENSSH_LINE.match(value):
        return _key_call(functools.partial(parse_public_key, value), "the ssh key given with -r")
    return _key_call(functools.partial(load_public_key, value))


def unique(keys: Iterable[RSAPublicKey]) -> list[RSAPublicKey]:
    """The keys in order, without repeats (a file may list a key that -r also names)."""
    from envelope import key_id

    seen: set[str] = set()
    result = []
    for key in keys:
        kid = key_id(key)
        if kid not in seen:
            seen.add(kid)
            result.append(key)
    return result


# --- key ids ---------------------------------------------------------------------------------


def key_id_of(value: str) -> bytes:
    """A key id given as 64 hex digits (``sha256:`` prefix allowed) or as a public key file."""
    from envelope import key_id

    match = _KEY_ID.fullmatch(value.strip())
    if match:
        return bytes.fromhex(match.group(1))
    if os.path.isfile(value):
        return bytes.fromhex(key_id(load_recipient(value)))
    raise CliError(
        f"not a key id: {value!r} (give 64 hex digits, as envelope-info shows, or a public key file)", EXIT_USAGE
    )
