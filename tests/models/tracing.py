"""What a system-call trace (``strace -f``) of a save and load wrote: the no-plaintext-on-disk
checks of the model adapters read their traces through this one parser."""

from __future__ import annotations

import re

_OPENED = re.compile(r'(?:openat\(AT_FDCWD, |open\(|creat\()"([^"]+)", ([A-Z_|]+)')
_FOR_WRITING = re.compile(r"O_WRONLY|O_RDWR|O_CREAT")
_MADE = re.compile(r'mkdir(?:at)?\((?:AT_FDCWD, )?"([^"]+)"')


def written_paths(
    trace: str, markers: tuple[str, ...] = ("BEGIN-ENVELOPE-WORK",), *, folders: bool = True
) -> list[str]:
    """The paths the trace shows opened for writing (and, with ``folders``, made), in order, from
    the first line that holds one of ``markers`` on; calls that failed are left out."""
    lines = trace.splitlines()
    start = next(i for i, line in enumerate(lines) if any(marker in line for marker in markers))
    writes = []
    for line in lines[start:]:
        if "= -1" in line:
            continue
        opened = _OPENED.search(line)
        if opened and _FOR_WRITING.search(opened.group(2)):
            writes.append(opened.group(1))
        made = _MADE.search(line) if folders else None
        if made:
            writes.append(made.group(1))
    return writes
