"""Helpers for the command-line tests: the real console scripts, run as a user runs them, in
subprocesses or under a pseudo-terminal, and test keys written as key files."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import envelope

BIN = Path(sys.executable).parent
ENVELOPE = str(BIN / "envelope")
INFO = str(BIN / "envelope-info")
PASSPHRASE = "correct horse battery staple"
TIMEOUT = 60

needs_console_scripts = pytest.mark.skipif(
    not Path(ENVELOPE).exists(), reason="console scripts not installed (pip install -e .)"
)


# --- helpers ---------------------------------------------------------------------------------


def run(
    tool: str, *args: object, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a console script detached from any terminal (its own session, so /dev/tty fails)."""
    return subprocess.run(
        [tool, *map(str, args)],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        timeout=TIMEOUT,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[bytes]:
    assert result.returncode == 0, result.stderr.decode()
    return result


def assert_error(result: subprocess.CompletedProcess[bytes], code: int, *fragments: str, tool: str = "envelope") -> str:
    """The documented exit code, and exactly one line on stderr, ``TOOL: error: ...``, no traceback."""
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{tool}: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]


def run_in_pty(
    tool: str,
    *args: object,
    answer: str | Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    columns: int = 80,
) -> tuple[int, str]:
    """Run a console script with a pseudo-terminal of ``columns`` columns as its stdin, stdout,
    stderr and controlling terminal; type ``answer`` at the first passphrase prompt (a list: one
    answer per prompt, in order). Returns the exit code and the output."""
    argv = [tool, *map(str, args)]
    environment = {**os.environ, **(env or {})}
    environment.pop("COLUMNS", None)  # the terminal's size is what counts
    answers = [answer] if isinstance(answer, str) else list(answer or [])
    pid, fd = pty.fork()
    if pid == 0:  # the child: size the terminal before the program starts
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
            os.execve(tool, argv, environment)
        finally:
            os._exit(127)
    output = bytearray()
    prompts_seen = 0
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], TIMEOUT)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"timed out; output so far: {output!r}")
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            output += data
            # "Passphrase for KEY: ", "New passphrase for the private key: ", "Repeat the passphrase: ",
            # "PIN for TOKEN: "
            prompts = (
                output.count(b"assphrase for ") + output.count(b"Repeat the passphrase") + output.count(b"PIN for ")
            )
            while prompts_seen < prompts and answers:
                os.write(fd, f"{answers.pop(0)}\n".encode())
                prompts_seen += 1
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def payload(path: Path) -> bytes:
    """The bytes after the header (prefix, header, MAC): the tokens, which rewrap must not touch."""
    return path.read_bytes()[envelope.inspect(path).header_size :]


class Keys:
    """Test key pairs in one folder: NAME.pem (private, 0600) and NAME.pub (public)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ids: dict[str, str] = {}
        for name in ("alice", "bob", "carol"):
            key = envelope.generate_private_key(2048)
            self._write(f"{name}.pem", envelope.private_key_pem(key))
            self._write(f"{name}.pub", envelope.public_key_pem(key))
            self.ids[name] = envelope.key_id(key)
        dave = envelope.generate_private_key(2048)
        self._write("dave.pem", envelope.private_key_pem(dave, PASSPHRASE))
        self._write("dave.pub", envelope.public_key_pem(dave))
        self.ids["dave"] = envelope.key_id(dave)
        ssh_line = dave.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        self._write("dave.ssh", ssh_line + b" dave@example\n")

    def _write(self, name: str, data: bytes) -> None:
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def __getitem__(self, name: str) -> Path:
        return self.folder / name
