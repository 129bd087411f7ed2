"""Sealed files on any fsspec filesystem: the ``envelope::`` protocol.

    import fsspec
    with fsspec.open("envelope::s3://bucket/data.parquet.env", "rb",
                     envelope={"identity": "/keys/me.pem"}, s3={...}) as f:
        f.seek(1 << 30)
        block = f.read(1 << 20)  # fetches the header, the final chunk and the chunks it touches

:class:`EnvelopeFileSystem` is chained in front of another filesystem. ``"rb"`` returns a seekable
reader that returns only verified plaintext; ``"wb"`` returns a writer that seals while it
uploads, in constant memory, and makes the object appear only when it is complete. Everything
else (``ls``, ``glob``, ``find``, ``info``, ``exists``, ``rm``, copies) passes through to the
underlying filesystem and speaks of the sealed objects: ``info(path)["size"]`` is the sealed size
(the plaintext size is ``size`` of the opened reader). docs/REMOTE.md is the user's guide.

Options for the reader and the writer (``envelope={...}`` in a chained URL, keyword arguments of
the class) are those of :class:`envelope.EnvelopeReader` and :class:`envelope.EnvelopeWriter`,
read from their signatures, so a new SDK option reaches remote files without a change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from ._ranged import DEFAULT_READ_AHEAD, HEADER_WINDOW, SealedObjectReader, open_sealed
from ._sdkoptions import keyword_options
from ._storage import storage
from ._upload import SealedObjectWriter
from ._urls import is_url, shown
from ._workerkeys import load_identities, portable_identity, portable_recipients
from .errors import MissingDependencyError, UsageError
from .fileio import EnvelopeReader, EnvelopeWriter

try:
    import fsspec
    from fsspec.implementations.chained import ChainedFileSystem
    from fsspec.spec import make_instance
except ImportError as exc:  # fsspec before 2025.10 has no ChainedFileSystem: it cannot chain us
    raise MissingDependencyError(
        "envelope.fsspec needs fsspec 2025.10 or later: pip install 'envelope-ml[fsspec]'"
    ) from exc

__all__ = [
    "DEFAULT_READ_AHEAD",
    "HEADER_WINDOW",
    "PROTOCOL",
    "EnvelopeFileSystem",
    "SealedObjectReader",
    "SealedObjectWriter",
    "is_url",
    "open_url",
]

PROTOCOL = "envelope"

# Options AbstractFileSystem itself takes; everything else in envelope={...} is ours.
_FSSPEC_OPTIONS = frozenset(
    {"use_listings_cache", "listings_expiry_time", "max_paths", "asynchronous", "loop", "skip_instance_cache"}
)
_OWN_OPTIONS = frozenset({"identity", "identity_env", "recipients", "read_ahead"})


# --- options ---------------------------------------------------------------------------------


def _check_options(options: Mapping[str, Any]) -> None:
    reader, writer = keyword_options(EnvelopeReader), keyword_options(EnvelopeWriter)
    if reader is None or writer is None:
        return
    unknown = sorted(set(options) - reader - writer)
    if unknown:
        known = ", ".join(sorted(reader | writer | _OWN_OPTIONS))
        raise UsageError(f"unknown envelope option(s) {', '.join(map(repr, unknown))}; known: {known}")


# --- the filesystem ----------------------------------------------------------------------------


class EnvelopeFileSystem(ChainedFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Sealed objects on another fsspec filesystem (``envelope::s3://...``).

    Reading needs ``identity`` (a private key, a key path, an :class:`envelope.Identity`, or a list
    of them) or ``identity_env`` (an environment variable holding the private key itself, PEM). Writing
    needs ``recipients``. Both can also be given per file to :meth:`open`, with any option of
    :class:`envelope.EnvelopeReader` / :class:`envelope.EnvelopeWriter` (``metadata``,
    ``chunk_size``, ...). ``read_ahead`` caps the ranged reads of a sequential reader (bytes).

    Key paths and environment variables are resolved where a file is first opened, so a pickled
    filesystem (a Dask task) carries the reference and never the key; pickling one that holds
    private key material raises :class:`UsageError`. Public keys travel as PEM.
    """

    protocol = PROTOCOL
    _strip_tokenize_options = ("fo",)

    def __init__(
        self,
        fo: str = "",
        *,
        target_protocol: str | None = None,
        target_options: Mapping[str, Any] | None = None,
        fs: Any = None,
        identity: Any = None,
        identity_env: str | None = None,
        recipients: Any = None,
        read_ahead: int = DEFAULT_READ_AHEAD,
        **options: Any,
    ) -> None:
        base = {k: options.pop(k) for k in list(options) if k in _FSSPEC_OPTIONS}
        super().__init__(**base)
        _check_options(options)
        if (fs is None) == (target_protocol is None):
            raise UsageError(
                "envelope:: goes in front of another filesystem: chain a URL (envelope::s3://bucket/key), "
                "or give exactly one of fs= and target_protocol="
            )
        if isinstance(read_ahead, bool) or not isinstance(read_ahead, int) or read_ahead <= 0:
            raise UsageError("read_ahead must be a positive number of bytes")
        self.fs = fs if fs is not None else fsspec.filesystem(target_protocol, **dict(target_options or {}))
        self.target_protocol = target_protocol
        self._identity = identity
        self._identity_env = identity_env
        self._identities: list[Any] | None = None
        self._recipients = recipients
        self._read_ahead = read_ahead
        self._options = options

        own = type(self)._strip_protocol

        def strip_protocol(path: Any) -> Any:
            return self.fs._strip_protocol(own(path))

        # Per instance, as fsspec's caching filesystems do: the underlying filesystem has the last
        # word on its paths, while fsspec's URL parsing still calls the class method.
        self.__dict__["_strip_protocol"] = strip_protocol

    def __reduce__(self) -> tuple[Any, ...]:
        options = dict(self.storage_options)
        if options.get("identity") is not None:
            options["identity"] = portable_identity(options["identity"])
        if options.get("recipients") is not None:
            options["recipients"] = portable_recipients(options["recipients"])
        return make_instance, (type(self), self.storage_args, options)

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}::{self.fs.unstrip_protocol(name)}"

    # --- opening ---

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SealedObjectReader | SealedObjectWriter:
        reader_options, writer_options = keyword_options(EnvelopeReader), keyword_options(EnvelopeWriter)
        ours = _OWN_OPTIONS | (reader_options or frozenset()) | (writer_options or frozenset())
        per_file = {k: kwargs.pop(k) for k in list(kwargs) if k in ours}
        options = {**self._options, **{k: v for k, v in per_file.items() if k not in _OWN_OPTIONS}}
        path = self._strip_protocol(path)
        name = self._shown(path)
        if mode == "rb":
            if "identity" in per_file or "identity_env" in per_file:
                identities = load_identities(per_file.get("identity"), per_file.get("identity_env"))
            else:
                identities = self._default_identities()
            read_ahead = per_file.get("read_ahead", self._read_ahead)
            kwargs.setdefault("cache_type", "none")  # ranged reads are planned here, not by a cache
            return self._open_reader(path, name, identities, options, read_ahead, block_size, cache_options, kwargs)
        if mode == "wb":
            recipients = per_file.get("recipients", self._recipients)
            if recipients is None:
                raise UsageError("writing an envelope:: file needs recipients: envelope={'recipients': [...]}")
            with storage("opening for writing", name, opened=False):
                target = self.fs._open(
                    path, mode="wb", block_size=block_size, autocommit=False, cache_options=cache_options, **kwargs
                )
            return SealedObjectWriter(target, recipients, options, path=name, autocommit=autocommit)
        raise UsageError(f"envelope:: files are opened 'rb' or 'wb' (a sealed file is written whole), not {mode!r}")

    def _shown(self, path: str) -> str:
        """``path`` as messages name it: as it is, unless its URL holds credentials (``shown``)."""
        url = self.fs.unstrip_protocol(path)
        redacted = shown(url)
        return path if redacted == url else redacted

    def _default_identities(self) -> list[Any]:
        if self._identities is None:
            self._identities = load_identities(self._identity, self._identity_env)
        return self._identities

    def _open_reader(
        self,
        path: str,
        name: str,
        identities: list[Any],
        options: Mapping[str, Any],
        read_ahead: int,
        block_size: int | None,
        cache_options: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> SealedObjectReader:
        return open_sealed(
            self.fs,
            path,
            identities,
            options,
            read_ahead=read_ahead,
            name=name,
            block_size=block_size,
            cache_options=cache_options,
            **kwargs,
        )

    # --- what passes through: these speak of the sealed objects ---

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        return self.fs.ls(self._strip_protocol(path), detail=detail, **kwargs)

    def info(self, path: str, **kwargs: Any) -> Any:
        return self.fs.info(self._strip_protocol(path), **kwargs)

    def exists(self, path: str, **kwargs: Any) -> Any:
        return self.fs.exists(self._strip_protocol(path), **kwargs)

    def isdir(self, path: str) -> Any:
        return self.fs.isdir(self._strip_protocol(path))

    def isfile(self, path: str) -> Any:
        return self.fs.isfile(self._strip_protocol(path))

    def find(
        self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False, **kwargs: Any
    ) -> Any:
        return self.fs.find(self._strip_protocol(path), maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)

    def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        return self.fs.glob(self._strip_protocol(path), maxdepth=maxdepth, **kwargs)

    def modified(self, path: str) -> Any:
        return self.fs.modified(self._strip_protocol(path))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> Any:
        return self.fs.mkdir(self._strip_protocol(path), create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> Any:
        return self.fs.makedirs(self._strip_protocol(path), exist_ok=exist_ok)

    def rmdir(self, path: str) -> Any:
        return self.fs.rmdir(self._strip_protocol(path))

    def rm_file(self, path: str) -> Any:
        return self.fs.rm_file(self._strip_protocol(path))

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> Any:
        return self.fs.rm(self._strip_protocol(path), recursive=recursive, maxdepth=maxdepth)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> Any:
        """Copy a sealed object as it is (server-side where the store can): same keys, same data."""
        return self.fs.cp_file(self._strip_protocol(path1), self._strip_protocol(path2), **kwargs)

    def invalidate_cache(self, path: str | None = None) -> None:
        self.fs.invalidate_cache(None if path is None else self._strip_protocol(path))


# --- one file, for code that takes a path or a URL --------------------------------------------


def open_url(
    url: str,
    mode: str = "rb",
    *,
    storage_options: Mapping[str, Any] | None = None,
    **envelope_options: Any,
) -> IO[bytes]:
    """Open the sealed object at ``url`` (``s3://bucket/key``, ``envelope::s3://...``, a local path)
    as a verified plaintext reader (``"rb"``) or a sealing writer (``"wb"``).

    ``storage_options`` configure the underlying filesystem (``{"anon": True}``, or per protocol in a
    chain); ``envelope_options`` are those of :class:`EnvelopeFileSystem` (``identity``,
    ``recipients``, ``metadata``, ...). The file object is returned itself, not an fsspec
    ``OpenFile``: used as a context manager, an exception inside the block discards a write.
    """
    prefix = f"{PROTOCOL}::"
    inner = url[len(prefix) :] if url.startswith(prefix) else url
    with storage("resolving", shown(inner), opened=False):
        fs, path = fsspec.core.url_to_fs(inner, **dict(storage_options or {}))
    sealed = EnvelopeFileSystem(fs=fs, skip_instance_cache=True, **envelope_options)
    opened: IO[bytes] = sealed.open(path, mode)
    return opened
