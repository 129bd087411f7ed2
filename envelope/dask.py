"""Seal and open many files in parallel on a Dask cluster (dask.distributed is the engine).

    from dask.distributed import Client
    import envelope.dask

    client = Client("tcp://scheduler:8786")  # or Client(LocalCluster()) on one machine
    done = envelope.dask.seal_prefix(
        "s3://raw/shards/", "s3://sealed/shards/", "/keys/team.pub",
        source_options=s3, destination_options=s3,
    ).compute()

Each file is one task: a worker streams it from the source, seals (or opens) it and uploads it, in
constant memory, through :mod:`envelope.fsspec`. The helpers return a :class:`dask.bag.Bag` of one
record per file (``source``, ``destination``, ``bytes`` of plaintext); nothing runs until it is
computed. Sealed Parquet shards need no helper: ``dask.dataframe.read_parquet`` reads
``envelope::`` URLs (docs/REMOTE.md).

Keys. Public keys travel in the task graph (as PEM). A private key never does: give ``identity``
as a path that every worker can read (a mounted secret), or ``identity_env`` as the name of an
environment variable the workers have; each worker loads the key itself, once. A key object or
key text is refused before anything is submitted.
"""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Iterable, Mapping
from typing import Any, cast

from ._urls import is_url
from .errors import MissingDependencyError, UsageError
from .fileio import EnvelopeWriter
from .fsspec import _keyword_options, _load_identities, _portable_identity, _portable_recipients, _storage, open_url

try:
    import dask.bag
    import fsspec
except ImportError as exc:
    raise MissingDependencyError("envelope.dask needs dask: pip install 'envelope-ml[dask]'") from exc

__all__ = ["open_files", "open_prefix", "seal_files", "seal_prefix"]

_COPY_BUFFER = 4 << 20


def seal_files(
    pairs: Iterable[tuple[str, str]],
    recipients: Any,
    *,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Seal each ``(source, destination)`` pair of URLs or paths for ``recipients``, one task each.

    ``envelope_options`` go to the writer (``metadata``, ``chunk_size``...). Each task seals on the
    worker's own thread (``threads=1``) unless told otherwise: Dask already runs one task per
    worker thread. A destination appears only when its file is complete.
    """
    options = _writer_defaults(envelope_options)
    return _map(
        _bag(pairs),
        _seal_one,
        recipients=_portable_recipients(recipients),
        source_options=dict(source_options or {}),
        destination_options=dict(destination_options or {}),
        envelope_options=options,
    )


def open_files(
    pairs: Iterable[tuple[str, str]],
    *,
    identity: Any = None,
    identity_env: str | None = None,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Open (decrypt) each ``(source, destination)`` pair, one task each.

    ``identity`` is a key path the workers can read, or ``identity_env`` names an environment
    variable they have that holds the key itself (PEM). A destination is written without autocommit and
    committed only once every chunk of its source verified; a failure discards it.
    """
    if identity is None and identity_env is None:
        raise UsageError("opening needs identity= (a key path on the workers) or identity_env=")
    return _map(
        _bag(pairs),
        _open_one,
        identity=None if identity is None else _portable_identity(identity),
        identity_env=identity_env,
        source_options=dict(source_options or {}),
        destination_options=dict(destination_options or {}),
        envelope_options=dict(envelope_options),
    )


def seal_prefix(
    source: str,
    destination: str,
    recipients: Any,
    *,
    pattern: str = "*",
    suffix: str = ".env",
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Seal every file under the directory or bucket prefix ``source`` whose path relative to it
    matches ``pattern`` (fnmatch: ``*`` crosses folders) to the same relative path under
    ``destination``, plus ``suffix``. The listing is made here, when the bag is built."""
    names = _listing(source, pattern, source_options)
    pairs = [(url, _join(destination, relative + suffix)) for url, relative in names]
    return seal_files(
        pairs,
        recipients,
        source_options=source_options,
        destination_options=destination_options,
        **envelope_options,
    )


def open_prefix(
    source: str,
    destination: str,
    *,
    pattern: str | None = None,
    suffix: str = ".env",
    identity: Any = None,
    identity_env: str | None = None,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Open every sealed file under ``source`` (those matching ``pattern``, by default ``*`` +
    ``suffix``) to the same relative path under ``destination``, without ``suffix``."""
    names = _listing(source, pattern if pattern is not None else f"*{suffix}", source_options)
    pairs = [(url, _join(destination, _drop_suffix(relative, suffix))) for url, relative in names]
    return open_files(
        pairs,
        identity=identity,
        identity_env=identity_env,
        source_options=source_options,
        destination_options=destination_options,
        **envelope_options,
    )


# --- what runs on the workers --------------------------------------------------------------------


def _seal_one(
    pair: tuple[str, str],
    *,
    recipients: Any,
    source_options: dict[str, Any],
    destination_options: dict[str, Any],
    envelope_options: dict[str, Any],
) -> dict[str, Any]:
    source, destination = pair
    _make_parent(destination, destination_options)
    if _is_local(destination):
        # A local destination gets what seal_file gives any local output: written in its own folder,
        # fsynced, named only when complete. (fsspec's local files stage the write in the system
        # temp folder and move it, a copy when that folder is on another file system.)
        from .files import seal_file

        result = seal_file(
            source,
            destination,
            recipients,
            storage_options=source_options if is_url(source) else None,
            overwrite=True,
            **envelope_options,
        )
        return {"source": source, "destination": destination, "bytes": result.plaintext_len}
    with _storage("reading the source", source, opened=False):
        plain = fsspec.open(source, "rb", **source_options).open()
    with (
        plain,
        open_url(
            destination, "wb", storage_options=destination_options, recipients=recipients, **envelope_options
        ) as sealed,
    ):
        shutil.copyfileobj(plain, sealed, _COPY_BUFFER)
        written = sealed.tell()
    return {"source": source, "destination": destination, "bytes": written}


def _open_one(
    pair: tuple[str, str],
    *,
    identity: Any,
    identity_env: str | None,
    source_options: dict[str, Any],
    destination_options: dict[str, Any],
    envelope_options: dict[str, Any],
) -> dict[str, Any]:
    source, destination = pair
    if _is_local(destination):
        # As for sealing, and the plaintext gets mode 0600 and is named only once every chunk
        # verified (fsspec's local files would stage it in the system temp folder, with the
        # umask's mode).
        from .files import open_file

        identities = _load_identities(identity, identity_env)
        _make_parent(destination, destination_options)
        result = open_file(
            source,
            destination,
            identities,
            storage_options=source_options if is_url(source) else None,
            overwrite=True,
            **{k: v for k, v in envelope_options.items() if k == "signed_by"},
        )
        return {"source": source, "destination": destination, "bytes": result.plaintext_len}
    with open_url(
        source,
        "rb",
        storage_options=source_options,
        identity=identity,
        identity_env=identity_env,
        **envelope_options,
    ) as sealed:
        with _storage("opening the destination", destination, opened=False):
            fs, path = _make_parent(destination, destination_options)
            # Not fs.open(): that would file it in a transaction nobody completes.
            out = fs._open(path, mode="wb", autocommit=False)
        try:
            with _storage("writing the destination", destination, opened=False):
                shutil.copyfileobj(sealed, out, _COPY_BUFFER)
                out.close()
                out.commit()  # only now does the plaintext appear: every chunk verified
        except BaseException:
            with _storage("discarding the destination", destination, opened=False):
                if not out.closed:
                    out.close()
                out.discard()
            raise
        size: int = sealed.tell()
    return {"source": source, "destination": destination, "bytes": size}


# --- helpers -----------------------------------------------------------------------------------


def _is_local(url: str) -> bool:
    return not is_url(url) or url.startswith(("file://", "local://"))


def _bag(pairs: Iterable[tuple[str, str]]) -> Any:
    items = [(str(source), str(destination)) for source, destination in pairs]
    if not items:
        raise UsageError("no files to process")
    bags: Any = dask.bag  # dask.bag's functions carry no annotations
    return bags.from_sequence(items, partition_size=1)  # one file per task: spread them all


def _map(bag: Any, function: Any, **keywords: Any) -> dask.bag.Bag:
    return cast("dask.bag.Bag", bag.map(function, **keywords))


def _writer_defaults(envelope_options: Mapping[str, Any]) -> dict[str, Any]:
    options = dict(envelope_options)
    accepted = _keyword_options(EnvelopeWriter)
    if "threads" not in options and (accepted is None or "threads" in accepted):
        options["threads"] = 1
    return options


def _listing(source: str, pattern: str, source_options: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(URL, path relative to ``source``) of the files under ``source`` that match ``pattern``."""
    prefix = "envelope::"
    inner = source[len(prefix) :] if source.startswith(prefix) else source
    with _storage("listing", inner, opened=False):
        fs, root = fsspec.core.url_to_fs(inner, **dict(source_options or {}))
        paths = sorted(fs.find(root))
    root = root.rstrip("/")
    found = []
    for path in paths:
        relative = path[len(root) :].lstrip("/") if path.startswith(root) else path
        if relative and fnmatch.fnmatchcase(relative, pattern):
            found.append((fs.unstrip_protocol(path), relative))
    if not found:
        raise UsageError(f"no file under {source} matches {pattern!r}")
    return found


def _make_parent(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """The filesystem and path of ``url``, its parent folder made (local folders must exist)."""
    with _storage("making the destination folder", url, opened=False):
        fs, path = fsspec.core.url_to_fs(url, **dict(options))
        fs.makedirs(fs._parent(path), exist_ok=True)
    return fs, path


def _join(prefix: str, relative: str) -> str:
    return prefix.rstrip("/") + "/" + relative


def _drop_suffix(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if suffix and name.endswith(suffix) and len(name) > len(suffix) else name
