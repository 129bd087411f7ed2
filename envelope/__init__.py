"""envelope: hybrid envelope encryption for ML models and data.

Seal bytes, streams or files for one or more RSA public keys; open them with a private key. The
format is documented in ``spec/FORMAT.md``. Nothing heavy is imported here: model adapters import
their frameworks only when used.

    >>> import envelope
    >>> key = envelope.generate_private_key()
    >>> sealed = envelope.seal(b"weights", key.public_key(), metadata={"name": "demo"})
    >>> envelope.open(sealed, key)
    b'weights'
"""

from __future__ import annotations

from .core import (
    DEFAULT_CHUNK_SIZE,
    Opened,
    open,  # noqa: A004 - envelope.open mirrors envelope.seal; the builtin stays reachable as builtins.open
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
    NoMatchingKeyError,
    UnsupportedError,
    UsageError,
)
from .fileio import EnvelopeReader, EnvelopeWriter
from .files import open_file, rewrap_file, seal_file, verify_file
from .inspect import Inspection, RecipientInfo, inspect
from .keys import (
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
)
from .recipients import Identity, Recipient, RsaIdentity, RsaRecipient

__version__ = "0.1.0"

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
    "NoMatchingKeyError",
    "Opened",
    "Recipient",
    "RecipientInfo",
    "RsaIdentity",
    "RsaRecipient",
    "UnsupportedError",
    "UsageError",
    "__version__",
    "generate_private_key",
    "inspect",
    "key_id",
    "load_private_key",
    "load_public_key",
    "open",
    "open_file",
    "open_stream",
    "open_with_metadata",
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
