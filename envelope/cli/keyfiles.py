"""Keys named on the command line: private keys (with passphrases and a permission check),
recipients (``-r``, ``-R`` files), shared Fernet keys (``--fernet-key-file``), a file's passphrase
(``-p``), signing keys (``--sign``), signers' public keys (``--signed-by``) and key ids
(``--remove``). The SDK parses every key; this module decides what each
argument is, reads ``-`` from stdin, asks for passphrases, and maps key errors to exit codes."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import passphrase, tokens
from .errors import EXIT_IO, EXIT_KEY, EXIT_USAGE, CliError, report
from .streams import STDIN_NAME, is_stdin

if TYPE_CHECKING:
    import argparse

    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from envelope import FernetKey, Identity, InvalidKeyError, KeySigner, Passphrase, Recipient, Signer

_KEY_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})", re.IGNORECASE)
# A literal OpenSSH public key line given to -r, as age accepts one: a key type, then base64 that
# always starts "AAAA" (the length of the type name). Anything else is a file name.
_OPENSSH_LINE = re.compile(r"(?:ssh-|ecdsa-sha2-|sk-)\S+\s+AAAA")

T = TypeVar("T")


def _key_error(exc: InvalidKeyError, where: str | None = None) -> CliError:
    """An SDK key error as exit code 5 when the file could not be read (missing, a directory, no
    permission), 4 otherwise. SDK errors about key files name the file; ``where`` names a key
    whose message does not."""
    code = EXIT_IO if isinstance(exc.__cause__, OSError) else EXIT_KEY
    return CliError(f"{where}: {exc}" if where else str(exc), code)


def _key_call(function: Callable[[], T], where: str | None = None) -> T:
    """Run an SDK key function, its InvalidKeyError mapped by :func:`_key_error`."""
    from envelope import InvalidKeyError

    try:
        return function()
    except InvalidKeyError as exc:
        raise _key_error(exc, where) from None


def read_key(value: str) -> bytes:
    """The bytes of a key given as a file name or ``-`` (stdin), for the SDK's ``parse_*``. A file
    that cannot be read is an I/O error naming it (exit code 5)."""
    from envelope.limits import MAX_KEY_FILE_LEN

    if is_stdin(value):
        data = sys.stdin.buffer.read(MAX_KEY_FILE_LEN + 1)
    else:
        with open(value, "rb") as f:
            data = f.read(MAX_KEY_FILE_LEN + 1)
    if len(data) > MAX_KEY_FILE_LEN:
        raise CliError(f"{key_name(value)}: over {MAX_KEY_FILE_LEN} bytes, too large for a key file", EXIT_KEY)
    return data


def key_name(value: str) -> str:
    return STDIN_NAME if is_stdin(value) else value


# --- passphrases ----------------------------------------------------------------------------


def explicit_passphrase(env: str | None, file: str | None) -> bytes | None:
    """The passphrase given with --passphrase-env or --passphrase-file, if any."""
    if env is not None:
        return passphrase.from_environment(env)
    if file is not None:
        return passphrase.from_file(file)
    return None


def _unlocked(load: Callable[[bytes | None], T], name: str, given: bytes | None, tool: str, where: str | None) -> T:
    """``load(None)`` for a key that is not encrypted; else ``load(passphrase)``, with the given
    passphrase, or one asked on the terminal: a wrong one is asked again, MAX_TRIES times in all.
    A given passphrase serves encrypted keys only, as for -i key files (RsaKeyFileIdentity)."""
    from envelope import InvalidKeyError, PassphraseError

    try:
        return load(None)
    except PassphraseError:
        pass  # encrypted
    except InvalidKeyError as exc:
        raise _key_error(exc, where) from None
    if given is not None:
        return _key_call(functools.partial(load, given), where)
    ask = passphrase.Prompt(f"Passphrase for {name}: ", tool)
    while True:
        secret = ask()
        try:
            return load(secret)
        except PassphraseError as exc:
            if not ask.again():
                raise _key_error(exc, where) from None
        except InvalidKeyError as exc:
            raise _key_error(exc, where) from None


# --- private keys ---------------------------------------------------------------------------


def load_identities(paths: Iterable[str], given_passphrase: bytes | None, tool: str) -> list[Identity]:
    """The identities of the ``-i`` values: one per key file, every key of an age identity file.
    An encrypted key file is unlocked only when a file needs it, with the given passphrase or else
    one asked on the terminal then (the SDK's RsaKeyFileIdentity); a key read from stdin is
    unlocked at once."""
    identities = [identity for path in paths for identity in _identities_in(path, given_passphrase, tool)]
    # As the SDK orders its own key files: one whose key id is unknown until it is unlocked goes
    # last, so that its passphrase is asked for only when no other key matched. sorted() is stable.
    return sorted(identities, key=lambda identity: getattr(identity, "key_id", "") is None)


def _identities_in(path: str, given_passphrase: bytes | None, tool: str) -> list[Identity]:
    """Every key of an age identity file (``AGE-SECRET-KEY-1...`` lines), else the one key of a
    private key file."""
    from envelope import age_identities, is_age_identity_file

    data = read_key(path) if is_stdin(path) else (_peek(path) or b"")
    if is_age_identity_file(data):
        data = data if is_stdin(path) else read_key(path)
        identities = _key_call(functools.partial(age_identities, data), key_name(path))
        if not is_stdin(path):
            warn_if_readable_by_others(path, tool)
        return identities
    if is_stdin(path):
        from envelope import RsaIdentity, parse_private_key

        key = _unlocked(lambda secret: parse_private_key(data, secret), STDIN_NAME, given_passphrase, tool, STDIN_NAME)
        return [RsaIdentity(key)]
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data and b"ssh-ed25519" in _openssh_public(data):
        from envelope import SshEd25519KeyFileIdentity

        identity: Identity
        if given_passphrase is not None:
            identity = _key_call(lambda: SshEd25519KeyFileIdentity(path, given_passphrase))
        else:
            identity = _key_call(lambda: PromptedKeyFile(path, tool, SshEd25519KeyFileIdentity))
        warn_if_readable_by_others(path, tool)
        return [identity]
    return [load_identity(path, given_passphrase, tool)]


def _openssh_public(data: bytes) -> bytes:
    """The clear public key of an OpenSSH private key file, or b"" (then the RSA loader reports)."""
    import base64

    try:
        body = data.split(b"-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1].split(b"-----END", 1)[0]
        return base64.b64decode(b"".join(body.split()))[:200]
    except (IndexError, ValueError):
        return b""


def _peek(path: str) -> bytes | None:
    """The start of a file, to tell an age file from other key files; ``None`` when it cannot be
    read (the loader that follows reports why)."""
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except (OSError, ValueError):
        return None


def load_identity(path: str, given_passphrase: bytes | None, tool: str) -> Identity:
    from envelope import RsaIdentity, RsaKeyFileIdentity, parse_private_key

    if tokens.is_token_key(path):  # a key on a PKCS#11 token
        identity_on_token: Identity = tokens.identity(path)
        return identity_on_token

    if is_stdin(path):
        data = read_key(path)
        key = _unlocked(lambda secret: parse_private_key(data, secret), STDIN_NAME, given_passphrase, tool, STDIN_NAME)
        return RsaIdentity(key)
    identity: Identity
    if given_passphrase is not None:
        identity = _key_call(lambda: RsaKeyFileIdentity(path, given_passphrase))
    else:
        identity = _key_call(lambda: PromptedKeyFile(path, tool))
    warn_if_readable_by_others(path, tool)  # only once the file is known to be a private key
    return identity


class PromptedKeyFile:
    """A private key file (``-i``) given no passphrase: the SDK's RsaKeyFileIdentity, which asks on
    the terminal when the file needs this key (never otherwise); a wrong passphrase is asked again,
    ``MAX_TRIES`` times in all, then the error stands for every later file of the command."""

    def __init__(self, path: str, tool: str, kind: Callable[[str, Any], Any] | None = None) -> None:
        from envelope import RsaKeyFileIdentity

        self.path = path
        self._kind = kind or RsaKeyFileIdentity  # or SshEd25519KeyFileIdentity
        self._ask = passphrase.Prompt(f"Passphrase for {path}: ", tool)
        self._file = self._kind(path, self._ask)

    @property
    def key_id(self) -> str | None:
        return self._file.key_id

    @property
    def unlocked(self) -> bool:
        return bool(self._file.unlocked)

    def unwrap(self, entries: Sequence[Any]) -> Any:
        from envelope import PassphraseError

        while True:
            try:
                return self._file.unwrap(entries)
            except PassphraseError:
                if not self._ask.again():
                    raise  # the SDK identity keeps it: later files fail without asking
                self._file = self._kind(self.path, self._ask)


def warn_if_readable_by_others(path: str, tool: str, what: str = "private key file") -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if mode & 0o077:
        # As ssh does, but a warning: the key may live on a file system without Unix modes.
        report(
            tool,
            f"{what} {path} is accessible by other users (mode {mode:04o}); run: chmod 600 {path}",
            kind="warning",
        )


# --- signing keys (--sign) and signers (--signed-by) ----------------------------------------


def load_signer(value: str, given_passphrase: bytes | None, tool: str) -> KeySigner | Signer:
    """The signing key of ``--sign`` (a file, ``-``, or a ``pkcs11:`` URI), unlocked with the given
    passphrase or one asked on the terminal."""
    from envelope import KeySigner, parse_signing_key

    if tokens.is_token_key(value):
        signer_on_token: Signer = tokens.signer(value)
        return signer_on_token

    name = key_name(value)
    data = read_key(value)
    key = _unlocked(lambda secret: parse_signing_key(data, secret), name, given_passphrase, tool, name)
    if not is_stdin(value):
        warn_if_readable_by_others(value, tool)
    return _key_call(lambda: KeySigner(key), name)


def load_signers(values: Iterable[str]) -> list[Any]:
    """The public keys of ``--signed-by``: the signers an opener accepts."""
    from envelope import parse_verifying_key

    keys = []
    for value in values:
        if tokens.is_token_key(value):  # the public half of a key pair on a PKCS#11 token
            keys.append(tokens.public_key(value))
            continue
        data = read_key(value)
        keys.append(_key_call(functools.partial(parse_verifying_key, data), key_name(value)))
    return keys


def signing_key_id(public_key_der: bytes) -> str:
    """A signer's key id: SHA-256 of its SubjectPublicKeyInfo (spec section 8.1), 64 hex digits."""
    return hashlib.sha256(public_key_der).hexdigest()


# --- public keys (recipients) ---------------------------------------------------------------


def load_recipients(values: Iterable[str], files: Iterable[str]) -> list[RSAPublicKey | Recipient]:
    """Every ``-r`` key and every key of every ``-R`` file, each key once."""
    from envelope import age_recipients, load_public_keys, parse_public_keys

    keys: list[RSAPublicKey | Recipient] = [load_recipient(value) for value in values]
    for path in files:
        if is_stdin(path):
            data = read_key(path)
            parse = age_recipients if _is_age_recipients(data) else parse_public_keys
            keys.extend(_key_call(functools.partial(parse, data), STDIN_NAME))
        elif _is_age_recipients(_peek(path) or b""):
            keys.extend(_key_call(functools.partial(age_recipients, read_key(path)), path))
        else:
            keys.extend(_key_call(functools.partial(load_public_keys, path)))
    return unique(keys)


def _is_age_recipients(data: bytes) -> bool:
    """Whether the first line that is not blank nor a comment is an age recipient (``age1...``) or
    an ``ssh-ed25519`` line: a recipients file as age reads it."""
    for line in data.splitlines():
        line = line.strip()
        if line and not line.startswith(b"#"):
            return line.startswith((b"age1", b"ssh-ed25519 "))
    return False


def load_recipient(value: str) -> RSAPublicKey | Recipient:
    """``-r``: an age recipient (``age1...``), a token's or KMS's RSA key (``pkcs11:...``,
    ``awskms:...``), a public key file (PEM, ssh-rsa line, DER, X.509 certificate, age recipient),
    ``-`` (stdin), or a literal OpenSSH public key line (``-r "ssh-rsa AAAA..."``). A file of several
    keys is refused: that is -R."""
    from envelope import age_recipient, age_recipients, load_public_key, parse_public_key

    if tokens.is_token_key(value):  # an RSA key pair on a PKCS#11 token
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

        key = tokens.public_key(value)
        if not isinstance(key, RSAPublicKey):
            raise CliError(f"{value}: a token signing key is not a recipient (recipients are RSA keys)", EXIT_KEY)
        return key
    if value.startswith(("age1", "ssh-ed25519 ")):
        return _key_call(functools.partial(age_recipient, value), "the key given with -r")
    if not is_stdin(value) and _is_age_recipients(_peek(value) or b""):
        found = _key_call(functools.partial(age_recipients, read_key(value)), value)
        if len(found) != 1:
            raise CliError(f"{value} holds {len(found)} keys: give a file of several recipients with -R", EXIT_USAGE)
        return found[0]
    if _OPENSSH_LINE.match(value):
        return _key_call(functools.partial(parse_public_key, value), "the ssh key given with -r")
    if is_stdin(value):
        return _key_call(functools.partial(parse_public_key, read_key(value)), STDIN_NAME)
    return _key_call(functools.partial(load_public_key, value))


def unique(keys: Iterable[RSAPublicKey | Recipient]) -> list[RSAPublicKey | Recipient]:
    """The keys in order, without repeats (a file may list a key that -r also names)."""
    from envelope import key_id

    seen: set[str] = set()
    result = []
    for key in keys:
        kid = getattr(key, "key_id", None) or key_id(key)  # type: ignore[arg-type]
        if kid not in seen:
            seen.add(kid)
            result.append(key)
    return result


# --- key ids ---------------------------------------------------------------------------------


def key_id_of(value: str) -> bytes:
    """A key id given as 64 hex digits (``sha256:`` prefix allowed), a public key file, or age
    recipient text (``age1...``, an ``ssh-ed25519`` line)."""
    from envelope import key_id

    match = _KEY_ID.fullmatch(value.strip())
    if match:
        return bytes.fromhex(match.group(1))
    if os.path.isfile(value) or value.startswith(("age1", "ssh-ed25519 ")):
        key = load_recipient(value)
        return bytes.fromhex(getattr(key, "key_id", None) or key_id(key))  # type: ignore[arg-type]
    raise CliError(
        f"not a key id: {value!r} (give 64 hex digits, as envelope-info shows, or a public key file)", EXIT_USAGE
    )


# --- shared Fernet keys and a file's passphrase (spec/FORMAT.md 4.5, 4.6) -------------------


def load_fernet_keys(paths: Iterable[str], tool: str) -> list[FernetKey]:
    """``--fernet-key-file``: files holding a key as ``Fernet.generate_key()`` writes it."""
    from envelope import FernetKey

    keys = []
    for path in paths:
        data = read_key(path)
        keys.append(_key_call(functools.partial(FernetKey, data), key_name(path)))
        if not is_stdin(path):
            warn_if_readable_by_others(path, tool, "shared key file")
    return keys


def load_openers(args: argparse.Namespace, tool: str) -> list[Any]:
    """What opens INPUT: the ``-i`` keys (their passphrases from --passphrase-env/-file or the
    terminal) and the ``--fernet-key-file`` keys; with neither, the file's own passphrase (a file
    sealed with ``seal -p``), from --passphrase-env/-file or asked on the terminal only once the
    file is known to have a passphrase entry."""
    from envelope import Passphrase

    given = explicit_passphrase(args.passphrase_env, args.passphrase_file)
    fernet_keys = load_fernet_keys(args.fernet_key_file, tool)
    if args.identity or fernet_keys:
        return [*load_identities(args.identity, given, tool), *fernet_keys]
    source = (lambda: passphrase.as_text(given)) if given is not None else _FilePassphrasePrompt(tool)
    limit = args.max_work_factor
    return [_key_call(lambda: Passphrase(source, max_work_factor=limit) if limit else Passphrase(source))]


class _FilePassphrasePrompt:
    """The passphrase of the file, asked once on the terminal when the SDK needs it."""

    def __init__(self, tool: str) -> None:
        self._ask = passphrase.Prompt("Passphrase for the file: ", tool)

    def __call__(self) -> str | bytes:
        return passphrase.as_text(self._ask())


def new_passphrase(
    args: argparse.Namespace, tool: str, *, env: str | None, file: str | None, generate: bool, prompt: str
) -> Passphrase:
    """A passphrase to seal to (``seal -p``, ``rewrap --add-passphrase``): from ``env`` or ``file``,
    generated (printed once on stderr), or typed twice on the terminal."""
    from envelope import Passphrase

    secret: str | bytes
    if generate:
        made = passphrase.generate()
        print(f"{tool}: the file's passphrase (shown once, keep it safe): {made}", file=sys.stderr, flush=True)
        secret = made
    elif env is not None or file is not None:
        given = explicit_passphrase(env, file)
        assert given is not None
        secret = passphrase.as_text(given)
    else:
        secret = passphrase.as_text(passphrase.from_terminal(prompt, confirm=True))
    return _key_call(lambda: Passphrase(secret, work_factor=args.work_factor))
