"""URLs in the SDK's path functions: what a URL names, and how its object is read and written.

Imported only once an argument is a URL (``envelope._urls.is_url``); it needs fsspec. A URL that
resolves to the local filesystem (``file://``, ``local://``) becomes its local path, so that it
gets everything a path gets (atomic outputs, fsync, file modes). Any other URL is a
:class:`Remote`: a sealed object is read through the verified ranged reader of
``envelope.fsspec``; an output is uploaded without autocommit and committed only once complete.
docs/REMOTE.md ("URLs in the SDK") is the user's guide.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, cast

import fsspec
from fsspec.implementations.cached import CachingFileSystem
from fsspec.implementations.local import LocalFileSystem

from ._ranged import (
    DEFAULT_READ_AHEAD,
    HEADER_WINDOW,
    RangedSource,
    SealedObjectReader,
    WindowedSource,
    open_object,
    open_sealed,
    open_windowed,
)
from ._storage import storage
from ._urls import install_hint, on_s3, shown
from .errors import MissingDependencyError, OutputExistsError, UsageError
from .fsspec import PROTOCOL
from .recipients import IdentityLike
from .signing import SignedBy

__all__ = ["Remote", "locate"]

_PREFIX = f"{PROTOCOL}::"


def _protocols(url: str) -> list[str]:
    return [part.split("://", 1)[0] for part in url.split("::")]


def locate(url: str, storage_options: Mapping[str, Any] | None, *, sealed: bool) -> str | Remote:
    """The local path that ``url`` names (``file://``, ``local://``), or the remote object.

    ``sealed``: the argument is a sealed file, and ``envelope::`` in front names the same object
    (the SDK's functions know which of their arguments are sealed); in front of a plaintext
    argument it is refused. ``storage_options`` are fsspec's, as ``fsspec.open`` takes them: the
    filesystem's own options, or per protocol for a chain (``{"s3": {...}}``).
    """
    if url.startswith(_PREFIX) and not sealed:
        raise UsageError(
            f"{shown(url)!r}: envelope:: names a sealed object, and this argument is plaintext; drop the prefix"
        )
    inner = url[len(_PREFIX) :] if url.startswith(_PREFIX) else url
    if PROTOCOL in _protocols(inner):
        raise UsageError(
            f"{shown(url)!r}: envelope:: goes first in a chain (envelope::s3://...); the SDK's functions read and "
            "write sealed objects themselves, so it is never needed in the middle"
        )
    try:
        with storage("resolving", shown(url), opened=False):
            fs, path = fsspec.core.url_to_fs(inner, **dict(storage_options or {}))
    except ImportError as exc:  # fsspec knows the protocol; its package is not installed
        if on_s3(url):
            raise MissingDependencyError(
                f"{shown(url)!r} needs s3fs, which is not installed: {install_hint(url)}"
            ) from exc
        raise MissingDependencyError(f"{shown(url)!r} needs a package that is not installed: {exc}") from exc
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise
        raise UsageError(
            f"{shown(url)!r}: fsspec knows no such protocol; "
            "a local file whose name starts like a URL is given as ./NAME"
        ) from exc
    if isinstance(fs, LocalFileSystem):
        local: str = path
        return local
    return Remote(url, fs, path)


class Remote:
    """An object on an fsspec filesystem, named by the URL the caller gave."""

    def __init__(self, url: str, fs: Any, path: str) -> None:
        self.url = shown(url)  # for messages only: the object is fs and path
        self.fs = fs
        self.path = path

    def same_object(self, other: object) -> bool:
        """Whether ``other`` names this object (same filesystem instance and options, same path)."""
        return isinstance(other, Remote) and other.fs == self.fs and other.path == self.path

    # --- reading ---

    def sealed_reader(
        self, private_key: IdentityLike | Iterable[IdentityLike], signed_by: SignedBy | None
    ) -> SealedObjectReader:
        """The verified ranged reader of ``envelope.fsspec``: the header, the final chunk (and a
        signed file's signature, against ``signed_by``) are checked before it is returned."""
        return open_sealed(self.fs, self.path, private_key, {"signed_by": signed_by}, name=self.url, cache_type="none")

    def ranged_source(self) -> RangedSource:
        """The sealed object as a raw file whose every miss is one ranged read of exactly what is
        asked (the caller plans them: :class:`~envelope.readat.PlaintextAt`)."""
        raw, size = open_object(self.fs, self.path, self.url, cache_type="none")
        return RangedSource(raw, size, self.url)

    def reading(self, *, window: int = DEFAULT_READ_AHEAD, ahead: bool = True) -> WindowedSource:
        """The object's bytes as they are (a plaintext source, or sealed bytes to inspect, check or
        rewrap), fetched in ranged reads of ``window`` bytes, the next one in the background."""
        return open_windowed(self.fs, self.path, self.url, window=window, ahead=ahead)

    def header_reading(self) -> WindowedSource:
        """For reading a header: one ranged read of the first 4 KiB covers most."""
        return self.reading(window=HEADER_WINDOW, ahead=False)

    # --- writing ---

    @contextlib.contextmanager
    def writing(self, *, overwrite: bool, private: bool) -> Iterator[IO[bytes]]:
        """A writable file whose data become the object only if the block completes.

        The underlying file is opened without autocommit and committed after the block: on S3 the
        object appears when its upload completes (one PUT or CompleteMultipartUpload), and an
        exception aborts the upload. Without ``overwrite``, an existing object raises
        :class:`OutputExistsError` before anything is written; on S3 the commit is also conditional
        (``If-None-Match: *``), so an object that appears meanwhile is not replaced either.
        ``private``: the data are plaintext, refused where a wrapper would stage them on disk.
        """
        if private:
            self._refuse_local_staging()
        exclusive = not overwrite and _commits_exclusively(self.fs)
        with storage("opening for writing", self.url, opened=False):
            if not overwrite:
                self.fs.invalidate_cache(self.path)  # a listing cached earlier may predate the object
                if self.fs.exists(self.path):
                    raise OutputExistsError(self.url)
            # Not fs.open(): with autocommit off, that files the file in a transaction nobody ends.
            target = self.fs._open(self.path, mode="xb" if exclusive else "wb", autocommit=False)
        out = _Upload(target, self.url)
        try:
            yield cast(IO[bytes], out)
            out.commit()
        except BaseException:
            out.discard()
            raise

    def _refuse_local_staging(self) -> None:
        """Plaintext never waits in a local temporary file: fsspec's caching wrappers (simplecache::,
        filecache::, blockcache::) write there first, and so does any wrapper of the local
        filesystem (its uncommitted files live in the system temp folder)."""
        fs = self.fs
        while fs is not None:
            if isinstance(fs, (CachingFileSystem, LocalFileSystem)):
                raise UsageError(
                    f"{self.url!r}: {type(fs).__name__} would stage the plaintext in a local temporary file; "
                    "write plaintext to the store itself (s3://...) or to a local path"
                )
            fs = getattr(fs, "fs", None)


def _commits_exclusively(fs: Any) -> bool:
    """Whether ``fs`` makes an ``"xb"`` upload conditional at its commit: s3fs sends
    ``If-None-Match: *`` with the PUT or CompleteMultipartUpload."""
    s3fs = sys.modules.get("s3fs")
    return s3fs is not None and isinstance(fs, s3fs.S3FileSystem)


class _Upload(io.BufferedIOBase):
    """What the SDK writes into an uncommitted upload: storage failures become documented errors."""

    def __init__(self, target: Any, url: str) -> None:
        super().__init__()
        self._target = target
        self._url = url
        self._written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed upload")
        # A copy: the SDK reuses its buffers, and a file that kept a reference (rather than copying
        # into its block, as fsspec's buffered files do) would upload changed bytes.
        with memoryview(data) as view:
            block = view.tobytes()
        with storage("writing", self._url, opened=False):
            self._target.write(block)
        self._written += len(block)
        return len(block)

    def flush(self) -> None:
        """Nothing to do: the filesystem uploads as its blocks fill, and the rest at the commit."""

    def commit(self) -> None:
        """Close the underlying file and make the object appear."""
        try:
            with storage("completing the upload", self._url, opened=False):
                self._target.close()
                self._target.commit()
        except FileExistsError as exc:  # the conditional commit found an object (s3fs: 412)
            if isinstance(exc, OutputExistsError):
                raise
            raise OutputExistsError(self._url) from exc
        finally:
            super().close()

    def discard(self) -> None:
        """Drop the upload (S3: AbortMultipartUpload): no object, or the previous one, remains.
        A failure is already on its way up, and it is the one to report."""
        super().close()
        with contextlib.suppress(OSError):  # RemoteError included: a leftover upload is no object
            with storage("discarding the upload", self._url, opened=False):
                try:
                    if not self._target.closed:
                        self._target.close()
                finally:
                    self._target.discard()

    def close(self) -> None:
        """Closing is committing or discarding, which the owner of the upload decides."""
