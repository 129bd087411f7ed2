"""Several files in one command: ``envelope seal|open -o OUTDIR FILE...`` and ``envelope verify FILE...``
on the SDK's batch functions (envelope.batch): the grammar, the output names, one progress bar for
the whole batch, and one line per failed file with a summary at the end.

The rule (docs/CLI.md, "Many files at once"): two or more INPUTs, or one INPUT file with ``-o`` an
existing folder (as ``cp FILE DIR`` does), make a batch: each INPUT gets its own output in that
folder, named as the input plus ``.env`` (seal) or less ``.env`` (open). One folder INPUT is
sealed whole into one file; it never joins a batch.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import EXIT_OK, EXIT_USAGE, CliError, describe_for_file, exit_code_for, report
from .render import printable
from .streams import is_stdio, is_url

if TYPE_CHECKING:
    from envelope import FileResult

SUFFIX = ".env"


def add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=_jobs,
        default=None,
        help="with several files: processes that share them (default: one per core; 1: this process only)",
    )


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive number of processes, not {text!r}")
    return value


def is_batch(inputs: Sequence[str], output: str | None) -> bool:
    """Two or more INPUTs, or one local file INPUT with OUT an existing folder."""
    if len(inputs) > 1:
        return True
    if len(inputs) == 1 and not is_stdio(inputs[0]) and not is_url(inputs[0]) and not os.path.isdir(inputs[0]):
        return output is not None and not is_stdio(output) and not is_url(output) and os.path.isdir(output)
    return False


def outputs(inputs: Sequence[str], folder: str | None, *, sealing: bool) -> list[tuple[str, str]]:
    """(input, output) for each INPUT: ``folder``/NAME.env when sealing, ``folder``/NAME less .env
    when opening. Refuses, before anything is read, what cannot join a batch: no ``-o`` folder,
    stdin, URLs, folders (sealing), names without .env (opening), two inputs with one output."""
    if folder is None or is_stdio(folder) or is_url(folder) or not os.path.isdir(folder):
        if folder is None:
            raise CliError("several INPUTs go each into its own file in a folder: give -o OUTDIR", EXIT_USAGE)
        raise CliError(
            f"-o {printable(folder)} is not an existing folder, and several INPUTs go each into its own file "
            "in one (create it first)",
            EXIT_USAGE,
        )
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for path in inputs:
        if is_stdio(path) or is_url(path):
            raise CliError(f"{printable(path)}: several INPUTs are local files (not stdin, not URLs)", EXIT_USAGE)
        name = os.path.basename(path.rstrip("/"))
        if sealing:
            if os.path.isdir(path):
                raise CliError(
                    f"{printable(path)} is a folder, which is sealed alone into one file: envelope seal -o OUT DIR",
                    EXIT_USAGE,
                )
            name += SUFFIX
        else:
            if not name.endswith(SUFFIX) or name == SUFFIX:
                raise CliError(
                    f"{printable(path)}: its output is named after it less {SUFFIX}, and its name does not end "
                    f"in {SUFFIX} (open it alone with -o OUT)",
                    EXIT_USAGE,
                )
            name = name[: -len(SUFFIX)]
        target = os.path.join(folder, name)
        if target in seen:
            raise CliError(
                f"{printable(seen[target])} and {printable(path)} would both be written to {printable(target)}",
                EXIT_USAGE,
            )
        seen[target] = path
        pairs.append((path, target))
    return pairs


def input_total(paths: Sequence[str]) -> Callable[[], int | None]:
    """The progress bar's 100 %: the inputs' sizes (read only when a bar can be drawn)."""

    def total() -> int:
        size = 0
        for path in paths:
            try:
                size += os.stat(path).st_size
            except OSError:
                pass  # the batch says why
        return size

    return total


def plaintext_total(paths: Sequence[str]) -> Callable[[], int | None]:
    """The plaintext sizes of sealed files, which their headers tell (read only for a bar)."""
    from .streams import plaintext_size

    def total() -> int:
        return sum(plaintext_size(path) or 0 for path in paths)

    return total


def summarise(tool: str, results: Sequence[FileResult], verb: str) -> int:
    """One error line per failed file, then which failed; the exit code is the first failure's.
    Nothing is printed when every file succeeded (as for one file)."""
    status = EXIT_OK
    failed = []
    for result in results:
        if result.error is not None:
            report(tool, describe_for_file(result.path, result.error))
            status = status or exit_code_for(result.error)
            failed.append(result.path)
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        others = "; the others succeeded" if len(failed) < len(results) else ""
        report(tool, f"{len(failed)} of {len(results)} files failed ({verb}): {shown}{others}")
    return status


def signer_notes(tool: str, results: Sequence[FileResult]) -> None:
    """Say once per signer who signed files that nobody required a signer for."""
    from .checks import unpinned_note

    seen: dict[str, Any] = {}
    for result in results:
        signer = result.result.signer if result.result is not None else None
        if signer is not None:
            seen.setdefault(signer.key_id, signer)
    for signer in seen.values():
        report(tool, unpinned_note(signer), kind="note")
