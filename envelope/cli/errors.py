"""Exit codes, and the one place where exceptions become an exit code and one line on stderr."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback
from collections.abc import Callable, Iterator

EXIT_OK = 0
EXIT_AUTHENTICATION = 1
EXIT_USAGE = 2
EXIT_FORMAT = 3
EXIT_KEY = 4
EXIT_IO = 5
EXIT_BUG = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a coreutils program whose reader left

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    authentication failed: the file was modified, truncated or extended, or no key matches it
  2    usage error: bad arguments, or a URL whose extra is not installed (pip install ...)
  3    not a valid envelope file: malformed, unsupported version or extension, over a limit
  4    key problem: the key cannot be loaded or is not allowed; the passphrase is wrong, empty,
       missing or (keygen) not repeated the same
  5    I/O error: missing file, permission denied, output exists (use --force), output owned by
       another user
  70   internal error (a bug: please report it)
  130  interrupted
  141  the reader of the output went away (| head): nothing is printed"""

BUG_HINT = (
    "this is a bug in envelope: please report it to the maintainers of envelope-ml, with the command you ran, "
    "the output of 'envelope --version' and the traceback that ENVELOPE_DEBUG=1 prints (no keys or data)"
)


class CliError(Exception):
    """A failure the command line itself detects, with the exit code it maps to."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of an exception (docs/CLI.md, "Exit codes")."""
    from envelope import errors

    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, (errors.AuthenticationError, errors.NoMatchingKeyError)):
        return EXIT_AUTHENTICATION
    if isinstance(exc, (errors.UsageError, errors.MissingDependencyError)):  # the latter: an extra to install
        return EXIT_USAGE
    if isinstance(exc, errors.InvalidKeyError):
        return EXIT_KEY
    if isinstance(exc, (OSError, errors.WorkerError)):  # OutputExistsError included; a process killed
        return EXIT_IO
    if isinstance(exc, errors.EnvelopeError):  # Malformed, Unsupported, Limit
        return EXIT_FORMAT
    return EXIT_BUG


def describe(exc: BaseException) -> str:
    """One line saying what went wrong. SDK messages never hold key material or plaintext."""
    from envelope import OutputExistsError, RemoteError, UnsafeOutputError

    if isinstance(exc, OutputExistsError):
        return exists_message(exc.path, device=exc.device)
    if isinstance(exc, UnsafeOutputError):
        return (
            f"{exc.path} is {exc.strerror}: refusing to write into it, since whoever reads it would get the data "
            f"(choose another output path; if it is meant to get the data, redirect stdout into it: > {exc.path})"
        )
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split())
    if exit_code_for(exc) == EXIT_BUG:
        return f"unexpected {type(exc).__name__}: {text}; {BUG_HINT}"
    for parameter, option in SDK_PARAMETERS.items():
        text = text.replace(parameter, option)
    if isinstance(exc, RemoteError):
        text += _endpoint_tried(exc)
    return text or type(exc).__name__


# SDK messages that name a parameter of an SDK function: the command line names its option.
SDK_PARAMETERS = {"(signed_by)": "(--signed-by)"}


def _endpoint_tried(exc: BaseException) -> str:
    """``: endpoint http://host:port (Connection refused)``: where a store's client tried to
    connect, from the exception it chained (botocore's carry ``endpoint_url``), without the path
    or any user name and password; empty when no cause says."""
    from urllib.parse import urlsplit

    endpoint = reason = None
    seen: set[int] = set()
    cause: BaseException | None = exc.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        kwargs = getattr(cause, "kwargs", None)
        url = kwargs.get("endpoint_url") if isinstance(kwargs, dict) else getattr(cause, "endpoint_url", None)
        if endpoint is None and isinstance(url, str):
            with contextlib.suppress(ValueError):
                parts = urlsplit(url)
                if parts.scheme and parts.hostname:
                    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
                    endpoint = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port is not None else "")
        if reason is None and isinstance(cause, OSError) and cause.errno:
            reason = os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    if endpoint is None:
        return ""
    return f": endpoint {endpoint}" + (f" ({reason})" if reason else "")


def exists_message(path: str, *, device: bool = False) -> str:
    """An existing output, not replaced without --force; a block device is written over with it."""
    if device:
        return f"{path} is a block device, which holds data (use --force to write over it)"
    return f"{path} exists (use --force to replace it)"


def describe_for_file(path: str, exc: BaseException) -> str:
    """``describe``, naming the file unless the message already does."""
    message = describe(exc)
    if (isinstance(exc, OSError) and exc.filename) or message.startswith(f"{path}:"):
        return message  # messages about a URL name it already
    return f"{path}: {message}"


@contextlib.contextmanager
def naming(path: str | None) -> Iterator[None]:
    """Prefix the message of an SDK error raised in the block with the file it is about, unless
    the message starts with it already (messages about a URL do; an output that exists is about
    the output, and says so itself)."""
    from envelope import EnvelopeError, OutputExistsError

    try:
        yield
    except OutputExistsError:
        raise
    except EnvelopeError as exc:
        own = _own_error(exc)
        if own is not exc:
            raise own from None
        message = describe(exc)
        name = path or "stdin"
        if not message.startswith((f"{name}:", f"{name!r}")):
            message = f"{name}: {message}"
        raise CliError(message, exit_code_for(exc)) from None


def report(tool: str, message: str, *, kind: str = "error") -> None:
    """Write ``TOOL: error: MESSAGE`` on one line of stderr. Messages quote file names and text
    from files (an SDK message may too): whatever a terminal would interpret is escaped."""
    from .render import printable

    print(f"{tool}: {kind}: {printable(message)}", file=sys.stderr, flush=True)


def guarded(tool: str, run: Callable[[], int]) -> int:
    """Run a program body; turn every exception into its exit code and one line on stderr."""
    try:
        return run()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        report(tool, "interrupted")
        return EXIT_INTERRUPTED
    except Exception as caught:
        exc = _own_error(caught)
        if _broken_pipe(exc):
            # The reader went away (| head): as coreutils, which SIGPIPE ends silently, say nothing.
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        if os.environ.get("ENVELOPE_DEBUG"):
            traceback.print_exc()
        report(tool, describe(exc))
        return exit_code_for(exc)


def _own_error(exc: Exception) -> Exception:
    """A CliError of the CLI's own identities (a passphrase prompt with no terminal, say), which
    the SDK chains into an ExternalKeyError as it does any caller-written identity's exception."""
    from envelope import ExternalKeyError

    if isinstance(exc, ExternalKeyError) and isinstance(exc.__cause__, CliError):
        return exc.__cause__
    return exc


def _broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EPIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
