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
    "atomic": ["atomic_output"],
    "_fernetkey": ["FernetKey"],
    "_scrypt": ["Passphrase"],
    "batch": ["FileResult", "open_files", "seal_files", "verify_files"],
    "core": ["Opened", "StreamResult", "open", "open_stream", "open_with_metadata", "rewrap", "rewrap_stream", "seal",
             "seal_stream"],
    "errors": ["AuthenticationError", "EnvelopeError", "ExternalKeyError", "InvalidKeyError", "LimitError",
               "MalformedError", "MissingDependencyError", "NoMatchingKeyError", "ObjectChangedError",
               "OutputExistsError", "PassphraseError", "RemoteError", "SignatureError", "SignerError",
               "UnsafeModelError",
               "UnsafeOutputError", "UnsupportedError", "UsageError", "WorkerError"],
    "fileio": ["EnvelopeReader", "EnvelopeStreamReader", "EnvelopeWriter", "PlaintextReader", "open_reader",
               "open_writer"],
    "files": ["check_signature", "inspect_signed", "open_file", "rewrap_file", "seal_file", "verify_file"],
    "folders": [
        "FolderEntry",
        "FolderMember",
        "SealedFolder",
        "VerifiedFolder",
        "open_folder",
        "seal_entries",
        "seal_folder",
        "verify_folder",
    ],
    "_external": ["KeyUnwrapper"],
    "_urls": ["is_url"],  # the rule alone, without the file functions' imports
    "_folder": ["is_folder"],  # the same: envelope-info asks it of every header
    "inspection": ["Inspection", "RecipientInfo", "SignerInfo", "inspect"],
    "keys": ["generate_private_key", "key_id", "load_private_key", "load_public_key", "load_public_keys",
             "load_signing_key", "load_verifying_key", "parse_private_key", "parse_public_key", "parse_public_keys",
             "private_key_pem", "public_key_pem", "save_private_key", "save_public_key"],
    "limits": ["DEFAULT_CHUNK_SIZE"],
    "migrate": ["MigratedToken", "migrate_fernet_token"],
    "recipients": ["Identity", "IdentityLike", "MlKem768X25519Identity", "MlKem768X25519Recipient", "Recipient",
                   "RecipientLike", "RsaIdentity", "RsaKeyFileIdentity", "RsaRecipient",
                   "SshEd25519Identity", "SshEd25519KeyFileIdentity", "SshEd25519Recipient",
                   "X25519Identity", "X25519Recipient", "age_identities", "age_recipient", "age_recipients",
                   "is_age_identity_file", "key_file_identities"],
    "signing": ["KeySigner", "SignedBy", "Signer", "SigningKey", "VerifyingKey", "generate_signing_key",
                "parse_signing_key", "parse_verifying_key", "signing_key_pem", "verifying_key_pem"],
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

# ``__all__`` leaves out ``open`` and ``inspect``: ``from envelope import *`` would shadow the
# builtin ``open`` and the standard ``inspect`` module. Use them as ``envelope.open``, ``envelope.inspect``.
__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AuthenticationError",
    "EnvelopeError",
    "EnvelopeReader",
    "EnvelopeStreamReader",
    "EnvelopeWriter",
    "ExternalKeyError",
    "FernetKey",
    "FileResult",
    "FolderEntry",
    "FolderMember",
    "Identity",
    "IdentityLike",
    "Inspection",
    "InvalidKeyError",
    "KeySigner",
    "KeyUnwrapper",
    "LimitError",
    "MalformedError",
    "MigratedToken",
    "MissingDependencyError",
    "MlKem768X25519Identity",
    "MlKem768X25519Recipient",
    "NoMatchingKeyError",
    "ObjectChangedError",
    "Opened",
    "OutputExistsError",
    "Passphrase",
    "PassphraseError",
    "PlaintextReader",
    "Recipient",
    "RecipientInfo",
    "RecipientLike",
    "RemoteError",
    "RsaIdentity",
    "RsaKeyFileIdentity",
    "RsaRecipient",
    "SealedFolder",
    "SignatureError",
    "SignedBy",
    "Signer",
    "SignerError",
    "SignerInfo",
    "SigningKey",
    "SshEd25519Identity",
    "SshEd25519KeyFileIdentity",
    "SshEd25519Recipient",
    "StreamResult",
    "UnsafeModelError",
    "UnsafeOutputError",
    "UnsupportedError",
    "UsageError",
    "VerifiedFolder",
    "VerifyingKey",
    "WorkerError",
    "X25519Identity",
    "X25519Recipient",
    "__version__",
    "age_identities",
    "age_recipient",
    "age_recipients",
    "atomic_output",
    "check_signature",
    "generate_private_key",
    "generate_signing_key",
    "inspect_signed",
    "is_age_identity_file",
    "is_folder",
    "is_url",
    "key_file_identities",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_public_keys",
    "load_signing_key",
    "load_verifying_key",
    "migrate_fernet_token",
    "open_file",
    "open_files",
    "open_folder",
    "open_reader",
    "open_stream",
    "open_with_metadata",
    "open_writer",
    "parse_private_key",
    "parse_public_key",
    "parse_public_keys",
    "parse_signing_key",
    "parse_verifying_key",
    "private_key_pem",
    "public_key_pem",
    "rewrap",
    "rewrap_file",
    "rewrap_stream",
    "save_private_key",
    "save_public_key",
    "seal",
    "seal_entries",
    "seal_file",
    "seal_files",
    "seal_folder",
    "seal_stream",
    "signing_key_pem",
    "verify_file",
    "verify_files",
    "verify_folder",
    "verifying_key_pem",
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
    from ._external import KeyUnwrapper
    from ._fernetkey import FernetKey
    from ._folder import is_folder
    from ._scrypt import Passphrase
    from ._urls import is_url
    from .atomic import atomic_output
    from .batch import FileResult, open_files, seal_files, verify_files
    from .core import (
        Opened,
        StreamResult,
        open_stream,
        open_with_metadata,
        rewrap,
        rewrap_stream,
        seal,
        seal_stream,
    )
    from .core import (
        open as open,  # noqa: A004 - envelope.open mirrors envelope.seal; not in __all__
    )
    from .errors import (
        AuthenticationError,
        EnvelopeError,
        ExternalKeyError,
        InvalidKeyError,
        LimitError,
        MalformedError,
        MissingDependencyError,
        NoMatchingKeyError,
        ObjectChangedError,
        OutputExistsError,
        PassphraseError,
        RemoteError,
        SignatureError,
        SignerError,
        UnsafeModelError,
        UnsafeOutputError,
        UnsupportedError,
        UsageError,
        WorkerError,
    )
    from .fileio import (
        EnvelopeReader,
        EnvelopeStreamReader,
        EnvelopeWriter,
        PlaintextReader,
        open_reader,
        open_writer,
    )
    from .files import check_signature, inspect_signed, open_file, rewrap_file, seal_file, verify_file
    from .folders import (
        FolderEntry,
        FolderMember,
        SealedFolder,
        VerifiedFolder,
        open_folder,
        seal_entries,
        seal_folder,
        verify_folder,
    )
    from .inspection import Inspection, RecipientInfo, SignerInfo
    from .inspection import inspect as inspect  # not in __all__: it would shadow the stdlib module
    from .keys import (
        generate_private_key,
        key_id,
        load_private_key,
        load_public_key,
        load_public_keys,
        load_signing_key,
        load_verifying_key,
        parse_private_key,
        parse_public_key,
        parse_public_keys,
        private_key_pem,
        public_key_pem,
        save_private_key,
        save_public_key,
    )
    from .limits import DEFAULT_CHUNK_SIZE
    from .migrate import MigratedToken, migrate_fernet_token
    from .recipients import (
        Identity,
        IdentityLike,
        MlKem768X25519Identity,
        MlKem768X25519Recipient,
        Recipient,
        RecipientLike,
        RsaIdentity,
        RsaKeyFileIdentity,
        RsaRecipient,
        SshEd25519Identity,
        SshEd25519KeyFileIdentity,
        SshEd25519Recipient,
        X25519Identity,
        X25519Recipient,
        age_identities,
        age_recipient,
        age_recipients,
        is_age_identity_file,
        key_file_identities,
    )
    from .signing import (
        KeySigner,
        SignedBy,
        Signer,
        SigningKey,
        VerifyingKey,
        generate_signing_key,
        parse_signing_key,
        parse_verifying_key,
        signing_key_pem,
        verifying_key_pem,
    )
