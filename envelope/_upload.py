"""The uploader of the ``envelope::`` filesystem: a sealing writer over an uncommitted file of the
underlying filesystem, whose object appears only when the writer's final chunk is written."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from ._sdkoptions import options_for
from ._storage import storage
from .errors import RemoteError
from .fileio import EnvelopeWriter

__all__ = ["SealedObjectWriter"]


class SealedObjectWriter(io.BufferedIOBase):
    """A sealed object opened for writing: what is written is sealed and uploaded as it goes.

    Made by :meth:`EnvelopeFileSystem.open` (mode ``"wb"``). The underlying file is opened without
    autocommit, so the object appears only when :meth:`close` has written the final chunk (S3:
    the upload is completed then; a local file is moved into place). Used as a context manager, an
    exception inside the block, or a failure while writing, discards the upload: no object, or
    the previous one, remains. Memory: the SDK writer's chunks in flight plus the underlying
    file's block (s3fs: 50 MiB unless ``block_size=`` says otherwise).
    """

    def __init__(
        self,
        target: Any,
        recipients: Any,
        options: Mapping[str, Any],
        *,
        path: str,
        autocommit: bool,
    ) -> None:
        super().__init__()
        self._target = target
        self._path = path
        self._autocommit = autocommit
        try:
            with storage("writing", path, opened=False):
                self._writer = EnvelopeWriter(target, recipients, **options_for(EnvelopeWriter, options))
        except BaseException:
            io.BufferedIOBase.close(self)
            self._discard_target(quiet=True)
            raise

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._writer.tell()

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        try:
            with storage("writing", self._path, opened=False):
                return self._writer.write(data)
        except BaseException:
            self._abort(quiet=True)
            raise

    def flush(self) -> None:
        """Nothing to do: chunks go up as the underlying file's blocks fill, and at close."""

    def close(self) -> None:
        """Write the final chunk and make the object appear (unless inside a transaction)."""
        if self.closed:
            return
        try:
            with storage("writing", self._path, opened=False):
                self._writer.close()
                self._target.close()
                if self._autocommit:
                    self._target.commit()
        except BaseException:
            self._discard_target(quiet=True)
            raise
        finally:
            super().close()

    def abort(self) -> None:
        """Close without the final chunk and discard the upload."""
        self._abort(quiet=False)

    def _abort(self, *, quiet: bool) -> None:
        if self.closed:
            return
        try:
            self._writer.abort()
        finally:
            super().close()
            self._discard_target(quiet=quiet)

    def commit(self) -> None:
        """Inside an fsspec transaction: make the closed object appear."""
        with storage("committing", self._path, opened=False):
            self._target.commit()

    def discard(self) -> None:
        """Inside an fsspec transaction: drop the closed object."""
        with storage("discarding", self._path, opened=False):
            self._target.discard()

    def _discard_target(self, *, quiet: bool) -> None:
        """Drop the upload. ``quiet``: a failure is already on its way up, and it is the one to
        report; a discard that fails then leaves an incomplete upload (never an object) behind."""
        try:
            with storage("discarding an upload", self._path, opened=False):
                try:
                    if not self._target.closed:
                        self._target.close()
                finally:
                    self._target.discard()
        except RemoteError:
            if not quiet:
                raise

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __repr__(self) -> str:
        return f"<SealedObjectWriter written={self._writer.tell()} closed={self.closed}>"
