"""Keys held elsewhere, named on the command line: keys on PKCS#11 tokens by RFC 7512 URIs
(``-i 'pkcs11:...'``, ``-r``, ``--sign``, ``--signed-by``, ``keygen --pkcs11``), and AWS KMS keys
as ``awskms:KEY`` (credentials, region and endpoint from boto3's usual sources). The SDK
(``envelope.pkcs11``, ``envelope.aws_kms``) does the work; this module decides where a token's
module and PIN come from, and refuses a PIN written into a URI: argv is visible to every user of
the machine (ps, /proc), as a passphrase would be."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from .errors import EXIT_KEY, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from envelope.pkcs11 import PinSource, Pkcs11Uri

# The token options of this command (one command per process): set by configure().
_SETTINGS: dict[str, str | None] = {"module": None, "pin_env": None, "pin_file": None}

URI_HELP = (
    "a key on a PKCS#11 token is named by an RFC 7512 URI, 'pkcs11:token=LABEL;object=LABEL[;id=%01]"
    "[?module-path=/path/module.so&pin-source=file:/path]'"
)


def add_token_options(parser: argparse.ArgumentParser) -> None:
    """``--pkcs11-module``, ``--pin-env``, ``--pin-file`` (once per parser)."""
    if "--pkcs11-module" in parser._option_string_actions:
        return
    group = parser.add_argument_group(
        "keys on PKCS#11 tokens (pkcs11: URIs)",
        "The module comes from the URI's module-path or module-name, else --pkcs11-module, else\n"
        "ENVELOPE_PKCS11_MODULE. The PIN from --pin-env, --pin-file or the URI's pin-source=file:...,\n"
        "else it is asked on the terminal; a pin-value in a URI on the command line is refused.",
    )
    group.add_argument("--pkcs11-module", metavar="PATH", help="the PKCS#11 module (.so) of the token")
    pins = group.add_mutually_exclusive_group()
    pins.add_argument("--pin-env", metavar="VAR", help="read the token's PIN from environment variable VAR")
    pins.add_argument("--pin-file", metavar="FILE", help="read the token's PIN from the first line of FILE")


def configure(args: argparse.Namespace) -> None:
    for name, option in (("module", "pkcs11_module"), ("pin_env", "pin_env"), ("pin_file", "pin_file")):
        _SETTINGS[name] = getattr(args, option, None)


KMS_PREFIX = "awskms:"


def is_token_key(value: str) -> bool:
    """A key held elsewhere: ``pkcs11:...`` (a token) or ``awskms:KEY`` (an AWS KMS key id, ARN,
    alias name or alias ARN)."""
    from envelope.pkcs11 import is_pkcs11_uri

    return is_pkcs11_uri(value) or value.startswith(KMS_PREFIX)


def _kms_key(value: str) -> str | None:
    if not value.startswith(KMS_PREFIX):
        return None
    key_id = value[len(KMS_PREFIX) :]
    if not key_id or key_id != key_id.strip():
        raise CliError(
            f"{value!r}: give the KMS key after awskms: (a key id, key ARN, alias/NAME or alias ARN)", EXIT_USAGE
        )
    return key_id


def _uri(value: str) -> Pkcs11Uri:
    from envelope import UsageError
    from envelope.pkcs11 import parse_pkcs11_uri

    try:
        uri = parse_pkcs11_uri(value)
    except UsageError as exc:
        raise CliError(f"{exc} ({URI_HELP})", EXIT_USAGE) from None
    if uri.pin_value is not None:
        raise CliError(
            f"{uri}: a pin-value on the command line is visible to every user of this machine (ps, /proc): "
            "use --pin-env VAR, --pin-file FILE, pin-source=file:PATH in the URI, or the prompt",
            EXIT_USAGE,
        )
    return uri


def _pin(uri: Pkcs11Uri, *, ask: bool) -> PinSource:
    """The PIN given with --pin-env or --pin-file; else the URI's pin-source (read by the SDK);
    else a prompt on the terminal (only when ``ask``: a public key may need no PIN)."""
    from . import passphrase

    if _SETTINGS["pin_env"] is not None:
        value = os.environ.get(_SETTINGS["pin_env"])
        if value is None:
            raise CliError(f"environment variable {_SETTINGS['pin_env']} (for --pin-env) is not set", EXIT_USAGE)
        return value
    if _SETTINGS["pin_file"] is not None:
        return passphrase.from_file(_SETTINGS["pin_file"])
    if uri.pin_source is not None or not ask:
        return None
    label = uri.token or "the token"

    def prompt_for_pin() -> bytes:
        try:
            passphrase._require_terminal()
        except CliError:
            raise CliError(
                f"{uri}: the token's PIN is needed but there is no terminal to ask it on: use --pin-env VAR, "
                "--pin-file FILE or pin-source=file:PATH in the URI",
                EXIT_KEY,
            ) from None
        return passphrase.from_terminal(f"PIN for {label}: ")

    return prompt_for_pin


def identity(value: str) -> Any:
    """``-i pkcs11:...``: an RSA key on a token, logged in now (a wrong PIN fails here)."""
    from envelope.pkcs11 import Pkcs11Identity

    kms = _kms_key(value)
    if kms is not None:
        from envelope.aws_kms import KmsIdentity

        return KmsIdentity(kms)
    uri = _uri(value)
    return Pkcs11Identity(uri, module=_SETTINGS["module"], pin=_pin(uri, ask=True))


def signer(value: str) -> Any:
    """``--sign pkcs11:...``: an EC P-256 or Ed25519 key on a token."""
    from envelope.pkcs11 import Pkcs11Signer

    kms = _kms_key(value)
    if kms is not None:
        from envelope.aws_kms import KmsSigner

        return KmsSigner(kms)
    uri = _uri(value)
    return Pkcs11Signer(uri, module=_SETTINGS["module"], pin=_pin(uri, ask=True))


def public_key(value: str) -> Any:
    """``--signed-by pkcs11:...`` (or ``-r``): a token key pair's public key, read without a PIN
    unless one is given (some tokens show public objects only after login)."""
    from envelope.pkcs11 import load_public_key

    kms = _kms_key(value)
    if kms is not None:
        from envelope import aws_kms

        return aws_kms.load_public_key(kms)
    uri = _uri(value)
    return load_public_key(uri, module=_SETTINGS["module"], pin=_pin(uri, ask=False))


def generate(value: str, kind: str, bits: int) -> Any:
    """``keygen --pkcs11 URI``: a key pair made on the token; its public key."""
    from envelope.pkcs11 import generate_key_pair

    uri = _uri(value)
    return generate_key_pair(uri, kind, bits=bits, module=_SETTINGS["module"], pin=_pin(uri, ask=True))
