"""The ``envelope-info`` program: what an envelope file's header says, without a key (like
age-inspect), and a size breakdown that adds up to the file size. ``--json`` follows the schema
of docs/CLI.md (``schema_version`` 1)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import EXIT_CODES_HELP, EXIT_FORMAT, EXIT_OK, describe_for_file, exit_code_for, guarded, report
from .parsing import Parser, add_passphrase_sources, add_quiet, version_text

if TYPE_CHECKING:
    from envelope import Identity, Inspection

    from .verify import Verified

TOOL = "envelope-info"
SCHEMA_VERSION = 1

EXAMPLES = """\
examples:
  envelope-info model.env                    # header, recipients, UNVERIFIED metadata, sizes
  envelope-info --json *.env | jq '.files[] | {path, recipients}'
  envelope-info --verify alice.key model.env # authenticate: verified metadata, exact sizes

Without --verify nothing shown is authenticated: anyone can write any header. The metadata is
marked UNVERIFIED, and the plaintext size is given as a range (padding hides up to 15 bytes of it)."""


def build_parser() -> Parser:
    parser = Parser(
        prog=TOOL,
        description="Show what envelope files say about themselves: format version, algorithms,\n"
        "recipients (type and key id), metadata, chunks, and a size breakdown (header, chunk\n"
        "overhead, plaintext) that adds up to the file size. No key needed.",
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES_HELP}",
    )
    parser.add_argument("--version", action="version", version=version_text(TOOL))
    parser.add_argument("--json", action="store_true", help="machine-readable output (schema: docs/CLI.md)")
    parser.add_argument(
        "--verify",
        metavar="PRIVATEKEY",
        action="append",
        default=[],
        help="authenticate each file with this private key: verified metadata, exact sizes; repeatable",
    )
    add_passphrase_sources(parser, prompt_flag=False)
    add_quiet(parser)
    parser.add_argument("files", metavar="FILE", nargs="+", help="envelope files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(TOOL, lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    keys = _verification_keys(args)
    status = EXIT_OK
    records = []
    for path in args.files:
        record, code = _record(path, keys, quiet=args.quiet or args.json)
        status = status or code
        records.append(record)
        lines = text_lines(record)
        if lines and not args.json:
            print("\n".join(lines), flush=True)
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "files": records}, indent=2))
    return status


def _verification_keys(args: argparse.Namespace) -> list[Identity]:
    if not args.verify:
        return []
    from . import keyfiles

    given = keyfiles.explicit_passphrase(args.passphrase_env, args.passphrase_file)
    return keyfiles.load_identities(args.verify, given, TOOL)


def _record(path: str, keys: list[Identity], *, quiet: bool) -> tuple[dict[str, Any], int]:
    """The JSON record of one file, and its exit code. Failures are also reported on stderr."""
    from envelope import EnvelopeError, inspect

    try:
        inspection = inspect(path)
    except (EnvelopeError, OSError) as exc:
        return _fail({"path": path}, exc)
    record = inspection_record(path, inspection, None)
    if inspection.complete is False:
        message = "the payload length is impossible for this chunk size: the file is truncated or has extra bytes"
        report(TOOL, f"{path}: {message}")
        record["error"] = {"exit_code": EXIT_FORMAT, "message": message}
        return record, EXIT_FORMAT
    if keys:
        from .verify import authenticate

        try:
            verified = authenticate(path, keys, quiet=quiet)
        except (EnvelopeError, OSError) as exc:
            return _fail(record, exc)
        record = inspection_record(path, inspection, verified)
    return record, EXIT_OK


def _fail(record: dict[str, Any], exc: BaseException) -> tuple[dict[str, Any], int]:
    message = describe_for_file(record["path"], exc)
    report(TOOL, message)
    code = exit_code_for(exc)
    record["error"] = {"exit_code": code, "message": message}
    return record, code


def inspection_record(path: str, inspection: Inspection, verified: Verified | None) -> dict[str, Any]:
    """One file in the --json schema of docs/CLI.md."""
    from .render import tagged

    return {
        "path": path,
        "format_version": inspection.version,
        "algorithms": inspection.algorithms,
        "recipients": [{"type": r.type, "key_id": r.key_id} for r in inspection.recipients],
        "critical": list(inspection.critical),
        "metadata": tagged(verified.metadata if verified else inspection.unverified_metadata),
        "verified": verified is not None,
        "chunk_size": inspection.chunk_size,
        "chunk_count": inspection.chunk_count,
        "token_size": inspection.token_size,
        "complete": inspection.complete,
        "sizes": sizes(inspection, verified),
        "error": None,
    }


def sizes(inspection: Inspection, verified: Verified | None) -> dict[str, Any]:
    """file = header + payload; payload = plaintext + overhead. Without a key the plaintext is a
    range (padding), and the overhead is its complement, so both ends add up."""
    payload = inspection.payload_size
    low, high = inspection.plaintext_size_min, inspection.plaintext_size_max
    if verified is not None:
        low = high = verified.plaintext_size
    plaintext: dict[str, int] | None = None
    overhead: dict[str, int] | None = None
    if payload is not None and low is not None and high is not None:
        plaintext = {"min": low, "max": high}
        overhead = {"min": payload - high, "max": payload - low}
    return {
        "file": inspection.file_size,
        "header": inspection.header_size,
        "payload": payload,
        "plaintext": plaintext,
        "overhead": overhead,
        "exact": verified is not None,
    }


# --- text ------------------------------------------------------------------------------------


def text_lines(record: dict[str, Any]) -> list[str]:
    from .render import printable

    if "format_version" not in record:
        return []
    lines = [f"{printable(record['path'])}: envelope file, format version {record['format_version']}"]
    lines += _algorithm_lines(record["algorithms"])
    lines += _recipient_lines(record["recipients"])
    if record["critical"]:
        lines.append(f"  critical extensions: {printable(', '.join(record['critical']))}")
    lines += _metadata_lines(record)
    lines += _chunk_lines(record)
    lines += _size_lines(record["sizes"])
    return [*lines, ""]


def _algorithm_lines(algorithms: dict[str, str]) -> list[str]:
    names = {"payload": "payload", "header_mac": "header MAC", "key_wrap": "key wrap"}
    return ["  algorithms:"] + [f"    {names.get(k, k):<11} {v}" for k, v in algorithms.items()]


def _recipient_lines(recipients: list[dict[str, Any]]) -> list[str]:
    from .render import printable

    lines = [f"  recipients ({len(recipients)}):"]
    for r in recipients:
        key_id = f"key id {r['key_id']}" if r["key_id"] else "(no key id)"
        lines.append(f"    {printable(r['type'])}  {key_id}")
    return lines


def _metadata_lines(record: dict[str, Any]) -> list[str]:
    from .render import metadata_lines

    if record["verified"]:
        heading = "  metadata (verified):"
    else:
        heading = "  metadata (UNVERIFIED: anyone can write a header; authenticate it with --verify KEY):"
    return [heading, *metadata_lines(record["metadata"], already_tagged=True)]


def _chunk_lines(record: dict[str, Any]) -> list[str]:
    count = record["chunk_count"]
    chunks = "unknown number of" if count is None else str(count)
    return [
        f"  chunks: {chunks}, of {record['chunk_size']} plaintext bytes each but the last (shorter),"
        f" in {record['token_size']}-byte tokens"
    ]


def _size_lines(sizes: dict[str, Any]) -> list[str]:
    from .render import byte_range

    if sizes["plaintext"] is None:
        return [f"  size breakdown: unavailable (file {sizes['file']} bytes, header {sizes['header']} bytes)"]
    rows = [
        ("header (prefix, header, MAC)", str(sizes["header"])),
        ("chunk overhead", byte_range(sizes["overhead"]["min"], sizes["overhead"]["max"])),
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
