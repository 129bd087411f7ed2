"""What every model adapter shares: sealed outputs and inputs, framework metadata, RAM staging."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType
from typing import IO, Any, Union

from envelope import (
    DEFAULT_CHUNK_SIZE,
    EnvelopeWriter,
    IdentityLike,
    MissingDependencyError,
    PlaintextReader,
    RecipientLike,
    SignedBy,
    Signer,
    SigningKey,
    UsageError,
    open_reader,
    open_writer,
)

__all__ = [
    "ModelSource",
    "ModelTarget",
    "check_framework",
    "framework_name",
    "install_hint",
    "model_metadata",
    "opened_model",
    "private_ram_folder",
    "ram_tempdir",
    "require",
    "sealed_model",
]

FRAMEWORK = "envelope.framework"
FRAMEWORK_VERSION = "envelope.framework_version"
MODEL_FORMAT = "envelope.model_format"

ModelTarget = Union[str, "os.PathLike[str]", IO[bytes]]
"""Where a sealed model goes: a path (written atomically), a URL (``s3://...``, with fsspec: the
object appears once complete), or a writable binary file object."""

ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
"""Where a sealed model comes from: a path, a URL (``s3://...``, with fsspec: read in verified
ranged reads), the sealed bytes, or a readable binary file object."""


# How messages name the frameworks and what their files hold (keys: top-level module names).
FRAMEWORK_NAMES = {
    "keras": "Keras",
    "numpy": "NumPy",
    "onnx": "ONNX",
    "safetensors": "safetensors",
    "tensorflow": "TensorFlow",
    "torch": "PyTorch",
}
MODEL_KINDS = {
    "keras": "a Keras model",
    "onnx": "an ONNX model",
    "safetensors": "a safetensors file",
    "tensorflow": "a TensorFlow SavedModel",
    "torch": "a PyTorch model",
}


def framework_name(module: str) -> str:
    """``torch.nn`` -> ``PyTorch``: the name a user knows a module's distribution by."""
    top = module.split(".")[0]
    return FRAMEWORK_NAMES.get(top, top)


def install_hint(extra: str) -> str:
    # The distribution is envelope-ml; the import name stays envelope.
    return f"pip install 'envelope-ml[{extra}]'"


def require(module: str, extra: str) -> ModuleType:
    """Import a framework, or say which one is missing and which extra installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # The missing module may be a dependency of the one asked for (safetensors.torch needs torch).
        missing = framework_name(exc.name or module)
        raise MissingDependencyError(f"this needs {missing}, which is not installed: {install_hint(extra)}") from exc
    except ImportError as exc:
        raise MissingDependencyError(
            f"{framework_name(module)} is installed but cannot be imported ({exc}); reinstall it: {install_hint(extra)}"
        ) from exc


def model_metadata(
    user: Mapping[str, Any] | None, framework: str, version: str, model_format: str, **extra: Any
) -> dict[str, Any]:
    """The caller's metadata plus the adapter's reserved ``envelope.*`` keys."""
    user = dict(user or {})
    reserved = sorted(k for k in user if isinstance(k, str) and k.startswith("envelope."))
    if reserved:
        raise UsageError(f"metadata keys starting with 'envelope.' are reserved: {', '.join(reserved)}")
    user.update({FRAMEWORK: framework, FRAMEWORK_VERSION: version, MODEL_FORMAT: model_format})
    user.update({f"envelope.{k}": v for k, v in extra.items()})
    return user


def check_framework(metadata: Mapping[str, Any], framework: str, formats: Iterable[str]) -> None:
    """Refuse to hand a file to the wrong framework (the metadata is authenticated by now)."""
    formats = list(formats)
    found, found_format = metadata.get(FRAMEWORK), metadata.get(MODEL_FORMAT)
    if found == framework and found_format in formats:
        return
    # Whoever sealed the file wrote these values: repr() escapes what a terminal would interpret.
    if found is None:
        what = "no model recorded by envelope.models"
    else:
        kind = MODEL_KINDS.get(found, repr(found)) if isinstance(found, str) else repr(found)
        what = f"{kind} (format {found_format!r})"
    wanted = " or ".join(repr(f) for f in formats)
    raise UsageError(f"this file holds {what}, not {MODEL_KINDS[framework]} (format {wanted})")


@contextlib.contextmanager
def sealed_model(
    target: ModelTarget,
    recipients: RecipientLike | Iterable[RecipientLike],
    metadata: Mapping[str, Any],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    sign_with: Signer | SigningKey | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[EnvelopeWriter]:
    """A writer whose output is sealed (and signed, with ``sign_with``); a path or URL target
    appears only if the block completes."""
    options: dict[str, Any] = {"metadata": metadata, "chunk_size": chunk_size, "sign_with": sign_with}
    with open_writer(target, recipients, overwrite=overwrite, storage_options=storage_options, **options) as writer:
        yield writer


@contextlib.contextmanager
def opened_model(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[PlaintextReader]:
    """A seekable reader over a sealed model; every byte it returns has been authenticated (and,
    with ``signed_by``, comes from a file signed by one of those keys). A URL is read through the
    verified ranged reader of :mod:`envelope.fsspec`: a framework's seeks fetch only the chunks
    they touch."""
    if not isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        seekable = False
        with contextlib.suppress(AttributeError, OSError, ValueError):
            seekable = bool(source.seekable())
        if not seekable:  # frameworks need to seek: read the sealed stream into memory first
            source = io.BytesIO(source.read())
    with open_reader(source, private_key, signed_by=signed_by, storage_options=storage_options) as reader:
        yield reader


_TEMPDIR_LOCK = threading.RLock()


def ram_filesystem() -> str | None:
    """A RAM-backed (tmpfs) folder this process can write to, or None."""
    # A private 0700 folder is made inside with mkdtemp, so a shared /dev/shm is safe to use.
    candidates = [os.environ.get("ENVELOPE_RAM_DIR"), "/dev/shm", f"/run/user/{os.getuid()}"]  # noqa: S108
    try:
        with open("/proc/mounts") as f:
            tmpfs = {line.split()[1] for line in f if line.split()[2:3] == ["tmpfs"]}
    except OSError:
        tmpfs = set()
    for candidate in candidates:
        if candidate and candidate in tmpfs and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


_STAGING_PREFIX = "envelope-"
_STAGING_NAME = re.compile(r"^envelope-(\d+)-[A-Za-z0-9_]+$")


def private_ram_folder(base: str) -> str:
    """A new private (0700) folder in ``base``, named for this process (``envelope-PID-XXXXXXXX``).

    A process killed while files were staged (SIGKILL, or SIGTERM: neither runs clean-up) leaves its
    folder until the next call, in any process of the same user, removes the folders of processes
    that no longer exist. (tmpfs is memory, but it can be swapped out, and it lasts until a reboot.)"""
    from envelope.folders import remove_folders_of_dead_processes

    remove_folders_of_dead_processes(base, _staging_pid)
    return tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=base)


def _staging_pid(name: str) -> int | None:
    match = _STAGING_NAME.match(name)
    return None if match is None else int(match.group(1))


@contextlib.contextmanager
def ram_tempdir(required: bool) -> Iterator[str | None]:
    """Point ``tempfile`` at a private folder in RAM for the duration, then delete it.

    Frameworks stage some files through ``tempfile`` (Keras: a model's assets). Inside this block
    those files live in tmpfs, never on a disk. ``tempfile.tempdir`` is process-wide, so these blocks
    are serialised. With no tmpfs available, ``required`` decides between refusing and going on
    (when the caller knows nothing will be staged).
    """
    base = ram_filesystem()
    if base is None:
        if required:
            raise UsageError(
                "this model has assets, which the framework stages through temporary files, and no "
                "RAM-backed folder (tmpfs such as /dev/shm) is available to keep them off the disk; "
                "set ENVELOPE_RAM_DIR to a tmpfs mount"
            )
        yield None
        return
    with _TEMPDIR_LOCK:
        private = private_ram_folder(base)
        previous = tempfile.tempdir
        tempfile.tempdir = private
        try:
            yield private
        finally:
            tempfile.tempdir = previous
            shutil.rmtree(private, ignore_errors=True)
