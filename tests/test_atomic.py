"""envelope.atomic_output: outputs that appear whole or not at all (docs/CLI.md, "How outputs
appear"; spec/SECURITY.md, "All-or-nothing outputs")."""

from __future__ import annotations

import errno
import os
import pickle
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fifo_reader import FifoReader

import envelope
from envelope import atomic


def listing(path: Path) -> list[str]:
    return sorted(os.listdir(path))


@pytest.fixture
def without_unnamed_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The named-temporary fallback, as on macOS or a file system without O_TMPFILE."""
    monkeypatch.setattr(atomic, "_open_unnamed", lambda directory, mode: None)


# --- the typed "output exists" error ------------------------------------------------------------


def test_an_existing_output_raises_output_exists_error_naming_the_path(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"precious")
    with pytest.raises(envelope.OutputExistsError) as refused:
        with envelope.atomic_output(out) as f:
            f.write(b"new")
    error = refused.value
    assert isinstance(error, envelope.EnvelopeError) and isinstance(error, FileExistsError)
    assert (error.path, error.filename) == (str(out), str(out))
    assert str(error) == f"{out} exists (pass overwrite=True to replace it)"
    assert pickle.loads(pickle.dumps(error)).path == str(out)
    assert out.read_bytes() == b"precious" and listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_an_output_that_appears_while_writing_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    if not unnamed:
        monkeypatch.setattr(atomic, "_open_unnamed", lambda directory, mode: None)
    out = tmp_path / "out.bin"
    with pytest.raises(envelope.OutputExistsError):
        with envelope.atomic_output(out) as f:
            f.write(b"mine")
            out.write_bytes(b"someone else's")
    assert out.read_bytes() == b"someone else's" and listing(tmp_path) == ["out.bin"]


# --- unnamed until complete ---------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="O_TMPFILE is Linux-only")
def test_output_has_no_name_until_complete(tmp_path: Path) -> None:
    with envelope.atomic_output(tmp_path / "out.bin", private=True) as out:
        out.write(b"secret plaintext")
        out.flush()
        assert os.listdir(tmp_path) == []  # an unnamed file: nothing to find, nothing to leave
    assert (tmp_path / "out.bin").read_bytes() == b"secret plaintext"


def test_sigkill_mid_write_leaves_nothing(tmp_path: Path) -> None:
    """A process killed while writing plaintext leaves no file behind (the unnamed file vanishes)."""
    code = (
        "import os, signal, sys\n"
        "from envelope import atomic_output\n"
        "with atomic_output(sys.argv[1], private=True) as out:\n"
        "    out.write(b'partial plaintext' * 1000); out.flush(); os.fsync(out.fileno())\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.bin")], check=False)
    assert result.returncode == -signal.SIGKILL
    if hasattr(os, "O_TMPFILE"):
        assert os.listdir(tmp_path) == []


def test_named_temp_fallback_cleans_up_on_failure(tmp_path: Path, without_unnamed_files: None) -> None:
    with pytest.raises(RuntimeError):
        with envelope.atomic_output(tmp_path / "out.bin") as out:
            out.write(b"half")
            assert len(os.listdir(tmp_path)) == 1  # the hidden .out.bin.*.partial
            raise RuntimeError("fail mid-write")
    assert os.listdir(tmp_path) == []
    with envelope.atomic_output(tmp_path / "out.bin") as out:
        out.write(b"whole")
    assert listing(tmp_path) == ["out.bin"] and (tmp_path / "out.bin").read_bytes() == b"whole"
    with pytest.raises(envelope.OutputExistsError):
        with envelope.atomic_output(tmp_path / "out.bin") as out:
            out.write(b"again")
    assert listing(tmp_path) == ["out.bin"] and (tmp_path / "out.bin").read_bytes() == b"whole"


# --- write-back errors (issue 11, item 3) -------------------------------------------------------


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_a_write_back_error_fails_the_output_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    """Linux reports a write-back error once per open file: when the background thread got it,
    the final fsync succeeds. The error must still fail the output, which never gets its name."""
    if not unnamed:
        monkeypatch.setattr(atomic, "_open_unnamed", lambda directory, mode: None)
    reported = threading.Event()

    def failing_fdatasync(fd: int) -> None:
        reported.set()
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fdatasync", failing_fdatasync)
    out = tmp_path / "out.bin"
    with pytest.raises(OSError) as failed:
        with envelope.atomic_output(out, private=True) as f:
            f.write(b"verified plaintext" * 1000)
            f.flush()
            assert reported.wait(10), "the write-back thread never ran"
    assert failed.value.errno == errno.EIO and failed.value.filename == str(out)
    assert listing(tmp_path) == []


def test_one_write_back_thread_serves_every_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs share one thread (a thread per output cost half of a 64 KiB output's time); each
    output's error stays its own, and none is synced once it is closed."""
    monkeypatch.setattr(atomic, "_WRITEBACK_INTERVAL_S", 0.001)
    real = os.fdatasync
    synced: list[int] = []
    bad: list[int] = []
    seen_bad = threading.Event()

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        if fd in bad:
            seen_bad.set()
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    for index in range(20):
        with envelope.atomic_output(tmp_path / f"small-{index}") as f:
            f.write(b"x")
    assert sum(t.name == "envelope-writeback" for t in threading.enumerate()) == 1
    with envelope.atomic_output(tmp_path / "good") as good:
        good.write(b"good")
        with pytest.raises(OSError) as failed, envelope.atomic_output(tmp_path / "bad") as broken:
            bad.append(broken.fileno())
            assert seen_bad.wait(10), "the write-back thread never ran"
        bad.clear()
    assert failed.value.filename == str(tmp_path / "bad")
    assert (tmp_path / "good").read_bytes() == b"good" and not (tmp_path / "bad").exists()
    closed = len(synced)
    threading.Event().wait(0.05)  # many intervals: nothing is open, nothing is synced
    assert len(synced) == closed


def test_a_child_forked_during_a_background_sync_can_leave_the_block(tmp_path: Path) -> None:
    """The child has no write-back thread, and the parent's may hold its lock at the fork."""
    script = f"""
import os, threading, time
import envelope, envelope.atomic as atomic
atomic._WRITEBACK_INTERVAL_S = 0.001
syncing = threading.Event()
def slow_sync(fd):
    syncing.set()
    time.sleep(2)
os.fdatasync = slow_sync
class Leave(Exception):
    pass
try:
    with envelope.atomic_output({str(tmp_path / "out")!r}) as f:
        f.write(b"x")
        f.flush()  # else the child's copy of the buffer is written too, as with any file object
        assert syncing.wait(10)
        child = os.fork()
        if child == 0:
            with envelope.atomic_output({str(tmp_path / "child")!r}) as g:
                g.write(b"y")
            raise Leave  # the child leaves the parent's block: its clean-up runs in the child
except Leave:
    os._exit(0)
_, status = os.waitpid(child, 0)
assert status == 0
"""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert time.monotonic() - started < 30
    assert (tmp_path / "out").read_bytes() == b"x" and (tmp_path / "child").read_bytes() == b"y"


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_a_new_output_gets_the_mode_the_umask_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    if not unnamed:
        monkeypatch.setattr(atomic, "_open_unnamed", lambda directory, mode: None)
    previous = os.umask(0o027)
    try:
        with envelope.atomic_output(tmp_path / "shared") as f:
            f.write(b"x")
        with envelope.atomic_output(tmp_path / "private", private=True) as f:
            f.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


# --- replacing an output (issue 11, item 9) -----------------------------------------------------


@pytest.mark.parametrize("private", [True, False], ids=["private", "not-private"])
def test_overwrite_replaces_the_output(tmp_path: Path, private: bool) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"old")
    out.chmod(0o644)
    with envelope.atomic_output(out, overwrite=True, private=private, mode=None if private else 0o640) as f:
        f.write(b"new")
    assert out.read_bytes() == b"new" and listing(tmp_path) == ["out.bin"]
    assert out.stat().st_mode & 0o777 == (0o600 if private else 0o640)


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="O_TMPFILE is Linux-only")
def test_replacing_a_private_output_never_gives_it_another_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plaintext is linked straight to the output's name, once the old file is gone: there
    is no instant in which a SIGKILL would leave it under a hidden name (the kill tests kill there)."""
    links: list[tuple[str, list[str]]] = []
    real_link = atomic._link_fd

    def spy(*args: object) -> None:
        links.append((os.path.basename(str(args[-1])), listing(tmp_path)))
        real_link(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic, "_link_fd", spy)
    out = tmp_path / "out.bin"
    out.write_bytes(b"old plaintext")
    with envelope.atomic_output(out, overwrite=True, private=True) as f:
        f.write(b"new plaintext")
    assert links == [("out.bin", [])]  # one link, to the final name, into a folder without the old file
    assert out.read_bytes() == b"new plaintext"


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="O_TMPFILE is Linux-only")
@pytest.mark.parametrize("existed", [True, False], ids=["replaced", "new"])
def test_a_private_output_that_cannot_be_linked_says_whether_the_old_one_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existed: bool
) -> None:
    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]))

    monkeypatch.setattr(atomic, "_link_fd", no_space)
    out = tmp_path / "out.bin"
    if existed:
        out.write_bytes(b"old plaintext")
    with pytest.raises(OSError) as failed:
        with envelope.atomic_output(out, overwrite=True, private=True) as f:
            f.write(b"new plaintext")
    assert (failed.value.errno, failed.value.filename) == (errno.ENOSPC, str(out))
    assert ("the old file was removed" in str(failed.value)) == existed
    assert listing(tmp_path) == []


# --- outputs that are not files at rest (issue 12, item 1) --------------------------------------


def test_a_device_is_written_into_without_overwrite() -> None:
    with envelope.atomic_output(os.devnull, private=True) as f:
        f.write(b"plaintext")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_fifo_is_written_into_never_replaced(tmp_path: Path, overwrite: bool) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    with envelope.atomic_output(fifo, overwrite=overwrite, private=True) as f:
        f.write(b"streamed plaintext")
    assert reader.result() == b"streamed plaintext"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and listing(tmp_path) == ["fifo"]


def test_a_descriptor_path_is_written_into(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        with envelope.atomic_output(f"/dev/fd/{write_end}") as f:
            f.write(b"through the pipe")
        os.close(write_end)
        write_end = -1
        assert os.read(read_end, 100) == b"through the pipe"
        assert os.read(read_end, 100) == b""  # only a duplicate was closed: the pipe ended with ours
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_a_unix_socket_is_connected_to_and_written_into(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    received = bytearray()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)

        def serve() -> None:
            connection, _ = server.accept()
            with connection:
                while data := connection.recv(65536):
                    received.extend(data)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with envelope.atomic_output(path) as f:
            f.write(b"to the socket")
        thread.join(30)
    assert bytes(received) == b"to the socket"


# --- special files of another user, block devices (issue 17, items 1 and 2) ---------------------

NOBODY = 65534  # another user: the files below are made by root and given to it
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file to another user (chown) needs root"
)


def planted_fifo(path: Path) -> int:
    """A FIFO another user made at ``path``, and a read end of it that the test holds open: an
    output that opened it for writing would not block, and its data would be there to read."""
    os.mkfifo(path)
    os.chown(path, NOBODY, NOBODY)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


@needs_root
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_fifo_another_user_planted_is_refused_and_never_written(
    tmp_path: Path, overwrite: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "out"
    read_end = planted_fifo(fifo)
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(
        os, "open", lambda path, *args, **kwargs: opened.append(os.fspath(path)) or real_open(path, *args, **kwargs)
    )
    try:
        with pytest.raises(envelope.UnsafeOutputError) as refused:
            with envelope.atomic_output(fifo, overwrite=overwrite, private=True) as f:
                f.write(b"verified plaintext")
        assert os.read(read_end, 100) == b""  # no writer ever came
    finally:
        os.close(read_end)
    assert str(fifo) not in opened  # refused before it was opened: its reader learns nothing
    error = refused.value
    assert isinstance(error, PermissionError) and (error.errno, error.filename) == (errno.EACCES, str(fifo))
    assert (error.kind, error.owner) == ("a FIFO", NOBODY)
    assert str(error).startswith(f"{fifo} is a FIFO that belongs to uid {NOBODY}")
    assert "another path" in str(error)
    assert pickle.loads(pickle.dumps(error)).args == error.args
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and listing(tmp_path) == ["out"]


@needs_root
def test_a_fifo_given_to_another_user_after_the_check_is_refused_once_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path is checked again as opened: a name swapped after the first look gets nothing."""
    fifo = tmp_path / "out"
    read_end = planted_fifo(fifo)
    as_checked = os.stat(fifo)
    mine = os.stat_result((as_checked.st_mode, *as_checked[1:4], os.geteuid(), *as_checked[5:]))
    monkeypatch.setattr(atomic, "_output_stat", lambda name: mine)
    try:
        with pytest.raises(envelope.UnsafeOutputError):
            with envelope.atomic_output(fifo) as f:
                f.write(b"data")
        assert os.read(read_end, 100) == b""  # opened, never written
    finally:
        os.close(read_end)


@needs_root
def test_a_socket_another_user_owns_is_not_connected_to(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        os.chown(path, NOBODY, NOBODY)
        with pytest.raises(envelope.UnsafeOutputError, match="is a socket that belongs to uid 65534"):
            with envelope.atomic_output(path) as f:
                f.write(b"data")
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected


@needs_root
def test_a_character_device_another_user_owns_is_refused(tmp_path: Path) -> None:
    """A device node another user owns (here one for /dev/zero, which would swallow the data)."""
    device = tmp_path / "dev"
    os.mknod(device, stat.S_IFCHR | 0o666, os.stat("/dev/zero").st_rdev)
    os.chown(device, NOBODY, NOBODY)
    with pytest.raises(envelope.UnsafeOutputError, match="is a character device that belongs to uid 65534"):
        with envelope.atomic_output(device) as f:
            f.write(b"data")


@needs_root
def test_the_null_device_a_terminal_and_descriptor_paths_are_written_into_whoever_owns_them(tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.stat(os.devnull).st_rdev)
    os.chown(null, NOBODY, NOBODY)
    with envelope.atomic_output(null, private=True) as f:
        f.write(b"gone")
    controller, terminal = os.openpty()
    try:
        os.chown(os.ttyname(terminal), NOBODY, NOBODY)
        with envelope.atomic_output(os.ttyname(terminal)) as f:
            f.write(b"shown")
        assert os.read(controller, 100) == b"shown"
    finally:
        os.close(terminal)
        os.close(controller)
    fifo = tmp_path / "fifo"
    read_end = planted_fifo(fifo)
    write_end = os.open(fifo, os.O_WRONLY)  # opened by the caller, as a shell redirection does
    try:
        with envelope.atomic_output(f"/dev/fd/{write_end}") as f:
            f.write(b"asked for")
        assert os.read(read_end, 100) == b"asked for"
    finally:
        os.close(write_end)
        os.close(read_end)


@needs_root
def test_a_block_device_needs_overwrite_and_is_then_written_into_never_replaced(tmp_path: Path) -> None:
    """A real block device node, made with mknod: no loop device is attached (a shared machine's
    loop devices are not the tests' to take). Its major number, 240, is reserved for local use and
    has no driver, so opening it fails: with ``overwrite`` the data would go into the device."""
    device = tmp_path / "partition"
    os.mknod(device, stat.S_IFBLK | 0o600, os.makedev(240, 0))
    with pytest.raises(envelope.OutputExistsError) as refused:
        with envelope.atomic_output(device, private=True) as f:
            f.write(b"plaintext")
    assert refused.value.device and str(refused.value) == (
        f"{device} is a block device, which holds data (pass overwrite=True to write over it)"
    )
    assert pickle.loads(pickle.dumps(refused.value)).device
    with pytest.raises(OSError) as failed:
        with envelope.atomic_output(device, overwrite=True, private=True) as f:
            f.write(b"plaintext")
    assert (failed.value.errno, failed.value.filename) == (errno.ENXIO, str(device))  # it was opened
    assert stat.S_ISBLK(os.lstat(device).st_mode) and listing(tmp_path) == ["partition"]


def test_a_block_device_as_classified_needs_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root (no mknod): the stat result atomic_output classifies the path by says "a block
    device of this user"; the path is really a FIFO of this user, which then receives the data."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real = os.stat(fifo)
    monkeypatch.setattr(atomic, "_output_stat", lambda name: os.stat_result((stat.S_IFBLK | 0o600, *real[1:])))
    with pytest.raises(envelope.OutputExistsError, match="is a block device"):
        with envelope.atomic_output(fifo) as f:
            f.write(b"data")
    reader = FifoReader(fifo)
    with envelope.atomic_output(fifo, overwrite=True) as f:
        f.write(b"written over")
    assert reader.result() == b"written over"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and listing(tmp_path) == ["fifo"]


# --- platforms: each missing call simulated (issue 12, item 8) ----------------------------------


def test_without_fdatasync_the_write_back_thread_uses_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS CPython has no os.fdatasync."""
    monkeypatch.delattr(os, "fdatasync")
    real_fsync = os.fsync
    synced_in_background = threading.Event()

    def fsync(fd: int) -> None:
        if threading.current_thread().name == "envelope-writeback":
            synced_in_background.set()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with envelope.atomic_output(tmp_path / "out.bin") as f:
        f.write(b"data")
        f.flush()
        assert synced_in_background.wait(10), "the write-back thread did not sync"
    assert (tmp_path / "out.bin").read_bytes() == b"data"


class FakeFcntl:
    """Records fcntl calls; answers F_FULLFSYNC with ``errno_`` (0: success)."""

    F_FULLFSYNC = 51  # its value on macOS

    def __init__(self, errno_: int) -> None:
        self.errno = errno_
        self.calls: list[int] = []

    def fcntl(self, fd: int, command: int) -> int:
        self.calls.append(command)
        if self.errno:
            raise OSError(self.errno, os.strerror(self.errno))
        return 0


@pytest.mark.parametrize(
    ("answer", "fsyncs"), [(0, 0), (errno.ENOTSUP, 1), (errno.EINVAL, 1)], ids=["done", "unsupported", "invalid"]
)
def test_where_f_fullfsync_exists_it_makes_the_output_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: int, fsyncs: int
) -> None:
    """macOS: fsync leaves the data in the drive's cache, F_FULLFSYNC flushes it; a file system
    that does not support it gets a plain fsync."""
    fake = FakeFcntl(answer)
    monkeypatch.setitem(sys.modules, "fcntl", fake)
    monkeypatch.setattr(atomic, "_WRITEBACK_INTERVAL_S", 3600)  # count the final sync only
    real_fsync, fsynced = os.fsync, []
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd))[1])
    with envelope.atomic_output(tmp_path / "out.bin") as f:
        f.write(b"data")
    assert fake.calls == [FakeFcntl.F_FULLFSYNC]
    assert len(fsynced) - 1 == fsyncs  # the folder is fsynced too, once its entry is written
    assert (tmp_path / "out.bin").read_bytes() == b"data"


def test_an_f_fullfsync_error_fails_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real error must not be retried with fsync, which would no longer report it."""
    monkeypatch.setitem(sys.modules, "fcntl", FakeFcntl(errno.EIO))
    out = tmp_path / "out.bin"
    with pytest.raises(OSError) as failed:
        with envelope.atomic_output(out) as f:
            f.write(b"data")
    assert (failed.value.errno, failed.value.filename) == (errno.EIO, str(out))
    assert listing(tmp_path) == []


def test_without_fchmod_the_named_file_gets_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, without_unnamed_files: None
) -> None:
    """Windows has no os.fchmod before Python 3.13."""
    monkeypatch.delattr(os, "fchmod")
    with envelope.atomic_output(tmp_path / "out.bin", mode=0o640) as f:
        f.write(b"data")
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o640


@pytest.mark.parametrize("missing", ["O_TMPFILE", "/proc/self/fd"])
def test_without_unnamed_files_a_hidden_named_file_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    if missing == "O_TMPFILE":
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    else:
        monkeypatch.setattr(atomic, "_PROC_FD", str(tmp_path / "no-proc"))
    with envelope.atomic_output(tmp_path / "out.bin", private=True) as f:
        f.write(b"data")
        (hidden,) = os.listdir(tmp_path)
        assert hidden.startswith(".out.bin.") and hidden.endswith(".partial")
        assert stat.S_IMODE(os.stat(tmp_path / hidden).st_mode) == 0o600
    assert listing(tmp_path) == ["out.bin"] and (tmp_path / "out.bin").read_bytes() == b"data"


# --- errors name the caller's path and the real problem (issue 12, item 9) ----------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_is_reported_as_one(tmp_path: Path, overwrite: bool) -> None:
    with pytest.raises(IsADirectoryError) as refused:
        with envelope.atomic_output(tmp_path, overwrite=overwrite) as f:
            f.write(b"data")
    assert refused.value.filename == str(tmp_path)
    assert listing(tmp_path) == []


def test_a_missing_folder_is_reported_as_one(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "out.bin"
    with pytest.raises(FileNotFoundError) as refused:
        with envelope.atomic_output(out) as f:
            f.write(b"data")
    assert refused.value.filename == str(out)
    assert refused.value.strerror == f"the folder {tmp_path / 'missing'} does not exist"


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_a_failure_to_name_the_output_names_the_callers_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    """A directory appears where a ciphertext output is being replaced: the rename from the hidden
    name fails, and the error names the output, not the hidden file (which is removed)."""
    if not unnamed:
        monkeypatch.setattr(atomic, "_open_unnamed", lambda directory, mode: None)
    out = tmp_path / "out.bin"
    with pytest.raises(IsADirectoryError) as failed:
        with envelope.atomic_output(out, overwrite=True) as f:
            f.write(b"data")
            out.mkdir()
    assert failed.value.filename == str(out) and failed.value.filename2 is None
    assert ".partial" not in str(failed.value)
    assert listing(tmp_path) == ["out.bin"] and out.is_dir()


# --- symbolic links (issue 11, item 8) ----------------------------------------------------------


@pytest.mark.parametrize("private", [True, False], ids=["private", "not-private"])
@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_overwrite_through_a_link_replaces_the_file_it_points_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private: bool, unnamed: bool
) -> None:
    """As cp writes through a link: the link stays, its target gets the new content (in the
    target's folder, so that the rename stays within one file system)."""
    if not unnamed:
        monkeypatch.setattr(atomic, "_open_unnamed", lambda directory, mode: None)
    (tmp_path / "links").mkdir()
    (tmp_path / "files").mkdir()
    target = tmp_path / "files" / "model.bin"
    target.write_bytes(b"old")
    link = tmp_path / "links" / "model.bin"
    link.symlink_to(os.path.relpath(target, link.parent))
    with pytest.raises(envelope.OutputExistsError):
        with envelope.atomic_output(link, private=private) as f:
            f.write(b"new")
    with envelope.atomic_output(link, overwrite=True, private=private) as f:
        f.write(b"new")
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.read_bytes() == b"new"
    assert listing(tmp_path / "links") == ["model.bin"] and listing(tmp_path / "files") == ["model.bin"]


def test_a_link_to_a_missing_file_is_not_replaced(tmp_path: Path) -> None:
    link = tmp_path / "out.bin"
    link.symlink_to("nowhere")
    with pytest.raises(envelope.OutputExistsError):
        with envelope.atomic_output(link) as f:
            f.write(b"data")
    with pytest.raises(FileNotFoundError) as refused:
        with envelope.atomic_output(link, overwrite=True) as f:
            f.write(b"data")
    assert refused.value.filename == str(link) and "symbolic link to a missing file" in str(refused.value)
    assert link.is_symlink() and os.readlink(link) == "nowhere" and listing(tmp_path) == ["out.bin"]


def test_rewrap_file_in_place_through_a_link_rewrites_its_target(alice, bob, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "m.env"
    target.write_bytes(envelope.seal(b"weights", alice.public_key()))
    link = tmp_path / "current.env"
    link.symlink_to("m.env")
    envelope.rewrap_file(link, link, alice, add=bob.public_key(), overwrite=True)
    assert link.is_symlink() and os.readlink(link) == "m.env"
    assert envelope.open(target.read_bytes(), bob) == b"weights"
    assert listing(tmp_path) == ["current.env", "m.env"]
