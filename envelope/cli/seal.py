"""``envelope seal``: encrypt a file or stdin for one or more public keys."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from .batch import add_jobs, is_batch
from .errors import EXIT_USAGE, CliError
from .parsing import (
    FORCE_WITHOUT_OUTPUT,
    Subcommands,
    add_force,
    add_passphrase_sources,
    add_quiet,
    add_subcommand,
    add_work_factor,
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
  envelope seal -r alice.key.pub -o sealed/ shards/*.parquet     # many files: sealed/NAME.parquet.env each
  tar c weights/ | envelope seal -r "$(cat ~/.ssh/id_rsa.pub)" > weights.tar.env
  envelope seal -r alice.key.pub --sign builder.key -o model.env model.pt   # signed: who sealed it
  envelope seal -r alice.key.pub -o s3://bucket/model.env model.pt            # with envelope-ml[s3]
  envelope seal -p -o secret.env notes.txt                  # to a passphrase, typed twice
  envelope seal --generate-passphrase -o secret.env notes.txt   # a strong one, printed once on stderr
  envelope seal -p --passphrase-file pass.txt -o secret.env notes.txt
  envelope seal --fernet-key-file fernet.key -o model.env model.pt  # the Fernet key of an old script

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
--chunk-size wastes less. 'envelope open' gives the folder back.
A passphrase (-p) is the only recipient of its file (no -r, -R or --fernet-key-file beside it);
with -p, --passphrase-env and --passphrase-file give the file's passphrase, and an encrypted
--sign key asks for its own on the terminal. Without -p they unlock the --sign key.
A shared Fernet key opens the file and can seal files that open with it: it says nothing about
who sealed a file (--sign does).
Several INPUT files (or one, with -o an existing folder, as cp does) are sealed each into its own
file OUT/NAME.env, OUT an existing folder, on --jobs processes. Each output appears complete or
not at all, and all their names are on the disk when the command ends; a file that fails does not
stop the others: each failure gets an error line, then a summary, and the exit code is the
first failure's. A folder INPUT is always sealed alone."""


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "seal",
        summary="encrypt a file or a folder for public keys, a passphrase or shared Fernet keys",
        description="Encrypt INPUT (or stdin) for the given public keys (or a passphrase, or shared Fernet\n"
        "keys), into OUT (or stdout).\n"
        "A folder INPUT is sealed whole, as one file. Several INPUT files are sealed each into OUT/NAME.env.\n"
        "The output file appears only when sealing succeeded; the input is never modified.\n"
        "Metadata (--meta) is stored in plaintext, readable by anyone, and authenticated.\n"
        "With --sign the file also says who sealed it: a signature over the metadata and every chunk.",
        examples=EXAMPLES,
    )
    add_sealing_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file or URL (default or '-': stdout); with several INPUTs, the folder that gets NAME.env for each",
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        nargs="*",
        help="file, folder or URL to seal (default or '-': stdin); several files: each sealed into OUT/NAME.env",
    )
    add_force(parser)
    add_jobs(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def add_sealing_options(parser: argparse.ArgumentParser) -> None:
    """Whom to seal for, and how (shared with ``migrate-fernet``): -r, -R, --fernet-key-file, -p,
    --generate-passphrase, --work-factor, --sign, --meta, --chunk-size, the passphrase sources."""
    parser.add_argument(
        "-r",
        "--recipient",
        metavar="PUBKEY",
        action="append",
        default=[],
        help="public key file holding one key (PEM, ssh-rsa, ssh-ed25519, DER, X.509 certificate, age1...), an "
        "'ssh-rsa ...' or 'ssh-ed25519 ...' line, an age recipient 'age1...', '-' (stdin), 'pkcs11:...' (an RSA "
        "key pair on a token) or 'awskms:KEY' (an RSA KMS key); repeatable",
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
        "--fernet-key-file",
        metavar="KEYFILE",
        action="append",
        default=[],
        help="file holding a shared Fernet key (Fernet.generate_key(): 44 base64url characters) to seal for; "
        "repeatable",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "-p",
        "--passphrase",
        action="store_true",
        help="seal to a passphrase instead of keys: typed twice on the terminal, or read from "
        "--passphrase-env / --passphrase-file",
    )
    secret.add_argument(
        "--generate-passphrase",
        action="store_true",
        help="seal to a strong passphrase made up here (125 bits), printed once on stderr",
    )
    add_work_factor(parser)
    parser.add_argument(
        "--sign",
        metavar="SIGNINGKEY",
        help="sign the file with this private key (envelope keygen --type ed25519, ecdsa-p256 or ml-dsa-65; "
        "'-': stdin; 'pkcs11:...': an EC P-256 or Ed25519 key on a token; 'awskms:KEY': an ECC_NIST_P256 "
        "KMS key); an encrypted key takes its "
        "passphrase as -i keys do",
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
    add_passphrase_sources(parser, prompt_flag=False, whose=" (with -p, the file's; else the --sign key's)")
    from .tokens import add_token_options

    add_token_options(parser)


def check_sealing_options(args: argparse.Namespace) -> None:
    refuse_idle(
        None if args.sign or args.passphrase else passphrase_option(args),
        "it unlocks the --sign key, and no --sign is given (recipients are public keys, which have no passphrase); "
        "to seal to a passphrase, add -p",
    )
    refuse_idle(
        passphrase_option(args) if args.generate_passphrase else None,
        "--generate-passphrase makes the passphrase (an encrypted --sign key asks for its own on the terminal)",
    )


def sealing_keys(args: argparse.Namespace) -> tuple[list[Any], Any]:
    """The recipients and the signer the options name; a passphrase is asked for (or made) here."""
    from . import keyfiles

    to_passphrase = args.passphrase or args.generate_passphrase
    recipients: list[Any] = [
        *keyfiles.load_recipients(args.recipient, args.recipients_file),
        *keyfiles.load_fernet_keys(args.fernet_key_file, "envelope"),
    ]
    if to_passphrase and recipients:
        raise CliError(
            "a passphrase is the only recipient of its file: give no -r, -R or --fernet-key-file with it", EXIT_USAGE
        )
    if not recipients and not to_passphrase:
        raise CliError("no recipient: give at least one -r PUBKEY or -R FILE (or -p: a passphrase)", EXIT_USAGE)
    _note_mixed_post_quantum(recipients, args)
    given = None if to_passphrase else keyfiles.explicit_passphrase(args.passphrase_env, args.passphrase_file)
    if to_passphrase:
        recipients = [
            keyfiles.new_passphrase(
                args, "envelope", env=args.passphrase_env, file=args.passphrase_file,
                generate=args.generate_passphrase, prompt="Passphrase for the file: ",
            )
        ]  # fmt: skip
    signer = keyfiles.load_signer(args.sign, given, "envelope") if args.sign else None
    return recipients, signer


def _note_mixed_post_quantum(recipients: list[Any], args: argparse.Namespace) -> None:
    """age refuses to mix post-quantum and classical recipients; the format allows it (a classical
    fallback may be wanted), so the command says what it costs."""
    from envelope import MlKem768X25519Recipient

    from .errors import report

    hybrid = sum(isinstance(r, MlKem768X25519Recipient) for r in recipients)
    if hybrid and hybrid < len(recipients) and not getattr(args, "quiet", False):
        report(
            "envelope",
            "the file has post-quantum (mlkem768x25519) and classical recipients: it is only as safe "
            "against a quantum computer as its classical recipients are",
            kind="note",
        )


def run(args: argparse.Namespace) -> int:
    from envelope import DEFAULT_CHUNK_SIZE, seal_file, seal_stream

    from . import progress, streams

    if is_batch(args.input, args.output):
        return _seal_batch(args)
    args.input = args.input[0] if args.input else None
    refuse_idle("--jobs" if args.jobs else None, "it shares several INPUTs out, and one is given")
    check_sealing_options(args)
    refuse_idle("--force" if args.force and streams.is_stdio(args.output) else None, FORCE_WITHOUT_OUTPUT)
    streams.one_stdin(
        ("-r", args.recipient), ("-R", args.recipients_file), ("--sign", [args.sign] if args.sign else []),
        ("INPUT", [args.input]),
    )  # fmt: skip
    streams.refuse_same_file(args.input, args.output)
    streams.check_output(args.output, force=args.force, binary=True)
    if streams.is_url(args.input) and streams.is_stdio(args.output):
        raise CliError("a URL INPUT is sealed into a file or another URL: give -o OUT", EXIT_USAGE)
    folder = _is_a_folder(args.input)
    if folder and streams.is_stdio(args.output):
        raise CliError(f"{args.input} is a folder, sealed into one file: give -o OUT", EXIT_USAGE)
    metadata = _metadata(args.meta)
    recipients, signer = sealing_keys(args)
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


def _seal_batch(args: argparse.Namespace) -> int:
    """Several files, each into OUT/NAME.env (envelope.seal_files), with one progress bar."""
    from envelope import DEFAULT_CHUNK_SIZE, seal_files

    from . import batch, progress, streams

    check_sealing_options(args)
    signing = [args.sign] if args.sign else []
    streams.one_stdin(("-r", args.recipient), ("-R", args.recipients_file), ("--sign", signing))
    pairs = batch.outputs(args.input, args.output, sealing=True)
    metadata = _metadata(args.meta)
    recipients, signer = sealing_keys(args)
    with (
        progress.progress_bar("sealing", batch.input_total(args.input), quiet=args.quiet) as bar,
        _limits_of_the_arguments(),
    ):
        results = seal_files(
            pairs, recipients, metadata=metadata, chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE,
            sign_with=signer, overwrite=args.force, workers=args.jobs, progress=bar,
        )  # fmt: skip
    return batch.summarise("envelope", results, "sealing")


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
