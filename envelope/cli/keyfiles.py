"""Keys named on the command line: private keys (with passphrases and a permission check),
recipients (``-r``, ``-R`` files) and key ids (``--remove``)."""

from __future__ import annotations

import base64
import os
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from envelope.limits import MAX_KEY_FILE_LEN

from . import passphrase
from .errors import EXIT_KEY, EXIT_USAGE, CliError, report

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

_KEY_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})", re.IGNORECASE)
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


# --- private keys ---------------------------------------------------------------------------


def explicit_passphrase(env: str | None, file: str | None) -> bytes | None:
    """The passphrase given with --passphrase-env or --passphrase-file, if any."""
    if env is not None:
        return passphrase.from_environment(env)
    if file is not None:
        return passphrase.from_file(file)
    return None


def load_identities(paths: Iterable[str], given_passphrase: bytes | None, tool: str) -> list[RSAPrivateKey]:
    return [load_identity(path, given_passphrase, tool) for path in paths]


def load_identity(path: str, given_passphrase: bytes | None, tool: str) -> RSAPrivateKey:
    """Load a private key file. An encrypted key takes the given passphrase, or asks on the terminal."""
    from envelope import InvalidKeyError, load_private_key

    data = _read_private_key_file(path, tool)
    secret = given_passphrase
    if secret is None and looks_encrypted(data):
        secret = passphrase.from_terminal(f"Passphrase for {path}: ")
    try:
        return load_private_key(data, secret)
    except InvalidKeyError as exc:
        raise CliError(f"{path}: {exc}", EXIT_KEY) from None


def _read_private_key_file(path: str, tool: str) -> bytes:
    with open(path, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        data = f.read(MAX_KEY_FILE_LEN + 1)
    if len(data) > MAX_KEY_FILE_LEN:
        raise CliError(f"{path}: too large for a key file", EXIT_KEY)
    if mode & 0o077:
        # As ssh does, but a warning: the key may live on a file system without Unix modes.
        report(
            tool,
            f"private key file {path} is accessible by other users (mode {mode & 0o777:04o}); run: chmod 600 {path}",
            kind="warning",
        )
    return data


def looks_encrypted(data: bytes) -> bool:
    """Whether a private key file is passphrase-protected (PEM PKCS#8 or PKCS#1, or OpenSSH)."""
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        return True
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        return _openssh_cipher(data) not in (None, b"none")
    return False


def _openssh_cipher(data: bytes) -> bytes | None:
    """The cipher name of an OpenSSH private key (``none`` when unencrypted): PROTOCOL.key."""
    body = b"".join(line for line in data.strip().splitlines()[1:-1])
    try:
        raw = base64.b64decode(body)
    except ValueError:
        return None
    if not raw.startswith(_OPENSSH_MAGIC) or len(raw) < len(_OPENSSH_MAGIC) + 4:
        return None
    (length,) = struct.unpack_from(">I", raw, len(_OPENSSH_MAGIC))
    start = len(_OPENSSH_MAGIC) + 4
    return raw[start : start + length]


# --- public keys (recipients) ---------------------------------------------------------------


def load_recipients(values: Iterable[str], files: Iterable[str]) -> list[RSAPublicKey]:
    """Every ``-r`` key and every key of every ``-R`` file, each key once."""
    keys = [load_recipient(value) for value in values]
    for path in files:
        keys.extend(read_recipients_file(path))
    return unique(keys)


def load_recipient(value: str) -> RSAPublicKey:
    """A public key file (PEM, ssh-rsa line, DER, X.509 certificate), or an ``ssh-rsa ...`` line."""
    if value.startswith("ssh-"):
        return _public_key(value, "the ssh key given with -r")
    with open(value, "rb") as f:
        data = f.read(MAX_KEY_FILE_LEN)
    return _public_key(data, value)


def read_recipients_file(path: str) -> list[RSAPublicKey]:
    """One key per line (``ssh-rsa ...``) or PEM blocks; blank lines and ``#`` comments skipped."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    keys = [_public_key(block, f"{path}:{line}") for line, block in _key_texts(text, path)]
    if not keys:
        raise CliError(f"{path}: no public key in this recipients file", EXIT_KEY)
    return keys


def _key_texts(text: str, path: str) -> Iterator[tuple[int, str]]:
    """(line number, key text) for each key of a recipients file."""
    block: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if block:
            block.append(line)
            if line.startswith("-----END"):
                yield start, "\n".join(block)
                block = []
        elif line.startswith("-----BEGIN"):
            block, start = [line], number
        elif line and not line.startswith("#"):
            yield number, line
    if block:
        raise CliError(f"{path}:{start}: PEM block without its END line", EXIT_KEY)


def _public_key(source: str | bytes, where: str) -> RSAPublicKey:
    from envelope import InvalidKeyError, load_public_key

    try:
        return load_public_key(source)
    except InvalidKeyError as exc:
        raise CliError(f"{where}: {exc}", EXIT_KEY) from None


def unique(keys: Iterable[RSAPublicKey]) -> list[RSAPublicKey]:
    """The keys in order, without repeats (a file may list a key that -r also names)."""
    from envelope import key_id

    seen: set[bytes] = set()
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
        return key_id(load_recipient(value))
    raise CliError(
        f"not a key id: {value!r} (give 64 hex digits, as envelope-info shows, or a public key file)", EXIT_USAGE
    )
