"""Keras 3 (and TensorFlow) models, sealed in the native ``.keras`` format with no plaintext on disk.

``save`` serialises the model straight into an :class:`~envelope.EnvelopeWriter`; ``load`` hands
Keras an :class:`~envelope.EnvelopeReader` whose every byte is authenticated. The ``.keras`` archive
is built and read in memory. Models with assets (a ``StringLookup`` vocabulary, for instance) make
Keras stage those files through ``tempfile``: here they are staged in a private folder on tmpfs
(RAM) that is deleted afterwards, or the call is refused when no tmpfs is available.

Keras' file-object entry points live in ``keras.src.saving.saving_lib`` (Keras >= 3.2): the public
``keras.saving.save_model``/``load_model`` refuse file objects, and ``ram://`` paths are copied to a
temporary file on disk on load.

``load`` refuses a Keras older than :data:`MIN_KERAS_VERSION` (or one of
:data:`AFFECTED_KERAS_VERSIONS`), in which a crafted ``.keras`` file gets past ``safe_mode``.

Keras runs on a backend it picks when first imported (``KERAS_BACKEND``: TensorFlow by default,
PyTorch or JAX): ``save`` and ``load`` work on any of them, and record the backend in the metadata.

``export_saved_model`` / ``load_saved_model`` do the same for TensorFlow SavedModel exports (the
format TF Serving and ``tf.saved_model.load`` read), through TensorFlow's in-memory ``ram://`` file
system; they need TensorFlow itself. Loading a SavedModel runs its graph's initialisers, which may
hold any TensorFlow op (file I/O included): ``load_saved_model`` needs ``unsafe_trust_graph=True``.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from envelope import (
    DEFAULT_CHUNK_SIZE,
    IdentityLike,
    MissingDependencyError,
    RecipientLike,
    SignedBy,
    Signer,
    SigningKey,
    UnsafeModelError,
    UsageError,
)

from ._common import (
    FRAMEWORK_NAMES,
    ModelSource,
    ModelTarget,
    check_framework,
    install_hint,
    model_metadata,
    opened_model,
    ram_tempdir,
    require,
    sealed_model,
)

__all__ = [
    "AFFECTED_KERAS_VERSIONS",
    "MIN_KERAS_VERSION",
    "MODEL_FORMAT",
    "SAVED_MODEL_FORMAT",
    "export_saved_model",
    "load",
    "load_saved_model",
    "save",
]

MODEL_FORMAT = "keras-v3"  # the zip-based .keras format

# A crafted .keras file gets past safe_mode in every Keras before 3.12.1: it runs code through its
# config before 3.9.0 (CVE-2025-1550), writes files through keras.utils.get_file or turns unsafe
# deserialization on before 3.11.0 (CVE-2025-8747, CVE-2025-9906), reads any local file as a
# StringLookup vocabulary before 3.12.0 (CVE-2025-12058), and before 3.12.1 loads an outside
# SavedModel's graph through a TFSMLayer and reads local files through HDF5 external datasets in its
# weights. 3.13.0 and 3.13.1 came out without the 3.12.1 fixes (3.13.2 has them). spec/SECURITY.md
# lists the sources; the keras and tensorflow extras require the same.
MIN_KERAS_VERSION = (3, 12, 1)
AFFECTED_KERAS_VERSIONS = frozenset({(3, 13, 0), (3, 13, 1)})


_BACKENDS = ("tensorflow", "torch", "jax")


def _keras() -> Any:
    """Import Keras, or say what is missing: Keras itself, or the backend it was told to run on."""
    try:
        return require("keras", "keras")
    except MissingDependencyError as exc:
        missing = (getattr(exc.__cause__, "name", None) or "").split(".")[0]
        if missing not in _BACKENDS:
            raise
        raise MissingDependencyError(
            f"Keras needs a backend, and the one it is set to use ({FRAMEWORK_NAMES.get(missing, missing)}) is "
            f"not installed: {install_hint('tensorflow')} for TensorFlow, or install PyTorch or JAX and set "
            "KERAS_BACKEND=torch or KERAS_BACKEND=jax"
        ) from exc.__cause__


def _saving_lib() -> Any:
    _keras()
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
    sign_with: Signer | SigningKey | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Seal ``model`` (a Keras 3 model, with its weights and optimizer state) to ``target``."""
    keras = _keras()
    saving_lib = _saving_lib()
    meta = model_metadata(metadata, "keras", keras.__version__, MODEL_FORMAT, backend=keras.backend.backend())
    with (
        ram_tempdir(required=_has_assets(model)),
        sealed_model(
            target,
            recipients,
            meta,
            chunk_size=chunk_size,
            overwrite=overwrite,
            sign_with=sign_with,
            storage_options=storage_options,
        ) as writer,
    ):
        saving_lib.save_model(model, writer)


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    custom_objects: Mapping[str, Any] | None = None,
    compile: bool = True,  # noqa: A002 - Keras' own name for it
    safe_mode: bool = True,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Open a sealed Keras model and rebuild it in memory. Options pass through to Keras.

    Raises :class:`~envelope.MissingDependencyError`, before reading ``source``, when the installed
    Keras is one whose ``safe_mode`` a crafted file gets past (see :data:`MIN_KERAS_VERSION`).
    """
    saving_lib = _saving_lib()
    _check_keras_version(str(_keras().__version__))
    with opened_model(source, private_key, signed_by=signed_by, storage_options=storage_options) as reader:
        check_framework(reader.metadata, "keras", [MODEL_FORMAT])
        import zipfile

        with zipfile.ZipFile(reader) as archive:
            has_assets = any(name.startswith("assets/") for name in archive.namelist())
        reader.seek(0)
        with ram_tempdir(required=has_assets):
            return saving_lib.load_model(
                reader, custom_objects=dict(custom_objects or {}), compile=compile, safe_mode=safe_mode
            )


def _check_keras_version(version: str) -> None:
    """Refuse a Keras whose ``safe_mode`` a crafted file gets past (see :data:`MIN_KERAS_VERSION`)."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    release = (int(match[1]), int(match[2]), int(match[3] or 0)) if match else None
    if release is None or release < MIN_KERAS_VERSION or release in AFFECTED_KERAS_VERSIONS:
        floor = ".".join(map(str, MIN_KERAS_VERSION))
        raise MissingDependencyError(
            f"loading needs Keras {floor} or later, and not 3.13.0 or 3.13.1 (in earlier versions a crafted "
            f"file gets past safe_mode: CVE-2025-1550, CVE-2025-12058 and others), and {version!r} is installed: "
            f"{install_hint('keras')}"
        )


# --- TensorFlow SavedModel exports (for serving) --------------------------------------------

SAVED_MODEL_FORMAT = "tf-saved-model-tar"  # a tar of the SavedModel directory


def export_saved_model(
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
    """Seal a TensorFlow SavedModel export of ``model`` (``model.export(..., "tf_saved_model")``).

    The export is written to TensorFlow's in-memory ``ram://`` file system, packed into a tar in
    memory and sealed; the Python sources AutoGraph generates on the way go to a tmpfs folder.
    """
    keras = _keras()
    tf = require("tensorflow", "tensorflow")
    meta = model_metadata(metadata, "tensorflow", tf.__version__, SAVED_MODEL_FORMAT, keras_version=keras.__version__)
    scratch = f"ram://envelope-{os.urandom(8).hex()}"
    try:
        with ram_tempdir(required=True):
            model.export(scratch, format="tf_saved_model", verbose=False)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for relative, data in _ram_files(tf, scratch):
                member = tarfile.TarInfo(relative)
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    finally:
        if tf.io.gfile.exists(scratch):
            tf.io.gfile.rmtree(scratch)
    with sealed_model(
        target,
        recipients,
        meta,
        chunk_size=chunk_size,
        overwrite=overwrite,
        sign_with=sign_with,
        storage_options=storage_options,
    ) as writer:
        writer.write(archive.getbuffer())


def load_saved_model(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    unsafe_trust_graph: bool = False,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Open a sealed SavedModel export into ``tf.saved_model.load``'s object (call ``.serve``).

    ``tf.saved_model.load`` runs the graph's initialisers as it loads, and a SavedModel graph may hold
    any TensorFlow op, file I/O included: whoever sealed the file chooses what runs. Sealing needs only
    your public key, so a file that opens proves nothing about its origin. Without
    ``unsafe_trust_graph=True`` this raises :class:`~envelope.UnsafeModelError` and loads nothing.
    The files live in TensorFlow's ``ram://`` file system only while TensorFlow reads them.
    """
    if not unsafe_trust_graph:
        raise UnsafeModelError(
            "loading a SavedModel runs ops from its graph (file I/O included) chosen by whoever sealed it, "
            "and anyone with your public key can seal. If you trust its origin (and pin it: signed_by=), pass "
            "unsafe_trust_graph=True"
        )
    tf = require("tensorflow", "tensorflow")
    with opened_model(source, private_key, signed_by=signed_by, storage_options=storage_options) as reader:
        check_framework(reader.metadata, "tensorflow", [SAVED_MODEL_FORMAT])
        archive = io.BytesIO(reader.read())
    scratch = f"ram://envelope-{os.urandom(8).hex()}"
    try:
        with tarfile.open(fileobj=archive, mode="r") as tar:
            for member in tar.getmembers():
                path = _safe_member_path(member)
                extracted = tar.extractfile(member)
                assert extracted is not None
                tf.io.gfile.makedirs(posixpath.dirname(f"{scratch}/{path}"))
                with tf.io.gfile.GFile(f"{scratch}/{path}", "wb") as out:
                    out.write(extracted.read())
        with ram_tempdir(required=True):
            return tf.saved_model.load(scratch)
    finally:
        if tf.io.gfile.exists(scratch):
            tf.io.gfile.rmtree(scratch)


def _ram_files(tf: Any, root: str) -> Iterator[tuple[str, bytes]]:
    for folder, _, names in tf.io.gfile.walk(root):
        for name in sorted(names):
            path = f"{folder.rstrip('/')}/{name}"
            with tf.io.gfile.GFile(path, "rb") as f:
                yield path[len(root) + 1 :], f.read()


def _safe_member_path(member: tarfile.TarInfo) -> str:
    """Only plain files with relative, non-escaping names (the archive's sealer is not authenticated)."""
    path = posixpath.normpath(member.name)
    if not member.isfile() or path.startswith(("/", "..")) or path == ".":
        raise UsageError(f"the sealed SavedModel archive holds an unexpected entry: {member.name!r}")
    return path
