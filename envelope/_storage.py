"""Storage failures as documented errors: what the ``envelope::`` filesystem, its ranged reader
and uploader, the SDK's URL paths and the Dask helpers raise when the store fails (errors.py:
``RemoteError``, ``ObjectChangedError``; a missing or refused object as for local files)."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator

from .errors import EnvelopeError, ObjectChangedError, RemoteError

__all__ = ["storage"]

_PASS_THROUGH = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


_REASONS = {
    FileNotFoundError: errno.ENOENT,
    PermissionError: errno.EACCES,
    IsADirectoryError: errno.EISDIR,
    NotADirectoryError: errno.ENOTDIR,
    FileExistsError: errno.EEXIST,
}


def _naming(exc: OSError, path: str) -> OSError:
    """The same error, with an errno, a reason and the name the caller gave, as a local file's
    error has them: storage libraries often give only the bucket and key (s3fs: a missing object
    is ``FileNotFoundError("bucket/key")``) or a reason without a name."""
    if exc.filename == path and exc.strerror:
        return exc
    kind, default = next((kind, number) for kind, number in _REASONS.items() if isinstance(exc, kind))
    number = exc.errno or default
    said = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else ""
    # A reason is words ("The specified bucket does not exist"); one word is the library's own name
    # for the object (bucket/key), which may hold what ``path`` leaves out (a presigned query).
    reason = exc.strerror or (said if " " in said.strip() else os.strerror(number))
    return kind(number, reason, path)


def _loaded_classes(*names: tuple[str, str]) -> tuple[type[BaseException], ...]:
    """Exception classes of storage libraries that are already imported (nothing is imported)."""
    found = []
    for module, name in names:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _transport_errors() -> tuple[type[BaseException], ...]:
    return (
        OSError,
        *_loaded_classes(
            ("botocore.exceptions", "BotoCoreError"),
            ("botocore.exceptions", "ClientError"),
            ("aiohttp", "ClientError"),
            ("requests", "RequestException"),
            ("google.api_core.exceptions", "GoogleAPIError"),
            ("azure.core.exceptions", "AzureError"),
        ),
    )


def _changed_errors() -> tuple[type[BaseException], ...]:
    return _loaded_classes(("s3fs.utils", "FileExpired"))  # s3fs pins the ETag with If-Match


@contextlib.contextmanager
def storage(action: str, path: str, *, opened: bool) -> Iterator[None]:
    """Turn a storage library's failure into a documented error. ``opened``: the object was opened
    before, so its disappearance means it changed under the reader."""
    try:
        yield
    except EnvelopeError:
        raise
    except _PASS_THROUGH as exc:
        if opened and isinstance(exc, FileNotFoundError):
            raise ObjectChangedError(f"{path}: the object was deleted while it was read") from exc
        named = _naming(exc, path)
        if named is exc:
            raise
        raise named from exc
    except _changed_errors() as exc:
        raise ObjectChangedError(f"{path}: the object changed while it was read (its ETag differs)") from exc
    except _transport_errors() as exc:
        raise RemoteError(f"{path}: {action} failed ({type(exc).__name__})") from exc
