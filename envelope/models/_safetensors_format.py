"""The safetensors format, parsed and written here: an 8-byte little-endian header length N, N bytes
of JSON (``{"name": {"dtype", "shape", "data_offsets"}, ..., "__metadata__": {str: str}}``, padded
with spaces), then the tensors' bytes, each at its offsets from the end of the header.

No framework and no cryptography: the adapter decrypts the bytes, this module says where each
tensor is. Every offset is checked before a tensor is made (as safetensors checks them): known
dtypes, shape x dtype size = the tensor's byte length, tensors back to back from offset 0 with no
gap or overlap, the last one ending where the data ends, a header of at most 100 MB. A header is
written exactly as ``safetensors.numpy.save`` / ``safetensors.torch.save`` write it: tensors sorted
by dtype (widest first, in safetensors' order) then name, compact JSON, padding to 8 bytes.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from envelope import UnsafeModelError, UsageError

__all__ = ["DTYPE_BITS", "MAX_HEADER_LEN", "PREFIX", "TensorInfo", "TensorTable", "encode_header", "parse_header"]

PREFIX = struct.Struct("<Q")
MAX_HEADER_LEN = 100_000_000  # safetensors' own limit on N

# Bits per element, in the order safetensors sorts dtypes (it writes the last ones first).
DTYPE_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_RANK = {code: rank for rank, code in enumerate(DTYPE_BITS)}
_METADATA = "__metadata__"
_FIELDS = {"dtype", "shape", "data_offsets"}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the header: ``begin``/``end`` are offsets from the start of the data."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class TensorTable:
    """A parsed header: the tensors in data order, the ``__metadata__`` map (``None``: absent),
    and where the data start in the file (8 + N)."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] | None
    data_start: int


def _refuse(detail: str) -> UnsafeModelError:
    return UnsafeModelError(f"this file is not a valid safetensors file: {detail}")


def check_header_len(length: int, file_len: int) -> None:
    """N, as read from the first 8 bytes, against the limit and the file's length."""
    if length > MAX_HEADER_LEN:
        raise _refuse(f"its header length ({length} bytes) is over the limit of {MAX_HEADER_LEN}")
    if PREFIX.size + length > file_len:
        raise _refuse(f"its header length ({length} bytes) runs past the end of the file ({file_len} bytes)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        names = [name for name, _ in pairs]
        duplicate = next(name for name in names if names.count(name) > 1)
        raise _refuse(f"its header names {duplicate!r} twice")
    return result


def _no_constant(name: str) -> Any:
    raise _refuse(f"its header holds {name}, which is not JSON")


def _count(value: object) -> bool:
    return type(value) is int and value >= 0


def parse_header(raw: bytes, data_len: int) -> TensorTable:
    """The header's N bytes, checked against ``data_len`` bytes of tensor data that follow."""
    try:
        text = raw.decode("utf-8")
        if not text.startswith("{"):
            raise _refuse("its header is not a JSON object")
        parsed = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise _refuse("its header is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, UnsafeModelError):
            raise
        raise _refuse("its header is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _refuse("its header is not a JSON object")
    metadata = parsed.pop(_METADATA, None)
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise _refuse("its __metadata__ is not a map of strings to strings")
    tensors = [_tensor(name, entry) for name, entry in parsed.items()]
    tensors.sort(key=lambda t: (t.begin, t.end))
    position = 0
    for tensor in tensors:
        if tensor.begin != position:
            raise _refuse(f"tensor {tensor.name!r} does not start where the one before it ends (gap or overlap)")
        position = tensor.end
    if position != data_len:
        raise _refuse(f"its tensors cover {position} bytes of data, and the file holds {data_len}")
    return TensorTable({t.name: t for t in tensors}, metadata, PREFIX.size + len(raw))


def _tensor(name: str, entry: object) -> TensorInfo:
    if not isinstance(entry, dict) or set(entry) != _FIELDS:
        raise _refuse(f"tensor {name!r} is not described by exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _refuse(f"tensor {name!r} has an unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_count(n) for n in shape):
        raise _refuse(f"tensor {name!r} has a shape that is not a list of sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_count(n) for n in offsets):
        raise _refuse(f"tensor {name!r} has data_offsets that are not two offsets")
    begin, end = offsets
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if end < begin or bits % 8 or bits // 8 != end - begin:
        raise _refuse(f"tensor {name!r}: its shape and dtype do not fill its {end - begin} bytes exactly")
    return TensorInfo(name, dtype, tuple(shape), begin, end)


@dataclass(frozen=True)
class TensorSpec:
    """A tensor to write: its name, dtype code, shape and byte length."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


def encode_header(tensors: Iterable[TensorSpec], metadata: Mapping[str, str] | None) -> tuple[bytes, list[str]]:
    """The first 8 + N bytes of the file, and the tensor names in the order their bytes follow."""
    ordered = sorted(tensors, key=lambda t: (-_RANK[t.dtype], t.name))
    header: dict[str, Any] = {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise UsageError("tensor_metadata must map strings to strings")
        header[_METADATA] = dict(metadata)
    position = 0
    for tensor in ordered:
        if tensor.name == _METADATA:
            raise UsageError(f"a tensor cannot be named {_METADATA!r}: safetensors keeps that name for the metadata")
        header[tensor.name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [position, position + tensor.nbytes],
        }
        position += tensor.nbytes
    try:
        text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("tensor names and metadata must be valid Unicode (no lone surrogates)") from None
    text += b" " * (-len(text) % 8)
    return PREFIX.pack(len(text)) + text, [t.name for t in ordered]
