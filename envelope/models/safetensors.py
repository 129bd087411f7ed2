"""safetensors: a dict of named tensors (NumPy arrays or PyTorch tensors), sealed.

``save`` writes the safetensors header, then each tensor's bytes, straight into an
:class:`~envelope.EnvelopeWriter`: the serialized file never exists in memory. ``load`` parses and
checks the header (``_safetensors_format``), allocates one buffer for all the tensor data and has
the workers decrypt every chunk into its place in it; each tensor is a view of that buffer (a copy
only where the file's offsets are not aligned for the dtype). :func:`safe_open` reads one tensor at
a time, opening (and, from a URL, fetching) only the chunks it spans. safetensors never runs code
on load, so there is no unsafe path here, and the safetensors package is not needed to load.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from envelope import (
    DEFAULT_CHUNK_SIZE,
    IdentityLike,
    RecipientLike,
    SignedBy,
    Signer,
    SigningKey,
    UnsafeModelError,
    UsageError,
)
from envelope.readat import PlaintextAt, open_at

from ._common import ModelSource, ModelTarget, check_framework, model_metadata, require, sealed_model
from ._safetensors_format import (
    PREFIX,
    TensorInfo,
    TensorTable,
    check_header_len,
    parse_header,
)
from ._safetensors_writing import serialize
from ._tensor_memory import Library, TensorFactory, library_of_framework

__all__ = ["MODEL_FORMAT", "SafeOpen", "TensorSlice", "load", "safe_open", "save"]

MODEL_FORMAT = "safetensors"
_HEADER_GUESS = 64 << 10  # header bytes read with its length (safetensors headers are a few KiB per 100 tensors)


# --- saving ------------------------------------------------------------------------------------


def save(
    tensors: Mapping[str, Any],
    target: ModelTarget,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    tensor_metadata: Mapping[str, str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    sign_with: Signer | SigningKey | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Seal a dict of tensors as the safetensors file ``safetensors.numpy.save`` /
    ``safetensors.torch.save`` would write, byte for byte. ``tensor_metadata`` goes into the
    safetensors header itself (and is encrypted with the payload); ``metadata`` is envelope's
    plaintext, authenticated metadata. The tensors are written one after the other into the
    sealing writer: memory holds the tensors and a few chunks, never the serialized file."""
    serialized = serialize(tensors, tensor_metadata)
    safetensors = require("safetensors", "safetensors")
    meta = model_metadata(
        metadata, "safetensors", safetensors.__version__, MODEL_FORMAT, tensor_library=serialized.library
    )
    with sealed_model(
        target,
        recipients,
        meta,
        chunk_size=chunk_size,
        overwrite=overwrite,
        sign_with=sign_with,
        storage_options=storage_options,
    ) as writer:
        serialized.write_to(writer)


# --- loading -----------------------------------------------------------------------------------


def _read_table(plain: PlaintextAt) -> TensorTable:
    """The safetensors header, read from the first chunk(s) and checked in full."""
    if plain.size < PREFIX.size:
        raise UnsafeModelError("this file is not a valid safetensors file: it is shorter than its 8-byte header length")
    # The length and (for most files) the whole header in one read, within the first chunk: each
    # read opens the chunks it spans, and reading the length alone first opened that chunk twice.
    first = bytearray(min(plain.size, max(PREFIX.size, min(plain.chunk_size, PREFIX.size + _HEADER_GUESS))))
    plain.read_into(0, memoryview(first))
    (length,) = PREFIX.unpack_from(first)
    check_header_len(length, plain.size)
    raw = first[PREFIX.size : PREFIX.size + length]
    if len(raw) < length:
        raw += bytearray(length - len(raw))
        plain.read_into(len(first), memoryview(raw)[len(first) - PREFIX.size :])
    return parse_header(bytes(raw), plain.size - PREFIX.size - length)


def _opened(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    signed_by: SignedBy | None,
    storage_options: Mapping[str, Any] | None,
) -> PlaintextAt:
    plain = open_at(source, private_key, signed_by=signed_by, storage_options=storage_options)
    try:
        check_framework(plain.metadata, "safetensors", [MODEL_FORMAT])
    except BaseException:
        plain.close()
        raise
    return plain


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    library: Library | None = None,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
    device: Any = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Open a sealed safetensors file into a dict of tensors, as NumPy arrays or PyTorch tensors
    (``library``; by default the kind that was saved), in the file's order.

    The workers (``threads``, default one per core) decrypt each chunk into one buffer that holds
    every tensor's data; the tensors are views of it, so the load needs the model's size and a few
    chunks of memory. ``device`` (PyTorch only): where the tensors end up, ``"cpu"`` by default.
    A CUDA device gets the data through pinned host buffers, copied while the next ones decrypt;
    that path is not exercised by the test suite (no GPU there).
    """
    with _opened(source, private_key, signed_by, storage_options) as plain:
        chosen = library or plain.metadata.get("envelope.tensor_library", "numpy")
        if chosen not in ("numpy", "torch"):
            raise UsageError(f"library must be 'numpy' or 'torch', not {chosen!r}")
        factory = TensorFactory(chosen, device)
        table = _read_table(plain)
        factory.check_dtypes([info.dtype for info in table.tensors.values()])
        data_len = plain.size - table.data_start
        buffer = factory.filled(plain, table.data_start, data_len, threads=threads)
    return {name: factory.view(buffer, i.begin, i.end, i.dtype, i.shape) for name, i in table.tensors.items()}


# --- one tensor at a time ----------------------------------------------------------------------


class SafeOpen:
    """A sealed safetensors file opened for reading tensor by tensor, as ``safetensors.safe_open``
    reads a plain one. Made by :func:`safe_open`; the header (and the envelope's header, the
    final chunk and a signed file's signature) verified before it is returned."""

    def __init__(self, plain: PlaintextAt, table: TensorTable, factory: TensorFactory, threads: int | None) -> None:
        self._plain: PlaintextAt | None = plain
        self._table = table
        self._factory = factory
        self._threads = threads

    @property
    def fetched(self) -> int | None:
        """Bytes fetched from a URL so far (``None``: not a URL)."""
        return self._open().fetched

    def _open(self) -> PlaintextAt:
        if self._plain is None:
            raise UsageError("this sealed safetensors file is closed")
        return self._plain

    def keys(self) -> list[str]:
        """The tensor names, sorted (as safetensors lists them)."""
        return sorted(self._table.tensors)

    def metadata(self) -> dict[str, str] | None:
        """The safetensors header's ``__metadata__`` (``None`` when it has none)."""
        return None if self._table.metadata is None else dict(self._table.metadata)

    def _info(self, name: str) -> TensorInfo:
        info = self._table.tensors.get(name) if isinstance(name, str) else None
        if info is None:
            raise UsageError(f"this file holds no tensor named {name!r}")
        return info

    def get_tensor(self, name: str) -> Any:
        """The tensor ``name``: only the chunks its bytes span are opened (and fetched)."""
        info = self._info(name)
        return self._read(info, info.begin, info.end, info.shape)

    def get_slice(self, name: str) -> TensorSlice:
        """The tensor ``name``, to be indexed: ``f.get_slice("w")[2:5]`` reads rows 2 to 4 only."""
        info = self._info(name)
        self._factory.check_dtypes([info.dtype])
        return TensorSlice(self, info)

    def _read(self, info: TensorInfo, begin: int, end: int, shape: tuple[int, ...]) -> Any:
        plain = self._open()
        self._factory.check_dtypes([info.dtype])
        buffer = self._factory.filled(plain, self._table.data_start + begin, end - begin, threads=self._threads)
        return self._factory.view(buffer, 0, end - begin, info.dtype, shape)

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
            self._plain = None

    def __enter__(self) -> SafeOpen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


class TensorSlice:
    """A tensor not yet read: :meth:`get_shape`, :meth:`get_dtype`, and indexing.

    Any index NumPy or PyTorch takes works; what is read is the rows a leading integer or slice
    selects on the first dimension (``[3]``, ``[2:5]``, ``[::4]``: from the first row selected to
    the last), or the whole tensor for any other index (``[:]``, ``[...]``, ``[:, 1:3]``, an index
    array). The rest of the index is applied to the rows read.
    """

    def __init__(self, opened: SafeOpen, info: TensorInfo) -> None:
        self._opened = opened
        self._info = info

    def get_shape(self) -> list[int]:
        return list(self._info.shape)

    def get_dtype(self) -> str:
        """The safetensors dtype code (``"F32"``, ``"BF16"``...)."""
        return self._info.dtype

    def __getitem__(self, index: Any) -> Any:
        info, shape = self._info, self._info.shape
        parts = index if isinstance(index, tuple) else (index,)
        lead = parts[0] if parts else None
        rows = range(shape[0]) if shape else range(0)
        if not shape or not isinstance(lead, (int, slice)) or isinstance(lead, bool):
            tensor = self._opened._read(info, info.begin, info.end, shape)
            return _index(tensor, index)
        if isinstance(lead, int):
            if not -len(rows) <= lead < len(rows):
                raise UsageError(f"index {lead} is out of range for a first dimension of {len(rows)}")
            picked = rows[lead : lead + 1 or None]
        else:
            picked = rows[lead]
        low, high = (min(picked[0], picked[-1]), max(picked[0], picked[-1]) + 1) if picked else (0, 0)
        # The rows read are [low, high); the index, moved to them, picks the same rows from those.
        relative: int | slice = (
            0 if isinstance(lead, int) else slice(picked[0] - low if picked else 0, None, picked.step)
        )
        if not picked:
            relative = slice(0, 0)
        row_bytes = info.nbytes // shape[0] if shape[0] else 0
        begin = info.begin + low * row_bytes
        tensor = self._opened._read(info, begin, begin + (high - low) * row_bytes, (high - low, *shape[1:]))
        return _index(tensor, (relative, *parts[1:]))


def _index(tensor: Any, index: Any) -> Any:
    try:
        return tensor[index]
    except (IndexError, TypeError, ValueError) as exc:
        raise UsageError(f"cannot index this tensor with {index!r}: {exc}") from None


def safe_open(
    source: ModelSource,
    identity: IdentityLike | Iterable[IdentityLike],
    framework: str = "pt",
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
    device: Any = None,
    threads: int | None = None,
) -> SafeOpen:
    """Open a sealed safetensors file for reading one tensor at a time, like
    ``safetensors.safe_open``::

        with safe_open("model.safetensors.env", private_key, framework="pt") as f:
            names = f.keys()
            embedding = f.get_tensor("embed.weight")
            first_rows = f.get_slice("lm_head.weight")[:1024]

    ``framework``: ``"pt"`` (or ``"torch"``) for PyTorch tensors, ``"np"`` (or ``"numpy"``) for
    NumPy arrays. ``source`` may be a path, a URL (``s3://...``, ``storage_options`` as
    ``fsspec.open`` takes them), the sealed bytes or a binary file object. Opening verifies the
    envelope header, the final chunk and (``signed_by``) the signature, then reads and checks the
    safetensors header; each tensor then opens, and from a URL fetches in ranged reads, only the
    chunks its bytes span. ``device`` as for :func:`load` (the CUDA path is untested here).
    """
    factory = TensorFactory(library_of_framework(framework), device)
    plain = _opened(source, identity, signed_by, storage_options)
    try:
        return SafeOpen(plain, _read_table(plain), factory, threads)
    except BaseException:
        plain.close()
        raise
