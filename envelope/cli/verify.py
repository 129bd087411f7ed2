"""``envelope verify``: authenticate whole files with a private key, writing no plaintext."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .batch import add_jobs
from .errors import EXIT_OK, describe_for_file, exit_code_for, report
from .parsing import Subcommands, add_identities, add_quiet, add_signed_by, add_subcommand

if TYPE_CHECKING:
    from .checks import Verified

EXAMPLES = """\
  envelope verify -i alice.key model.env
  envelope verify -i alice.key -q *.env && echo all good
  envelope verify -i alice.key --signed-by builder.pub model.env   # and signed by that key
  curl -s https://example.org/model.env | envelope verify -i alice.key -
  envelope verify -i alice.key s3://bucket/model.env     # a URL, with envelope-ml[s3]
  envelope verify -i alice.key gpt2.env                  # a folder: every member, its index, its padding"""


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "verify",
        summary="check that files are intact and open with a key, writing no plaintext",
        description="Authenticate every byte of each FILE with the private key: header, metadata and\n"
        "every chunk, and a signed file's signature. Nothing is written. Prints an OK line, who\n"
        "signed the file, and the verified metadata for each file, and one error line for each\n"
        "file that fails (the exit code is the first failure's). FILE '-' is stdin. Several local\n"
        "files are verified together on --jobs processes; the output is the same, in FILE order.",
        examples=EXAMPLES,
    )
    add_identities(parser, "private key file")
    add_signed_by(parser)
    parser.add_argument("files", metavar="FILE", nargs="+", help="envelope files or URLs ('-': stdin)")
    add_jobs(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from envelope import EnvelopeError

    from . import keyfiles, streams
    from .checks import authenticate, signer_text
    from .render import metadata_lines, printable

    streams.one_stdin(
        ("-i", args.identity),
        ("--fernet-key-file", args.fernet_key_file),
        ("--signed-by", args.signed_by),
        ("FILE", args.files),
    )
    pins = keyfiles.load_signers(args.signed_by) if args.signed_by else None
    keys = keyfiles.load_openers(args, "envelope")
    status = EXIT_OK
    done = _verify_local_files(args, keys, pins)
    for path in args.files:
        name = streams.name_of(path)
        try:
            result = done.pop(path, None) or authenticate(path, keys, signed_by=pins, quiet=args.quiet)
        except (EnvelopeError, OSError) as exc:
            report("envelope", describe_for_file(name, exc))
            status = status or exit_code_for(exc)
            continue
        if result.members is None:
            print(f"OK {printable(name)} ({result.plaintext_size} bytes of plaintext)")
        else:
            print(f"OK {printable(name)} (a folder of {result.members} members, {result.plaintext_size} bytes)")
        if not args.quiet:
            if result.signer is None:
                print("  signed by: nobody (not signed)")
            elif pins:
                print(f"  signed by: {signer_text(result.signer)} (one of --signed-by)")
            else:
                print(f"  signed by: {signer_text(result.signer)} (NOT PINNED: --signed-by PUBKEY requires a signer)")
            print("  metadata (verified):")
            print("\n".join(metadata_lines(result.metadata)))
    return status


def _verify_local_files(args: argparse.Namespace, keys: list[Any], pins: list[Any] | None) -> dict[str, Verified]:
    """With several local files, verify them together on --jobs processes (envelope.verify_files).
    Returns what verified, by path; what failed, and folders (whose member index is checked by
    verify_folder), are left to the one-file path, which reports them in order."""
    from envelope import is_folder, verify_files

    from . import batch, progress, streams
    from .checks import Verified

    local = list(dict.fromkeys(p for p in args.files if not streams.is_stdio(p) and not streams.is_url(p)))
    if len(local) < 2 or args.jobs == 1:
        return {}
    with progress.progress_bar("verifying", batch.plaintext_total(local), quiet=args.quiet) as bar:
        results = verify_files(local, keys, signed_by=pins, workers=args.jobs, progress=bar)
    return {
        r.path: Verified(r.result.metadata, r.result.plaintext_len, r.result.signer)
        for r in results
        if r.result is not None and not is_folder(r.result.metadata)
    }
