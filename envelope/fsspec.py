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

import contextlib
import errno
import hashlib
import inspect
import io
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, cast

from ._format import HEADER_MAC_LEN, PREFIX_LEN, decode_prefix
from ._layout import token_len
from ._urls import is_url, shown
from .errors import EnvelopeError, MissingDependencyError, ObjectChangedError, RemoteError, UsageError
from .fileio import EnvelopeReader, EnvelopeWriter
from .inspection import SignerInfo
from .inspection import inspect as inspect_header
from .keys import load_private_key, parse_private_key, public_key_pem

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
HEADER_WINDOW = 4 << 10  # first ranged read: the prefix, a header of a few recipients and its MAC
DEFAULT_READ_AHEAD = 16 << 20  # largest ranged read of a sequential reader (two may be held at once)
_FIRST_READ_AHEAD = 4 << 20  # the read-ahead window starts here and doubles up to read_ahead

# Options AbstractFileSystem itself takes; everything else in envelope={...} is ours.
_FSSPEC_OPTIONS = frozenset(
    {"use_listings_cache", "listings_expiry_time", "max_paths", "asynchronous", "loop", "skip_instance_cache"}
)
_OWN_OPTIONS = frozenset({"identity", "identity_env", "recipients", "read_ahead"})

_KEY_IN_GRAPH = (
    "this envelope filesystem holds private key material, which is never pickled (a Dask task graph "
    "would carry it in the clear): give identity as a path that the workers can read, or "
    "identity_env as the name of an environment variable they have"
)


# --- options ---------------------------------------------------------------------------------


def _keyword_options(cls: type) -> frozenset[str] | None:
    """Keyword options of an SDK reader or writer class, after its two positional arguments (the
    file and the keys) and without ``close_*``, which this module manages. None: it takes any."""
    parameters = list(inspect.signature(cls).parameters.values())[2:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(p.name for p in parameters if p.kind in named and not p.name.startswith("close_"))


def _options_for(cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    accepted = _keyword_options(cls)
    return {k: v for k, v in options.items() if accepted is None or k in accepted}


def _check_options(options: Mapping[str, Any]) -> None:
    reader, writer = _keyword_options(EnvelopeReader), _keyword_options(EnvelopeWriter)
    if reader is None or writer is None:
        return
    unknown = sorted(set(options) - reader - writer)
    if unknown:
        known = ", ".join(sorted(reader | writer | _OWN_OPTIONS))
        raise UsageError(f"unknown envelope option(s) {', '.join(map(repr, unknown))}; known: {known}")


def _looks_like_key_text(value: str) -> bool:
    # A str is a path (the SDK's rule); this only keeps key text passed by mistake from being
    # pickled into a task graph, or tried as a file name: paths hold neither newlines nor PEM armour.
    return "\n" in value or "-----" in value or value.lstrip().startswith("ssh-")


def _as_items(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _portable_identity(value: Any) -> Any:
    """What of an identity option may be pickled: paths, and identity objects that are neither RSA
    private keys nor hold one (a KMS identity holds a reference)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from .recipients import RsaIdentity

    for item in _as_items(value):
        if isinstance(item, (bytes, bytearray, rsa.RSAPrivateKey, RsaIdentity)):
            raise UsageError(_KEY_IN_GRAPH)
        if isinstance(item, str) and _looks_like_key_text(item):
            raise UsageError(_KEY_IN_GRAPH)
    return value


def _portable_recipients(value: Any) -> Any:
    """Public keys travel as PEM (key objects do not pickle)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from .recipients import RsaRecipient

    def portable(item: Any) -> Any:
        if isinstance(item, rsa.RSAPublicKey):
            return public_key_pem(item)
        if isinstance(item, RsaRecipient):
            return public_key_pem(item.public_key)
        return item

    items = [portable(item) for item in _as_items(value)]
    return items


def _load_identities(identity: Any, identity_env: str | None) -> list[Any]:
    """The identities to open files with. Keys named by a path or an environment variable are
    loaded once per process and version (a Dask worker opening many files loads its key once; a
    key file that changes is loaded again): loading checks the key's numbers, which costs more
    than opening a small file."""
    found: list[Any] = []
    if identity_env is not None:
        text = os.environ.get(identity_env)
        if not text:
            raise UsageError(f"the environment variable {identity_env} (identity_env) is not set")
        # The key itself (PEM): a path goes in identity=.
        token = ("env", hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest())
        found.append(_loaded_once(token, lambda: parse_private_key(text)))
    if identity is not None:
        for item in _as_items(identity):
            if isinstance(item, str) and _looks_like_key_text(item):
                raise UsageError(
                    "identity takes a key file's path or a key object, not key text: "
                    "load it with envelope.parse_private_key"
                )
            found.append(_key_file(item) if isinstance(item, (str, os.PathLike)) else item)
    if not found:
        raise UsageError(
            "opening an envelope:: file needs a private key: envelope={'identity': key or key path} "
            "or envelope={'identity_env': 'VARIABLE'}"
        )
    return found


_LOADED_KEYS: dict[tuple[Any, ...], Any] = {}  # (where a key came from, its version) -> the key
_LOADED_KEYS_LOCK = threading.Lock()
_LOADED_KEYS_MAX = 16


def _key_file(path: str | os.PathLike[str]) -> Any:
    try:
        info = os.stat(path)
    except OSError:
        return load_private_key(path)  # which says what is wrong with the path
    token = ("file", os.path.abspath(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    return _loaded_once(token, lambda: load_private_key(path))


def _loaded_once(token: tuple[Any, ...], load: Callable[[], Any]) -> Any:
    with _LOADED_KEYS_LOCK:
        key = _LOADED_KEYS.get(token)
    if key is None:
        key = load()
        with _LOADED_KEYS_LOCK:
            if len(_LOADED_KEYS) >= _LOADED_KEYS_MAX:
                _LOADED_KEYS.clear()
            _LOADED_KEYS[token] = key
    return key


# --- storage errors ----------------------------------------------------------------------------

_PASS_THROUGH = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


_REASONS = {
    FileNotFoundError: errno.ENOENT,
    PermissionError: errno.EACCES,
    IsADirectoryError: errno.EISDIR,
    NotADirectoryError: errno.ENOTDIR,
    FileExistsError: errno.EEXIST,
}


def _naming(exc: OSError, path: str) -> OSError:
    """The same error, with an errno, a reason and the name the caller gave, as a local file's
    error has them: storage libraries often give only the bucket and key (s3fs: a missing object
    is ``FileNotFoundError("bucket/key")``) or a reason without a name."""
    if exc.filename == path and exc.strerror:
        return exc
    kind, default = next((kind, number) for kind, number in _REASONS.items() if isinstance(exc, kind))
    number = exc.errno or default
    said = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else ""
    # A reason is words ("The specified bucket does not exist"); one word is the library's own name
    # for the object (bucket/key), which may hold what ``path`` leaves out (a presigned query).
    reason = exc.strerror or (said if " " in said.strip() else os.strerror(number))
    return kind(number, reason, path)


def _loaded_classes(*names: tuple[str, str]) -> tuple[type[BaseException], ...]:
    """Exception classes of storage libraries that are already imported (nothing is imported)."""
    found = []
    for module, name in names:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _transport_errors() -> tuple[type[BaseException], ...]:
    return (
        OSError,
        *_loaded_classes(
            ("botocore.exceptions", "BotoCoreError"),
            ("botocore.exceptions", "ClientError"),
            ("aiohttp", "ClientError"),
            ("requests", "RequestException"),
            ("google.api_core.exceptions", "GoogleAPIError"),
            ("azure.core.exceptions", "AzureError"),
        ),
    )


def _changed_errors() -> tuple[type[BaseException], ...]:
    return _loaded_classes(("s3fs.utils", "FileExpired"))  # s3fs pins the ETag with If-Match


@contextlib.contextmanager
def _storage(action: str, path: str, *, opened: bool) -> Iterator[None]:
    """Turn a storage library's failure into a documented error. ``opened``: the object was opened
    before, so its disappearance means it changed under the reader."""
    try:
        yield
    except EnvelopeError:
        raise
    except _PASS_THROUGH as exc:
        if opened and isinstance(exc, FileNotFoundError):
            raise ObjectChangedError(f"{path}: the object was deleted while it was read") from exc
        named = _naming(exc, path)
        if named is exc:
            raise
        raise named from exc
    except _changed_errors() as exc:
        raise ObjectChangedError(f"{path}: the object changed while it was read (its ETag differs)") from exc
    except _transport_errors() as exc:
        raise RemoteError(f"{path}: {action} failed ({type(exc).__name__})") from exc


# --- reading -----------------------------------------------------------------------------------


class _RangedSource(io.RawIOBase):
    """The sealed object as a seekable raw file whose misses are ranged reads of the underlying one.

    One segment of the object is held, plus at most one range being fetched ahead. Every read of
    the underlying file runs on one background thread, in order, so the underlying file is never
    used by two threads. The reader above says which ranges it needs (:meth:`fetch`, one ranged
    read for all the chunks a read touches) and which it will need next (:meth:`fetch_ahead`).
    """

    def __init__(self, raw: Any, size: int, path: str) -> None:
        super().__init__()
        self._raw = raw
        self._size = size
        self._path = path
        self._position = 0
        self._start = 0
        self._data = memoryview(b"")
        self._ahead: tuple[int, int, Future[bytes]] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="envelope-fetch")
        self.fetched = 0  # bytes the underlying file returned, for tests and benchmarks

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence ({whence})")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start = self._position
        end = min(start + len(view), self._size)
        if end <= start:
            return 0
        self.fetch(start, end)  # a no-op when planned; else exactly what is asked
        count = end - start
        offset = start - self._start
        view[:count] = self._data[offset : offset + count]
        self._position = end
        return count

    def _segment_end(self) -> int:
        return self._start + len(self._data)

    def _get(self, start: int, end: int) -> bytes:
        """One ranged read of the underlying file (on the background thread)."""
        with _storage("a ranged read", self._path, opened=True):
            self._raw.seek(start)
            parts, got = [], 0
            while got < end - start:
                piece = self._raw.read(end - start - got)
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
        self.fetched += got
        if got < end - start:
            raise ObjectChangedError(f"{self._path}: the object is shorter than when it was opened")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _wait(self, future: Future[bytes]) -> memoryview:
        return memoryview(future.result())

    def fetch(self, start: int, end: int) -> None:
        """Hold ``[start, end)`` (clipped to the object), reading what is missing in one ranged read
        (two when a read-ahead covers its middle). The held segment keeps what follows ``end`` in
        the old segment or the read-ahead: a sequential reader finds its next chunks there."""
        end = min(end, self._size)
        if start >= end or (self._start <= start and end <= self._segment_end()):
            return
        pieces: list[memoryview] = []
        position = start
        if self._start <= start < self._segment_end():
            pieces.append(self._data[start - self._start :])
            position = self._segment_end()
        while position < end:
            ahead = self._ahead
            if ahead is not None and ahead[0] <= position < ahead[1]:
                self._ahead = None
                pieces.append(self._wait(ahead[2])[position - ahead[0] :])
                position = ahead[1]
            else:
                stop = ahead[0] if ahead is not None and position < ahead[0] < end else end
                pieces.append(self._wait(self._pool.submit(self._get, position, stop)))
                position = stop
        self._start = start
        self._data = pieces[0] if len(pieces) == 1 else memoryview(b"".join(pieces))
        if self._ahead is not None and self._ahead[0] != self._segment_end():
            self._drop_ahead()  # a jump: what was read ahead is not next

    def fetch_ahead(self, start: int, length: int) -> bool:
        """Start reading ``length`` bytes from ``start``, or from the end of the held segment when
        that is further, in the background; unless a read-ahead is under way. True: it started."""
        if self._start <= start < self._segment_end():
            start = self._segment_end()
        end = min(start + length, self._size)
        if start >= end or self._ahead is not None:
            return False
        self._ahead = (start, end, self._pool.submit(self._get, start, end))
        return True

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead[2].cancel()  # a running read completes; its result is dropped
            self._ahead = None

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._drop_ahead()
            self._pool.shutdown(wait=True)
            self._data = memoryview(b"")
            with _storage("closing", self._path, opened=True):
                self._raw.close()
        finally:
            super().close()


class _WindowedSource(_RangedSource):
    """The object for a reader that does not plan its ranges (a header parser, a copy, the keyless
    signature check): a read that misses fetches at least ``window`` bytes from where it starts,
    and with ``ahead`` the next window downloads in the background while this one is used."""

    def __init__(self, raw: Any, size: int, path: str, *, window: int, ahead: bool) -> None:
        super().__init__(raw, size, path)
        self._window = window
        self._read_ahead = ahead

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view:
            start, count = self._position, view.nbytes
        end = min(start + count, self._size)
        if start < end and not (self._start <= start and end <= self._segment_end()):
            self.fetch(start, max(end, start + self._window))
        if self._read_ahead and start < end:
            self.fetch_ahead(self._segment_end(), self._window)
        return super().readinto(buffer)


class SealedObjectReader(io.BufferedIOBase):
    """A sealed object opened for reading: a seekable binary file of verified plaintext.

    Made by :meth:`EnvelopeFileSystem.open` (mode ``"rb"``). Opening fetches the header and the
    final chunk (so truncation is caught before the first byte, and :attr:`size` is known). Each
    read then fetches the chunks it touches in one ranged read; from the second consecutive read
    on, the next range is fetched in the background while this one is decrypted, in windows that
    double from 4 MiB up to ``read_ahead``. A seek elsewhere drops what was read ahead.
    """

    def __init__(self, source: _RangedSource, identities: list[Any], options: Mapping[str, Any], read_ahead: int):
        super().__init__()
        self._source = source
        try:
            _hold_header(source)
            src = cast(IO[bytes], source)
            layout = inspect_header(src)  # where chunks sit: it plans reads, from the bytes verified next
            source.seek(0)
            # prefetch=False: this class plans the ranged reads (and reads ahead) itself.
            reader_options = {k: v for k, v in _options_for(EnvelopeReader, options).items() if k != "prefetch"}
            self._reader = EnvelopeReader(src, identities, prefetch=False, **reader_options)
        except BaseException:
            io.BufferedIOBase.close(self)  # nothing to close but the source, which the caller owns
            raise
        self._header_size = layout.header_size
        self._chunk_size = self._reader.chunk_size  # verified (and the same bytes as the layout's)
        self._token_size = token_len(self._chunk_size)
        assert layout.chunk_count is not None  # the reader opened the final chunk: the length is possible
        # The final chunk was opened (and its plaintext kept) by the SDK reader: reads never fetch it again.
        self._final_token = self._header_size + (layout.chunk_count - 1) * self._token_size
        self._read_ahead = max(read_ahead, self._token_size)
        self._window = 0
        self._next = -1  # where the previous read ended: a read starting there is sequential

    @property
    def metadata(self) -> dict[str, Any]:
        """The file's authenticated metadata."""
        return self._reader.metadata

    @property
    def chunk_size(self) -> int:
        """The file's chunk size: a read of this many bytes at a multiple of it is one chunk."""
        return self._chunk_size

    @property
    def signer(self) -> SignerInfo | None:
        """Who signed the file, verified when the reader was made (``None``: unsigned)."""
        return self._reader.signer

    @property
    def size(self) -> int:
        """The plaintext length."""
        size = self._reader.size
        assert size is not None  # the source is seekable
        return size

    @property
    def fetched(self) -> int:
        """Bytes read from the underlying file so far."""
        return self._source.fetched

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._reader.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._reader.seek(offset, whence)

    def _cipher_range(self, start: int, end: int) -> tuple[int, int]:
        """The bytes of the tokens that hold plaintext ``[start, end)`` (spec/FORMAT.md 7.3), up to
        the final token at most (empty when only the final chunk is read)."""
        first, last = start // self._chunk_size, (end - 1) // self._chunk_size
        low = self._header_size + first * self._token_size
        return low, min(self._header_size + (last + 1) * self._token_size, self._final_token)

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed file")
        position = self._reader.tell()
        count = max(0, self.size - position)
        if size is not None and 0 <= size < count:
            count = size
        if count <= self._chunk_size - position % self._chunk_size:  # within one chunk: no copy
            self._plan(position, position + count, more=False)
            return self._reader.read(count)
        # One output buffer, filled chunk by chunk (aligned reads of the SDK reader return its
        # verified chunk without a copy); BytesIO hands a buffer it alone holds back uncopied.
        holder = io.BytesIO(bytes(count))
        with holder.getbuffer() as view:
            filled = self._read_into(view)
        return holder.getvalue() if filled == count else holder.getvalue()[:filled]

    def _read_into(self, view: memoryview) -> int:
        position, filled, count = self._reader.tell(), 0, len(view)
        count = min(count, max(0, self.size - position))
        while filled < count:
            piece_end = min(count, filled + self._read_ahead)
            self._plan(position + filled, position + piece_end, more=piece_end < count)
            while filled < piece_end:
                step = min(piece_end - filled, self._chunk_size - (position + filled) % self._chunk_size)
                data = self._reader.read(step)
                if not data:
                    return filled
                view[filled : filled + len(data)] = data
                filled += len(data)
        return filled

    def _plan(self, start: int, end: int, *, more: bool) -> None:
        """Fetch the chunks of plaintext ``[start, end)``; when reading on from the previous read
        (or when this read goes on past ``end``), fetch the next window in the background."""
        sequential = start == self._next or more
        self._next = end
        low, high = self._cipher_range(start, end)
        self._source.fetch(low, high)
        if not sequential:
            self._window = 0
            return
        window = min(self._read_ahead, max(_FIRST_READ_AHEAD, 2 * self._window, end - start))
        chunks = -(-window // self._chunk_size)
        ahead = min(chunks * self._token_size, self._final_token - high)
        if ahead > 0 and self._source.fetch_ahead(high, ahead):
            self._window = window  # the next window is twice as large, up to read_ahead

    read1 = read

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed file")
        with memoryview(buffer) as raw, raw.cast("B") as view:
            return self._read_into(view)

    readinto1 = readinto

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._reader.close()
            self._source.close()
        finally:
            super().close()

    def __repr__(self) -> str:
        return f"<SealedObjectReader position={self._reader.tell()} size={self.size} closed={self.closed}>"


def _hold_header(source: _RangedSource) -> None:
    """Fetch the whole header once and hold it: the layout and the verified reader both parse
    these bytes, so a store that answers a second read with other bytes cannot get a header it
    did not have verified used for anything. One ranged read covers most headers; a larger one
    (its length is in the prefix) gets a second read of the rest, never of the start again."""
    source.fetch(0, HEADER_WINDOW)
    prefix = source.read(PREFIX_LEN)
    if len(prefix) == PREFIX_LEN:  # else the parse below says what is wrong
        source.fetch(0, PREFIX_LEN + decode_prefix(prefix) + HEADER_MAC_LEN)
    source.seek(0)


def _open_object(fs: Any, path: str, name: str, **open_options: Any) -> tuple[Any, int]:
    """The underlying file opened for reading, and its length. ``name``: the object in messages."""
    with _storage("opening", name, opened=False):
        raw = fs.open(path, "rb", **open_options)
        try:
            size = getattr(raw, "size", None)
            if not isinstance(size, int):
                size = raw.seek(0, os.SEEK_END)
        except BaseException:
            raw.close()
            raise
    return raw, size


def _open_sealed(
    fs: Any,
    path: str,
    identities: Any,
    options: Mapping[str, Any],
    *,
    read_ahead: int = DEFAULT_READ_AHEAD,
    name: str | None = None,
    **open_options: Any,
) -> SealedObjectReader:
    """The verified reader of the sealed object ``path`` of ``fs`` (``open_options``: those of
    ``fs.open``; ``cache_type="none"`` for ranged reads this module plans)."""
    raw, size = _open_object(fs, path, name or path, **open_options)
    source = _RangedSource(raw, size, name or path)
    try:
        return SealedObjectReader(source, identities, options, read_ahead)
    except BaseException:
        source.close()
        raise


def _open_windowed(fs: Any, path: str, name: str, *, window: int, ahead: bool) -> _WindowedSource:
    """The object ``path`` of ``fs`` as a seekable raw file read in windows (see _WindowedSource)."""
    raw, size = _open_object(fs, path, name, cache_type="none")
    return _WindowedSource(raw, size, name, window=window, ahead=ahead)


# --- writing -----------------------------------------------------------------------------------


class SealedObjectWriter(io.BufferedIOBase):
    """A sealed object opened for writing: what is written is sealed and uploaded as it goes.

    Made by :meth:`EnvelopeFileSystem.open` (mode ``"wb"``). The underlying file is opened without
    autocommit, so the object appears only when :meth:`close` has written the final chunk (S3:
    the upload is completed then; a local file is moved into place). Used as a context manager, an
    exception inside the block, or a failure while writing, discards the upload: no object, or
    the previous one, remains. Memory: the SDK writer's chunks in flight plus the underlying
    file's block (s3fs: 50 MiB unless ``block_size=`` says otherwise).
    """

    def __init__(
        self,
        target: Any,
        recipients: Any,
        options: Mapping[str, Any],
        *,
        path: str,
        autocommit: bool,
    ) -> None:
        super().__init__()
        self._target = target
        self._path = path
        self._autocommit = autocommit
        try:
            with _storage("writing", path, opened=False):
                self._writer = EnvelopeWriter(target, recipients, **_options_for(EnvelopeWriter, options))
        except BaseException:
            io.BufferedIOBase.close(self)
            self._discard_target(quiet=True)
            raise

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._writer.tell()

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        try:
            with _storage("writing", self._path, opened=False):
                return self._writer.write(data)
        except BaseException:
            self._abort(quiet=True)
            raise

    def flush(self) -> None:
        """Nothing to do: chunks go up as the underlying file's blocks fill, and at close."""

    def close(self) -> None:
        """Write the final chunk and make the object appear (unless inside a transaction)."""
        if self.closed:
            return
        try:
            with _storage("writing", self._path, opened=False):
                self._writer.close()
                self._target.close()
                if self._autocommit:
                    self._target.commit()
        except BaseException:
            self._discard_target(quiet=True)
            raise
        finally:
            super().close()

    def abort(self) -> None:
        """Close without the final chunk and discard the upload."""
        self._abort(quiet=False)

    def _abort(self, *, quiet: bool) -> None:
        if self.closed:
            return
        try:
            self._writer.abort()
        finally:
            super().close()
            self._discard_target(quiet=quiet)

    def commit(self) -> None:
        """Inside an fsspec transaction: make the closed object appear."""
        with _storage("committing", self._path, opened=False):
            self._target.commit()

    def discard(self) -> None:
        """Inside an fsspec transaction: drop the closed object."""
        with _storage("discarding", self._path, opened=False):
            self._target.discard()

    def _discard_target(self, *, quiet: bool) -> None:
        """Drop the upload. ``quiet``: a failure is already on its way up, and it is the one to
        report; a discard that fails then leaves an incomplete upload (never an object) behind."""
        try:
            with _storage("discarding an upload", self._path, opened=False):
                try:
                    if not self._target.closed:
                        self._target.close()
                finally:
                    self._target.discard()
        except RemoteError:
            if not quiet:
                raise

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __repr__(self) -> str:
        return f"<SealedObjectWriter written={self._writer.tell()} closed={self.closed}>"


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
            options["identity"] = _portable_identity(options["identity"])
        if options.get("recipients") is not None:
            options["recipients"] = _portable_recipients(options["recipients"])
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
        reader_options, writer_options = _keyword_options(EnvelopeReader), _keyword_options(EnvelopeWriter)
        ours = _OWN_OPTIONS | (reader_options or frozenset()) | (writer_options or frozenset())
        per_file = {k: kwargs.pop(k) for k in list(kwargs) if k in ours}
        options = {**self._options, **{k: v for k, v in per_file.items() if k not in _OWN_OPTIONS}}
        path = self._strip_protocol(path)
        name = self._shown(path)
        if mode == "rb":
            if "identity" in per_file or "identity_env" in per_file:
                identities = _load_identities(per_file.get("identity"), per_file.get("identity_env"))
            else:
                identities = self._default_identities()
            read_ahead = per_file.get("read_ahead", self._read_ahead)
            kwargs.setdefault("cache_type", "none")  # ranged reads are planned here, not by a cache
            return self._open_reader(path, name, identities, options, read_ahead, block_size, cache_options, kwargs)
        if mode == "wb":
            recipients = per_file.get("recipients", self._recipients)
            if recipients is None:
                raise UsageError("writing an envelope:: file needs recipients: envelope={'recipients': [...]}")
            with _storage("opening for writing", name, opened=False):
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
            self._identities = _load_identities(self._identity, self._identity_env)
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
        return _open_sealed(
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
    with _storage("resolving", shown(inner), opened=False):
        fs, path = fsspec.core.url_to_fs(inner, **dict(storage_options or {}))
    sealed = EnvelopeFileSystem(fs=fs, skip_instance_cache=True, **envelope_options)
    opened: IO[bytes] = sealed.open(path, mode)
    return opened
