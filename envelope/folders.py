"""Model folders sealed and opened as one unit: one envelope file whose payload is a folder
(spec/FORMAT.md section 11). Names and sizes are inside the encrypted payload; each member starts
a chunk, so one member is read, and authenticated, by opening only the chunks it spans.

    seal_folder("gpt2/", "gpt2.env", recipient)
    with open_folder("gpt2.env", identity) as folder:
        config = folder.read("config.json")
        with folder.open("model.safetensors") as shard:   # seekable; decrypts what is read
            ...
        folder.extract("gpt2-copy/")                      # appears whole, or not at all

A folder whose files exist only in memory (a model serialized on the fly) is sealed from
:class:`FolderEntry` items with :func:`seal_entries`: each says its name and size and writes its
bytes when its turn comes, so no member ever needs a file.

The sealed file, as a source or a target, may be a URL (``s3://bucket/gpt2.env``), as for the file
functions (:mod:`envelope.files`); the folder on either side is a local one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple, Protocol

from ._folder import FOLDER_V1, PAYLOAD_KEY, FolderLayout, Member, check_marking, decode_index, index_length, plan
from ._header import read_and_unlock
from ._pipeline import positional_opening
from ._seekable import Seekable
from ._stream import FileSource, PositionalOpening, Progress, TokenBuffers, positional_fd
from ._urls import LOCAL, locate, refuse_options_without_url
from .atomic import PathLike
from .core import StreamResult
from .errors import MalformedError, OutputExistsError, UsageError
from .fileio import EnvelopeReader, EnvelopeWriter, open_writer
from .inspection import SignerInfo
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike
from .signing import SignedBy, Signer, SigningKey

__all__ = [
    "FolderEntry",
    "FolderMember",
    "SealedFolder",
    "VerifiedFolder",
    "open_folder",
    "seal_entries",
    "seal_folder",
    "verify_folder",
]

_COPY_BLOCK = 1 << 20  # bytes of a member file read at a time when sealing
_PAD_RULE = "malformed folder: a pad byte is not zero (R34)"


class FolderMember(NamedTuple):
    """A file of a sealed folder, as its verified index says."""

    name: str
    size: int
    executable: bool


class FolderEntry(NamedTuple):
    """A member to seal that need not be a file: its name (a relative POSIX path), its exact size,
    and ``write(out)``, called once, in the payload's order, to write exactly ``size`` bytes with
    ``out.write(data)``."""

    name: str
    size: int
    write: Callable[[Any], object]
    executable: bool = False


class VerifiedFolder(NamedTuple):
    """What :func:`verify_folder` found: every member, the payload's length, the verified metadata
    (``envelope.payload`` included) and the verified signer."""

    members: tuple[FolderMember, ...]
    plaintext_len: int
    metadata: dict[str, Any]
    signer: SignerInfo | None


# --- sealing ----------------------------------------------------------------------------------------


def _source_files(root: PathLike) -> list[tuple[str, str, os.stat_result]]:
    """``(name, path, size, executable)`` of every file under ``root``. Links and special files are
    refused: a link could lead out of the folder, or into another one, at the sealer's expense."""
    top = os.fspath(root)
    if not os.path.isdir(top):
        raise UsageError(f"{top} is not a directory")
    files: list[tuple[str, str, os.stat_result]] = []

    def fail(exc: OSError) -> None:
        raise exc

    for folder, subfolders, names in os.walk(top, onerror=fail):
        for entry in sorted([*subfolders, *names]):
            path = os.path.join(folder, entry)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise UsageError(
                    f"{path} is a symbolic link: a folder is sealed without links "
                    "(replace it with what it points to, or remove it)"
                )
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise UsageError(f"{path} is not a regular file (a FIFO, a socket or a device): not sealed")
            name = os.path.relpath(path, top).replace(os.sep, "/")
            files.append((name, path, info))
    return files


def seal_folder(
    src_dir: PathLike,
    target: PathLike,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    sign_with: Signer | SigningKey | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> StreamResult:
    """Seal every file under the folder ``src_dir`` into the one envelope file ``target`` (a path
    or URL, which appears only once complete). Member files are streamed from disk: memory stays
    flat whatever the folder's size. Symbolic links and special files are refused
    (:class:`~envelope.UsageError`); empty subfolders are not recorded. The metadata gets
    ``envelope.payload = "folder-v1"``, which marks the file as a folder (spec/FORMAT.md 11.1).
    Each member starts a chunk, so a folder of many small files takes up to a chunk of padding
    per file: give such folders a smaller ``chunk_size``."""
    refuse_options_without_url(storage_options, target)
    files = _source_files(src_dir)
    block = bytearray(min(_COPY_BLOCK, max(1, max((info.st_size for _, _, info in files), default=1))))

    def copier(path: str, info: os.stat_result) -> Callable[[Any], None]:
        return lambda out: _copy_member(path, info, out, memoryview(block))

    entries = [
        FolderEntry(name, info.st_size, copier(path, info), bool(info.st_mode & stat.S_IXUSR))
        for name, path, info in files
    ]
    return seal_entries(
        entries,
        target,
        recipients,
        metadata=metadata,
        sign_with=sign_with,
        chunk_size=chunk_size,
        overwrite=overwrite,
        progress=progress,
        threads=threads,
        storage_options=storage_options,
    )


def seal_entries(
    entries: Iterable[FolderEntry],
    target: PathLike,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    sign_with: Signer | SigningKey | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> StreamResult:
    """Seal a folder given as :class:`FolderEntry` items (name, size, a function that writes the
    bytes) into the one envelope file ``target``, exactly as :func:`seal_folder` seals files: the
    same layout, the same metadata marking. Nothing is written to disk but the sealed output; the
    entries' bytes stream through the sealing writer in payload order (sorted by name). An entry
    that writes more or fewer bytes than its ``size`` raises :class:`~envelope.UsageError`, and
    ``target`` is not created."""
    refuse_options_without_url(storage_options, target)
    user = dict(metadata or {})
    if PAYLOAD_KEY in user:
        raise UsageError(f"metadata key {PAYLOAD_KEY!r} is the format's: it is set for every folder")
    listed = list(entries)
    for entry in listed:
        if not isinstance(entry, FolderEntry) or isinstance(entry.size, bool) or not isinstance(entry.size, int):
            raise UsageError("a folder entry is a FolderEntry(name, size, write) with an integer size")
        if entry.size < 0:
            raise UsageError(f"folder entry {entry.name!r} has a negative size")
    writers = {entry.name: entry.write for entry in listed}
    start, layout = plan(((entry.name, entry.size, entry.executable) for entry in listed), chunk_size)
    meta = {**user, PAYLOAD_KEY: FOLDER_V1}
    options = {"metadata": meta, "chunk_size": chunk_size, "sign_with": sign_with, "threads": threads}
    with open_writer(target, recipients, overwrite=overwrite, storage_options=storage_options, **options) as writer:
        writer.write(start)
        at = len(start)
        for member in layout.members:
            writer.write(bytes(member.offset - at))
            sink = _MemberSink(writer, member, progress)
            writers[member.name](sink)
            sink.finish()
            at = member.end
        signer = writer.signer
    return StreamResult(layout.payload_len, meta, signer)


class _MemberSink:
    """What an entry writes into: the sealing writer, held to the entry's declared size."""

    def __init__(self, writer: EnvelopeWriter, member: Member, progress: Progress | None) -> None:
        self._writer, self._member, self._progress = writer, member, progress
        self._left = member.size

    def write(self, data: Any) -> int:
        count = memoryview(data).nbytes
        if count > self._left:
            raise UsageError(f"folder entry {self._member.name!r} wrote more than its {self._member.size} bytes")
        if count:
            self._writer.write(data)
            self._left -= count
            if self._progress is not None:
                self._progress(count)
        return count

    def finish(self) -> None:
        if self._left:
            raise UsageError(f"folder entry {self._member.name!r} wrote fewer than its {self._member.size} bytes")


def _copy_member(path: str, seen: os.stat_result, out: _MemberSink, block: memoryview) -> None:
    """Copy the file that was listed: opened without following a link, and refused unless it is the
    same regular file (device and inode) that the listing saw, so that a link or another file swapped
    in since is never sealed."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path} became a symbolic link while the folder was being sealed") from None
        raise
    with open(fd, "rb", buffering=0) as f:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
            raise UsageError(f"{path} was replaced while the folder was being sealed")
        size = seen.st_size
        left = size
        while left:
            got = f.readinto(block[: min(len(block), left)])
            if not got:
                break
            out.write(block[:got])
            left -= got
        if left or f.read(1):
            raise UsageError(f"{path} changed size while the folder was being sealed")


# --- where the plaintext comes from ------------------------------------------------------------------


class _Chunks(Protocol):
    """Verified chunks of a sealed payload, opened one at a time (from any thread) or all in order."""

    chunk_size: int
    plaintext_len: int
    metadata: dict[str, Any]
    signer: SignerInfo | None

    def chunk(self, index: int, buffers: TokenBuffers) -> memoryview: ...

    def all_chunks(self, threads: int | None) -> Iterator[memoryview]: ...

    def read_into(self, offset: int, out: memoryview, threads: int | None) -> None: ...

    def close(self) -> None: ...


class _FileChunks:
    """A local regular file: every thread reads its own tokens (``pread``) and opens them, so
    members read on several threads decrypt in parallel."""

    def __init__(self, f: IO[bytes], fd: int, opening: PositionalOpening, metadata: dict[str, Any], signer: Any):
        self._file, self._opening = f, opening
        self.chunk_size = opening.layout.chunk_size
        self.plaintext_len = opening.plaintext_len
        self.metadata, self.signer = metadata, signer
        self._last = opening.layout.chunk_count - 1

    def chunk(self, index: int, buffers: TokenBuffers) -> memoryview:
        if index == self._last:  # opened when the file was opened
            return memoryview(self._opening.final_data)
        return self._opening.open_chunk(index, buffers)

    def all_chunks(self, threads: int | None) -> Iterator[memoryview]:
        return self._opening.chunks(threads=threads)

    def read_into(self, offset: int, out: memoryview, threads: int | None) -> None:
        self._opening.read_into(offset, out, threads=threads)

    def close(self) -> None:
        self._file.close()


class _ReaderChunks:
    """A verified seekable reader (a URL's ranged reader, a file object, sealed bytes), read one
    chunk at a time under a lock: its position is shared."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._lock = threading.Lock()
        self.chunk_size = reader.chunk_size
        self.plaintext_len = reader.size
        self.metadata, self.signer = reader.metadata, reader.signer

    def chunk(self, index: int, buffers: TokenBuffers) -> memoryview:
        with self._lock:
            self._reader.seek(index * self.chunk_size)
            return memoryview(self._reader.read(self.chunk_size))

    def all_chunks(self, threads: int | None) -> Iterator[memoryview]:
        for index in range(-(-self.plaintext_len // self.chunk_size)):
            yield self.chunk(index, _NO_BUFFERS)

    def read_into(self, offset: int, out: memoryview, threads: int | None) -> None:
        with self._lock:
            self._reader.seek(offset)
            done = 0
            while done < len(out):
                got = self._reader.readinto(out[done:])
                if not got:
                    raise MalformedError("malformed folder: the payload ends inside a member (R33)")
                done += got

    def close(self) -> None:
        self._reader.close()


_NO_BUFFERS = TokenBuffers()


def _local_chunks(path: PathLike, identity: Any, signed_by: SignedBy | None) -> _Chunks:
    f = open(path, "rb")
    try:
        fd = positional_fd(f)
        if fd is None:  # not a regular file (a device): read through the random-access reader
            return _ReaderChunks(EnvelopeReader(f, identity, signed_by=signed_by, close_src=True, prefetch=False))
        unlocked = read_and_unlock(f, identity, signed_by)
        size = os.fstat(fd).st_size - unlocked.size
        opening = positional_opening(unlocked, FileSource(fd, unlocked.size), size)
        return _FileChunks(f, fd, opening, unlocked.metadata, unlocked.signer())
    except BaseException:
        f.close()
        raise


# --- reading ---------------------------------------------------------------------------------------


def _is_zero(data: memoryview) -> bool:
    return data == bytes(len(data))


class SealedFolder:
    """A sealed folder, opened: its header, signature and index verified; members decrypted only
    when read. Use it as a context manager (or call :meth:`close`). Made by :func:`open_folder`.

    ``metadata`` and ``signer`` are verified. Member readers from :meth:`open` may be used on
    several threads at once (one reader per thread); from a local file their chunks then decrypt
    in parallel."""

    def __init__(self, chunks: _Chunks) -> None:
        self._chunks = chunks
        self._held: tuple[int, memoryview] | None = None
        try:
            check_marking(chunks.metadata)  # R29
            self.metadata: dict[str, Any] = chunks.metadata
            self.signer: SignerInfo | None = chunks.signer
            self.chunk_size = chunks.chunk_size
            buffers = TokenBuffers()
            total = chunks.plaintext_len
            index_len = index_length(self._read(0, min(4, total), buffers), total)  # R30
            index = self._read(4, index_len, buffers)
            self._layout: FolderLayout = decode_index(index, self.chunk_size, total)  # R31-R33
            pads = self._layout.padding()
            if pads and pads[0][0] == self._layout.index_end:  # the end of the index's last chunk (R34)
                start, end = pads[0]
                if not _is_zero(memoryview(self._read(start, end - start, buffers))):
                    raise MalformedError(_PAD_RULE)
        except BaseException:
            chunks.close()
            raise
        finally:
            self._held = None
        self._members = {m.name: m for m in self._layout.members}

    def _read(self, offset: int, size: int, buffers: TokenBuffers) -> bytes:
        """Bytes of the payload (the index and its padding); the chunk read last is kept, so that
        the index length, the index and the padding after it open the index's chunk once."""
        out = bytearray(size)
        done = 0
        while done < size:
            index, within = divmod(offset + done, self.chunk_size)
            if self._held is None or self._held[0] != index:
                self._held = (index, self._chunks.chunk(index, buffers))
            piece = self._held[1][within : within + size - done]
            if not piece:
                break
            out[done : done + len(piece)] = piece
            done += len(piece)
        return bytes(out[:done])

    @property
    def plaintext_len(self) -> int:
        """The length of the whole folder payload (index, members and padding)."""
        return self._chunks.plaintext_len

    @property
    def members(self) -> tuple[FolderMember, ...]:
        """Every member, in the order of the payload (sorted by name)."""
        return tuple(FolderMember(m.name, m.size, m.executable) for m in self._layout.members)

    def names(self) -> list[str]:
        """The members' names: relative POSIX paths, such as ``tokenizer/vocab.json``."""
        return [m.name for m in self._layout.members]

    def size(self, name: str) -> int:
        """The length of member ``name`` in bytes."""
        return self._member(name).size

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def _member(self, name: str) -> Member:
        try:
            return self._members[name]
        except KeyError:
            raise KeyError(f"no member named {name!r} in the folder") from None

    def open(self, name: str) -> io.BufferedIOBase:
        """A seekable, readable binary file of member ``name``'s verified plaintext: a read opens
        only the chunks it touches."""
        return _MemberReader(self._chunks, self._member(name))

    def read(self, name: str) -> bytes:
        """All of member ``name``."""
        with self.open(name) as f:
            return f.read()

    def read_into(self, name: str, out: Any, offset: int = 0, *, threads: int | None = None) -> None:
        """Member ``name``'s bytes ``[offset, offset + len(out))``, verified, straight into ``out``
        (any writable buffer): only the chunks the range spans are opened, and from a local file
        the workers (``threads``, default one per core) decrypt them in parallel, each into its
        place. A range that reaches the member's end checks the pad bytes after it (R34). A range
        outside the member raises :class:`~envelope.UsageError`."""
        member = self._member(name)
        view = memoryview(out).cast("B")
        if offset < 0 or offset + len(view) > member.size:
            raise UsageError(f"bytes {offset}..{offset + len(view)} are outside member {name!r} ({member.size} bytes)")
        self._chunks.read_into(member.offset + offset, view, threads)
        if offset + len(view) == member.size:
            self._check_pad_after(member)

    def _check_pad_after(self, member: Member) -> None:
        position = self._layout.members.index(member)
        following = self._layout.members[position + 1 :]
        pad = (following[0].offset if following else self._layout.payload_len) - member.end
        if pad:
            data = bytearray(pad)
            self._chunks.read_into(member.end, memoryview(data), 1)
            if not _is_zero(memoryview(data)):
                raise MalformedError(_PAD_RULE)

    def _walk(self, threads: int | None) -> Iterator[tuple[int, memoryview]]:
        """Every chunk of the payload, in order (decrypted ahead on ``threads`` workers for a local
        file), cut into ``(member position, data)`` pieces; pad bytes are checked (R34)."""
        layout = self._layout
        regions: list[tuple[int, int]] = []  # (end, member position or -1 for the index, -2 for pad)
        at = layout.index_end
        regions.append((at, -1))
        for position, member in enumerate(layout.members):
            if member.offset > at:
                regions.append((member.offset, -2))
            if member.size:
                regions.append((member.end, position))
            at = member.end
        region = 0
        start = 0
        for chunk in self._chunks.all_chunks(threads):
            end, taken = start + len(chunk), 0
            while start + taken < end:
                region_end, kind = regions[region]
                stop = min(region_end, end) - start
                piece = chunk[taken:stop]
                if kind >= 0:
                    yield kind, piece
                elif kind == -2 and not _is_zero(piece):
                    raise MalformedError(_PAD_RULE)
                taken = stop
                if start + taken == region_end:
                    region += 1
            start = end

    def verify(self, *, progress: Progress | None = None, threads: int | None = None) -> None:
        """Authenticate every chunk of the folder and check every pad byte; nothing is written."""
        for _, piece in self._walk(threads):
            if progress is not None:
                progress(len(piece))

    def extract(
        self,
        dest_dir: PathLike,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
        threads: int | None = None,
    ) -> None:
        """Write every member under the new folder ``dest_dir``. The folder is built under a hidden
        temporary name beside it (``.NAME.PID-*.partial``, mode 0700) and renamed into place only
        once every chunk verified; on any failure it is removed, and nothing is left. A process
        killed meanwhile (SIGKILL runs no clean-up) leaves it: the next extraction to ``dest_dir``
        removes the ones whose process no longer exists. Files are 0600
        (0700 when executable), created new, never through a symbolic link. An existing
        ``dest_dir`` raises :class:`~envelope.OutputExistsError` unless ``overwrite``, which
        replaces it (a link there is replaced, not followed)."""
        dest = os.path.abspath(os.fspath(dest_dir))
        if os.path.lexists(dest) and not overwrite:
            raise OutputExistsError(os.fspath(dest_dir))
        parent, base = os.path.split(dest.rstrip("/") or "/")
        remove_folders_of_dead_processes(parent, functools.partial(_partial_pid, f".{base}."))
        temp = tempfile.mkdtemp(prefix=f".{base}.{os.getpid()}-", suffix=".partial", dir=parent)
        try:
            with _Extraction(temp, self._layout.members) as out:
                for position, piece in self._walk(threads):
                    out.write(position, piece)
                    if progress is not None:
                        progress(len(piece))
            _put_in_place(temp, dest, overwrite, os.fspath(dest_dir))
        except BaseException:
            remove_tree(temp)
            raise

    def close(self) -> None:
        self._chunks.close()

    def __enter__(self) -> SealedFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SealedFolder members={len(self._layout.members)}>"


class _MemberReader(Seekable, io.BufferedIOBase):
    """One member's plaintext: seekable, each read opening only the chunks it touches."""

    def __init__(self, chunks: _Chunks, member: Member) -> None:
        super().__init__()
        self._chunks, self._member = chunks, member
        self.name = member.name
        self.size = member.size
        self._position = 0
        self._buffers = TokenBuffers()
        self._held: tuple[int, memoryview] | None = None  # the chunk read last: (index, data)

    def _extent(self) -> int:
        return self.size

    def _chunk(self, index: int) -> memoryview:
        if self._held is None or self._held[0] != index:
            data = self._chunks.chunk(index, self._buffers)
            start, size = index * self._chunks.chunk_size, self._chunks.chunk_size
            if start <= self._member.end - 1 < start + size:  # the member's last chunk: the rest is pad (R34)
                if not _is_zero(data[self._member.end - start :]):
                    raise MalformedError(_PAD_RULE)
            self._held = (index, data)
        return self._held[1]

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed member reader")
        view = memoryview(buffer).cast("B")
        wanted = max(0, min(len(view), self.size - self._position))
        done = 0
        while done < wanted:
            index, within = divmod(self._member.offset + self._position, self._chunks.chunk_size)
            piece = self._chunk(index)[within : within + wanted - done]
            if not piece:
                raise MalformedError("malformed folder: the payload ends inside a member (R33)")
            view[done : done + len(piece)] = piece
            done += len(piece)
            self._position += len(piece)
        return done

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.size - self._position)
        out = bytearray(size)
        got = self.readinto(out)
        return bytes(out[:got])

    read1 = read
    readinto1 = readinto

    def close(self) -> None:
        self._held = None
        super().close()

    def __repr__(self) -> str:
        return f"<folder member {self.name!r} size={self.size} position={self._position}>"


# --- extraction ------------------------------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class _Extraction:
    """Member files created in order under a fresh folder, each new (O_EXCL) and reached through
    folders opened one component at a time without following links (spec/FORMAT.md 11.4)."""

    def __init__(self, root: str, members: tuple[Member, ...]) -> None:
        self._root = os.open(root, _DIR_FLAGS)
        self._members = members
        self._created = 0  # members whose files exist
        self._fd: int | None = None

    def __enter__(self) -> _Extraction:
        return self

    def write(self, position: int, data: memoryview) -> None:
        while self._created <= position:
            self._next()
        assert self._fd is not None
        while data:
            data = data[os.write(self._fd, data) :]

    def _next(self) -> None:
        self._finish_file()
        member = self._members[self._created]
        *folders, leaf = member.name.split("/")
        here = self._root
        try:
            # One folder open at a time however deep the name (a name may have 2048 components).
            for folder in folders:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder, 0o700, dir_fd=here)
                below = os.open(folder, _DIR_FLAGS, dir_fd=here)
                if here != self._root:
                    os.close(here)
                here = below
            self._fd = os.open(leaf, _FILE_FLAGS, 0o700 if member.executable else 0o600, dir_fd=here)
        finally:
            if here != self._root:
                os.close(here)
        self._created += 1

    def _finish_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def __exit__(self, kind: object, *rest: object) -> None:
        try:
            if kind is None:
                while self._created < len(self._members):  # empty members at the end
                    self._next()
                self._finish_file()
                os.fsync(self._root)
        finally:
            if self._fd is not None:
                os.close(self._fd)
            os.close(self._root)


def _partial_pid(prefix: str, name: str) -> int | None:
    """The process id in an extraction's hidden folder name ``PREFIX PID-XXXXXXXX.partial``."""
    if not (name.startswith(prefix) and name.endswith(".partial")):
        return None
    pid, dash, _ = name[len(prefix) : -len(".partial")].partition("-")
    return int(pid) if dash and pid.isdigit() else None


def remove_folders_of_dead_processes(parent: str, pid_of: Callable[[str], int | None]) -> None:
    """Remove the folders in ``parent`` that a process named for itself (``pid_of(name)``: its id,
    or None for a name that is not such a folder) and that process no longer exists: what a
    SIGKILL (which runs no clean-up) left. Only this user's folders; a live process's stay."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid = pid_of(name)
        if pid is None or pid == os.getpid():
            continue
        path = os.path.join(parent, name)
        try:
            info = os.lstat(path)
            if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode):
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            remove_tree(path)  # its process is gone: nothing else will remove it
        except (OSError, OverflowError):
            continue  # alive (another user's, say), or not ours to judge


def remove_tree(path: str) -> None:
    """Remove a folder and everything in it, without following links, without recursion and with
    two folders open at a time, by names relative to open folders (a member's name may nest 2048
    folders deep: past Python's recursion limit, the open-files limit and PATH_MAX). What cannot be
    removed is left, silently, as shutil.rmtree(ignore_errors=True) would."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return
    names: list[str] = []  # from ``path`` down to the folder ``fd`` is
    stuck: set[tuple[int, str]] = set()  # folders that could not be entered or removed
    try:
        while True:
            child = None
            with contextlib.suppress(OSError), os.scandir(fd) as entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.name, dir_fd=fd)
                    elif child is None and (len(names), entry.name) not in stuck:
                        child = entry.name
            if child is not None:
                try:
                    below = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    stuck.add((len(names), child))
                    continue
                os.close(fd)
                fd = below
                names.append(child)
                continue
            if not names:
                break
            name = names.pop()
            above = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = above
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                stuck.add((len(names), name))
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _put_in_place(temp: str, dest: str, overwrite: bool, given: str) -> None:
    """Rename the finished folder to ``dest``; what was there (with ``overwrite``) is moved aside
    first and removed after, a link itself and not what it points to."""
    parent = os.path.dirname(dest)
    if os.path.lexists(dest):
        if not overwrite:
            raise OutputExistsError(given)  # it appeared while the folder was being written
        aside = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.", suffix=".old", dir=parent)
        old = os.path.join(aside, "old")
        os.rename(dest, old)
        os.rename(temp, dest)
        remove_tree(aside)
    else:
        os.rename(temp, dest)
    fd = os.open(parent, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the public entry points -------------------------------------------------------------------------


def open_folder(
    source: PathLike | bytes | IO[bytes],
    identity: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> SealedFolder:
    """Open a sealed folder: a path, a URL (read in ranged reads: the header, the index and the
    chunks read, no more), the sealed bytes or a seekable file object. The header, a signed
    file's signature (``signed_by`` as for :func:`~envelope.open_with_metadata`) and the index are
    verified before it returns; members are decrypted when read."""
    refuse_options_without_url(storage_options, source)
    chunks: _Chunks
    if isinstance(source, (bytes, bytearray, memoryview)):
        chunks = _ReaderChunks(EnvelopeReader(io.BytesIO(source), identity, signed_by=signed_by, prefetch=False))
    elif isinstance(source, (str, os.PathLike)):
        located = locate(source, storage_options, sealed=True)
        if isinstance(located, LOCAL):
            chunks = _local_chunks(located, identity, signed_by)
        else:
            chunks = _ReaderChunks(located.sealed_reader(identity, signed_by))
    else:
        chunks = _ReaderChunks(EnvelopeReader(source, identity, signed_by=signed_by, prefetch=False))
    return SealedFolder(chunks)


def verify_folder(
    source: PathLike | bytes | IO[bytes],
    identity: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> VerifiedFolder:
    """Authenticate all of a sealed folder (every chunk, the index, every pad byte, a signed
    file's signature) without writing anything; return its members, metadata and signer."""
    with open_folder(source, identity, signed_by=signed_by, storage_options=storage_options) as folder:
        folder.verify(progress=progress, threads=threads)
        return VerifiedFolder(folder.members, folder.plaintext_len, folder.metadata, folder.signer)
