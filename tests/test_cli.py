"""The command-line tools, driven as a user drives them: the real console scripts, in subprocesses.

Round trips through files and pipes, several recipients, rewrap, verify, envelope-info (text and
--json), and every failure path with its documented exit code (docs/CLI.md) and its single line
on stderr. Terminal behaviour (passphrase prompt, binary-to-terminal refusal, progress bar) runs
under a pseudo-terminal.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import envelope
from envelope.cli import errors as cli_errors

BIN = Path(sys.executable).parent
ENVELOPE = str(BIN / "envelope")
INFO = str(BIN / "envelope-info")
PASSPHRASE = "correct horse battery staple"
TIMEOUT = 60

pytestmark = pytest.mark.skipif(not Path(ENVELOPE).exists(), reason="console scripts not installed (pip install -e .)")


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
    tool: str, *args: object, answer: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a console script with a pseudo-terminal as its stdin, stdout, stderr and controlling
    terminal; type ``answer`` at the first passphrase prompt. Returns the exit code and the output."""
    argv = [tool, *map(str, args)]
    environment = {**os.environ, **(env or {})}
    pid, fd = pty.fork()
    if pid == 0:  # the child
        try:
            os.execve(tool, argv, environment)
        finally:
            os._exit(127)
    output = bytearray()
    answered = answer is None
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
            if not answered and b"assphrase" in output:
                os.write(fd, f"{answer}\n".encode())
                answered = True
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def payload(path: Path) -> bytes:
    """The bytes after the header (prefix, header, MAC): the tokens, which rewrap must not touch."""
    return path.read_bytes()[envelope.inspect(path).header_size :]


# --- fixtures --------------------------------------------------------------------------------


class Keys:
    """Test key pairs in one folder: NAME.pem (private, 0600) and NAME.pub (public)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ids: dict[str, str] = {}
        for name in ("alice", "bob", "carol"):
            key = envelope.generate_private_key(2048)
            self._write(f"{name}.pem", envelope.private_key_pem(key))
            self._write(f"{name}.pub", envelope.public_key_pem(key))
            self.ids[name] = envelope.key_id(key).hex()
        dave = envelope.generate_private_key(2048)
        self._write("dave.pem", envelope.private_key_pem(dave, PASSPHRASE))
        self._write("dave.pub", envelope.public_key_pem(dave))
        self.ids["dave"] = envelope.key_id(dave).hex()
        ssh_line = dave.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        self._write("dave.ssh", ssh_line + b" dave@example\n")

    def _write(self, name: str, data: bytes) -> None:
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def __getitem__(self, name: str) -> Path:
        return self.folder / name


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def plaintext(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "model.bin"
    path.write_bytes(os.urandom(200_000))
    return path


@pytest.fixture(scope="module")
def sealed(keys: Keys, plaintext: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``plaintext`` sealed for alice and bob, in 64 KiB chunks (four chunks), with metadata."""
    path = tmp_path_factory.mktemp("sealed") / "model.env"
    ok(
        run(
            ENVELOPE,
            "seal",
            "-r",
            keys["alice.pub"],
            "-r",
            keys["bob.pub"],
            "--meta",
            "name=demo",
            "--chunk-size",
            "64K",
            "-o",
            path,
            plaintext,
        )
    )
    return path


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# --- keygen ----------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_0600_and_its_public_key(tmp_path: Path) -> None:
    private = tmp_path / "new.key"
    result = ok(
        run(ENVELOPE, "keygen", "--bits", "2048", "-o", private, "--passphrase-env", "PASS", env={"PASS": PASSPHRASE})
    )

    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = envelope.load_private_key(private.read_bytes(), PASSPHRASE)
    assert key.key_size == 2048
    public = envelope.load_public_key(Path(f"{private}.pub"))
    assert envelope.key_id(public) == envelope.key_id(key)
    assert envelope.key_id(key).hex() in result.stdout.decode()
    assert PASSPHRASE not in result.stdout.decode() + result.stderr.decode()

    before = (digest(private), digest(Path(f"{private}.pub")))
    assert_error(run(ENVELOPE, "keygen", "--bits", "2048", "-o", private), 5, "exists", "--force")
    assert (digest(private), digest(Path(f"{private}.pub"))) == before


def test_keygen_takes_no_passphrase_value_on_the_command_line(tmp_path: Path) -> None:
    assert_error(run(ENVELOPE, "keygen", "-o", tmp_path / "k", "--passphrase", "secret"), 2, "unrecognized arguments")
    assert list(tmp_path.iterdir()) == []


def test_keygen_refuses_when_only_the_public_key_exists(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text("taken")
    assert_error(run(ENVELOPE, "keygen", "-o", tmp_path / "k"), 5, "k.pub exists")
    assert not (tmp_path / "k").exists()


# --- seal and open ---------------------------------------------------------------------------


def test_round_trip_through_files(keys: Keys, plaintext: Path, out_dir: Path) -> None:
    before = digest(plaintext)
    sealed = out_dir / "model.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--meta", "name=demo", "-o", sealed, plaintext))
    opened = out_dir / "model.out"
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", opened, sealed))

    assert opened.read_bytes() == plaintext.read_bytes()
    assert stat.S_IMODE(opened.stat().st_mode) == 0o600  # plaintext is private
    assert digest(plaintext) == before  # the input is never touched
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.env", "model.out"]  # no temporary left


def test_round_trip_through_pipes(keys: Keys, plaintext: Path) -> None:
    sealed = ok(
        run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--chunk-size", "1K", stdin=plaintext.read_bytes())
    ).stdout
    assert sealed.startswith(b"\x89ENV\r\n\x1a\n")
    opened = ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-", stdin=sealed)).stdout
    assert opened == plaintext.read_bytes()


def test_empty_input_round_trips(keys: Keys) -> None:
    sealed = ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", "-", stdin=b"")).stdout
    assert ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], stdin=sealed)).stdout == b""


def test_every_recipient_given_with_r_opens(keys: Keys, sealed: Path, plaintext: Path) -> None:
    for name in ("alice", "bob"):
        assert ok(run(ENVELOPE, "open", "-i", keys[f"{name}.pem"], sealed)).stdout == plaintext.read_bytes()


def test_recipients_file_with_pem_blocks_ssh_lines_and_comments(keys: Keys, tmp_path: Path) -> None:
    listing = tmp_path / "team.txt"
    listing.write_text(
        "# the team\n\n"
        + keys["alice.pub"].read_text()
        + "\n  # dave, as an OpenSSH line\n"
        + keys["dave.ssh"].read_text()
        + keys["alice.pub"].read_text()  # listed twice: sealed once
    )
    sealed = tmp_path / "x.env"
    ok(run(ENVELOPE, "seal", "-R", listing, "-r", keys["carol.pub"], "-o", sealed, stdin=b"team data"))

    recipients = [r.key_id for r in envelope.inspect(sealed).recipients]
    assert recipients == [keys.ids["carol"], keys.ids["alice"], keys.ids["dave"]]  # -r first, each key once
    for name in ("alice", "carol"):
        assert ok(run(ENVELOPE, "open", "-i", keys[f"{name}.pem"], sealed)).stdout == b"team data"
    opened = run(ENVELOPE, "open", "-i", keys["dave.pem"], "--passphrase-env", "P", sealed, env={"P": PASSPHRASE})
    assert ok(opened).stdout == b"team data"


def test_recipients_file_with_a_bad_key_names_its_line(keys: Keys, tmp_path: Path) -> None:
    listing = tmp_path / "team.txt"
    listing.write_text("# ok\n" + keys["dave.ssh"].read_text() + "ssh-rsa garbage\n")
    assert_error(run(ENVELOPE, "seal", "-R", listing, "-o", tmp_path / "x.env", stdin=b"x"), 4, f"{listing}:3")
    assert not (tmp_path / "x.env").exists()


def test_seal_metadata_and_chunk_size_are_recorded(sealed: Path) -> None:
    info = envelope.inspect(sealed)
    assert info.unverified_metadata == {"name": "demo"}
    assert info.chunk_size == 64 * 1024
    assert info.chunk_count == 4


def test_encrypted_key_with_passphrase_file(keys: Keys, tmp_path: Path) -> None:
    sealed = ok(run(ENVELOPE, "seal", "-r", keys["dave.pub"], stdin=b"secret model")).stdout
    phrase = tmp_path / "phrase"
    phrase.write_text(PASSPHRASE + "\n")
    assert (
        ok(run(ENVELOPE, "open", "-i", keys["dave.pem"], "--passphrase-file", phrase, stdin=sealed)).stdout
        == b"secret model"
    )


def test_open_to_stdout_fails_after_partial_output_on_a_damaged_end(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.env"
    data = bytearray(sealed.read_bytes())
    data[-5] ^= 1  # in the last chunk: the first chunks verify and are written
    damaged.write_bytes(bytes(data))
    result = run(ENVELOPE, "open", "-i", keys["alice.pem"], damaged)
    assert_error(result, 1, "authentication failed")
    assert 0 < len(result.stdout) < 200_000


def test_private_key_readable_by_others_gives_one_warning(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    loose = tmp_path / "loose.pem"
    shutil.copy(keys["alice.pem"], loose)
    loose.chmod(0o644)
    result = ok(run(ENVELOPE, "open", "-i", loose, "-o", tmp_path / "out", sealed))
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("envelope: warning: ") and "chmod 600" in lines[0]


# --- open: every failure, nothing left behind ------------------------------------------------


def _tampered(sealed: Path, folder: Path) -> Path:
    data = bytearray(sealed.read_bytes())
    data[envelope.inspect(sealed).header_size + 100] ^= 0x01
    (folder / "tampered.env").write_bytes(bytes(data))
    return folder / "tampered.env"


def _truncated(sealed: Path, folder: Path) -> Path:
    (folder / "truncated.env").write_bytes(sealed.read_bytes()[:-10])
    return folder / "truncated.env"


def _header_tampered(sealed: Path, folder: Path) -> Path:
    data = sealed.read_bytes().replace(b"demo", b"DEMO")  # the metadata, covered by the header MAC
    (folder / "meta.env").write_bytes(data)
    return folder / "meta.env"


def _cut_in_header(sealed: Path, folder: Path) -> Path:
    (folder / "cut.env").write_bytes(sealed.read_bytes()[:40])
    return folder / "cut.env"


def _not_envelope(sealed: Path, folder: Path) -> Path:
    (folder / "notes.txt").write_text("just some text, long enough to be more than a prefix\n")
    return folder / "notes.txt"


def _empty(sealed: Path, folder: Path) -> Path:
    (folder / "empty.env").write_bytes(b"")
    return folder / "empty.env"


def _missing(sealed: Path, folder: Path) -> Path:
    return folder / "missing.env"


InputCase = Callable[[Path, Path], Path]


@pytest.mark.parametrize(
    ("make_input", "code", "fragment"),
    [
        (_tampered, 1, "authentication failed"),
        (_truncated, 1, "truncated"),
        (_header_tampered, 1, "header authentication failed"),
        (_cut_in_header, 3, "malformed"),
        (_not_envelope, 3, "not an envelope file"),
        (_empty, 3, "not an envelope file (empty)"),
        (_missing, 5, "No such file"),
    ],
    ids=["tampered", "truncated", "header-tampered", "cut-in-header", "not-envelope", "empty", "missing"],
)
def test_open_failure_leaves_nothing(
    keys: Keys, sealed: Path, tmp_path: Path, out_dir: Path, make_input: InputCase, code: int, fragment: str
) -> None:
    source = make_input(sealed, tmp_path)
    assert_error(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", out_dir / "plain", source), code, fragment)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("key", "code", "fragment"),
    [
        ("carol.pem", 1, "none of the given private keys is a recipient"),  # wrong key
        ("garbage", 4, "not a valid private key"),
        ("directory", 5, "Is a directory"),  # unreadable (mode 000 does not stop root)
        ("alice.pub", 4, "this is a public key"),
        ("absent.pem", 5, "No such file"),
    ],
)
def test_open_key_failure_leaves_nothing(
    keys: Keys, sealed: Path, tmp_path: Path, out_dir: Path, key: str, code: int, fragment: str
) -> None:
    (tmp_path / "garbage").write_bytes(os.urandom(500))
    (tmp_path / "garbage").chmod(0o600)  # no permission warning: the error is the only line
    (tmp_path / "directory").mkdir()
    key_path = keys[key] if (keys.folder / key).exists() else tmp_path / key
    assert_error(run(ENVELOPE, "open", "-i", key_path, "-o", out_dir / "plain", sealed), code, fragment)
    assert list(out_dir.iterdir()) == []


def test_open_wrong_passphrase(keys: Keys, out_dir: Path) -> None:
    sealed = out_dir.parent / "d.env"
    ok(run(ENVELOPE, "seal", "-r", keys["dave.pub"], "-o", sealed, stdin=b"x"))
    result = run(
        ENVELOPE,
        "open",
        "-i",
        keys["dave.pem"],
        "--passphrase-env",
        "P",
        "-o",
        out_dir / "plain",
        sealed,
        env={"P": "guess-7f3a-not-it"},
    )
    message = assert_error(result, 4, "wrong passphrase")
    assert "guess-7f3a" not in message and b"guess-7f3a" not in result.stdout  # never echoed
    assert list(out_dir.iterdir()) == []


def test_open_encrypted_key_without_terminal_or_passphrase(keys: Keys, out_dir: Path) -> None:
    sealed = out_dir.parent / "d.env"
    ok(run(ENVELOPE, "seal", "-r", keys["dave.pub"], "-o", sealed, stdin=b"x"))
    assert_error(run(ENVELOPE, "open", "-i", keys["dave.pem"], "-o", out_dir / "plain", sealed), 4, "--passphrase-env")
    assert list(out_dir.iterdir()) == []


def test_open_refuses_to_overwrite(keys: Keys, sealed: Path, out_dir: Path) -> None:
    existing = out_dir / "plain"
    existing.write_bytes(b"keep me")
    assert_error(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", existing, sealed), 5, "exists", "--force")
    assert existing.read_bytes() == b"keep me"
    assert list(out_dir.iterdir()) == [existing]
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", existing, "--force", sealed))
    assert existing.read_bytes() != b"keep me"


def test_seal_refuses_to_overwrite_its_input(keys: Keys, tmp_path: Path) -> None:
    source = tmp_path / "data"
    source.write_bytes(b"data")
    assert_error(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-f", "-o", source, source), 2, "is the input file")
    assert source.read_bytes() == b"data"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["seal", "-o", "{out}"], "no recipient"),
        (["seal", "-r", "{alice}", "--chunk-size", "8", "-o", "{out}"], "--chunk-size"),
        (["seal", "-r", "{alice}", "--chunk-size", "2G", "-o", "{out}"], "--chunk-size"),
        (["seal", "-r", "{alice}", "--meta", "novalue", "-o", "{out}"], "key=value"),
        (["seal", "-r", "{alice}", "--meta", "envelope.framework=x", "-o", "{out}"], "reserved"),
        (["seal", "-r", "{alice}", "--meta", "a=1", "--meta", "a=2", "-o", "{out}"], "given twice"),
        (["seal", "-r", "{alice}", "--bogus", "-o", "{out}"], "unrecognized arguments"),
        (["open", "-o", "{out}"], "required: -i"),
        (["open", "-i", "{alice}", "--passphrase-env", "UNSET_VARIABLE_X", "-o", "{out}"], "not set"),
        (["frobnicate"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors(keys: Keys, out_dir: Path, args: list[str], fragment: str) -> None:
    values = {"out": str(out_dir / "x"), "alice": str(keys["alice.pem"] if args[:1] == ["open"] else keys["alice.pub"])}
    assert_error(run(ENVELOPE, *(a.format(**values) for a in args), stdin=b"data"), 2, fragment)
    assert list(out_dir.iterdir()) == []


# --- rewrap ----------------------------------------------------------------------------------


def test_rewrap_add_then_the_new_key_opens(keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path) -> None:
    rewrapped = tmp_path / "for-carol.env"
    ok(run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], "--add", keys["carol.pub"], "-o", rewrapped, sealed))
    assert payload(rewrapped) == payload(sealed)
    assert ok(run(ENVELOPE, "open", "-i", keys["carol.pem"], rewrapped)).stdout == plaintext.read_bytes()


def test_rewrap_remove_then_the_old_key_no_longer_matches(
    keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path, out_dir: Path
) -> None:
    copy = tmp_path / "copy.env"
    shutil.copy(sealed, copy)
    copy.chmod(0o640)
    ok(run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], "--remove", keys.ids["bob"], "--in-place", copy))

    assert payload(copy) == payload(sealed)
    assert stat.S_IMODE(copy.stat().st_mode) == 0o640  # in place keeps the mode
    assert [r.key_id for r in envelope.inspect(copy).recipients] == [keys.ids["alice"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.env", "out"]
    result = run(ENVELOPE, "open", "-i", keys["bob.pem"], "-o", out_dir / "plain", copy)
    assert_error(result, 1, "none of the given private keys is a recipient")
    assert list(out_dir.iterdir()) == []
    assert ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], copy)).stdout == plaintext.read_bytes()


def test_rewrap_remove_by_public_key_file_and_add_in_one_go(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    out = tmp_path / "rotated.env"
    ok(
        run(
            ENVELOPE,
            "rewrap",
            "-i",
            keys["bob.pem"],
            "--remove",
            keys["alice.pub"],
            "--add",
            keys["carol.pub"],
            "-o",
            out,
            sealed,
        )
    )
    assert [r.key_id for r in envelope.inspect(out).recipients] == [keys.ids["bob"], keys.ids["carol"]]
    assert payload(out) == payload(sealed)


@pytest.mark.parametrize(
    ("extra", "code", "fragment"),
    [
        ([], 2, "nothing to do"),
        (["--remove", "00ff"], 2, "not a key id"),
        (["--remove", "ab" * 32], 2, "not a recipient of this file"),
        (["--add", "{bob}"], 2, "already a recipient"),
    ],
)
def test_rewrap_errors(keys: Keys, sealed: Path, out_dir: Path, extra: list[str], code: int, fragment: str) -> None:
    args = [a.format(bob=keys["bob.pub"]) for a in extra]
    assert_error(
        run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], *args, "-o", out_dir / "x.env", sealed), code, fragment
    )
    assert list(out_dir.iterdir()) == []


def test_rewrap_with_a_key_that_is_not_a_recipient(keys: Keys, sealed: Path, out_dir: Path) -> None:
    result = run(
        ENVELOPE, "rewrap", "-i", keys["carol.pem"], "--add", keys["carol.pub"], "-o", out_dir / "x.env", sealed
    )
    assert_error(result, 1, "none of the given private keys")
    assert list(out_dir.iterdir()) == []


# --- verify ----------------------------------------------------------------------------------


def test_verify_prints_ok_and_the_verified_metadata(keys: Keys, sealed: Path) -> None:
    result = ok(run(ENVELOPE, "verify", "-i", keys["bob.pem"], sealed))
    out = result.stdout.decode()
    assert f"OK {sealed} (200000 bytes of plaintext)" in out
    assert "metadata (verified)" in out and '"name": "demo"' in out


def test_verify_reports_each_bad_file_and_exits_with_the_first_failure(
    keys: Keys, sealed: Path, tmp_path: Path
) -> None:
    bad = _tampered(sealed, tmp_path)
    result = run(ENVELOPE, "verify", "-i", keys["alice.pem"], bad, sealed)
    assert_error(result, 1, str(bad), "authentication failed")
    assert f"OK {sealed}" in result.stdout.decode()
    assert list(tmp_path.iterdir()) == [bad]  # verify writes nothing


# --- envelope-info ---------------------------------------------------------------------------


def test_info_text(keys: Keys, sealed: Path) -> None:
    out = ok(run(INFO, sealed)).stdout.decode()
    assert "format version 1" in out
    assert keys.ids["alice"] in out and keys.ids["bob"] in out and "rsa-oaep-sha256" in out
    assert "UNVERIFIED" in out and '"name": "demo"' in out
    assert "chunks: 4, of 65536 plaintext bytes" in out
    assert f"{sealed.stat().st_size} bytes" in out


def _check_sizes_add_up(record: dict[str, Any], file_size: int) -> dict[str, Any]:
    sizes = record["sizes"]
    assert isinstance(sizes, dict)
    assert sizes["file"] == file_size
    assert sizes["header"] + sizes["payload"] == file_size
    assert sizes["plaintext"]["min"] + sizes["overhead"]["max"] == sizes["payload"]
    assert sizes["plaintext"]["max"] + sizes["overhead"]["min"] == sizes["payload"]
    return sizes


def test_info_json_schema_and_size_breakdown(keys: Keys, sealed: Path) -> None:
    document = json.loads(ok(run(INFO, "--json", sealed)).stdout)
    assert document["schema_version"] == 1
    (record,) = document["files"]
    assert record["path"] == str(sealed)
    assert record["format_version"] == 1
    assert record["recipients"] == [
        {"type": "rsa-oaep-sha256", "key_id": keys.ids["alice"]},
        {"type": "rsa-oaep-sha256", "key_id": keys.ids["bob"]},
    ]
    assert record["metadata"] == {"name": "demo"}
    assert record["verified"] is False and record["error"] is None and record["complete"] is True
    assert (record["chunk_size"], record["chunk_count"]) == (65536, 4)
    sizes = _check_sizes_add_up(record, sealed.stat().st_size)
    assert sizes["exact"] is False
    assert sizes["plaintext"]["min"] <= 200_000 <= sizes["plaintext"]["max"]
    assert sizes["plaintext"]["max"] - sizes["plaintext"]["min"] == 15


def test_info_verify_gives_exact_sizes_and_verified_metadata(keys: Keys, sealed: Path) -> None:
    document = json.loads(ok(run(INFO, "--json", "--verify", keys["bob.pem"], sealed)).stdout)
    (record,) = document["files"]
    assert record["verified"] is True
    sizes = _check_sizes_add_up(record, sealed.stat().st_size)
    assert sizes["exact"] is True and sizes["plaintext"] == {"min": 200_000, "max": 200_000}
    text = ok(run(INFO, "--verify", keys["bob.pem"], sealed)).stdout.decode()
    assert "metadata (verified)" in text and "UNVERIFIED" not in text


def test_info_json_tags_metadata_values(keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "tagged.env"
    metadata = {"blob": b"\x00\xff", "big": 1 << 60, "ratio": 0.5, "list": [1, "two", None, True], "esc": "\x1b[31m"}
    path.write_bytes(envelope.seal(b"x", envelope.load_public_key(keys["alice.pub"]), metadata=metadata))
    (record,) = json.loads(ok(run(INFO, "--json", path)).stdout)["files"]
    assert record["metadata"] == {
        "blob": {"$bin": "00ff"},
        "big": {"$int": str(1 << 60)},
        "ratio": {"$float": 0.5},
        "list": [1, "two", None, True],
        "esc": "\x1b[31m",
    }
    text = ok(run(INFO, path)).stdout.decode()
    assert "\x1b" not in text and "\\u001b[31m" in text  # no terminal escape reaches the screen
    assert '"ratio": {"$float": 0.5}' in text and '"blob": {"$bin": "00ff"}' in text  # tagged once, not twice


def test_info_json_escapes_maps_with_a_single_dollar_key(keys: Keys, tmp_path: Path) -> None:
    """A metadata map whose only key begins with "$" would read as a tag: it is wrapped in "$map"."""
    path = tmp_path / "dollar.env"
    metadata = {"$int": {"$bin": "text, not bytes"}}
    path.write_bytes(envelope.seal(b"x", envelope.load_public_key(keys["alice.pub"]), metadata=metadata))
    (record,) = json.loads(ok(run(INFO, "--json", path)).stdout)["files"]
    assert record["metadata"] == {"$map": {"$int": {"$map": {"$bin": "text, not bytes"}}}}
    text = ok(run(INFO, path)).stdout.decode()
    assert '"$int": {"$map": {"$bin": "text, not bytes"}}' in text and '"$map": {"$int"' not in text


def test_info_failures(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    not_envelope = _not_envelope(sealed, tmp_path)
    assert_error(run(INFO, not_envelope), 3, "not an envelope file", tool="envelope-info")
    assert_error(run(INFO, tmp_path / "missing.env"), 5, "No such file", tool="envelope-info")
    assert_error(run(INFO, _truncated(sealed, tmp_path)), 3, "truncated", tool="envelope-info")
    assert_error(run(INFO, "--verify", keys["carol.pem"], sealed), 1, "none of the given", tool="envelope-info")


def test_info_json_records_errors_per_file(sealed: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    result = run(INFO, "--json", sealed, missing)
    assert_error(result, 5, "No such file", tool="envelope-info")
    good, bad = json.loads(result.stdout)["files"]
    assert good["error"] is None
    assert bad == {"path": str(missing), "error": {"exit_code": 5, "message": f"{missing}: No such file or directory"}}


# --- help, version, exit codes ---------------------------------------------------------------


@pytest.mark.parametrize("args", [[ENVELOPE], [ENVELOPE, "seal"], [ENVELOPE, "open"], [ENVELOPE, "rewrap"], [INFO]])
def test_help_has_examples_and_exit_codes(args: list[str]) -> None:
    out = ok(run(*args, "--help")).stdout.decode()
    assert "examples:" in out and "exit codes:" in out and "130" in out


def test_open_help_warns_about_streaming_to_stdout() -> None:
    out = " ".join(ok(run(ENVELOPE, "open", "--help")).stdout.decode().split())
    assert "exits non-zero AFTER part of the plaintext was written" in out


@pytest.mark.parametrize("tool", [ENVELOPE, INFO])
def test_version(tool: str) -> None:
    assert envelope.__version__ in ok(run(tool, "--version")).stdout.decode()


def test_unexpected_exception_is_one_line_and_exit_70() -> None:
    def boom() -> int:
        raise RuntimeError("kaput")

    stderr = io.StringIO()
    with redirect_stderr(stderr):
        code = cli_errors.guarded("envelope", boom)
    assert code == 70
    (line,) = stderr.getvalue().splitlines()
    assert line.startswith("envelope: error: unexpected RuntimeError: kaput") and "report" in line


def test_interrupt_is_exit_130_without_traceback() -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    stderr = io.StringIO()
    with redirect_stderr(stderr):
        assert cli_errors.guarded("envelope", interrupted) == 130
    assert "envelope: error: interrupted" in stderr.getvalue() and "Traceback" not in stderr.getvalue()


# --- on a terminal ---------------------------------------------------------------------------


def test_passphrase_prompt_on_the_terminal(keys: Keys, tmp_path: Path) -> None:
    sealed = tmp_path / "d.env"
    ok(run(ENVELOPE, "seal", "-r", keys["dave.pub"], "-o", sealed, stdin=b"prompted"))
    code, output = run_in_pty(
        ENVELOPE, "open", "-i", keys["dave.pem"], "-o", tmp_path / "plain", sealed, answer=PASSPHRASE
    )
    assert code == 0, output
    assert f"Passphrase for {keys['dave.pem']}" in output
    assert PASSPHRASE not in output  # not echoed
    assert (tmp_path / "plain").read_bytes() == b"prompted"


def test_wrong_passphrase_on_the_terminal(keys: Keys, tmp_path: Path, out_dir: Path) -> None:
    sealed = tmp_path / "d.env"
    ok(run(ENVELOPE, "seal", "-r", keys["dave.pub"], "-o", sealed, stdin=b"prompted"))
    code, output = run_in_pty(ENVELOPE, "open", "-i", keys["dave.pem"], "-o", out_dir / "plain", sealed, answer="nope")
    assert code == 4, output
    assert "envelope: error:" in output and "wrong passphrase" in output and "Traceback" not in output
    assert list(out_dir.iterdir()) == []


def test_seal_refuses_binary_output_to_a_terminal(keys: Keys, plaintext: Path) -> None:
    code, output = run_in_pty(ENVELOPE, "seal", "-r", keys["alice.pub"], plaintext)
    assert code == 2
    assert (
        output.strip() == "envelope: error: refusing to write binary data to a terminal: use -o FILE or redirect stdout"
    )


def test_progress_bar_on_a_terminal_for_large_inputs_only(keys: Keys, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 << 20))
    code, output = run_in_pty(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", tmp_path / "big.env", big)
    assert code == 0, output
    assert "sealing [" in output and "%" in output and "MiB" in output
    assert "MB/s" in output and " left" in output  # rate and time left
    assert "\x1b[" not in output  # no colour

    code, output = run_in_pty(
        ENVELOPE, "open", "-i", keys["alice.pem"], "-q", "-o", tmp_path / "big.out", tmp_path / "big.env"
    )
    assert (code, output) == (0, "")  # --quiet: no bar
    assert digest(tmp_path / "big.out") == digest(big)

    small = tmp_path / "small.bin"
    small.write_bytes(b"small")
    code, output = run_in_pty(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", tmp_path / "small.env", small)
    assert (code, output) == (0, "")

    result = ok(run(ENVELOPE, "verify", "-i", keys["alice.pem"], tmp_path / "big.env"))  # stderr not a terminal
    assert result.stderr == b""
