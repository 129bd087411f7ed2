"""PyTorch: state dicts (and anything else ``torch.load(weights_only=True)`` accepts), sealed.

``torch.save`` writes straight into an :class:`~envelope.EnvelopeWriter`. ``load`` has the workers
decrypt the archive and write it into an anonymous in-memory file (Linux ``memfd_create``: no name,
no disk), then ``torch.load(mmap=True)`` maps its tensors' storages onto those pages: no second copy,
so a load needs the model's size in memory. Elsewhere the archive is read through an
:class:`~envelope.EnvelopeReader` (torch copies each storage out of it).

Loading uses ``weights_only=True``: tensors, containers and primitives, no code. A file holding a
whole pickled module (``torch.save(model)``) needs a full unpickle, which runs code chosen by whoever
sealed the file - and sealing needs only your *public* key, so a sealed file is no proof of who made
it. That path is behind ``unsafe_allow_pickle=True``.

Before PyTorch sees a byte, ``load`` checks that the file is what ``save`` writes: ``torch.save``'s
zip archive, holding a pickle and tensor data only. TorchScript archives (which ``torch.load`` hands
to ``torch.jit.load``, running their code) and the legacy tar and raw-pickle formats are refused with
:class:`~envelope.UnsafeModelError`, whatever the options. ``load`` also refuses a PyTorch older than
:data:`MIN_TORCH_VERSION`, whose ``weights_only`` unpickler can be made to run code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from envelope import (
    DEFAULT_CHUNK_SIZE,
    IdentityLike,
    MissingDependencyError,
    PlaintextReader,
    RecipientLike,
    SignedBy,
    Signer,
    SigningKey,
    UnsafeModelError,
    UsageError,
)
from envelope.readat import PlaintextAt, open_at

from ._common import (
    ModelSource,
    ModelTarget,
    check_framework,
    install_hint,
    model_metadata,
    require,
    sealed_model,
)
from ._tensor_memory import torch_device

__all__ = ["MIN_TORCH_VERSION", "MODEL_FORMAT", "load", "save"]

MODEL_FORMAT = "torch-save"  # torch.save's zip format

# torch.load(weights_only=True) runs code in every PyTorch before 2.10: up to 2.5.1 it hands a
# TorchScript archive to torch.jit.load (CVE-2025-32434, GHSA-53q9-r3pm-6pq6, fixed in 2.6.0), and
# before 2.10.0 crafted pickle opcodes and storage sizes corrupt memory in the weights_only unpickler
# (CVE-2026-24747, GHSA-63cw-57p8-fm3p, fixed in 2.10.0). The torch extra requires the same floor.
MIN_TORCH_VERSION = (2, 10)

# The records torch.save writes into its zip archive (under one top-level folder, "archive/" when it
# writes to a file object): the pickle, one record per storage, and bookkeeping. Anything else -
# TorchScript's code/ and constants.pkl above all - is not a file this adapter wrote.
_ZIP_MAGIC = b"PK\x03\x04"  # torch.load takes a file for a zip archive when it starts with this
_TORCHSCRIPT_RECORDS = ("constants.pkl", "code/")
_BOOKKEEPING_RECORDS = {"data.pkl", "byteorder", "version", ".format_version", ".storage_alignment"}
_STORAGE_FOLDERS = ("data/", ".data/")


def save(
    obj: Any,
    target: ModelTarget,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    sign_with: Signer | SigningKey | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Seal ``obj`` (typically ``model.state_dict()``) as ``torch.save`` would write it."""
    torch = require("torch", "torch")
    meta = model_metadata(metadata, "torch", torch.__version__, MODEL_FORMAT)
    with sealed_model(
        target,
        recipients,
        meta,
        chunk_size=chunk_size,
        overwrite=overwrite,
        sign_with=sign_with,
        storage_options=storage_options,
    ) as writer:
        torch.save(obj, writer)


def load(
    source: ModelSource,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    map_location: Any = None,
    unsafe_allow_pickle: bool = False,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
    device: Any = None,
    threads: int | None = None,
) -> Any:
    """Open a sealed ``torch.save`` file. ``weights_only`` loading unless ``unsafe_allow_pickle``.

    Raises :class:`~envelope.UnsafeModelError` for anything but ``torch.save``'s zip archive, and for
    a pickle that ``weights_only`` loading refuses (unless ``unsafe_allow_pickle``). ``device``:
    where the tensors go (``map_location`` for a single device; give one or the other). On Linux
    the tensors of a CPU load share one read-only-mapped, copy-on-write memory region holding the
    decrypted archive; ``threads`` workers (default one per core) decrypt it.
    """
    torch = require("torch", "torch")
    _check_torch_version(str(torch.__version__))
    if device is not None:
        if map_location is not None:
            raise UsageError("give device or map_location, not both")
        map_location = torch_device(torch, device)
    with open_at(source, private_key, signed_by=signed_by, storage_options=storage_options) as plain:
        check_framework(plain.metadata, "torch", [MODEL_FORMAT])
        with _archive(plain, threads) as (archive, path):
            _check_archive(archive)
            archive.seek(0)
            try:
                if path is not None:
                    return torch.load(path, map_location=map_location, weights_only=not unsafe_allow_pickle, mmap=True)
                return torch.load(archive, map_location=map_location, weights_only=not unsafe_allow_pickle)
            except pickle.UnpicklingError as exc:
                if unsafe_allow_pickle:
                    raise UnsafeModelError("this file's pickle is malformed: PyTorch could not unpickle it") from exc
                raise UnsafeModelError(
                    "weights_only loading refused this file's pickle: it holds objects that only a full unpickle "
                    "can load (or it is malformed), and a full unpickle runs code chosen by whoever sealed it "
                    "(anyone with your public key can seal). If you trust its origin (and pin it: signed_by=), "
                    "pass unsafe_allow_pickle=True; "
                    "better, save model.state_dict() instead"
                ) from exc
            except RuntimeError as exc:
                # PyTorch's own TorchScript refusal, should its zip reader see records that zipfile did not.
                if "TorchScript" not in str(exc):
                    raise
                raise UnsafeModelError(_TORCHSCRIPT_REFUSAL) from exc


@contextlib.contextmanager
def _archive(plain: PlaintextAt, threads: int | None) -> Iterator[tuple[IO[bytes], str | None]]:
    """The decrypted archive as a file, and a path that names it for ``torch.load(mmap=True)``
    (``None`` where there is no anonymous memory file: then the file is a verified reader).

    Every chunk is verified before the workers write it into the memory file, and the file
    is handed on only once all of them did. The file has no name on any filesystem; the path is
    this process's ``/proc/self/fd`` link to it, and it is closed when the load is done (torch's
    mappings keep the pages for as long as tensors use them)."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd") or plain.size == 0:
        with plain.reader() as reader:
            yield reader, None
        return
    fd = os.memfd_create("envelope-torch", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, plain.size)
        # Written, not stored through a mapping: the kernel then fills the file's pages without a
        # page fault each (about half the cost here; memory files get no huge pages).
        plain.write_to(fd, threads=threads)
        with os.fdopen(os.dup(fd), "rb") as archive:
            yield archive, f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


_TORCHSCRIPT_REFUSAL = (
    "this file is a TorchScript archive, whose code PyTorch runs when loading it; this adapter reads "
    "only torch.save's archives. If you trust its origin, read it with torch.jit.load(EnvelopeReader(...))"
)


def _check_torch_version(version: str) -> None:
    """Refuse a PyTorch whose ``weights_only`` loading can run code (see :data:`MIN_TORCH_VERSION`)."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None or (int(match[1]), int(match[2])) < MIN_TORCH_VERSION:
        floor = ".".join(map(str, MIN_TORCH_VERSION))
        raise MissingDependencyError(
            f"loading needs PyTorch {floor} or later (earlier versions can run code from a crafted file even "
            f"with weights_only=True: CVE-2025-32434, CVE-2026-24747), and {version!r} is installed: "
            f"{install_hint('torch')}"
        )


def _check_archive(reader: PlaintextReader | IO[bytes]) -> None:
    """Refuse, without running anything, what is not a plain ``torch.save`` zip archive."""
    if reader.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
        raise UnsafeModelError(
            "this file is not torch.save's zip archive (the legacy tar and raw-pickle formats are refused: "
            "this adapter never writes them)"
        )
    reader.seek(0)
    try:
        with zipfile.ZipFile(reader) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise UnsafeModelError(f"this file is not a readable zip archive: {exc}") from exc
    names = [entry.filename for entry in entries]
    # Data before the first entry would let a reader that starts at byte 0 see another file.
    if not entries or min(entry.header_offset for entry in entries) != 0 or len(set(names)) != len(names):
        raise UnsafeModelError("this file is not torch.save's zip archive (extra data or duplicate entries)")
    prefix = names[0].split("/", 1)[0] + "/"
    records = [name.removeprefix(prefix) for name in names]
    if any(record.startswith(_TORCHSCRIPT_RECORDS) for record in records):
        raise UnsafeModelError(_TORCHSCRIPT_REFUSAL)
    unexpected = [
        name for name, record in zip(names, records, strict=True) if name == record or not _is_torch_save_record(record)
    ]
    if unexpected or "data.pkl" not in records:
        detail = f"unexpected entry {unexpected[0]!r}" if unexpected else "no data.pkl"
        raise UnsafeModelError(f"this file is not torch.save's zip archive ({detail})")
    if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries):
        # torch.save stores every record as is; mapped storages would be a compressed record's bytes
        raise UnsafeModelError("this file is not torch.save's zip archive (a record is compressed)")


def _is_torch_save_record(record: str) -> bool:
    if record in _BOOKKEEPING_RECORDS:
        return True
    folder = next((f for f in _STORAGE_FOLDERS if record.startswith(f)), None)
    return folder is not None and "/" not in record[len(folder) :] and record != folder
