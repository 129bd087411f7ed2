"""``envelope verify``: authenticate whole files with a private key, writing no plaintext."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import EXIT_OK, describe_for_file, exit_code_for, report
from .parsing import Subcommands, add_identities, add_quiet, add_subcommand

if TYPE_CHECKING:
    from envelope import Identity

EXAMPLES = """\
  envelope verify -i alice.key model.env
  envelope verify -i alice.key -q *.env && echo all good"""


@dataclass(frozen=True)
class Verified:
    metadata: dict[str, Any]
    plaintext_size: int


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "verify",
        summary="check that files are intact and open with a key, writing no plaintext",
        description="Authenticate every byte of each FILE with the private key: header, metadata and\n"
        "every chunk. Nothing is written. Prints an OK line and the verified metadata for each\n"
        "file, and one error line for each file that fails (the exit code is the first failure's).",
        examples=EXAMPLES,
    )
    add_identities(parser, "private key file")
    parser.add_argument("files", metavar="FILE", nargs="+", help="envelope files")
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from envelope import EnvelopeError

    from . import keyfiles
    from .render import metadata_lines

    given = keyfiles.explicit_passphrase(args.passphrase_env, args.passphrase_file)
    keys = keyfiles.load_identities(args.identity, given, "envelope")
    status = EXIT_OK
    for path in args.files:
        try:
            result = authenticate(path, keys, quiet=args.quiet)
        except (EnvelopeError, OSError) as exc:
            report("envelope", describe_for_file(path, exc))
            status = status or exit_code_for(exc)
            continue
        print(f"OK {path} ({result.plaintext_size} bytes of plaintext)")
        if not args.quiet:
            print("  metadata (verified):")
            print("\n".join(metadata_lines(result.metadata)))
    return status


def authenticate(path: str, keys: Sequence[Identity], *, quiet: bool) -> Verified:
    """Verify all of ``path`` (SDK ``verify_file``); count the plaintext it holds."""
    import os

    from envelope import verify_file

    from .progress import progress_bar

    with progress_bar("verifying", os.path.getsize(path), quiet=quiet) as bar:
        result = verify_file(path, keys, progress=bar)
    return Verified(result.metadata, result.plaintext_len)
