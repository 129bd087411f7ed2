"""PyTorch: state dicts (and anything else ``torch.load(weights_only=True)`` accepts), sealed.

``torch.save`` writes straight into an :class:`~envelope.EnvelopeWriter` and ``torch.load`` reads
from an :class:`~envelope.EnvelopeReader`: the archive exists only in memory.

Loading uses ``weights_only=True``: tensors, containers and primitives, no code. A file holding a
whole pickled module (``torch.save(model)``) needs a full unpickle, which runs code chosen by whoever
sealed the file - and sealing needs only your *public* key, so a sealed file is no proof of who made
it. That path is behind ``unsafe_allow_pickle=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import UsageError
from ..limits import DEFAULT_CHUNK_SIZE
from ..recipients import IdentityLike, RecipientLike
from ._common import ModelSource, ModelTarget, check_framework, model_metadata, opened_model, require, sealed_model

__all__ = ["MODEL_FORMAT", "load", "save"]

MODEL_FORMAT = "torch-save"  # torch.save's zip format


def save(
    obj: Any,
    target: ModelTarget,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
) -> None:
    """Seal ``obj`` (typically ``model.state_dict()``) as ``torch.save`` would write it."""
    torch = require("torch", "torch")
    meta = model_metadata(metadata, "torch", torch.__version__, MODEL_FORMAT)
    with sealed_model(target, recipients, meta, chunk_size=chunk_size, overwrite=overwrite) as writer:
        torch.save(obj, writer)


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    map_location: Any = None,
    unsafe_allow_pickle: bool = False,
) -> Any:
    """Open a sealed ``torch.save`` file. ``weights_only`` loading unless ``unsafe_allow_pickle``."""
    torch = require("torch", "torch")
    with opened_model(source, private_key) as reader:
        check_framework(reader.metadata, "torch", [MODEL_FORMAT])
        try:
            return torch.load(reader, map_location=map_location, weights_only=not unsafe_allow_pickle)
        except torch.serialization.pickle.UnpicklingError as exc:
            if unsafe_allow_pickle:
                raise
            raise UsageError(
                "this file holds objects that only a full unpickle can load, and unpickling runs code "
                "chosen by whoever sealed it (anyone with your public key can seal). If you trust its "
                "origin, pass unsafe_allow_pickle=True; better, save model.state_dict() instead"
            ) from exc
