"""ONNX: a ``ModelProto``, sealed as its serialised protobuf.

Serialisation and parsing happen in memory (``SerializeToString`` / ``load_from_string``). Protobuf
caps one message at 2 GiB: larger models keep their weights as ONNX external data files, which this
adapter does not handle (it refuses such models rather than leave the weights out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from envelope import DEFAULT_CHUNK_SIZE, IdentityLike, RecipientLike, SignedBy, Signer, SigningKey, UsageError

from ._common import ModelSource, ModelTarget, check_framework, model_metadata, opened_model, require, sealed_model

__all__ = ["MODEL_FORMAT", "load", "load_bytes", "save"]

MODEL_FORMAT = "onnx-protobuf"


def _uses_external_data(model: Any) -> bool:
    return any(t.data_location == 1 for t in model.graph.initializer)  # TensorProto.EXTERNAL


def save(
    model: Any,
    target: ModelTarget,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    sign_with: Signer | SigningKey | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Seal an ``onnx.ModelProto``."""
    onnx = require("onnx", "onnx")
    if _uses_external_data(model):
        raise UsageError("this ONNX model keeps weights in external data files, which are not sealed with it")
    try:
        data = model.SerializeToString()
    except ValueError as exc:  # protobuf's 2 GiB message limit
        raise UsageError(f"cannot serialise the ONNX model in one piece: {exc}") from None
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    meta = model_metadata(
        metadata, "onnx", onnx.__version__, MODEL_FORMAT, ir_version=model.ir_version, opset=opsets.get("ai.onnx")
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
        writer.write(data)


def load_bytes(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> bytes:
    """The authenticated model bytes, for runtimes that take bytes (``onnxruntime.InferenceSession``)."""
    with opened_model(source, private_key, signed_by=signed_by, storage_options=storage_options) as reader:
        check_framework(reader.metadata, "onnx", [MODEL_FORMAT])
        return reader.read()


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Open a sealed ONNX model into an ``onnx.ModelProto``."""
    onnx = require("onnx", "onnx")
    return onnx.load_from_string(load_bytes(source, private_key, signed_by=signed_by, storage_options=storage_options))
