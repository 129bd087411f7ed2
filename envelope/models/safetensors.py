"""safetensors: a dict of named tensors (NumPy arrays or PyTorch tensors), sealed.

The safetensors bytes are built in memory and written through an :class:`~envelope.EnvelopeWriter`;
loading reads the authenticated bytes back into memory and parses them there. safetensors never runs
code on load, so there is no unsafe path here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from envelope import DEFAULT_CHUNK_SIZE, IdentityLike, RecipientLike, SignedBy, Signer, SigningKey, UsageError

from ._common import ModelSource, ModelTarget, check_framework, model_metadata, opened_model, require, sealed_model

__all__ = ["MODEL_FORMAT", "load", "save"]

MODEL_FORMAT = "safetensors"
Library = Literal["numpy", "torch"]


def _library_of(tensors: Mapping[str, Any]) -> Library:
    kinds = {type(t).__module__.split(".")[0] for t in tensors.values()}
    if kinds <= {"numpy"}:
        return "numpy"
    if kinds <= {"torch"}:
        return "torch"
    raise UsageError(f"tensors must all be NumPy arrays or all PyTorch tensors, not {sorted(kinds)}")


def _backend(library: Library) -> Any:
    """``safetensors.numpy`` or ``safetensors.torch``; a missing piece is named with its own extra."""
    require("safetensors", "safetensors")
    if library == "torch":
        require("torch", "torch")  # safetensors.torch imports it, and the safetensors extra does not install it
    return require(f"safetensors.{library}", "safetensors")


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
    """Seal a dict of tensors. ``tensor_metadata`` goes into the safetensors header itself (and is
    encrypted with the payload); ``metadata`` is envelope's plaintext, authenticated metadata."""
    library = _library_of(tensors)
    backend = _backend(library)
    safetensors = require("safetensors", "safetensors")
    data = backend.save(dict(tensors), metadata=dict(tensor_metadata) if tensor_metadata else None)
    meta = model_metadata(metadata, "safetensors", safetensors.__version__, MODEL_FORMAT, tensor_library=library)
    with sealed_model(
        target,
        recipients,
        meta,
        chunk_size=chunk_size,
        overwrite=overwrite,
        sign_with=sign_with,
        storage_options=storage_options,
    ) as writer:
        writer.write(data)


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    library: Library | None = None,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Open a sealed safetensors file into a dict of tensors, as NumPy arrays or PyTorch tensors
    (``library``; by default the kind that was saved)."""
    with opened_model(source, private_key, signed_by=signed_by, storage_options=storage_options) as reader:
        check_framework(reader.metadata, "safetensors", [MODEL_FORMAT])
        chosen = library or reader.metadata.get("envelope.tensor_library", "numpy")
        if chosen not in ("numpy", "torch"):
            raise UsageError(f"library must be 'numpy' or 'torch', not {chosen!r}")
        backend = _backend(chosen)
        data = reader.read()
    loaded: dict[str, Any] = backend.load(data)
    return loaded
