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
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any, cast

from ._sdkoptions import keyword_options
from ._storage import storage
from ._urls import is_url, locate, shown
from ._workerkeys import load_identities, portable_identity, portable_recipients
from .errors import MissingDependencyError, UsageError
from .fileio import EnvelopeWriter
from .fsspec import open_url

try:
    import dask.bag
    import fsspec
    from fsspec.implementations.cached import CachingFileSystem
except ImportError as exc:
    raise MissingDependencyError("envelope.dask needs dask: pip install 'envelope-ml[dask]'") from exc

__all__ = ["open_files", "open_prefix", "seal_files", "seal_prefix"]

_COPY_BUFFER = 4 << 20


def seal_files(
    pairs: Iterable[tuple[str, str]],
    recipients: Any,
    *,
    overwrite: bool = False,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Seal each ``(source, destination)`` pair of URLs or paths for ``recipients``, one task each.

    ``envelope_options`` go to the writer (``metadata``, ``chunk_size``...). Each task seals on the
    worker's own thread (``threads=1``) unless told otherwise: Dask already runs one task per
    worker thread. A destination appears only when its file is complete. An existing destination
    fails its task with :class:`~envelope.OutputExistsError` unless ``overwrite``.
    """
    return _sealing(_pairs(pairs), recipients, None, overwrite, source_options, destination_options, envelope_options)


def open_files(
    pairs: Iterable[tuple[str, str]],
    *,
    identity: Any = None,
    identity_env: str | None = None,
    overwrite: bool = False,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Open (decrypt) each ``(source, destination)`` pair, one task each.

    ``identity`` is a key path the workers can read, or ``identity_env`` names an environment
    variable they have that holds the key itself (PEM). A destination is written without autocommit and
    committed only once every chunk of its source verified; a failure discards it. An existing
    destination fails its task with :class:`~envelope.OutputExistsError` unless ``overwrite``.
    """
    return _opening(
        _pairs(pairs), None, identity, identity_env, overwrite, source_options, destination_options, envelope_options
    )


def seal_prefix(
    source: str,
    destination: str,
    recipients: Any,
    *,
    pattern: str = "*",
    suffix: str = ".env",
    overwrite: bool = False,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Seal every file under the directory or bucket prefix ``source`` whose path relative to it
    matches ``pattern`` (fnmatch: ``*`` crosses folders) to the same relative path under
    ``destination``, plus ``suffix``. The listing is made here, when the bag is built, and every
    name in it is checked then (:func:`_under`): one that could leave ``destination`` is refused
    before anything is submitted."""
    _refuse_plaintext_staging(source, "source")
    names = _listing(source, pattern, source_options)
    pairs = [(url, _under(destination, relative + suffix, relative, source)) for url, relative in names]
    return _sealing(pairs, recipients, destination, overwrite, source_options, destination_options, envelope_options)


def open_prefix(
    source: str,
    destination: str,
    *,
    pattern: str | None = None,
    suffix: str = ".env",
    identity: Any = None,
    identity_env: str | None = None,
    overwrite: bool = False,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> dask.bag.Bag:
    """Open every sealed file under ``source`` (those matching ``pattern``, by default ``*`` +
    ``suffix``) to the same relative path under ``destination``, without ``suffix``. Names are
    checked as for :func:`seal_prefix`."""
    names = _listing(source, pattern if pattern is not None else f"*{suffix}", source_options)
    pairs = [(url, _under(destination, _drop_suffix(relative, suffix), relative, source)) for url, relative in names]
    return _opening(
        pairs, destination, identity, identity_env, overwrite, source_options, destination_options, envelope_options
    )


def _sealing(
    pairs: list[tuple[str, str]],
    recipients: Any,
    root: str | None,
    overwrite: bool,
    source_options: Mapping[str, Any] | None,
    destination_options: Mapping[str, Any] | None,
    envelope_options: Mapping[str, Any],
) -> dask.bag.Bag:
    for source, _ in pairs:
        _refuse_plaintext_staging(source, "source")
    return _map(
        _bag(pairs),
        _seal_one,
        recipients=portable_recipients(recipients),
        root=root,
        overwrite=overwrite,
        source_options=dict(source_options or {}),
        destination_options=dict(destination_options or {}),
        envelope_options=_writer_defaults(envelope_options),
    )


def _opening(
    pairs: list[tuple[str, str]],
    root: str | None,
    identity: Any,
    identity_env: str | None,
    overwrite: bool,
    source_options: Mapping[str, Any] | None,
    destination_options: Mapping[str, Any] | None,
    envelope_options: Mapping[str, Any],
) -> dask.bag.Bag:
    if identity is None and identity_env is None:
        raise UsageError("opening needs identity= (a key path on the workers) or identity_env=")
    for _, destination in pairs:
        _refuse_plaintext_staging(destination, "destination")
    return _map(
        _bag(pairs),
        _open_one,
        identity=None if identity is None else portable_identity(identity),
        identity_env=identity_env,
        root=root,
        overwrite=overwrite,
        source_options=dict(source_options or {}),
        destination_options=dict(destination_options or {}),
        envelope_options=dict(envelope_options),
    )


# --- what runs on the workers --------------------------------------------------------------------


def _seal_one(
    pair: tuple[str, str],
    *,
    recipients: Any,
    root: str | None,
    overwrite: bool,
    source_options: dict[str, Any],
    destination_options: dict[str, Any],
    envelope_options: dict[str, Any],
) -> dict[str, Any]:
    source, destination = pair
    if _is_local(destination):
        # A local destination gets what seal_file gives any local output: written in its own folder,
        # fsynced, named only when complete. (fsspec's local files stage the write in the system
        # temp folder and move it, a copy when that folder is on another file system.)
        from .files import seal_file

        result = seal_file(
            source,
            _local_destination(destination, root),
            recipients,
            storage_options=source_options if is_url(source) else None,
            overwrite=overwrite,
            **envelope_options,
        )
        return {"source": source, "destination": destination, "bytes": result.plaintext_len}
    _make_parent(destination, destination_options)
    target = locate(destination, destination_options, sealed=True)
    assert not isinstance(target, (str, os.PathLike))  # a local destination went the way above
    with storage("reading the source", shown(source), opened=False):
        plain = fsspec.open(source, "rb", **source_options).open()
    # As open_writer writes any URL: an existing object is refused unless overwrite (on S3 at the
    # commit too), and the object appears only once the writer's last chunk is uploaded.
    with plain, target.writing(overwrite=overwrite, private=False) as out:
        with EnvelopeWriter(out, recipients, **envelope_options) as sealed:
            shutil.copyfileobj(plain, sealed, _COPY_BUFFER)
            written = sealed.tell()
    return {"source": source, "destination": destination, "bytes": written}


def _open_one(
    pair: tuple[str, str],
    *,
    identity: Any,
    identity_env: str | None,
    root: str | None,
    overwrite: bool,
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

        identities = load_identities(identity, identity_env)
        result = open_file(
            source,
            _local_destination(destination, root),
            identities,
            storage_options=source_options if is_url(source) else None,
            overwrite=overwrite,
            **{k: v for k, v in envelope_options.items() if k == "signed_by"},
        )
        return {"source": source, "destination": destination, "bytes": result.plaintext_len}
    _make_parent(destination, destination_options)
    # private: plaintext is refused where a wrapper would stage it in a local file.
    target = locate(destination, destination_options, sealed=False)
    assert not isinstance(target, (str, os.PathLike))  # a local destination went the way above
    with (
        open_url(
            source,
            "rb",
            storage_options=source_options,
            identity=identity,
            identity_env=identity_env,
            **envelope_options,
        ) as sealed,
        target.writing(overwrite=overwrite, private=True) as out,  # committed once every chunk verified
    ):
        shutil.copyfileobj(sealed, out, _COPY_BUFFER)
        size: int = sealed.tell()
    return {"source": source, "destination": destination, "bytes": size}


# --- helpers -----------------------------------------------------------------------------------


def _is_local(url: str) -> bool:
    return not is_url(url) or url.startswith(("file://", "local://"))


def _pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(str(source), str(destination)) for source, destination in pairs]


def _bag(items: list[tuple[str, str]]) -> Any:
    if not items:
        raise UsageError("no files to process")
    bags: Any = dask.bag  # dask.bag's functions carry no annotations
    return bags.from_sequence(items, partition_size=1)  # one file per task: spread them all


def _map(bag: Any, function: Any, **keywords: Any) -> dask.bag.Bag:
    return cast("dask.bag.Bag", bag.map(function, **keywords))


def _writer_defaults(envelope_options: Mapping[str, Any]) -> dict[str, Any]:
    options = dict(envelope_options)
    accepted = keyword_options(EnvelopeWriter)
    if accepted is not None:
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise UsageError(
                f"unknown writer option(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(accepted))}"
            )
    if "threads" not in options and (accepted is None or "threads" in accepted):
        options["threads"] = 1
    return options


def _listing(source: str, pattern: str, source_options: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(URL, path relative to ``source``) of the files under ``source`` that match ``pattern``."""
    prefix = "envelope::"
    inner = source[len(prefix) :] if source.startswith(prefix) else source
    with storage("listing", shown(inner), opened=False):
        fs, root = fsspec.core.url_to_fs(inner, **dict(source_options or {}))
        paths = sorted(fs.find(root))
    root = root.rstrip("/")
    found = []
    for path in paths:
        relative = path[len(root) :].lstrip("/") if path.startswith(root) else path
        if relative and fnmatch.fnmatchcase(relative, pattern):
            found.append((fs.unstrip_protocol(path), relative))
    if not found:
        raise UsageError(f"no file under {shown(source)} matches {pattern!r}")
    return found


def _under(destination: str, name: str, relative: str, source: str) -> str:
    """``name`` (made from the listed ``relative``) under ``destination``, refused unless it stays
    there: object names come from the store, which the threat model gives to the attacker
    (spec/SECURITY.md). A name is refused before the bag is built, so nothing is written for any."""
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts) or any(bad in name for bad in ("\\", "\x00", "::")):
        raise UsageError(
            f"{shown(source)}: the object name {relative!r} could lead outside the destination "
            "(an empty, '.' or '..' part, a backslash, a NUL or '::'); nothing was submitted"
        )
    return destination.rstrip("/") + "/" + name


def _local_destination(destination: str, root: str | None) -> str:
    """The local path to write ``destination`` to, its folders made.

    Under ``root`` (the destination folder of a prefix helper), no folder on the way may be a
    symbolic link, and neither may the file itself: a link planted in the destination tree would
    send the output elsewhere, and writing through it would replace what it points to. ``root``
    itself may be a link (the caller named it).
    """
    path = _local_path(destination)
    if root is None:
        _make_parent(destination, {})
        return path
    top = os.path.realpath(_local_path(root))
    relative = destination[len(root.rstrip("/")) + 1 :]
    os.makedirs(top, exist_ok=True)
    current = top
    parts = relative.split("/")
    for part in parts[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise _linked(destination, current)
        try:
            os.mkdir(current)
        except FileExistsError:
            if os.path.islink(current):  # made meanwhile
                raise _linked(destination, current) from None
    target = os.path.join(current, parts[-1])
    if os.path.islink(target) or os.path.commonpath([top, os.path.realpath(target)]) != top:
        raise _linked(destination, target)
    return target


def _linked(destination: str, link: str) -> UsageError:
    return UsageError(
        f"{shown(destination)!r}: {link!r} is a symbolic link inside the destination folder; "
        "nothing is written through it"
    )


def _local_path(url: str) -> str:
    if not is_url(url):
        return url
    with storage("resolving", shown(url), opened=False):
        _, path = fsspec.core.url_to_fs(url)
    local: str = path
    return local


def _refuse_plaintext_staging(url: str, role: str) -> None:
    """Plaintext never waits in a local cache: fsspec's caching wrappers (``simplecache::``,
    ``filecache::``, ``blockcache::``) keep a copy of what passes through them in a local folder.
    A sealed side may go through one (what it caches is ciphertext)."""
    if _is_local(url):
        return
    for link in url.split("::"):
        try:
            cls = fsspec.get_filesystem_class(link.split("://", 1)[0])
        except (ImportError, ValueError):
            continue  # an unknown protocol: the task says so
        if issubclass(cls, CachingFileSystem):
            raise UsageError(
                f"{shown(url)!r}: {cls.__name__} would keep the plaintext {role} in a local cache folder; "
                "drop the caching wrapper"
            )


def _make_parent(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """The filesystem and path of ``url``, its parent folder made (local folders must exist)."""
    with storage("making the destination folder", shown(url), opened=False):
        fs, path = fsspec.core.url_to_fs(url, **dict(options))
        fs.makedirs(fs._parent(path), exist_ok=True)
    return fs, path


def _drop_suffix(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if suffix and name.endswith(suffix) and len(name) > len(suffix) else name
