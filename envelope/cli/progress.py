"""A progress bar on stderr, for long work only, and only when stderr is a terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

THRESHOLD = 8 << 20  # below 8 MiB the work takes well under a second: no bar
_REDRAW_SECONDS = 0.1
_WIDTH = 24  # bar characters, at most
_MIN_WIDTH = 8  # a narrower bar says nothing the percentage does not


class ProgressBar:
    """Called with the number of bytes just processed (the SDK's ``progress`` callback).

    ``total`` may be unknown (a pipe): the bar then shows a byte count once past the threshold.
    Draws with plain characters only, no colour.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO) -> None:
        self._label = label
        self._total = total
        self._stream = stream
        self._done = 0
        self._started = time.monotonic()
        self._last_draw = float("-inf")
        self._drawn = 0

    def __call__(self, processed: int) -> None:
        self._done += processed
        now = time.monotonic()
        if now - self._last_draw >= _REDRAW_SECONDS and (self._total is not None or self._done > THRESHOLD):
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._done / elapsed
        width = _columns(self._stream) - 1  # writing the last column wraps on some terminals
        text = self._text(rate, width)
        self._stream.write("\r" + text.ljust(min(self._drawn, width)))  # blanks out the longer line before
        self._stream.flush()
        self._drawn = len(text)

    def _text(self, rate: float, width: int) -> str:
        """The richest line that fits in ``width`` columns: the bar shrinks first, then the speed
        and time left go, then the bar; the last resort is the line cut short."""
        speed = f"{rate / 1e6:.0f} MB/s"
        if not self._total:
            return _fit([f"{self._label} {_mib(self._done)}  {speed}", f"{self._label} {_mib(self._done)}"], width)
        fraction = min(1.0, self._done / self._total)
        left = (self._total - self._done) / rate if rate > 0 else 0.0
        counts = f"{fraction:4.0%} {_mib(self._done)}/{_mib(self._total)}"
        tail = f"  {speed}  {_duration(left)} left"
        candidates = []
        for rest in (f"{counts}{tail}", counts, f"{fraction:4.0%}"):
            room = width - len(f"{self._label} [] {rest}")
            bar_width = min(_WIDTH, room)
            if bar_width >= _MIN_WIDTH:
                filled = int(fraction * bar_width)
                candidates.append(f"{self._label} [{'#' * filled}{'.' * (bar_width - filled)}] {rest}")
        candidates += [f"{self._label} {counts}", f"{self._label} {fraction:4.0%}"]
        return _fit(candidates, width)

    def finish(self) -> None:
        """Erase the bar, so that what follows (an error line, a prompt) starts on a clean line."""
        if self._drawn:
            self._stream.write("\r" + " " * min(self._drawn, _columns(self._stream) - 1) + "\r")
            self._stream.flush()
            self._drawn = 0


@contextlib.contextmanager
def progress_bar(
    label: str, total: int | Callable[[], int | None] | None, *, quiet: bool
) -> Iterator[ProgressBar | None]:
    """A bar when it is useful (not quiet, stderr a terminal, the input large or of unknown size),
    erased when the block ends; otherwise ``None``, which the SDK takes as "no progress callback".
    ``total`` may be a function, called only when a bar could be drawn (it may read a header)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    if callable(total):
        total = total()
    if total is not None and total <= THRESHOLD:
        yield None
        return
    bar = ProgressBar(label, total, sys.stderr)
    try:
        yield bar
    finally:
        bar.finish()


def _columns(stream: TextIO) -> int:
    """The terminal's width now (it may be resized while the bar runs); 80 if it cannot be told."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80
    return columns if columns > 0 else 80


def _fit(candidates: list[str], width: int) -> str:
    """The first candidate no wider than ``width``, or the last one cut to it."""
    for text in candidates:
        if len(text) <= width:
            return text
    return candidates[-1][: max(width, 0)]


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
