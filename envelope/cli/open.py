"""``envelope open``: decrypt a file with a private key; the output appears only once all of it
authenticated."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .batch import add_jobs, is_batch
from .errors import EXIT_USAGE, CliError, naming, report
from .parsing import (
    FORCE_WITHOUT_OUTPUT,
    Subcommands,
    add_force,
    add_identities,
    add_quiet,
    add_signed_by,
    add_subcommand,
    refuse_idle,
)

if TYPE_CHECKING:
    from envelope import Identity, SignerInfo

EXAMPLES = """\
  envelope open -i alice.key -o model.safetensors model.env
  envelope open -i alice.key --passphrase-env KEY_PASS -o data.parquet data.env
  envelope open -o notes.txt notes.env                       # sealed with -p: asks for its passphrase
  envelope open --fernet-key-file fernet.key -o model.pt model.env
  envelope open -i alice.key --signed-by builder.pub -o model.pt model.env   # only if builder signed it
  envelope open -i alice.key < weights.tar.env | tar x     # streams: see the warning above
  envelope open -i alice.key -o - notes.env                # on the terminal: -o - says so
  envelope open -i alice.key -o model.pt s3://bucket/model.env   # with envelope-ml[s3]
  envelope open -i alice.key -o gpt2/ gpt2.env             # a sealed folder: into the folder gpt2/
  envelope open -i alice.key gpt2.env                      # the same: a folder's OUT defaults to INPUT less .env
  envelope open -i alice.key -o shards/ sealed/*.env       # many files: shards/NAME for each NAME.env

INPUT and OUT may be URLs (s3://bucket/key, any fsspec protocol): a sealed object is read in
ranged reads, its header, final chunk and signature checked first; credentials and endpoints
come from the environment (AWS_PROFILE, AWS_ENDPOINT_URL...)."""


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "open",
        summary="decrypt a file with a private key, a passphrase or a shared Fernet key",
        description="Decrypt INPUT (or stdin) with a private key, into OUT (or stdout).\n\n"
        "With -o, OUT (mode 0600) appears only after every byte of the file authenticated: a\n"
        "modified or truncated file leaves nothing behind. A device or FIFO (-o /dev/stdout,\n"
        "-o >(cmd)) is written into as stdout is.\n"
        "Writing to stdout streams each chunk once it verified: if the file is damaged further on,\n"
        "the command exits non-zero AFTER part of the plaintext was written. Use -o when that matters.\n"
        "Plaintext is not written to a terminal unless -o - asks for it.\n\n"
        "A signed file says who sealed it. --signed-by PUBKEY requires one of the given signers\n"
        "(before any plaintext is released where the output allows); without it, a signed file\n"
        "opens if its signature verifies, and who signed it is said on stderr (not pinned).\n\n"
        "An encrypted private key takes its passphrase from --passphrase-env or --passphrase-file,\n"
        "or asks for it on the terminal (three tries).\n\n"
        "Without -i and --fernet-key-file, a file sealed to a passphrase (envelope seal -p) opens\n"
        "with its passphrase: from --passphrase-env or --passphrase-file, or asked once on the\n"
        "terminal. A wrong one fails as a modified file does (the format cannot tell them apart).\n"
        "A file whose scrypt work factor is over 20 (1 GiB) is refused unless --max-work-factor.\n\n"
        "A sealed folder (envelope seal DIR) opens into the folder OUT, by default INPUT less .env.\n"
        "It is written under a hidden name beside OUT and renamed into place only once every\n"
        "byte authenticated (files 0600, folders 0700); an existing OUT is kept unless --force.\n\n"
        "Several INPUT files NAME.env (or one, with -o an existing folder) open each into OUT/NAME,\n"
        "OUT an existing folder, on --jobs processes: each output appears only once its file\n"
        "authenticated, and all their names are on the disk when the command ends. A file that fails\n"
        "does not stop the others; each failure gets an error line, then a summary, and the exit\n"
        "code is the first failure's. A sealed folder opens alone.",
        examples=EXAMPLES,
    )
    add_identities(parser, "private key file (PEM, DER or OpenSSH), the matching one is used")
    add_signed_by(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file or URL (default or '-': stdout, streamed); for a sealed folder, the folder to create; "
        "with several INPUTs, the existing folder that gets each one's NAME less .env",
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        nargs="*",
        help="envelope file or URL (default or '-': stdin); several NAME.env files: each opened into OUT/NAME",
    )
    add_force(parser)
    add_jobs(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from envelope import open_file, open_stream

    from . import keyfiles, progress, streams
    from .checks import unpinned_note

    if len(args.input) > 1 or (not _is_a_folder(_first(args.input)) and is_batch(args.input, args.output)):
        return _open_batch(args)
    refuse_idle("--jobs" if args.jobs else None, "it shares several INPUTs out, and one is given")
    args.input = _first(args.input)
    streams.one_stdin(
        ("-i", args.identity),
        ("--fernet-key-file", args.fernet_key_file),
        ("--signed-by", args.signed_by),
        ("INPUT", [args.input]),
    )
    if _is_a_folder(args.input):
        return _open_folder(args)
    refuse_idle("--force" if args.force and streams.is_stdio(args.output) else None, FORCE_WITHOUT_OUTPUT)
    streams.refuse_plaintext_to_terminal(args.output)
    streams.refuse_same_file(args.input, args.output)
    streams.check_output(args.output, force=args.force, binary=False)
    if streams.is_url(args.output) and streams.is_stdio(args.input):
        raise CliError("plaintext goes to a URL from a file or URL INPUT, not from stdin", EXIT_USAGE)
    pins = keyfiles.load_signers(args.signed_by) if args.signed_by else None
    keys = keyfiles.load_openers(args, "envelope")
    name = None if streams.is_stdio(args.input) else args.input
    signer: SignerInfo | None
    if name is not None and not streams.is_stdio(args.output):
        # Paths (or URLs): the SDK reads and writes each chunk at its offset, on every worker.
        with (
            progress.progress_bar("opening", lambda: streams.plaintext_size(name), quiet=args.quiet) as bar,
            naming(name),
        ):
            signer = open_file(name, args.output, keys, signed_by=pins, overwrite=args.force, progress=bar).signer
    elif streams.is_url(name):
        signer = _url_to_stdout(args, keys, pins)
    else:
        # The input opens first: a missing input creates no output.
        with (
            streams.input_stream(args.input) as src,
            streams.output_stream(args.output, force=args.force, private=True) as dst,
            progress.progress_bar("opening", lambda: streams.plaintext_size(name), quiet=args.quiet) as bar,
            naming(name),
        ):
            signer = open_stream(src, dst, keys, signed_by=pins, progress=bar).signer
    if signer is not None and pins is None and not args.quiet:
        report("envelope", unpinned_note(signer), kind="note")
    return 0


def _first(inputs: list[str]) -> str | None:
    return inputs[0] if inputs else None


def _open_batch(args: argparse.Namespace) -> int:
    """Several files, each NAME.env into OUT/NAME (envelope.open_files), with one progress bar."""
    from envelope import open_files

    from . import batch, keyfiles, progress, streams

    streams.one_stdin(
        ("-i", args.identity), ("--fernet-key-file", args.fernet_key_file), ("--signed-by", args.signed_by)
    )
    pairs = batch.outputs(args.input, args.output, sealing=False)
    pins = keyfiles.load_signers(args.signed_by) if args.signed_by else None
    keys = keyfiles.load_openers(args, "envelope")
    with progress.progress_bar("opening", batch.plaintext_total(args.input), quiet=args.quiet) as bar:
        results = open_files(pairs, keys, signed_by=pins, overwrite=args.force, workers=args.jobs, progress=bar)
    if pins is None and not args.quiet:
        batch.signer_notes("envelope", results)
    return batch.summarise("envelope", results, "opening")


def _url_to_stdout(args: argparse.Namespace, keys: list[Identity], pins: list[Any] | None) -> SignerInfo | None:
    """An object to stdout through the SDK's verified ranged reader: its header, final chunk and
    signature are checked before the first byte is written, and each chunk before its bytes are."""
    from envelope import DEFAULT_CHUNK_SIZE, open_reader

    from . import progress, streams

    with (
        progress.progress_bar("opening", lambda: streams.plaintext_size(args.input), quiet=args.quiet) as bar,
        naming(args.input),
        open_reader(args.input, keys, signed_by=pins) as reader,
        streams.output_stream(args.output, force=args.force, private=True) as dst,
    ):
        while block := reader.read(DEFAULT_CHUNK_SIZE):
            dst.write(block)
            if bar is not None:
                bar(len(block))
        signer: SignerInfo | None = reader.signer
    return signer


def _is_a_folder(path: str | None) -> bool:
    """Whether INPUT's header marks a sealed folder (unverified: opening it checks the marking
    again, verified). A file whose header cannot be read is left to the usual path to report."""
    from envelope import EnvelopeError, inspect, is_folder

    from . import streams

    if streams.is_stdio(path):
        return False
    try:
        return is_folder(inspect(str(path)).unverified_metadata)
    except (EnvelopeError, OSError):
        return False


def _open_folder(args: argparse.Namespace) -> int:
    """A sealed folder into the folder OUT, which appears only once all of it authenticated."""
    from envelope import open_folder

    from . import keyfiles, progress, streams
    from .checks import unpinned_note

    name = str(args.input)
    target = args.output
    if target is None:
        if streams.is_url(name) or not name.endswith(".env") or not name[:-4].rstrip("/"):
            raise CliError(f"{name} is a sealed folder: give -o DIR, the folder to create", EXIT_USAGE)
        target = name[:-4]
    if streams.is_stdio(target) or streams.is_url(target):
        raise CliError(f"{name} is a sealed folder, which opens into a local folder: give -o DIR", EXIT_USAGE)
    pins = keyfiles.load_signers(args.signed_by) if args.signed_by else None
    keys = keyfiles.load_openers(args, "envelope")
    with (
        naming(name),
        open_folder(name, keys, signed_by=pins) as folder,
        progress.progress_bar("opening", sum(m.size for m in folder.members), quiet=args.quiet) as bar,
    ):
        folder.extract(target, overwrite=args.force, progress=bar)
        signer = folder.signer
    if signer is not None and pins is None and not args.quiet:
        report("envelope", unpinned_note(signer), kind="note")
    return 0
