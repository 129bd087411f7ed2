"""Showing metadata and sizes: tagged JSON (as in spec/vectors/README.md) and safe terminal text."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

MAX_JSON_INT = (1 << 53) - 1  # larger integers lose precision in most JSON readers


def tagged(value: Any) -> Any:
    """A metadata value as tagged JSON (spec/vectors/README.md): ``{"$bin": hex}``,
    ``{"$int": "decimal"}``, ``{"$float": x}``, and ``{"$map": {...}}`` for a map whose only key
    begins with ``$`` (which would otherwise read as a tag)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_JSON_INT else {"$int": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"$float": "NaN"}
        if math.isinf(value):
            return {"$float": "Infinity" if value > 0 else "-Infinity"}
        return {"$float": value}
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, Mapping):
        mapping = {str(k): tagged(v) for k, v in value.items()}
        return {"$map": mapping} if len(mapping) == 1 and next(iter(mapping)).startswith("$") else mapping
    if isinstance(value, (list, tuple)):
        return [tagged(v) for v in value]
    raise TypeError(f"not a metadata value: {type(value).__name__}")


def printable(text: str) -> str:
    """Escape what a terminal would interpret (control, format and bidi characters): metadata is
    written by whoever made the file. A byte of a file name that is not UTF-8 (which Python holds
    as a surrogate escape, U+DC80 to U+DCFF) is shown as the byte, ``\\xe9``."""
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def json_path(path: str) -> dict[str, str]:
    """A path in JSON (docs/CLI.md, the --json schema): ``{"path": name}``; a name that is not
    UTF-8 (JSON text is) has U+FFFD for each byte that is not, and its bytes in hex beside it,
    ``{"path": ..., "path_bytes_hex": ...}``, from which it can be named again."""
    name = os.fsencode(path)
    try:
        return {"path": name.decode()}
    except UnicodeDecodeError:
        return {"path": name.decode(errors="replace"), "path_bytes_hex": name.hex()}


def metadata_lines(metadata: Mapping[str, Any], indent: str = "    ", *, already_tagged: bool = False) -> list[str]:
    """``"key": value`` lines, values in tagged JSON, everything escaped for the terminal."""
    if already_tagged and metadata.keys() == {"$map"}:  # a map whose only key begins with "$"
        metadata = metadata["$map"]
    if not metadata:
        return [f"{indent}(none)"]
    return [
        indent
        + printable(
            f"{json.dumps(key, ensure_ascii=False)}: "
            f"{json.dumps(value if already_tagged else tagged(value), ensure_ascii=False)}"
        )
        for key, value in metadata.items()
    ]


def byte_range(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low} to {high}"
