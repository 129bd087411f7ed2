"""Many files at once: :func:`seal_files`, :func:`open_files` and :func:`verify_files`.

Each file takes the pipeline that :func:`~envelope.seal_file` and :func:`~envelope.open_file` take,
into an output that appears whole or not at all. What a batch changes is around that pipeline
(docs/SDK.md, "Many files at once", states the contract):

- keys are checked and resolved once for the batch, not once per file;
- each output's data are synced before it gets its name, as for one file, but the folders that
  hold the names are synced once each, after the last file, before the call returns (one folder
  sync for a thousand files rather than a thousand);
- the per-file work runs on worker processes forked from the caller (the keys they hold are
  inherited, never pickled, sent or written anywhere), each encrypting one file after the other
  while threads sync and name the outputs it has written, so that the disk's syncs overlap the
  encryption;
- one file's failure is that file's result: the other files go on and keep their outputs.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from . import _pipeline
from ._external import UnwrapperIdentity
from ._folder import is_folder
from ._header import new_header as _new_header
from ._header import read_and_unlock
from ._urls import is_url
from .atomic import PathLike, named_output, sync_folder
from .core import StreamResult
from .errors import EnvelopeError, UsageError, WorkerError
from .limits import DEFAULT_CHUNK_SIZE
from .recipients import IdentityLike, RecipientLike, as_identities, as_recipients
from .signing import KeySigner, SignedBy, Signer, SigningKey, as_signer

__all__ = ["FileResult", "open_files", "seal_files", "verify_files"]

Pairs = Mapping[PathLike, PathLike] | Iterable[tuple[PathLike, PathLike]]
"""Input and output paths: a mapping of input to output, or (input, output) pairs."""

_FILES_PER_TASK = 32  # what a worker process is handed at a time: fewer round trips, small enough to share out
_IN_FLIGHT = 8  # outputs a process syncs at once, on threads, while it works on the next file
# Syncs and namings that take longer waited on a device: once _SLOW_IN_A_ROW of them in a row did,
# this process hands the rest to threads. Where they are quick (tmpfs), a thread costs more than it
# saves: seven thread switches and 10 % of the CPU per 64 KiB file. In a row, because a process
# that was preempted once (a loaded machine) takes that long too, now and then, on any file system.
_SLOW_FINISH_S = 0.001
_SLOW_IN_A_ROW = 3
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class FileResult(NamedTuple):  # a tuple: one per file of a batch, thousands of them, sent between processes
    """What became of one file of a batch.

    ``path`` is the input as given; ``output`` the output's path once it exists (``None`` when the
    file failed before its output was named, and for :func:`verify_files`); ``error`` the
    :class:`~envelope.EnvelopeError` or ``OSError`` that stopped it, ``None`` if it succeeded;
    ``result`` the plaintext length, the metadata and the signer, as the single-file functions
    return them (``None`` on failure). ``str(result)`` names the file and says what went wrong.
    """

    path: str
    output: str | None
    error: EnvelopeError | OSError | None = None
    result: StreamResult | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        return f"{self.path}: ok" if self.error is None else f"{self.path}: {self.error}"


def seal_files(
    pairs: Pairs,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sign_with: Signer | SigningKey | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[FileResult]:
    """Seal each input file into its output file, for the same recipients (and signer, and
    metadata), and return one :class:`FileResult` per pair, in the order given.

    ``pairs``: a mapping of input path to output path, or (input, output) pairs; local paths only.
    Each output appears only once complete, as :func:`~envelope.seal_file` makes it, and every
    output name is durable when the call returns (docs/SDK.md, "Many files at once"). An existing
    output fails that file unless ``overwrite``. ``workers``: processes that share the files
    (``None``: one per core available; ``1``: all on the calling process). ``progress`` is called
    with each finished file's plaintext length. Arguments that no file could use (no recipient,
    two inputs for one output) raise :class:`~envelope.UsageError` before any file is read.
    """
    jobs = _pairs(pairs)
    options = _SealOptions(as_recipients(recipients), metadata, chunk_size, _signer(sign_with), overwrite)
    _new_header(options.recipients, metadata, chunk_size, options.signer)  # bad metadata fails here, once
    return _run(_seal_one, options, jobs, workers, progress)


def open_files(
    pairs: Pairs,
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[FileResult]:
    """Open each envelope file into its output file (mode 0600), as :func:`~envelope.open_file`
    does, and return one :class:`FileResult` per pair, in the order given: an output appears only
    once every byte of its file authenticated, and every output name is durable when the call
    returns. A sealed folder is refused (:func:`~envelope.open_folder` opens one). ``pairs``,
    ``overwrite``, ``workers`` and ``progress`` as for :func:`seal_files`; ``signed_by`` as for
    :func:`~envelope.open_file`."""
    jobs = _pairs(pairs)
    return _run(_open_one, _OpenOptions(as_identities(private_key), signed_by, overwrite), jobs, workers, progress)


def verify_files(
    paths: Iterable[PathLike],
    private_key: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[FileResult]:
    """Authenticate every byte of each file (and a signed file's signature), writing nothing, as
    :func:`~envelope.verify_file` does; one :class:`FileResult` per path, in the order given.
    A sealed folder is authenticated as one file (its member index is checked by
    :func:`~envelope.verify_folder`)."""
    jobs: list[tuple[str, str | None]] = [(_local(path), None) for path in paths]
    return _run(_verify_one, _OpenOptions(as_identities(private_key), signed_by, False), jobs, workers, progress)


# --- what is done for one file ---------------------------------------------------------------------


@dataclass(frozen=True)
class _SealOptions:
    recipients: list[Any]
    metadata: Mapping[str, Any] | None
    chunk_size: int
    signer: Signer | None
    overwrite: bool


@dataclass(frozen=True)
class _OpenOptions:
    identities: list[Any]
    signed_by: SignedBy | None
    overwrite: bool


def _seal_one(options: _SealOptions, source_path: str, output: str | None, threads: int | None) -> _Finish:
    assert output is not None
    head = _new_header(options.recipients, options.metadata, options.chunk_size, options.signer)
    with open(source_path, "rb") as source:
        if options.overwrite:
            _refuse_same_file(source, output)
        return _named_later(
            output,
            options.overwrite,
            False,
            lambda out: _pipeline.seal_to(head, source, out, own_files=True, threads=threads),
        )


def _open_one(options: _OpenOptions, source_path: str, output: str | None, threads: int | None) -> _Finish:
    with open(source_path, "rb") as source:
        unlocked = read_and_unlock(source, options.identities, options.signed_by)
        if output is None:
            done = _pipeline.open_to(unlocked, source, None, own_files=True, threads=threads)
            return lambda: StreamResult(*done)
        if is_folder(unlocked.metadata):
            raise UsageError("a sealed folder: it opens alone, into a folder of its own (open_folder)")
        if options.overwrite:
            _refuse_same_file(source, output)
        return _named_later(
            output,
            options.overwrite,
            True,
            lambda out: _pipeline.open_to(unlocked, source, out, own_files=True, threads=threads),
        )


def _named_later(output: str, overwrite: bool, private: bool, write: Callable[[IO[bytes]], _pipeline.Done]) -> _Finish:
    """Write an output now, into a file with no name yet (:func:`~envelope.atomic.named_output`);
    return what syncs it and names it, for a sync thread to call: the next file's encryption
    need not wait for this one's sync to the disk."""
    with contextlib.ExitStack() as stack:  # a failed write unwinds the output here, as a with block does
        done = write(stack.enter_context(named_output(output, overwrite=overwrite, private=private)))
        naming = stack.pop_all()  # written: the sync thread's finish() closes (syncs and names) it

    def finish() -> StreamResult:
        naming.close()
        return StreamResult(*done)

    return finish


_verify_one = _open_one  # with no output: every chunk authenticated, nothing written


def _refuse_same_file(source: Any, output: str) -> None:
    """Only with ``overwrite``: without it, an existing output (the input too) fails as it is."""
    with contextlib.suppress(OSError):
        if os.path.samestat(os.fstat(source.fileno()), os.stat(output)):
            raise UsageError("the output file is the input file")


# --- sharing the files out --------------------------------------------------------------------------

_Finish = Callable[[], StreamResult]  # syncs and names a written output (or, verifying, just reports)
_Work = Callable[[Any, str, str | None, int | None], _Finish]
_Item = tuple[int, str, str | None]


class _Pace:
    """How many of this call's outputs in a row were slow to sync, in this process (each worker
    process has its own copy, from the fork); from ``_SLOW_IN_A_ROW`` on, the sync threads take
    them."""

    __slots__ = ("slow",)

    def __init__(self) -> None:
        self.slow = 0


@dataclass(frozen=True)
class _Batch:
    work: _Work
    options: Any
    threads: int | None  # chunk threads per file: 1 where processes already use the cores
    pace: _Pace = field(default_factory=_Pace)

    def run(self, items: Sequence[_Item]) -> list[tuple[int, FileResult]]:
        """The files of ``items``, one after the other on this thread, while up to ``_IN_FLIGHT``
        finished outputs are synced and named on other threads (which wait on the disk, not the
        GIL: files worked on at once on several threads cost more CPU than they saved). Until syncs
        prove slow (``_SLOW_FINISH_S``), outputs are synced and named here, at once: the same steps
        in the same order, without a thread switch per file."""
        finished: list[tuple[int, FileResult]] = []
        syncing: collections.deque[tuple[int, str, str, Future[StreamResult]]] = collections.deque()
        for index, source, output in items:
            try:
                finish = self.work(self.options, source, output, self.threads)
            except (EnvelopeError, OSError) as exc:
                finished.append((index, FileResult(source, None, exc)))
                continue
            if output is None:
                finished.append((index, FileResult(source, None, None, finish())))
                continue
            if self.pace.slow < _SLOW_IN_A_ROW:
                started = time.perf_counter()
                finished.append(_finish_here(index, source, output, finish))
                self.pace.slow = self.pace.slow + 1 if time.perf_counter() - started > _SLOW_FINISH_S else 0
                continue
            syncing.append((index, source, output, _syncs().submit(finish)))
            if len(syncing) >= _IN_FLIGHT:
                finished.append(_collect(*syncing.popleft()))
        finished.extend(_collect(*entry) for entry in syncing)
        return finished


def _finish_here(index: int, source: str, output: str, finish: _Finish) -> tuple[int, FileResult]:
    try:
        result = finish()
    except (EnvelopeError, OSError) as exc:
        return index, FileResult(source, None, exc)
    return index, FileResult(source, output, None, result)


def _collect(index: int, source: str, output: str, syncing: Future[StreamResult]) -> tuple[int, FileResult]:
    try:
        result = syncing.result()
    except (EnvelopeError, OSError) as exc:
        return index, FileResult(source, None, exc)
    return index, FileResult(source, output, None, result)


_SYNC_POOL: ThreadPoolExecutor | None = None
_SYNC_LOCK = threading.Lock()


def _syncs() -> ThreadPoolExecutor:
    global _SYNC_POOL
    with _SYNC_LOCK:
        if _SYNC_POOL is None:
            _SYNC_POOL = ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="envelope-batch-sync")
        return _SYNC_POOL


def _forget_sync_pool() -> None:
    global _SYNC_POOL, _SYNC_LOCK
    _SYNC_POOL = None  # a forked child has none of its parent's threads,
    _SYNC_LOCK = threading.Lock()  # and a lock another thread held at the fork stays held


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_sync_pool)

_WORKER_BATCH: _Batch | None = None  # set in each worker process, inherited from the caller by fork


def _start_worker(batch: _Batch, parent: int) -> None:
    """In a new worker process: take the batch (inherited through fork, never pickled), and die
    with the caller, so that a killed command leaves no process working on behind it."""
    global _WORKER_BATCH
    _WORKER_BATCH = batch
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the caller died before prctl took effect
        os._exit(1)


def _run_in_worker(items: Sequence[_Item]) -> list[tuple[int, FileResult]]:
    assert _WORKER_BATCH is not None
    return _WORKER_BATCH.run(items)


def _run(
    work: _Work,
    options: Any,
    jobs: Sequence[tuple[str, str | None]],
    workers: int | None,
    progress: Callable[[int], object] | None,
) -> list[FileResult]:
    processes = 1 if _held_elsewhere(options) else _processes(workers, len(jobs))
    results: list[FileResult | None] = [None] * len(jobs)
    items = [(index, source, output) for index, (source, output) in enumerate(jobs)]

    def record(done: list[tuple[int, FileResult]]) -> None:
        for index, result in done:
            results[index] = result
            if progress is not None and result.result is not None:
                progress(result.result.plaintext_len)

    try:
        if processes > 1 and _locked(options):
            # A key unlocked on first use (a passphrase asked on the terminal) is unlocked here, by
            # the first file, and the workers inherit it through fork: each worker would ask
            # otherwise, prompts racing for one terminal. Still locked (a key no file has needed
            # yet): the batch stays in this process, where a prompt is asked once.
            record(_Batch(work, options, None).run(items[:1]))
            items = items[1:]
            if _locked(options):
                processes = 1
        batch = _Batch(work, options, None if processes == 1 else 1)
        groups = _groups(items, processes)
        if processes == 1:
            for group in groups:
                record(batch.run(group))
        else:
            with _worker_pool(batch, processes) as pool:
                _share_out(pool, groups, 2 * processes, record)
    except BrokenProcessPool:
        done = sum(result is not None for result in results)
        raise WorkerError(
            f"a worker process died (killed, or out of memory?) with {len(jobs) - done} of {len(jobs)} files "
            "unfinished: the outputs named so far are complete; run the batch again for the others",
            list(results),
        ) from None
    finally:
        # Whatever happened, the names already given are made durable before the call ends.
        _sync_folders(results, jobs)
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def _held_elsewhere(options: _SealOptions | _OpenOptions) -> bool:
    """Whether a key of the batch lives outside this process (a PKCS#11 token, a KMS, a caller's
    KeyUnwrapper or Signer): its session or network client would be shared by forked workers,
    which PKCS#11 does not allow and HTTP connection pools do not survive. Such a batch stays on
    the calling process (the key's own service is what bounds its rate anyway)."""
    if isinstance(options, _SealOptions):
        return options.signer is not None and not isinstance(options.signer, KeySigner)
    return any(isinstance(identity, UnwrapperIdentity) for identity in options.identities)


def _locked(options: _SealOptions | _OpenOptions) -> bool:
    """Whether a key of the batch still waits to be unlocked (``unlocked`` is False): a passphrase
    or a key file's passphrase that a function (a prompt) gives on first use."""
    if isinstance(options, _SealOptions):
        keys: list[Any] = [*options.recipients, options.signer]
    else:
        keys = options.identities
    return any(getattr(key, "unlocked", True) is False for key in keys)


@contextlib.contextmanager
def _worker_pool(batch: _Batch, processes: int) -> Iterator[Executor]:
    pool = ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(batch, os.getpid()),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _share_out(
    pool: Executor,
    groups: Iterator[list[_Item]],
    window: int,
    record: Callable[[list[tuple[int, FileResult]]], None],
) -> None:
    """Hand the groups to the pool, at most ``window`` at a time (memory stays flat in the number
    of files), recording each group's results as it finishes."""
    pending: set[Future[list[tuple[int, FileResult]]]] = set()
    for group in groups:
        pending.add(pool.submit(_run_in_worker, group))
        if len(pending) >= window:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                record(future.result())
    for future in pending:
        record(future.result())


def _groups(items: list[_Item], processes: int) -> Iterator[list[_Item]]:
    """Tasks of up to ``_FILES_PER_TASK`` files, at least four per process where there are files
    enough (50 large files on 2 processes: 8 tasks of 7, not 32 and 18)."""
    size = max(1, min(_FILES_PER_TASK, -(-len(items) // (4 * processes))))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _processes(workers: int | None, files: int) -> int:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UsageError("workers must be a positive integer or None")
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # keys reach other processes only by fork: elsewhere the batch stays in this process
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    groups = -(-files // _FILES_PER_TASK)
    return max(1, min(workers, groups))


def _sync_folders(results: list[FileResult | None], jobs: Sequence[tuple[str, str | None]]) -> None:
    """Sync each folder that received an output, once; a failed sync fails its folder's files
    (their outputs are complete, but their names might not survive a power cut). A file whose
    fate is unknown (the call is failing: a worker died, an interruption) may have been named:
    its folder is synced too."""
    folders: dict[str, list[int]] = {}
    for index, (_, output) in enumerate(jobs):
        result = results[index]
        if output is None or (result is not None and result.output is None):
            continue  # verifying, or failed before its output was named
        # A link output was written through: the new name is in its target's folder.
        path = os.path.realpath(output) if os.path.islink(output) else os.path.abspath(output)
        folders.setdefault(os.path.dirname(path), []).append(index)
    for folder, indices in folders.items():
        try:
            sync_folder(folder)
        except OSError as exc:
            failure = OSError(exc.errno, f"{exc.strerror} (syncing the folder that holds the output)", folder)
            for index in indices:
                done = results[index]
                if done is not None:
                    results[index] = FileResult(done.path, done.output, failure, done.result)


# --- arguments ----------------------------------------------------------------------------------------


def _local(path: PathLike) -> str:
    name = os.fspath(path)
    if not isinstance(name, str):
        raise UsageError("paths are str or os.PathLike[str]")
    if is_url(name):
        raise UsageError(f"the batch functions take local paths, not URLs: {name!r}")
    return name


def _pairs(pairs: Pairs) -> list[tuple[str, str | None]]:
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    jobs: list[tuple[str, str | None]] = []
    seen: dict[str, str] = {}
    for item in items:
        try:
            source, output = item
        except (TypeError, ValueError):
            raise UsageError("pairs is a mapping of input to output, or (input, output) pairs") from None
        source, output = _local(source), _local(output)
        key = os.path.abspath(output)
        if key in seen:
            raise UsageError(f"two inputs for one output: {seen[key]!r} and {source!r} into {output!r}")
        seen[key] = source
        jobs.append((source, output))
    return jobs


def _signer(sign_with: Signer | SigningKey | None) -> Signer | None:
    return None if sign_with is None else as_signer(sign_with)
