"""A FIFO read on a thread, for the tests that write outputs into one."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


class FifoReader:
    """Reads the FIFO at ``path`` on a thread until its writer closes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as f:
            self.data = f.read()

    def result(self) -> bytes:
        """What was read; unblocks the reader first if nothing ever opened the FIFO for writing."""
        with contextlib.suppress(OSError):  # ENXIO: no reader left, it is done
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        self.thread.join(30)
        assert not self.thread.is_alive(), "the FIFO reader is stuck"
        return self.data
