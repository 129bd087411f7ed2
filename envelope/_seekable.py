"""The file-object surface shared by the SDK's seekable readers of verified bytes (the ranged
source of a URL, the reader of plaintext at offsets, a folder member): a position within a known
size, moved by ``seek``; each class reads at it its own way."""

from __future__ import annotations

import os

__all__ = ["Seekable"]


class Seekable:
    """``readable``, ``seekable``, ``tell`` and ``seek`` over ``_extent()`` bytes, for a subclass of
    an ``io`` base class that keeps ``_position`` and reads at it."""

    _position = 0

    def _extent(self) -> int:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._extent()}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence ({whence})")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position
