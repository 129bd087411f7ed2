"""Keras 3 (and TensorFlow) models, sealed in the native ``.keras`` format with no plaintext on disk.

``save`` serialises the model straight into an :class:`~envelope.EnvelopeWriter`; ``load`` hands
Keras an :class:`~envelope.EnvelopeReader` whose every byte is authenticated. The ``.keras`` archive
is built and read in memory. Models with assets (a ``StringLookup`` vocabulary, for instance) make
Keras stage those files through ``tempfile``: here they are staged in a private folder on tmpfs
(RAM) that is deleted afterwards, or the call is refused when no tmpfs is available.

Keras' file-object entry points live in ``keras.src.saving.saving_lib`` (Keras >= 3.2): the public
``keras.saving.save_model``/``load_model`` refuse file objects, and ``ram://`` paths are copied to a
temporary file on disk on load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core import DEFAULT_CHUNK_SIZE
from ..recipients import IdentityLike, RecipientLike
from ._common import (
    ModelSource,
    ModelTarget,
    check_framework,
    model_metadata,
    opened_model,
    ram_tempdir,
    require,
    sealed_model,
)

__all__ = ["MODEL_FORMAT", "load", "save"]

MODEL_FORMAT = "keras-v3"  # the zip-based .keras format


def _saving_lib() -> Any:
    require("keras", "keras")
    return require("keras.src.saving.saving_lib", "keras")


def _has_assets(model: Any) -> bool:
    """Whether saving will stage asset files (layers that define ``save_assets``)."""
    layers = model._flatten_layers(include_self=True, recursive=True)
    return any(callable(getattr(layer, "save_assets", None)) for layer in layers)


def save(
    model: Any,
    target: ModelTarget,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
) -> None:
    """Seal ``model`` (a Keras 3 model, with its weights and optimizer state) to ``target``."""
    keras = require("keras", "keras")
    saving_lib = _saving_lib()
    meta = model_metadata(metadata, "keras", keras.__version__, MODEL_FORMAT, backend=keras.backend.backend())
    with (
        ram_tempdir(required=_has_assets(model)),
        sealed_model(target, recipients, meta, chunk_size=chunk_size, overwrite=overwrite) as writer,
    ):
        saving_lib.save_model(model, writer)


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    custom_objects: Mapping[str, Any] | None = None,
    compile: bool = True,  # noqa: A002 - Keras' own name for it
    safe_mode: bool = True,
) -> Any:
    """Open a sealed Keras model and rebuild it in memory. Options pass through to Keras."""
    saving_lib = _saving_lib()
    with opened_model(source, private_key) as reader:
        check_framework(reader.metadata, "keras", [MODEL_FORMAT])
        import zipfile

        with zipfile.ZipFile(reader) as archive:
            has_assets = any(name.startswith("assets/") for name in archive.namelist())
        reader.seek(0)
        with ram_tempdir(required=has_assets):
            return saving_lib.load_model(
                reader, custom_objects=dict(custom_objects or {}), compile=compile, safe_mode=safe_mode
            )
