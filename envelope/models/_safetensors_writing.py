"""A dict of tensors (NumPy arrays or PyTorch tensors) as the bytes of a safetensors file, written
piece by piece: the header, then each tensor's own memory. The file's length is known before a
byte is written, so a folder can list it, and the serialized file never exists in memory."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envelope import UsageError

from ._common import require
from ._safetensors_format import TensorSpec, encode_header
from ._tensor_memory import Library

__all__ = ["Serialized", "serialize"]


@dataclass(frozen=True)
class Serialized:
    """A safetensors file not yet written: its header, its tensors in file order, its length."""

    library: Library
    header: bytes
    tensors: tuple[Any, ...]
    size: int

    def write_to(self, out: Any) -> None:
        """Write the whole file with ``out.write``, one tensor at a time, without copying a
        contiguous CPU tensor."""
        out.write(self.header)
        for tensor in self.tensors:
            out.write(_raw_bytes(self.library, tensor))


def serialize(tensors: Mapping[str, Any], tensor_metadata: Mapping[str, str] | None = None) -> Serialized:
    """Plan the safetensors file of ``tensors`` as ``safetensors.numpy.save`` /
    ``safetensors.torch.save`` write it, byte for byte. Raises :class:`~envelope.UsageError` for
    what safetensors cannot store (a dtype it lacks, a sparse or non-contiguous tensor, tensors
    that share memory)."""
    if not isinstance(tensors, Mapping) or not all(isinstance(name, str) for name in tensors):
        raise UsageError("tensors must be a dict of names (str) to tensors")
    library = _library_of(tensors)
    convert = _numpy_bytes if library == "numpy" else _torch_bytes
    pairs = dict(zip(tensors, (convert(name, t) for name, t in tensors.items()), strict=True))
    if library == "torch":
        _refuse_shared({name: kept for name, (_, kept) in pairs.items()})
    header, order = encode_header((spec for spec, _ in pairs.values()), tensor_metadata)
    size = len(header) + sum(pairs[name][0].nbytes for name in order)
    return Serialized(library, header, tuple(pairs[name][1] for name in order), size)


def _library_of(tensors: Mapping[str, Any]) -> Library:
    kinds = {type(t).__module__.split(".")[0] for t in tensors.values()}
    if kinds <= {"numpy"}:
        return "numpy"
    if kinds <= {"torch"}:
        return "torch"
    raise UsageError(f"tensors must all be NumPy arrays or all PyTorch tensors, not {sorted(kinds)}")


_NUMPY_CODES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "int16": "I16",
    "uint16": "U16",
    "float16": "F16",
    "int32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "complex64": "C64",
    "float64": "F64",
    "int64": "I64",
    "uint64": "U64",
}
_TORCH_CODES = {
    **{name: code for name, code in _NUMPY_CODES.items()},
    "bfloat16": "BF16",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e8m0fnu": "F8_E8M0",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
}


def _numpy_bytes(name: str, array: Any) -> tuple[TensorSpec, Any]:
    code = _NUMPY_CODES.get(array.dtype.name)
    if code is None:
        raise UsageError(f"tensor {name!r}: safetensors has no dtype for NumPy's {array.dtype.name!r}")
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))  # safetensors stores little-endian
    if not array.flags.c_contiguous:
        array = array.copy(order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    return TensorSpec(name, code, tuple(array.shape), array.nbytes), array


def _torch_bytes(name: str, tensor: Any) -> tuple[TensorSpec, Any]:
    torch = require("torch", "torch")
    code = _TORCH_CODES.get(str(tensor.dtype).removeprefix("torch."))
    if code is None:
        raise UsageError(f"tensor {name!r}: safetensors has no dtype for PyTorch's {tensor.dtype}")
    if tensor.layout != torch.strided:
        raise UsageError(f"tensor {name!r} is sparse; safetensors stores dense tensors (.to_dense())")
    if not tensor.is_contiguous():
        raise UsageError(f"tensor {name!r} is not contiguous; call .contiguous() on it first")
    nbytes = tensor.numel() * tensor.element_size()
    return TensorSpec(name, code, tuple(tensor.shape), nbytes), tensor


def _refuse_shared(tensors: Mapping[str, Any]) -> None:
    """Tensors whose memory overlaps would be written twice and come back apart (safetensors
    refuses them too)."""
    spans = sorted(
        (str(t.device), t.data_ptr(), t.data_ptr() + t.numel() * t.element_size(), name)
        for name, t in tensors.items()
        if t.numel()
    )
    for (device, _, end, before), (other, start, _, name) in itertools.pairwise(spans):
        if device == other and start < end:
            raise UsageError(f"tensors {before!r} and {name!r} share memory; save clones (or one of them) instead")


def _raw_bytes(library: Library, tensor: Any) -> memoryview:
    """A tensor's bytes, without a copy where it is already contiguous on the CPU."""
    if library == "numpy":
        return memoryview(tensor.reshape(-1).view("uint8"))
    torch = require("torch", "torch")
    flat = tensor.detach().resolve_conj().resolve_neg().reshape(-1)
    if flat.device.type != "cpu":
        flat = flat.cpu()  # one tensor at a time
    return memoryview(flat.view(torch.uint8).numpy())
