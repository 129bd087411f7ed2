"""envelope: hybrid envelope encryption for ML models and data.

Seal bytes, streams or files for one or more RSA public keys; open them with a private key. The
format is documented in ``spec/FORMAT.md``. Nothing heavy is imported here: names are loaded on
first use (so ``envelope-info`` starts fast), and model adapters (``envelope.models``) import their
frameworks only when called.

    >>> import envelope
    >>> key = envelope.generate_private_key()
    >>> sealed = envelope.seal(b"weights", key.public_key(), metadata={"name": "demo"})
    >>> envelope.open(sealed, key)
    b'weights'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Where each public name lives. Importing a submodule costs tens of milliseconds (cryptography's
# X.509 and RSA code), which a command such as ``envelope-info --help`` should not pay for.
_EXPORTS = {
    "core": ["DEFAULT_CHUNK_SIZE", "Opened", "open", "open_stream", "open_with_metadata", "rewrap", "rewrap_stream",
             "seal", "seal_stream"],
    "errors": ["AuthenticationError", "EnvelopeError", "InvalidKeyError", "LimitError", "MalformedError",
               "MissingDependencyError", "NoMatchingKeyError", "UnsupportedError", "UsageError"],
    "fileio": ["EnvelopeReader", "EnvelopeWriter"],
    "files": ["open_file", "rewrap_file", "seal_file", "verify_file"],
    "inspection": ["Inspection", "RecipientInfo", "inspect"],
    "keys": ["generate_private_key", "key_id", "load_private_key", "load_public_key", "load_public_keys",
             "parse_private_key", "parse_public_key", "parse_public_keys", "private_key_pem", "public_key_pem"],
    "recipients": ["Identity", "Recipient", "RsaIdentity", "RsaKeyFileIdentity", "RsaRecipient"],
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AuthenticationError",
    "EnvelopeError",
    "EnvelopeReader",
    "EnvelopeWriter",
    "Identity",
    "Inspection",
    "InvalidKeyError",
    "LimitError",
    "MalformedError",
    "MissingDependencyError",
    "NoMatchingKeyError",
    "Opened",
    "Recipient",
    "RecipientInfo",
    "RsaIdentity",
    "RsaKeyFileIdentity",
    "RsaRecipient",
    "UnsupportedError",
    "UsageError",
    "__version__",
    "generate_private_key",
    "inspect",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_public_keys",
    "open",
    "open_file",
    "open_stream",
    "open_with_metadata",
    "parse_private_key",
    "parse_public_key",
    "parse_public_keys",
    "private_key_pem",
    "public_key_pem",
    "rewrap",
    "rewrap_file",
    "rewrap_stream",
    "seal",
    "seal_file",
    "seal_stream",
    "verify_file",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'envelope' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .core import (
        DEFAULT_CHUNK_SIZE,
        Opened,
        open,  # noqa: A004 - envelope.open mirrors envelope.seal; builtins.open stays reachable
        open_stream,
        open_with_metadata,
        rewrap,
        rewrap_stream,
        seal,
        seal_stream,
    )
    from .errors import (
        AuthenticationError,
        EnvelopeError,
        InvalidKeyError,
        LimitError,
        MalformedError,
        MissingDependencyError,
        NoMatchingKeyError,
        UnsupportedError,
        UsageError,
    )
    from .fileio import EnvelopeReader, EnvelopeWriter
    from .files import open_file, rewrap_file, seal_file, verify_file
    from .inspection import Inspection, RecipientInfo, inspect
    from .keys import (
        generate_private_key,
        key_id,
        load_private_key,
        load_public_key,
        load_public_keys,
        parse_private_key,
        parse_public_key,
        parse_public_keys,
        private_key_pem,
        public_key_pem,
    )
    from .recipients import Identity, Recipient, RsaIdentity, RsaKeyFileIdentity, RsaRecipient
