"""``envelope migrate-fernet``: turn an old whole-file Fernet token into an envelope file."""

from __future__ import annotations

import argparse

from .errors import EXIT_USAGE, CliError, naming
from .parsing import Subcommands, add_force, add_quiet, add_subcommand

EXAMPLES = """\
  envelope migrate-fernet --token-key-file fernet.key -r alice.pub -o model.env model.pt.enc
  envelope migrate-fernet --token-key-file fernet.key --fernet-key-file fernet.key -o model.env model.pt.enc
  envelope migrate-fernet --token-key-file old.key -p -o notes.env notes.txt.enc   # to a passphrase
  curl -s https://example.org/model.enc | envelope migrate-fernet --token-key-file k -r alice.pub -o model.env -

INPUT is what Fernet(key).encrypt(data) returned, written to a file (a trailing newline is fine).
Checked: the token's form, its HMAC under the key (before anything is decrypted, and again over the
bytes decrypted) and its padding. Not checked: who made it (anyone with the key can) nor when (its
timestamp is shown, no TTL is applied). The plaintext never touches the disk; OUT appears only
once all of it is sealed. From stdin, the token (ciphertext only) is first copied to a temporary
file, since it is read twice."""


def add_parser(subparsers: Subcommands) -> None:
    from .seal import add_sealing_options

    parser = add_subcommand(
        subparsers,
        "migrate-fernet",
        summary="turn a whole-file Fernet token (Fernet(key).encrypt) into an envelope file",
        description="Read the Fernet token in INPUT (or stdin), check it under --token-key-file, and seal\n"
        "its plaintext for the given recipients into OUT, in blocks: memory stays flat whatever the\n"
        "token's size. Recipients are given as for 'envelope seal'; the old key may be one of them\n"
        "(--fernet-key-file), so that the same key opens the new file.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "--token-key-file",
        metavar="KEYFILE",
        required=True,
        help="file holding the Fernet key that made the token (Fernet.generate_key(): 44 base64url characters)",
    )
    add_sealing_options(parser)
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="the envelope file to write (or a URL)")
    parser.add_argument("input", metavar="INPUT", help="file holding the Fernet token ('-': stdin)")
    add_force(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from envelope import DEFAULT_CHUNK_SIZE, migrate_fernet_token

    from . import keyfiles, streams
    from .errors import report
    from .seal import _limits_of_the_arguments, _metadata, check_sealing_options, sealing_keys

    check_sealing_options(args)
    streams.one_stdin(
        ("--token-key-file", [args.token_key_file]), ("-r", args.recipient), ("-R", args.recipients_file),
        ("--sign", [args.sign] if args.sign else []), ("INPUT", [args.input]),
    )  # fmt: skip
    if streams.is_stdio(args.output):
        raise CliError("give -o OUT: the envelope file to write", EXIT_USAGE)
    streams.refuse_same_file(args.input, args.output)
    streams.check_output(args.output, force=args.force, binary=True)
    (token_key,) = keyfiles.load_fernet_keys([args.token_key_file], "envelope")
    metadata = _metadata(args.meta)
    recipients, signer = sealing_keys(args)
    source = sys.stdin.buffer if streams.is_stdio(args.input) else args.input
    with _limits_of_the_arguments(), naming(None if streams.is_stdio(args.input) else args.input):
        result = migrate_fernet_token(
            source, args.output, token_key, recipients,
            metadata=metadata, chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, sign_with=signer,
            overwrite=args.force,
        )  # fmt: skip
    if not args.quiet:
        import datetime

        made = datetime.datetime.fromtimestamp(result.timestamp, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
        report(
            "envelope",
            f"migrated {result.plaintext_len} bytes; the token says it was made {made} (not checked)",
            kind="note",
        )
    return 0
