"""``envelope keygen``: a new RSA key pair, the private key at mode 0600, the public key beside it."""

from __future__ import annotations

import argparse
import os

from envelope.limits import DEFAULT_KEY_BITS, MAX_KEY_BITS, MIN_KEY_BITS

from .errors import EXIT_IO, EXIT_USAGE, CliError
from .parsing import Subcommands, add_force, add_passphrase_sources, add_quiet, add_subcommand, key_bits

DEFAULT_PATH = "envelope.key"
PUBLIC_SUFFIX = ".pub"

EXAMPLES = """\
  envelope keygen -o alice.key                      # alice.key (0600) and alice.key.pub
  envelope keygen -o alice.key --passphrase-prompt  # encrypt the private key with a passphrase
  PASS=... envelope keygen -o ci.key --passphrase-env PASS --bits 4096"""


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "keygen",
        summary="generate an RSA key pair",
        description="Generate an RSA key pair. The private key is written as PKCS#8 PEM with mode 0600\n"
        "(encrypted when a passphrase is given), the public key as PEM beside it, named\n"
        f"PRIVATE_PATH{PUBLIC_SUFFIX}. Prints the key id (SHA-256 of the public key), as envelope-info\n"
        "shows it for each recipient. A passphrase is never taken from a command-line value.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="PRIVATE_PATH",
        default=DEFAULT_PATH,
        help=f"private key file (default: {DEFAULT_PATH})",
    )
    parser.add_argument(
        "--bits",
        type=key_bits,
        default=DEFAULT_KEY_BITS,
        help=f"RSA modulus size, {MIN_KEY_BITS} to {MAX_KEY_BITS} (default: {DEFAULT_KEY_BITS})",
    )
    add_passphrase_sources(parser, prompt_flag=True)
    add_force(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import envelope
    from envelope import atomic_output

    private_path: str = args.output
    public_path = private_path + PUBLIC_SUFFIX
    if private_path == "-":
        raise CliError("keygen writes files: give a path with -o", EXIT_USAGE)
    for path in (private_path, public_path):
        if not args.force and os.path.lexists(path):
            raise CliError(f"{path} exists (use --force to replace it)", EXIT_IO)
    secret = _new_passphrase(args)
    key = envelope.generate_private_key(args.bits)
    # atomic_output(private=True) creates its file with mode 0600 (unnamed with O_TMPFILE, else
    # by mkstemp) and names it only once complete, failing if the name appeared meanwhile: the key
    # is never readable by others, never half-written.
    with atomic_output(private_path, overwrite=args.force, private=True) as out:
        out.write(envelope.private_key_pem(key, secret))
    with atomic_output(public_path, overwrite=args.force) as out:
        out.write(envelope.public_key_pem(key))
    kid = envelope.key_id(key)
    if args.quiet:
        print(kid)
    else:
        state = "encrypted with a passphrase" if secret else "not encrypted"
        print(f"private key: {private_path} (mode 0600, {state})")
        print(f"public key:  {public_path}")
        print(f"key id:      {kid}")
    return 0


def _new_passphrase(args: argparse.Namespace) -> bytes | None:
    from . import keyfiles, passphrase

    given = keyfiles.explicit_passphrase(args.passphrase_env, args.passphrase_file)
    if given is None and args.passphrase_prompt:
        return passphrase.from_terminal("New passphrase for the private key: ", confirm=True)
    return given
