"""``envelope rewrap``: add or remove recipients by rewriting the header only (spec section 9)."""

from __future__ import annotations

import argparse
import os
import stat
from typing import Any

from .errors import EXIT_USAGE, CliError, naming
from .parsing import (
    FORCE_WITHOUT_OUTPUT,
    Subcommands,
    add_force,
    add_identities,
    add_quiet,
    add_subcommand,
    add_work_factor,
    refuse_idle,
)

EXAMPLES = """\
  envelope rewrap -i alice.key --add bob.pub -o model-for-bob.env model.env
  envelope rewrap -i alice.key --remove 3fa2...c9 --in-place model.env
  envelope rewrap -i alice.key --add carol.pub --remove bob.pub --in-place model.env
  envelope rewrap --add alice.pub --in-place secret.env     # a passphrase file to a key: asks the passphrase
  envelope rewrap --add-passphrase --in-place secret.env    # to a new passphrase (asked twice)
  envelope rewrap -i alice.key --add-passphrase --remove alice.pub -o secret.env model.env
  envelope rewrap --fernet-key-file old.key --add alice.pub --remove $KEYID --in-place data.env

FILE and OUT may be URLs (s3://bucket/key, with envelope-ml[s3]); --in-place on an object
uploads the new one and replaces the old only once the upload completes.
Key ids are the ones envelope-info and envelope keygen print (64 hex digits).
A passphrase is the only recipient of its file: adding recipients to a passphrase file replaces
the passphrase, and adding a passphrase needs every other recipient removed (--remove).
Removing a recipient does not take back what it could already read: it knew the file's data key.
To revoke access, seal the plaintext again."""


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "rewrap",
        summary="add or remove recipients without re-encrypting the payload",
        description="Change the recipients of FILE. Only the header is rewritten; the payload bytes are\n"
        "copied unchanged. Needs a private key that opens FILE. The output appears atomically;\n"
        "--in-place replaces FILE (keeping its mode) only once the new file is complete.",
        examples=EXAMPLES,
    )
    add_identities(parser, "private key that opens FILE")
    parser.add_argument(
        "--add-fernet-key-file",
        metavar="KEYFILE",
        action="append",
        default=[],
        help="shared Fernet key to add as a recipient (a file of Fernet.generate_key()); repeatable",
    )
    new = parser.add_mutually_exclusive_group()
    new.add_argument(
        "-p",
        "--add-passphrase",
        action="store_true",
        help="add a passphrase (the file's only recipient), typed twice on the terminal",
    )
    new.add_argument("--new-passphrase-env", metavar="VAR", help="add the passphrase held by environment variable VAR")
    new.add_argument("--new-passphrase-file", metavar="FILE", help="add the passphrase on the first line of FILE")
    new.add_argument(
        "--generate-passphrase",
        action="store_true",
        help="add a strong passphrase made up here, printed once on stderr",
    )
    add_work_factor(parser)
    parser.add_argument(
        "--add",
        metavar="PUBKEY",
        action="append",
        default=[],
        help="public key to add as a recipient ('-': stdin); repeatable",
    )
    parser.add_argument(
        "--remove",
        metavar="KEYID",
        action="append",
        default=[],
        help="recipient to remove: key id (hex) or public key file; repeatable",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("-o", "--output", metavar="OUT", help="output file or URL (default or '-': stdout)")
    target.add_argument("--in-place", action="store_true", help="replace FILE")
    parser.add_argument("file", metavar="FILE", help="envelope file or URL ('-': stdin)")
    add_force(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from envelope import rewrap_stream

    from . import keyfiles, streams

    if args.force:
        refuse_idle("--force" if args.in_place else None, "--in-place replaces FILE already")
        refuse_idle("--force" if streams.is_stdio(args.output) else None, FORCE_WITHOUT_OUTPUT)
    streams.one_stdin(
        ("-i", args.identity), ("--fernet-key-file", args.fernet_key_file), ("--add", args.add), ("FILE", [args.file])
    )
    to_passphrase = (
        args.add_passphrase or args.generate_passphrase or args.new_passphrase_env or args.new_passphrase_file
    )
    if not (args.add or args.remove or args.add_fernet_key_file or to_passphrase):
        raise CliError("nothing to do: give --add PUBKEY, --add-passphrase and/or --remove KEYID", EXIT_USAGE)
    if args.in_place and streams.is_stdio(args.file):
        raise CliError("--in-place needs a file, not stdin", EXIT_USAGE)
    output = args.file if args.in_place else args.output
    remote = streams.is_url(args.file) or streams.is_url(output)
    if remote and (streams.is_stdio(args.file) or streams.is_stdio(output)):
        raise CliError(
            "with a URL, FILE and OUT are files or URLs: give -o OUT or --in-place, not stdin or stdout", EXIT_USAGE
        )
    if not args.in_place:
        streams.refuse_same_file(args.file, output)
        streams.check_output(output, force=args.force, binary=True)
    add: list[Any] = [
        *keyfiles.load_recipients(args.add, []),
        *keyfiles.load_fernet_keys(args.add_fernet_key_file, "envelope"),
    ]
    if to_passphrase:
        if add:
            raise CliError("a passphrase is the only recipient of its file: give no --add with it", EXIT_USAGE)
        add = [
            keyfiles.new_passphrase(
                args, "envelope", env=args.new_passphrase_env, file=args.new_passphrase_file,
                generate=args.generate_passphrase, prompt="New passphrase for the file: ",
            )
        ]  # fmt: skip
    remove = [keyfiles.key_id_of(value) for value in args.remove]
    keys = keyfiles.load_openers(args, "envelope")
    if remote:
        from envelope import rewrap_file

        with naming(args.file):
            rewrap_file(args.file, output, keys, add=add, remove=remove, overwrite=args.force or args.in_place)
        return 0
    with streams.input_stream(args.file) as src:
        info = os.fstat(src.fileno())
        if args.in_place and not stat.S_ISREG(info.st_mode):  # a device or FIFO has no place to rewrite
            raise CliError(f"--in-place needs a regular file: {args.file} is not one", EXIT_USAGE)
        mode = info.st_mode & 0o7777 if args.in_place else None  # keep FILE's mode (a link's: its target's)
        with streams.output_stream(output, force=args.force or args.in_place, mode=mode) as dst, naming(args.file):
            rewrap_stream(src, dst, keys, add=add, remove=remove)
    return 0
