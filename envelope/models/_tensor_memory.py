"""Where decrypted tensor bytes land: one buffer per load (NumPy, or PyTorch on any device), filled
by the workers straight from the sealed file, and the tensors as views of it.

On the CPU the workers decrypt into the buffer itself, so its pages are first touched by the
threads that fill them. On a CUDA device the bytes go through two pinned host buffers, each
copied to the device (on a side stream) while the workers fill the other. That CUDA path is not
tested by the test suite, which runs without a GPU.
"""

from __future__ import annotations

import contextlib
import mmap
import sys
from collections.abc import Sequence
from typing import Any, Literal

from envelope import UsageError
from envelope.readat import PlaintextAt, Prefault

from ._common import require
from ._safetensors_format import DTYPE_BITS

__all__ = ["TORCH_TYPES", "Library", "TensorFactory", "library_of_framework", "torch_device"]

Library = Literal["numpy", "torch"]

_FRAMEWORKS: dict[str, Library] = {"np": "numpy", "numpy": "numpy", "pt": "torch", "torch": "torch"}
_STAGING = 32 << 20  # bytes of each pinned host buffer on the way to a CUDA device
# madvise(MADV_POPULATE_WRITE), Linux 5.14+ (Python names it from 3.14 on; 23 is its value on Linux)
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23) if sys.platform == "linux" else None
_POPULATE_MIN = 1 << 20  # smaller buffers: malloc's memory, often already mapped

_NUMPY_TYPES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "I16": "int16",
    "U16": "uint16",
    "F16": "float16",
    "I32": "int32",
    "U32": "uint32",
    "F32": "float32",
    "C64": "complex64",
    "F64": "float64",
    "I64": "int64",
    "U64": "uint64",
}
TORCH_TYPES = {
    **{code: name for code, name in _NUMPY_TYPES.items() if code != "BOOL"},
    "BOOL": "bool",
    "BF16": "bfloat16",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E8M0": "float8_e8m0fnu",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
}


def library_of_framework(framework: object) -> Library:
    """``"pt"``/``"torch"`` or ``"np"``/``"numpy"``, as safetensors' ``safe_open`` names them."""
    library = _FRAMEWORKS.get(framework) if isinstance(framework, str) else None
    if library is None:
        raise UsageError(f"framework must be 'pt' (or 'torch') or 'np' (or 'numpy'), not {framework!r}")
    return library


def torch_device(torch: Any, device: object) -> Any:
    """``device`` as a ``torch.device`` that can hold loaded tensors (the CPU included), or a
    :class:`~envelope.UsageError`: not a device, the meta device, or CUDA where PyTorch sees none."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise UsageError(f"{device!r} is not a PyTorch device") from exc
    if resolved.type == "meta":
        raise UsageError("device='meta' holds no data: build the model on the meta device, then load it on a real one")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={device!r}: PyTorch sees no CUDA device here")
    return resolved


def _host_buffer(np: Any, nbytes: int) -> tuple[Any, Prefault | None]:
    """A new uint8 NumPy array of ``nbytes`` and, on Linux 5.14+, a ``prefault(low, high)`` that
    maps its pages in one system call (``MADV_POPULATE_WRITE``), for each worker to call on the part
    it is about to decrypt into. The faults of a fresh buffer are most of a load's cost on these
    VMs (a 4 KiB fault each); populating a chunk's pages at once cost a quarter less CPU here
    (tools/bench_models.py workers, fresh processes). Transparent huge pages were tried and cost
    more CPU in fresh processes on these VMs, though far fewer faults (the reverted commit)."""
    if nbytes < _POPULATE_MIN or _MADV_POPULATE_WRITE is None:
        return np.empty(nbytes, dtype=np.uint8), None
    mapped = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    array = np.frombuffer(mapped, dtype=np.uint8)  # holds the mapping for as long as it (or a view) lives

    def prefault(low: int, high: int) -> None:
        low = low // mmap.PAGESIZE * mmap.PAGESIZE
        high = min(nbytes, high)
        if high > low:
            with contextlib.suppress(OSError):  # a kernel without it: the writes fault as usual
                mapped.madvise(_MADV_POPULATE_WRITE, low, high - low)

    return array, prefault


class TensorFactory:
    """Buffers and tensor views for one library and device (``None``: the CPU)."""

    def __init__(self, library: Library, device: object = None) -> None:
        self.library = library
        self._np = require("numpy", "safetensors")  # for either library: the buffers are NumPy's
        if library == "numpy":
            if device is not None and device != "cpu":
                raise UsageError(f"NumPy arrays live on the CPU: device={device!r} needs framework='pt'")
            self.device: Any = None
            return
        self._torch = require("torch", "torch")
        resolved = None if device is None else torch_device(self._torch, device)
        self.device = None if resolved is None or resolved.type == "cpu" else resolved

    def check_dtypes(self, dtypes: Sequence[str]) -> None:
        """Refuse, before anything is decrypted, a dtype the library cannot hold."""
        table = _NUMPY_TYPES if self.library == "numpy" else TORCH_TYPES
        missing = sorted({d for d in dtypes if d not in table or self._dtype(d) is None})
        if missing:
            hint = " (load it with library='torch' / framework='pt')" if self.library == "numpy" else ""
            raise UsageError(f"{'NumPy' if self.library == 'numpy' else 'PyTorch'} has no dtype for {missing}{hint}")

    def _dtype(self, code: str) -> Any:
        if self.library == "numpy":
            return self._np.dtype(_NUMPY_TYPES[code])
        return getattr(self._torch, TORCH_TYPES[code], None)

    def filled(self, plain: PlaintextAt, offset: int, nbytes: int, *, threads: int | None) -> Any:
        """A new byte buffer holding plaintext ``[offset, offset + nbytes)``, on the device."""
        if self.library == "numpy":
            array, prefault = _host_buffer(self._np, nbytes)
            plain.read_into(offset, memoryview(array), threads=threads, prefault=prefault)
            return array
        torch = self._torch
        if self.device is None or self.device.type != "cuda":
            array, prefault = _host_buffer(self._np, nbytes)
            plain.read_into(offset, memoryview(array), threads=threads, prefault=prefault)
            host = torch.from_numpy(array)
            return host if self.device is None else host.to(self.device)
        return self._filled_cuda(plain, offset, nbytes, threads)

    def _filled_cuda(self, plain: PlaintextAt, offset: int, nbytes: int, threads: int | None) -> Any:
        """Untested here (no GPU): windows cut at chunk boundaries, decrypted into one of two
        pinned host buffers while the other is copied to the device on a side stream."""
        torch = self._torch
        out = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
        if nbytes == 0:
            return out
        chunk = plain.chunk_size
        window = max(chunk, _STAGING // chunk * chunk)
        staging = [torch.empty(min(window, nbytes), dtype=torch.uint8, pin_memory=True) for _ in range(2)]
        copied: list[Any] = [None, None]  # the event marking each buffer's copy to the device done
        stream = torch.cuda.Stream(device=self.device)
        position, turn = offset, 0
        end = offset + nbytes
        while position < end:
            stop = min(end, (position // chunk) * chunk + window)
            host = staging[turn]
            if copied[turn] is not None:
                copied[turn].synchronize()  # the device has taken what this buffer held before
            piece = host[: stop - position]
            plain.read_into(position, memoryview(host.numpy())[: stop - position], threads=threads)
            with torch.cuda.stream(stream):
                out[position - offset : stop - offset].copy_(piece, non_blocking=True)
                event = torch.cuda.Event()
                event.record(stream)
            copied[turn] = event
            position, turn = stop, 1 - turn
        stream.synchronize()
        return out

    def view(self, buffer: Any, begin: int, end: int, dtype: str, shape: tuple[int, ...]) -> Any:
        """The tensor at bytes ``[begin, end)`` of ``buffer``: a view, or a copy where the bytes
        are not aligned for the dtype (safetensors does not promise alignment)."""
        size = DTYPE_BITS[dtype] // 8
        if self.library == "numpy":
            part = buffer[begin:end]
            if part.ctypes.data % size:
                part = part.copy()
            return part.view(self._dtype(dtype)).reshape(shape)
        torch = self._torch
        kind = self._dtype(dtype)
        if begin == end:
            return torch.empty(shape, dtype=kind, device=buffer.device)
        part = buffer[begin:end]
        if part.data_ptr() % size:
            part = part.clone()
        return part.view(kind).reshape(shape)
