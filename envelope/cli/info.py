"""The ``envelope-info`` program: what an envelope file's header says, without a key (like
age-inspect), who signed it, and a size breakdown that adds up to the file size. ``--json``
follows the schema of docs/CLI.md (``schema_version`` 2)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from .errors import (
    EXIT_CODES_HELP,
    EXIT_FORMAT,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    describe_for_file,
    exit_code_for,
    guarded,
    report,
)
from .parsing import Parser, add_completion, add_passphrase_sources, add_quiet, add_signed_by, version_text

if TYPE_CHECKING:
    from envelope import Identity, Inspection, SignerInfo

    from .checks import Verified

TOOL = "envelope-info"
# 2: "signer" and "sizes.footer" were added, and "sizes.payload" / "sizes.overhead" of a signed
# file count its signature footer in the payload and not in the overhead.
SCHEMA_VERSION = 2

EXAMPLES = """\
examples:
  envelope-info model.env                    # header, recipients, signer, UNVERIFIED metadata, sizes
  envelope-info --json *.env | jq '.files[] | {path, recipients, signer}'
  envelope-info --signed-by builder.pub model.env  # check the signature: no private key needed
  envelope-info --verify alice.key model.env # authenticate: verified metadata, exact sizes
  cat model.env | envelope-info -            # FILE '-' is stdin
  envelope-info s3://bucket/model.env        # a URL (envelope-ml[s3]): reads the header only

Without --verify or --signed-by nothing shown is authenticated: anyone can write any header. The
metadata and the signer are marked UNVERIFIED, and the plaintext size is given as a range (padding
hides up to 15 bytes of it). --signed-by checks the signature with the signer's public key: that
proves the metadata, the chunk size and count and every chunk's tag are as that key signed them,
but not that the chunks decrypt to what their tags promise, nor the recipient list (which no
signature covers); --verify with a recipient's private key proves everything.
The --json fields are described in 'man envelope-info'."""

# The --json fields, for the manual page (docs/CLI.md has the same table, with types and an example).
JSON_FIELDS = (
    ("", f"One JSON document on stdout: {{\"schema_version\": {SCHEMA_VERSION}, \"files\": [RECORD, ...]}}, one "
     "record per FILE in the order given. Fields may be added within a schema version; none is removed or changes "
     "meaning without a new one. A file that could not be read or parsed has only path and error."),
    ("path", "the FILE as given ('-' for stdin); U+FFFD for each byte of a FILE that is not UTF-8, whose bytes "
     "path_bytes_hex then gives in hex"),
    ("format_version", "the file's format version"),
    ("algorithms", "payload, header_mac, key_wrap (recipient types, comma-separated) and, for a signed file, "
     "signature"),
    ("recipients", "[{type, key_id}] in header order; key_id is 64 hex digits, or null for types without one; "
     "a passphrase entry (type scrypt) adds work_factor: log2 of scrypt's N, as the file states it"),
    ("critical", "the extensions the header names as critical (\"signature\" for a signed file)"),
    ("signer", "null for an unsigned file; else {algorithm, key_id, verified}: verified is true only when "
     "--signed-by or --verify checked the signature"),
    ("metadata", "the metadata in tagged JSON ({\"$bin\": HEX}, {\"$int\": DECIMAL}, {\"$float\": NUMBER}); "
     "unauthenticated unless verified"),
    ("verified", "true only with --verify, when the whole file authenticated"),
    ("chunk_size, chunk_count, token_size", "plaintext bytes per chunk; the number of tokens (null when the "
     "length is impossible or unknown); the length of every token but the last"),
    ("complete", "the payload length is a possible one; null when the length is unknown (a pipe)"),
    ("sizes", "{file, header, payload, footer, plaintext, overhead, exact}: file = header + payload; payload = "
     "plaintext + overhead + footer (the signature footer, 0 when unsigned); plaintext and overhead are "
     "{min, max} ranges, exact with --verify"),
    ("folder", "null, or {members} for a folder (envelope seal DIR): members is the number of files, known only "
     "with --verify (null without: names and sizes are encrypted)"),
    ("error", "null, or {exit_code, message} when this FILE failed (the message is also on stderr)"),
)  # fmt: skip

SIGNATURE_PROVES = "proves: the metadata, chunk size, chunk count and every chunk's tag are as this key signed them"
SIGNATURE_LEAVES = (
    "not proved without a private key: that each chunk matches its tag, and the recipients (not signed); "
    "envelope verify -i KEY proves both"
)


def build_parser() -> Parser:
    parser = Parser(
        prog=TOOL,
        description="Show what envelope files say about themselves: format version, algorithms,\n"
        "recipients (type and key id), signer, metadata, chunks, and a size breakdown (header,\n"
        "chunk overhead, signature footer, plaintext) that adds up to the file size. No key needed.",
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES_HELP}",
    )
    parser.add_argument("--version", action="version", version=version_text(TOOL))
    add_completion(parser)
    parser.add_argument(
        "--json", action="store_true", help=f"machine-readable output (schema_version {SCHEMA_VERSION})"
    )
    parser.add_argument(
        "--verify",
        metavar="PRIVATEKEY",
        action="append",
        default=[],
        help="authenticate each file with this private key ('-': stdin): verified metadata, exact sizes; repeatable",
    )
    add_signed_by(parser)
    add_passphrase_sources(parser, prompt_flag=False)
    add_quiet(parser)
    parser.add_argument("files", metavar="FILE", nargs="+", help="envelope files or URLs ('-': stdin)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def parsed_and_run() -> int:
        from . import tokens

        args = build_parser().parse_args(argv)
        tokens.configure(args)
        return run(args)

    return guarded(TOOL, parsed_and_run)


def run(args: argparse.Namespace) -> int:
    from . import streams
    from .parsing import passphrase_option, refuse_idle

    refuse_idle(
        None if args.verify else passphrase_option(args),
        "it unlocks --verify keys, and no --verify is given (--signed-by keys are public keys, which have none)",
    )
    streams.one_stdin(("--verify", args.verify), ("--signed-by", args.signed_by), ("FILE", args.files))
    pins = None
    if args.signed_by:
        from . import keyfiles  # only when keys are given: inspecting a file needs none (start-up time)

        pins = keyfiles.load_signers(args.signed_by)
    keys = _verification_keys(args)
    status = EXIT_OK
    records = []
    for path in args.files:
        record, code = _record(path, keys, pins, quiet=args.quiet or args.json)
        status = status or code
        records.append(record)
        lines = text_lines(record)
        if lines and not args.json:
            print("\n".join(lines), flush=True)
    if args.json:
        from .render import json_path

        files = [{**record, **json_path(record["path"])} for record in records]
        print(json.dumps({"schema_version": SCHEMA_VERSION, "files": files}, indent=2))
    return status


def _verification_keys(args: argparse.Namespace) -> list[Identity]:
    if not args.verify:
        return []
    from . import keyfiles

    given = keyfiles.explicit_passphrase(args.passphrase_env, args.passphrase_file)
    return keyfiles.load_identities(args.verify, given, TOOL)


def _record(path: str, keys: list[Identity], pins: list[Any] | None, *, quiet: bool) -> tuple[dict[str, Any], int]:
    """The JSON record of one file, and its exit code. Failures are also reported on stderr."""
    from envelope import EnvelopeError

    from .render import printable
    from .streams import name_of

    name = name_of(path)
    record: dict[str, Any] = {"path": path}
    try:
        with _Source(path) as source:
            # With --signed-by alone, what is shown is the header whose signature was checked, in
            # one read (issue 17 item 4); with --verify, the same open file is read again.
            inspection = source.inspect_signed(pins) if pins and not keys else source.inspect()
            record = inspection_record(path, inspection, None, inspection.signer if pins and not keys else None)
            if inspection.complete is False:
                message = (
                    "the payload length is impossible for this chunk size: the file is truncated or has extra bytes"
                )
                report(TOOL, f"{name}: {message}")
                record["error"] = {"exit_code": EXIT_FORMAT, "message": message}
                return record, EXIT_FORMAT
            if keys:
                verified = source.authenticate(keys, pins, quiet=quiet, folder=_is_folder(inspection))
                source.check_unchanged(inspection, verified)
                record = inspection_record(path, inspection, verified, verified.signer)
    except (EnvelopeError, OSError) as exc:
        message = printable(describe_for_file(name, exc))  # as on stderr: JSON text holds no file name bytes
        report(TOOL, message)
        code = exit_code_for(exc)
        record["error"] = {"exit_code": code, "message": message}
        return record, code
    return record, EXIT_OK


class _Source:
    """One FILE (``-``: stdin; a URL), inspected, then, to check it with a key, read again from its
    start: a local file through the same open file, stdin from what was kept or by seeking back."""

    def __init__(self, path: str) -> None:
        import envelope

        from .streams import is_stdio

        self.path = path
        self._owned: IO[bytes] | None = None
        if is_stdio(path):
            self._stream: IO[bytes] | None = sys.stdin.buffer
        elif envelope.is_url(path):
            self._stream = None  # a URL: read by the SDK each time
        else:
            self._stream = self._owned = open(path, "rb")
        self._start = _tell(self._stream) if self._stream is not None else None
        self._replay: _Replay | None = None

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned is not None:
            self._owned.close()

    def inspect(self) -> Inspection:
        import envelope

        if self._stream is None:
            return envelope.inspect(self.path)
        if self._start is None:  # a pipe: keep what inspection reads, to read it again
            self._replay = _Replay(self._stream)
            return envelope.inspect(self._replay)  # type: ignore[arg-type]
        return envelope.inspect(self._stream)

    def _again(self) -> IO[bytes] | None:
        """The source from its start, for a second pass (None: the file at ``path``)."""
        import io

        if self._stream is None:
            return None
        if self._replay is not None:
            return io.BufferedReader(self._replay.rewound())
        assert self._start is not None
        self._stream.seek(self._start)
        return self._stream

    def authenticate(self, keys: list[Identity], pins: list[Any] | None, *, quiet: bool, folder: bool) -> Verified:
        from .checks import authenticate

        return authenticate(self.path, keys, signed_by=pins, quiet=quiet, stream=self._again(), folder=folder)

    def inspect_signed(self, pins: list[Any]) -> Inspection:
        """The header and the signature checked without a key, from one read of the file."""
        from envelope import inspect_signed

        if self._stream is not None and self._start is None:
            raise CliError(
                "--signed-by without --verify reads the end of the file first, and stdin is a pipe: "
                "redirect a file (< FILE) or give its path",
                EXIT_USAGE,
            )
        return inspect_signed(self.path if self._stream is None else self._stream, signed_by=pins)

    def check_unchanged(self, inspection: Inspection, verified: Verified) -> None:
        """A URL is read twice (to show it, then to verify it): what is shown must be what verified,
        or a store serving other bytes the second time would get its header shown as verified."""
        if self._stream is not None:
            return  # one open file, read again from its start
        shown = inspection.signer.key_id if inspection.signer else None
        checked = verified.signer.key_id if verified.signer else None
        # repr: the decoded values compared as written (a NaN equals itself there).
        if repr(inspection.unverified_metadata) != repr(verified.metadata) or shown != checked:
            from envelope import ObjectChangedError

            raise ObjectChangedError("the object changed between two reads: nothing of it is shown as verified")


def _is_folder(inspection: Inspection) -> bool:
    from envelope import is_folder

    return is_folder(inspection.unverified_metadata)


def _tell(stream: IO[bytes]) -> int | None:
    """The position of a seekable stream; None for a pipe."""
    try:
        return stream.tell() if stream.seekable() else None
    except OSError:
        return None


class _Replay:
    """A pipe read twice: what the first pass (inspection: the header) read is kept, and given
    again before the rest of the pipe when the second pass starts from the beginning."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._kept = bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._kept += data
        return data

    def seekable(self) -> bool:
        return False

    def rewound(self) -> _Rewound:
        return _Rewound(bytes(self._kept), self._stream)


class _Rewound(io.RawIOBase):
    """``kept``, then the rest of ``stream``."""

    def __init__(self, kept: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._kept = memoryview(kept)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._kept:
            count = min(len(buffer), len(self._kept))
            buffer[:count] = self._kept[:count]
            self._kept = self._kept[count:]
            return count
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def inspection_record(
    path: str, inspection: Inspection, verified: Verified | None, signer: SignerInfo | None
) -> dict[str, Any]:
    """One file in the --json schema of docs/CLI.md. ``signer``: the signer as checked (by
    --verify or --signed-by); otherwise the header's, unverified."""
    from .render import tagged

    shown = signer if signer is not None else inspection.signer
    return {
        "path": path,
        "format_version": inspection.version,
        "algorithms": inspection.algorithms,
        "recipients": [_recipient_record(r) for r in inspection.recipients],
        "critical": list(inspection.critical),
        "signer": None
        if shown is None
        else {"algorithm": shown.algorithm, "key_id": shown.key_id, "verified": shown.verified},
        "metadata": tagged(verified.metadata if verified else inspection.unverified_metadata),
        "verified": verified is not None,
        "chunk_size": inspection.chunk_size,
        "chunk_count": inspection.chunk_count,
        "token_size": inspection.token_size,
        "complete": inspection.complete,
        "sizes": sizes(inspection, verified),
        "folder": _folder_record(inspection, verified),
        "error": None,
    }


def _folder_record(inspection: Inspection, verified: Verified | None) -> dict[str, Any] | None:
    """None for a file that is not a folder; else ``{"members": N}``, N only when --verify read the
    folder's index (names and sizes are encrypted: without a key nothing more is known)."""
    if not _is_folder(inspection):
        return None
    return {"members": verified.members if verified is not None else None}


def sizes(inspection: Inspection, verified: Verified | None) -> dict[str, Any]:
    """file = header + payload; payload = plaintext + chunk overhead + footer. Without a key the
    plaintext is a range (padding), and the overhead is its complement, so both ends add up."""
    payload, footer = inspection.payload_size, inspection.footer_size
    low, high = inspection.plaintext_size_min, inspection.plaintext_size_max
    if verified is not None:
        low = high = verified.plaintext_size
    plaintext: dict[str, int] | None = None
    overhead: dict[str, int] | None = None
    if payload is not None and footer is not None and low is not None and high is not None:
        plaintext = {"min": low, "max": high}
        overhead = {"min": payload - footer - high, "max": payload - footer - low}
    return {
        "file": inspection.file_size,
        "header": inspection.header_size,
        "payload": payload,
        "footer": footer,
        "plaintext": plaintext,
        "overhead": overhead,
        "exact": verified is not None,
    }


# --- text ------------------------------------------------------------------------------------


def text_lines(record: dict[str, Any]) -> list[str]:
    from .render import printable
    from .streams import name_of

    if "format_version" not in record:
        return []
    lines = [f"{printable(name_of(record['path']))}: envelope file, format version {record['format_version']}"]
    lines += _algorithm_lines(record["algorithms"])
    lines += _recipient_lines(record["recipients"])
    if record["critical"]:
        lines.append(f"  critical extensions: {printable(', '.join(record['critical']))}")
    lines += _signer_lines(record)
    lines += _metadata_lines(record)
    lines += _folder_lines(record)
    lines += _chunk_lines(record)
    lines += _size_lines(record["sizes"])
    return [*lines, ""]


def _algorithm_lines(algorithms: dict[str, str]) -> list[str]:
    from .render import printable

    names = {"payload": "payload", "header_mac": "header MAC", "key_wrap": "key wrap", "signature": "signature"}
    return ["  algorithms:"] + [f"    {names.get(k, k):<11} {printable(v)}" for k, v in algorithms.items()]


def _recipient_record(r: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": r.type, "key_id": r.key_id}
    if r.work_factor is not None:
        record["work_factor"] = r.work_factor
    return record


def _work_factor_text(work_factor: int) -> str:
    """``18 (scrypt N = 2^18, 256 MiB)``: what opening the file costs."""
    from envelope.limits import scrypt_memory

    memory = scrypt_memory(min(work_factor, 64))
    size = f"{memory >> 30} GiB" if memory >= 1 << 30 else f"{memory >> 20} MiB"
    return f"{work_factor} (scrypt N = 2^{work_factor}, {size})"


def _recipient_lines(recipients: list[dict[str, Any]]) -> list[str]:
    from .render import printable

    lines = [f"  recipients ({len(recipients)}):"]
    for r in recipients:
        key_id = f"key id {r['key_id']}" if r["key_id"] else "(no key id)"
        if "work_factor" in r:
            key_id = f"passphrase, work factor {_work_factor_text(r['work_factor'])}"
        lines.append(f"    {printable(r['type'])}  {key_id}")
    return lines


def _signer_lines(record: dict[str, Any]) -> list[str]:
    from .render import printable

    signer = record["signer"]
    if signer is None:
        return ["  signer: none (the file is not signed)"]
    who = printable(f"{signer['algorithm']} key {signer['key_id']}")
    if not signer["verified"]:
        return [f"  signer: {who} (UNVERIFIED: anyone can write a header; check it with --signed-by PUBKEY)"]
    if record["verified"]:
        return [f"  signer: {who} (signature verified, with the whole file)"]
    return [
        f"  signer: {who} (signature verified: a --signed-by key)",
        f"    {SIGNATURE_PROVES}",
        f"    {SIGNATURE_LEAVES}",
    ]


def _metadata_lines(record: dict[str, Any]) -> list[str]:
    from .render import metadata_lines

    signer = record["signer"]
    if record["verified"]:
        heading = "  metadata (verified):"
    elif signer is not None and signer["verified"]:
        heading = "  metadata (as the signer signed it):"
    else:
        heading = (
            "  metadata (UNVERIFIED: anyone can write a header; "
            "authenticate it with --verify KEY or --signed-by PUBKEY):"
        )
    return [heading, *metadata_lines(record["metadata"], already_tagged=True)]


def _folder_lines(record: dict[str, Any]) -> list[str]:
    folder = record.get("folder")
    if folder is None:
        return []
    if folder["members"] is None:
        return ["  payload: a folder (its member names and sizes are encrypted; --verify counts them)"]
    return [f"  payload: a folder of {folder['members']} members (verified)"]


def _chunk_lines(record: dict[str, Any]) -> list[str]:
    count = record["chunk_count"]
    chunks = "number unknown" if count is None else str(count)
    return [
        f"  chunks: {chunks}, of {record['chunk_size']} plaintext bytes each but the last (shorter),"
        f" in {record['token_size']}-byte tokens"
    ]


def _size_lines(sizes: dict[str, Any]) -> list[str]:
    from .render import byte_range

    if sizes["file"] is None:
        return [f"  size breakdown: unavailable (read from a pipe; header {sizes['header']} bytes)"]
    if sizes["plaintext"] is None:
        return [f"  size breakdown: unavailable (file {sizes['file']} bytes, header {sizes['header']} bytes)"]
    rows = [
        ("header (prefix, header, MAC)", str(sizes["header"])),
        ("chunk overhead", byte_range(sizes["overhead"]["min"], sizes["overhead"]["max"])),
    ]
    if sizes["footer"]:
        rows.append(("signature footer", str(sizes["footer"])))
    rows += [
        ("plaintext", byte_range(sizes["plaintext"]["min"], sizes["plaintext"]["max"])),
        ("total (file size)", str(sizes["file"])),
    ]
    width = max(len(value) for _, value in rows)
    heading = (
        "size breakdown:" if sizes["exact"] else "size breakdown (plaintext known to within 16 bytes without a key):"
    )
    lines = [f"  {heading}"]
    lines += [f"    {label:<30} {value:>{width}} bytes" for label, value in rows]
    return lines


if __name__ == "__main__":  # python -m envelope.cli.info
    sys.exit(main())
