"""Keys on workers: what of a key may travel in a pickled task (a Dask graph), and how a worker
loads the key a task names. Public keys travel as PEM; a private key travels only as a path or the
name of an environment variable, and each process loads it once per version (docs/REMOTE.md, "Keys
on workers"). The ``envelope::`` filesystem and ``envelope.dask`` both follow these rules."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .errors import UsageError
from .keys import load_private_key, parse_private_key, public_key_pem

__all__ = ["KEY_IN_GRAPH", "load_identities", "looks_like_key_text", "portable_identity", "portable_recipients"]

KEY_IN_GRAPH = (
    "this envelope filesystem holds private key material, which is never pickled (a Dask task graph "
    "would carry it in the clear): give identity as a path that the workers can read, or "
    "identity_env as the name of an environment variable they have"
)

SYMMETRIC_KEY_IN_GRAPH = (
    "a passphrase or a shared Fernet key is secret key material, which is never pickled (a Dask task "
    "graph would carry it in the clear): seal to public keys there"
)


def looks_like_key_text(value: str) -> bool:
    # A str is a path (the SDK's rule); this only keeps key text passed by mistake from being
    # pickled into a task graph, or tried as a file name: paths hold neither newlines nor PEM armour.
    return "\n" in value or "-----" in value or value.lstrip().startswith("ssh-")


def _as_items(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def portable_identity(value: Any) -> Any:
    """What of an identity option may be pickled: paths, and identity objects that are neither RSA
    private keys nor hold one (a KMS identity holds a reference)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa, x25519

    from ._fernetkey import FernetKey
    from ._scrypt import Passphrase
    from .recipients import MlKem768X25519Identity, RsaIdentity, SshEd25519Identity, X25519Identity

    holders = (RsaIdentity, X25519Identity, SshEd25519Identity, MlKem768X25519Identity)
    for item in _as_items(value):
        if isinstance(item, (bytes, bytearray, rsa.RSAPrivateKey, x25519.X25519PrivateKey, ed25519.Ed25519PrivateKey)):
            raise UsageError(KEY_IN_GRAPH)
        if isinstance(item, (*holders, FernetKey, Passphrase)):
            raise UsageError(KEY_IN_GRAPH)
        if isinstance(item, str) and looks_like_key_text(item):
            raise UsageError(KEY_IN_GRAPH)
        if not isinstance(item, (str, os.PathLike)):
            _check_travels(item)
    return value


def _check_travels(item: Any) -> None:
    """An identity object (a token or KMS key) travels only if it pickles: say so here, not as a
    pickling error from inside Dask."""
    import pickle

    try:
        pickle.dumps(item)
    except (TypeError, AttributeError, pickle.PicklingError) as exc:
        raise UsageError(
            f"this identity ({type(item).__name__}) cannot travel to other processes ({exc}): give identity as "
            "a key path the workers can read, identity_env, or an identity that pickles without secrets "
            "(envelope.aws_kms.KmsIdentity does)"
        ) from None


def portable_recipients(value: Any) -> Any:
    """Public keys travel as PEM, or as age's text for the kinds of FORMAT.md 4.2-4.4 (key objects
    do not pickle)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa, x25519

    from ._fernetkey import FernetKey
    from ._scrypt import Passphrase
    from .recipients import MlKem768X25519Recipient, RsaRecipient, SshEd25519Recipient, X25519Recipient

    def portable(item: Any) -> Any:
        if isinstance(item, (FernetKey, Passphrase)):  # secret keys: they would travel in the clear
            raise UsageError(SYMMETRIC_KEY_IN_GRAPH)
        if isinstance(item, rsa.RSAPublicKey):
            return public_key_pem(item)
        if isinstance(item, RsaRecipient):
            return public_key_pem(item.public_key)
        if isinstance(item, x25519.X25519PublicKey):
            return X25519Recipient(item).to_age()
        if isinstance(item, (X25519Recipient, MlKem768X25519Recipient)):
            return item.to_age()
        if isinstance(item, SshEd25519Recipient):
            ssh = serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            return item.public_key.public_bytes(*ssh).decode()
        return item

    items = [portable(item) for item in _as_items(value)]
    return items


def load_identities(identity: Any, identity_env: str | None) -> list[Any]:
    """The identities to open files with. Keys named by a path or an environment variable are
    loaded once per process and version (a Dask worker opening many files loads its key once; a
    key file that changes is loaded again): loading checks the key's numbers, which costs more
    than opening a small file."""
    found: list[Any] = []
    if identity_env is not None:
        text = os.environ.get(identity_env)
        if not text:
            raise UsageError(f"the environment variable {identity_env} (identity_env) is not set")
        # The key itself (PEM): a path goes in identity=.
        token = ("env", hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest())
        found.append(_loaded_once(token, lambda: parse_private_key(text)))
    if identity is not None:
        for item in _as_items(identity):
            if isinstance(item, str) and looks_like_key_text(item):
                raise UsageError(
                    "identity takes a key file's path or a key object, not key text: "
                    "load it with envelope.parse_private_key"
                )
            if isinstance(item, (str, os.PathLike)):
                found.extend(_key_file(item))
            else:
                found.append(item)
    if not found:
        raise UsageError(
            "opening an envelope:: file needs a private key: envelope={'identity': key or key path} "
            "or envelope={'identity_env': 'VARIABLE'}"
        )
    return found


_LOADED_KEYS: dict[tuple[Any, ...], Any] = {}  # (where a key came from, its version) -> the key
_LOADED_KEYS_LOCK = threading.Lock()
_LOADED_KEYS_MAX = 16


def _key_file(path: str | os.PathLike[str]) -> list[Any]:
    """The keys of a key file: an RSA private key, or every identity of an age identity file or of
    an OpenSSH Ed25519 key file (FORMAT.md 4.2-4.4; an encrypted one cannot be unlocked here)."""
    try:
        info = os.stat(path)
    except OSError:
        return [load_private_key(path)]  # which says what is wrong with the path
    token = ("file", os.path.abspath(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    return list(_loaded_once(token, lambda: _load_key_file(path)))


def _load_key_file(path: str | os.PathLike[str]) -> tuple[Any, ...]:
    from .recipients import RsaKeyFileIdentity, key_file_identities

    identities = key_file_identities(path)
    if len(identities) == 1 and isinstance(identities[0], RsaKeyFileIdentity):
        return (load_private_key(path),)  # the RSA path as before: the key, checked once
    return tuple(identities)


def _loaded_once(token: tuple[Any, ...], load: Callable[[], Any]) -> Any:
    with _LOADED_KEYS_LOCK:
        key = _LOADED_KEYS.get(token)
    if key is None:
        key = load()
        with _LOADED_KEYS_LOCK:
            if len(_LOADED_KEYS) >= _LOADED_KEYS_MAX:
                _LOADED_KEYS.clear()
            _LOADED_KEYS[token] = key
    return key
