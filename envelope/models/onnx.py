"""ONNX: a ``ModelProto``, sealed as its serialised protobuf.

Serialisation and parsing happen in memory (``SerializeToString`` / ``load_from_string``). Protobuf
caps one message at 2 GiB: larger models keep their weights as ONNX external data files, which this
adapter does not handle (it refuses such models rather than leave the weights out).

Loading refuses them too, with :class:`~envelope.UnsafeModelError`, before the model reaches ONNX or a
runtime: an external-data reference is a path on the loading machine (``../../etc/passwd`` as well as
``weights.bin``), which ``onnx.load_external_data_for_model``, ``onnx.checker`` or onnxruntime would
read, and whoever sealed the file chose it. Every tensor is checked: the graph's initializers (sparse
ones too), tensors in node attributes, and those of every subgraph, function and training graph.
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

from ._common import ModelSource, ModelTarget, check_framework, model_metadata, opened_model, require, sealed_model

__all__ = ["MODEL_FORMAT", "load", "load_bytes", "save"]

MODEL_FORMAT = "onnx-protobuf"


_EXTERNAL = 1  # TensorProto.EXTERNAL


def _external_tensors(model: Any) -> list[Any]:
    """Every tensor of ``model`` whose data lives in a file outside the message."""
    return [t for t in _tensors(model) if t.data_location == _EXTERNAL or len(t.external_data) > 0]


def _tensors(model: Any) -> Iterator[Any]:
    """All the TensorProtos of a ModelProto, subgraphs, functions and training graphs included."""
    graphs = [model.graph]
    for info in model.training_info:
        graphs += [info.initialization, info.algorithm]
    nodes = [node for function in model.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            yield from graph.initializer
            for sparse in graph.sparse_initializer:
                yield from (sparse.values, sparse.indices)
            nodes += graph.node
            continue
        for attribute in nodes.pop().attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            sparse_tensors = [attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []
            for sparse in [*sparse_tensors, *attribute.sparse_tensors]:
                yield from (sparse.values, sparse.indices)
            if attribute.HasField("g"):
                graphs.append(attribute.g)
            graphs += attribute.graphs


def _refuse_external_data(model: Any) -> None:
    external = _external_tensors(model)
    if external:
        locations = [entry.value for entry in external[0].external_data if entry.key == "location"]
        raise UnsafeModelError(
            f"this ONNX model refers to external data files ({len(external)} tensors, the first "
            f"{external[0].name[:100]!r} at {(locations or [''])[0][:200]!r}): loading it would read them from "
            "this machine's disk, at paths whoever sealed it chose. A sealed model carries its weights inside"
        )


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
    if _external_tensors(model):
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
    """The authenticated model bytes, for runtimes that take bytes (``onnxruntime.InferenceSession``).

    The bytes are parsed with ONNX first (so this needs it too), and a model that refers to external
    data files raises :class:`~envelope.UnsafeModelError`: a runtime would read those files.
    """
    onnx = require("onnx", "onnx")
    data = _model_bytes(source, private_key, signed_by=signed_by, storage_options=storage_options)
    _refuse_external_data(onnx.load_from_string(data))
    return data


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Open a sealed ONNX model into an ``onnx.ModelProto``.

    Raises :class:`~envelope.UnsafeModelError` for a model that refers to external data files.
    """
    onnx = require("onnx", "onnx")
    model = onnx.load_from_string(
        _model_bytes(source, private_key, signed_by=signed_by, storage_options=storage_options)
    )
    _refuse_external_data(model)
    return model


def _model_bytes(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None,
    storage_options: Mapping[str, Any] | None,
) -> bytes:
    with opened_model(source, private_key, signed_by=signed_by, storage_options=storage_options) as reader:
        check_framework(reader.metadata, "onnx", [MODEL_FORMAT])
        return reader.read()
