"""The ``envelope`` program: keygen, seal, open, rewrap, verify, migrate-fernet."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import keygen, migrate, rewrap, seal, tokens, verify
from . import open as open_command
from .errors import EXIT_CODES_HELP, EXIT_USAGE, guarded
from .parsing import Parser, add_completion, version_text

EXAMPLES = """\
examples:
  envelope keygen -o alice.key                          # alice.key + alice.key.pub, prints the key id
  envelope seal -r alice.key.pub -o model.env model.pt  # encrypt for one or more public keys
  envelope open -i alice.key -o model.pt model.env      # decrypt; output only if all of it is authentic
  envelope verify -i alice.key model.env                # authenticate, write nothing
  envelope rewrap -i alice.key --add bob.pub --in-place model.env
  envelope-info model.env                               # inspect without a key
  envelope keygen --type ed25519 -o builder.key         # a signing key: seal --sign, open --signed-by
  envelope seal -p -o notes.env notes.txt               # to a passphrase (asked twice)
  envelope migrate-fernet --token-key-file fernet.key -r alice.key.pub -o model.env model.enc

Run 'envelope COMMAND --help' for the options and examples of each command; 'man envelope' and
'man envelope-info' have them all. 'python -m envelope' is the same program."""


def build_parser() -> Parser:
    parser = Parser(
        prog="envelope",
        description="Hybrid envelope encryption for ML models and data: recipients with RSA, age (X25519,\n"
        "ssh-ed25519, post-quantum hybrid), passphrase or shared Fernet keys, chunked Fernet payload,\n"
        "authenticated plaintext metadata, optional sender signatures.",
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES_HELP}",
    )
    parser.add_argument("--version", action="version", version=version_text("envelope"))
    add_completion(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (keygen, seal, open_command, rewrap, verify, migrate):
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def run() -> int:
        parser = build_parser()
        if not (sys.argv[1:] if argv is None else argv):  # as git does: the commands, not an error line
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        args = parser.parse_args(argv)
        tokens.configure(args)
        handler = args.handler
        assert callable(handler)
        return int(handler(args))

    return guarded("envelope", run)
