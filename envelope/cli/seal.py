"""``envelope seal``: encrypt a file or stdin for one or more public keys."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from .errors import EXIT_USAGE, CliError
from .parsing import (
    FORCE_WITHOUT_OUTPUT,
    Subcommands,
    add_force,
    add_passphrase_sources,
    add_quiet,
    add_subcommand,
    chunk_size,
    metadata_pair,
    passphrase_option,
    refuse_idle,
)

EXAMPLES = """\
  envelope seal -r alice.key.pub -o model.env model.safetensors
  envelope seal -r alice.key.pub -r bob.pub --meta name=resnet50 --meta version=3 -o model.env model.pt
  envelope seal -R team-keys.txt --chunk-size 256K -o data.env data.parquet
  envelope seal -r "$(cat alice.age.pub)" -o model.env model.pt            # an age key (age1...)
  envelope seal -r alice.key.pub -o gpt2.env gpt2/                            # a whole folder, one file
  tar c weights/ | envelope seal -r "$(cat ~/.ssh/id_rsa.pub)" > weights.tar.env
  envelope seal -r alice.key.pub --sign builder.key -o model.env model.pt   # signed: who sealed it
  envelope seal -r alice.key.pub -o s3://bucket/model.env model.pt            # with envelope-ml[s3]

A recipients file (-R) holds public keys: PEM blocks, or one ssh-rsa line per key, or one age
recipient (age1..., from age-keygen or envelope keygen --type x25519) or ssh-ed25519 line per line; blank lines and
lines starting with # are skipped. '-' reads it from stdin (then give INPUT).
INPUT and OUT may be URLs (s3://bucket/key, gs://..., any fsspec protocol; pip install
'envelope-ml[s3]' or '[fsspec]'): the object appears once its upload completes, and an existing
one is kept unless --force. Credentials and endpoints come from the environment as the store's
own tools take them (AWS_PROFILE, AWS_ENDPOINT_URL...).
A signing key comes from 'envelope keygen --type ed25519' (or ecdsa-p256, ml-dsa-65); openers
check it with 'envelope open --signed-by builder.key.pub'.
A folder INPUT is sealed whole into one file (-o OUT needed): its file names and sizes are
encrypted with the contents, each file readable on its own. Symbolic links in it are refused;
empty subfolders are not kept. Each file starts a chunk: for many small files, a smaller
--chunk-size wastes less. 'envelope open' gives the folder back."""


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "seal",
        summary="encrypt a file or a folder for one or more public keys",
        description="Encrypt INPUT (or stdin) for the given public keys, into OUT (or stdout).\n"
        "A folder INPUT is sealed whole, as one file.\n"
        "The output file appears only when sealing succeeded; the input is never modified.\n"
        "Metadata (--meta) is stored in plaintext, readable by anyone, and authenticated.\n"
        "With --sign the file also says who sealed it: a signature over the metadata and every chunk.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "-r",
        "--recipient",
        metavar="PUBKEY",
        action="append",
        default=[],
        help="public key file holding one key (PEM, ssh-rsa, ssh-ed25519, DER, X.509 certificate, age1...), an "
        "'ssh-rsa ...' or 'ssh-ed25519 ...' line, an age recipient 'age1...', or '-' (stdin); repeatable",
    )
    parser.add_argument(
        "-R",
        "--recipients-file",
        metavar="FILE",
        action="append",
        default=[],
        help="file of public keys (PEM blocks or ssh-rsa lines, or age1... lines as age -R reads; # comments; "
        "'-': stdin); repeatable",
    )
    parser.add_argument(
        "--sign",
        metavar="SIGNINGKEY",
        help="sign the file with this private key (envelope keygen --type ed25519, ecdsa-p256 or ml-dsa-65; "
        "'-': stdin); an encrypted key takes its passphrase as -i keys do",
    )
    parser.add_argument(
        "--meta",
        metavar="KEY=VALUE",
        type=metadata_pair,
        action="append",
        default=[],
        help="plaintext metadata entry, stored as a string; repeatable",
    )
    parser.add_argument(
        "--chunk-size",
        metavar="N",
        type=chunk_size,
        default=None,
        help="plaintext bytes per chunk: 16 to 16M, K and M suffixes allowed (default: 1M)",
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="output file or URL (default or '-': stdout)")
    parser.add_argument("input", metavar="INPUT", nargs="?", help="file, folder or URL to seal (default or '-': stdin)")
    add_passphrase_sources(parser, prompt_flag=False)
    add_force(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from envelope import DEFAULT_CHUNK_SIZE, seal_file, seal_stream

    from . import keyfiles, progress, streams

    refuse_idle(
        None if args.sign else passphrase_option(args),
        "it unlocks the --sign key, and no --sign is given (recipients are public keys, which have no passphrase)",
    )
    refuse_idle("--force" if args.force and streams.is_stdio(args.output) else None, FORCE_WITHOUT_OUTPUT)
    streams.one_stdin(
        ("-r", args.recipient), ("-R", args.recipients_file), ("--sign", [args.sign] if args.sign else []),
        ("INPUT", [args.input]),
    )  # fmt: skip
    streams.check_output(args.output, force=args.force, binary=True)
    streams.refuse_same_file(args.input, args.output)
    if streams.is_url(args.input) and streams.is_stdio(args.output):
        raise CliError("a URL INPUT is sealed into a file or another URL: give -o OUT", EXIT_USAGE)
    folder = _is_a_folder(args.input)
    if folder and streams.is_stdio(args.output):
        raise CliError(f"{args.input} is a folder, sealed into one file: give -o OUT", EXIT_USAGE)
    metadata = _metadata(args.meta)
    recipients = keyfiles.load_recipients(args.recipient, args.recipients_file)
    if not recipients:
        raise CliError("no recipient: give at least one -r PUBKEY or -R FILE", EXIT_USAGE)
    given = keyfiles.explicit_passphrase(args.passphrase_env, args.passphrase_file)
    signer = keyfiles.load_signer(args.sign, given, "envelope") if args.sign else None
    chunk = args.chunk_size or DEFAULT_CHUNK_SIZE
    if folder:
        from envelope import seal_folder

        with (
            progress.progress_bar("sealing", _folder_size(args.input), quiet=args.quiet) as bar,
            _limits_of_the_arguments(),
        ):
            seal_folder(
                args.input, args.output, recipients,
                metadata=metadata, chunk_size=chunk, sign_with=signer, overwrite=args.force, progress=bar,
            )  # fmt: skip
        return 0
    if not streams.is_stdio(args.input) and not streams.is_stdio(args.output):
        # Paths (or URLs): the SDK reads and writes each chunk at its offset, on every worker.
        with (
            progress.progress_bar("sealing", streams.path_size(args.input), quiet=args.quiet) as bar,
            _limits_of_the_arguments(),
        ):
            seal_file(
                args.input, args.output, recipients,
                metadata=metadata, chunk_size=chunk, sign_with=signer, overwrite=args.force, progress=bar,
            )  # fmt: skip
        return 0
    _say_stdin_is_read(args)
    if streams.is_url(args.output):
        with _limits_of_the_arguments():
            _seal_stdin_to_url(args, recipients, metadata, chunk, signer)
        return 0
    with (
        _limits_of_the_arguments(),
        streams.input_stream(args.input) as src,
        streams.output_stream(args.output, force=args.force) as dst,
        progress.progress_bar("sealing", streams.input_size(src), quiet=args.quiet) as bar,
    ):
        seal_stream(src, dst, recipients, metadata=metadata, chunk_size=chunk, sign_with=signer, progress=bar)
    return 0


def _seal_stdin_to_url(
    args: argparse.Namespace, recipients: list[Any], metadata: dict[str, str], chunk: int, signer: Any
) -> None:
    """stdin into an object: an upload that the SDK commits only once the last chunk is sealed."""
    import sys

    from envelope import open_writer

    from . import progress

    source = sys.stdin.buffer
    with (
        progress.progress_bar("sealing", None, quiet=args.quiet) as bar,
        open_writer(
            args.output, recipients, overwrite=args.force, metadata=metadata, chunk_size=chunk, sign_with=signer
        ) as writer,
    ):
        while block := source.read(chunk):
            writer.write(block)
            if bar is not None:
                bar(len(block))


def _is_a_folder(path: str | None) -> bool:
    import os

    from . import streams

    return not streams.is_stdio(path) and not streams.is_url(path) and os.path.isdir(str(path))


def _folder_size(path: str) -> int:
    """The bytes of every file under ``path`` (the progress bar's 100 %)."""
    import os

    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass  # sealing says why
    return total


def _say_stdin_is_read(args: argparse.Namespace) -> None:
    """Reading a terminal waits for typing, which looks like a hang: say so, unless --quiet."""
    import sys

    from . import streams
    from .errors import report

    if streams.is_stdio(args.input) and not args.quiet and sys.stdin.isatty():
        report(
            "envelope",
            "reading the plaintext to seal from the terminal (stdin); end it with Ctrl-D, or give INPUT",
            kind="note",
        )


@contextlib.contextmanager
def _limits_of_the_arguments() -> Iterator[None]:
    """Sealing reads no envelope file: a limit it hits is the arguments' (the --meta entries, the
    recipients, which the header holds), a usage error (2) rather than an invalid file (3)."""
    from envelope import LimitError

    from .errors import describe

    try:
        yield
    except LimitError as exc:
        raise CliError(
            f"{describe(exc)} (the header holds the --meta entries and the recipients)", EXIT_USAGE
        ) from None


def _metadata(pairs: list[tuple[str, str]]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for key, value in pairs:
        if key in metadata:
            raise CliError(f"metadata key {key!r} given twice", EXIT_USAGE)
        metadata[key] = value
    return metadata
