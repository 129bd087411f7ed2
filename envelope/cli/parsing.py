"""argparse pieces shared by both programs: one-line errors, argument types, common options."""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn, TypeAlias

from envelope.limits import (
    DEFAULT_SCRYPT_WORK_FACTOR,
    MAX_CHUNK_SIZE,
    MAX_KEY_BITS,
    MAX_SCRYPT_WORK_FACTOR,
    MIN_CHUNK_SIZE,
    MIN_KEY_BITS,
    SCRYPT_WORK_FACTOR_CEILING,
    scrypt_memory,
)

from .errors import EXIT_USAGE

RESERVED_METADATA_PREFIX = "envelope."  # spec section 5: for the spec and the SDK's adapters

_SIZE = re.compile(r"(\d+)\s*(k|kib|m|mib)?", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``TOOL: error: ...``, exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # options are an interface: no prefix guessing
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        from .render import printable  # the message may quote an argument: a file name

        tool = self.prog.split()[0]
        self.exit(EXIT_USAGE, f"{tool}: error: {printable(message)} (see '{self.prog} --help')\n")


def chunk_size(text: str) -> int:
    """``65536``, ``64K``, ``64KiB``, ``1M``, ``1MiB``: a chunk size in bytes, within the spec's limits."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 65536, 64K, 1M)")
    size = int(match.group(1)) * _MULTIPLIERS[(match.group(2) or "").lower()]
    if not MIN_CHUNK_SIZE <= size <= MAX_CHUNK_SIZE:
        raise argparse.ArgumentTypeError(f"the chunk size must be 16 bytes to 16M, not {text}")
    return size


def key_bits(text: str) -> int:
    try:
        bits = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bits: {text!r}") from None
    if not MIN_KEY_BITS <= bits <= MAX_KEY_BITS:
        raise argparse.ArgumentTypeError(f"RSA keys must have {MIN_KEY_BITS} to {MAX_KEY_BITS} bits, not {bits}")
    return bits


def work_factor(text: str) -> int:
    """log2 of scrypt's N for a passphrase entry (spec/FORMAT.md 4.5): 1 to 30."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a work factor: {text!r} (an integer, log2 of scrypt's N)") from None
    if not 1 <= value <= SCRYPT_WORK_FACTOR_CEILING:
        raise argparse.ArgumentTypeError(f"the work factor must be 1 to {SCRYPT_WORK_FACTOR_CEILING}, not {value}")
    return value


def add_work_factor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-factor",
        metavar="LN",
        type=work_factor,
        default=DEFAULT_SCRYPT_WORK_FACTOR,
        help=f"scrypt cost of the passphrase: N = 2^LN, memory 2^LN KiB (default {DEFAULT_SCRYPT_WORK_FACTOR}: "
        f"{scrypt_memory(DEFAULT_SCRYPT_WORK_FACTOR) >> 20} MiB, 1 to 2 s on a laptop-class core); readers refuse over "
        f"{MAX_SCRYPT_WORK_FACTOR} unless told",
    )


def metadata_pair(text: str) -> tuple[str, str]:
    """``key=value``: one metadata entry, stored as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, not {text!r}")
    if key.startswith(RESERVED_METADATA_PREFIX):
        raise argparse.ArgumentTypeError(f"metadata keys starting with {RESERVED_METADATA_PREFIX!r} are reserved")
    return key, value


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no informational output")


FORCE_WITHOUT_OUTPUT = "it replaces an existing output file, and the output is stdout (give -o OUT)"


def add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="replace the output file if it exists")


def add_passphrase_sources(parser: argparse.ArgumentParser, *, prompt_flag: bool, whose: str = "") -> None:
    """Where a private key's passphrase comes from (or, where ``whose`` says so, the file's own: a
    file sealed to a passphrase). Never from a command-line value: argv is visible to every user of
    the machine (ps, /proc)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--passphrase-env", metavar="VAR", help=f"read the passphrase from environment variable VAR{whose}"
    )
    group.add_argument(
        "--passphrase-file", metavar="FILE", help=f"read the passphrase from the first line of FILE{whose}"
    )
    if prompt_flag:
        group.add_argument("--passphrase-prompt", action="store_true", help="ask for a passphrase on the terminal")


def passphrase_option(args: argparse.Namespace) -> str | None:
    """The passphrase source given (``--passphrase-env`` or ``--passphrase-file``), if any."""
    if args.passphrase_env is not None:
        return "--passphrase-env"
    if args.passphrase_file is not None:
        return "--passphrase-file"
    return None


def refuse_idle(option: str | None, why: str) -> None:
    """A usage error for an option that would do nothing (``None``: none such was given): exiting 0
    would tell the user it had done something (``seal --passphrase-env`` without ``--sign``)."""
    if option is not None:
        from .errors import CliError

        raise CliError(f"{option} does nothing here: {why}", EXIT_USAGE)


def add_identities(parser: argparse.ArgumentParser, help_text: str) -> None:
    """What opens a file: ``-i/--identity PRIVATEKEY`` and ``--fernet-key-file K`` (repeatable), or
    neither, for a file sealed to a passphrase; the passphrase sources serve the ``-i`` keys, or
    without them the file's passphrase (spec/FORMAT.md 4.5, 4.6)."""
    parser.add_argument(
        "-i",
        "--identity",
        metavar="PRIVATEKEY",
        action="append",
        default=[],
        help=f"{help_text}: a private key file (RSA, or OpenSSH Ed25519 such as ~/.ssh/id_ed25519) or an age "
        "identity file (AGE-SECRET-KEY-1... lines, every key of it tried) ('-': stdin; 'pkcs11:...': a key on a "
        "token; 'awskms:KEY': an AWS KMS key); repeatable. Without -i and --fernet-key-file, the file's passphrase "
        "opens it (a file sealed with 'envelope seal -p')",
    )
    parser.add_argument(
        "--fernet-key-file",
        metavar="KEYFILE",
        action="append",
        default=[],
        help="file holding a shared Fernet key (Fernet.generate_key(): 44 base64url characters); repeatable",
    )
    parser.add_argument(
        "--max-work-factor",
        metavar="LN",
        type=work_factor,
        default=None,
        help=f"open a passphrase file whose scrypt work factor is up to LN (default {MAX_SCRYPT_WORK_FACTOR}: "
        f"{scrypt_memory(MAX_SCRYPT_WORK_FACTOR) >> 30} GiB); a file asking more is refused before any work",
    )
    add_passphrase_sources(parser, prompt_flag=False, whose=" (of the -i keys; without -i, of the file itself)")
    from .tokens import add_token_options

    add_token_options(parser)


def add_signed_by(parser: argparse.ArgumentParser) -> None:
    """``--signed-by PUBKEY`` (repeatable): the signers an opener accepts (spec section 8.4)."""
    parser.add_argument(
        "--signed-by",
        metavar="PUBKEY",
        action="append",
        default=[],
        help="require a valid signature by this signer's public key ('-': stdin; 'pkcs11:...', 'awskms:KEY': a "
        "token's or KMS key's); "
        "repeatable: any one of them. An unsigned file, or one signed by another key, fails with exit code 1",
    )
    from .tokens import add_token_options

    add_token_options(parser)


SHELLS = ("bash", "zsh", "fish")


class _PrintCompletion(argparse.Action):
    """Print the completion script for SHELL and exit, as --version does (no COMMAND needed)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        import sys

        from .completion import script  # only here: generating is no part of the start-up path

        sys.stdout.write(script(parser, str(values)))
        parser.exit()


def add_completion(parser: argparse.ArgumentParser) -> None:
    """``--completion SHELL`` (bash, zsh, fish): a completion script generated from the parser."""
    parser.add_argument(
        "--completion",
        metavar="SHELL",
        choices=SHELLS,
        action=_PrintCompletion,
        help="print the completion script for SHELL (bash, zsh or fish) and exit",
    )


def version_text(tool: str) -> str:
    from envelope import __version__

    return f"{tool} {__version__} (envelope format version 1)"


Subcommands: TypeAlias = "argparse._SubParsersAction[Parser]"


def add_subcommand(subparsers: Subcommands, name: str, *, summary: str, description: str, examples: str) -> Parser:
    """A subcommand whose --help ends with its examples and the exit codes."""
    from .errors import EXIT_CODES_HELP

    parser: Parser = subparsers.add_parser(
        name, help=summary, description=description, epilog=f"examples:\n{examples}\n\n{EXIT_CODES_HELP}"
    )
    return parser
