"""The command-line tools, driven as a user drives them: the real console scripts, in subprocesses.

Round trips through files and pipes, several recipients, rewrap, verify, envelope-info (text and
--json), and every failure path with its documented exit code (docs/CLI.md) and its single line
on stderr. Terminal behaviour (passphrase prompt, binary-to-terminal refusal, progress bar) runs
under a pseudo-terminal.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    ENVELOPE,
    INFO,
    PASSPHRASE,
    TIMEOUT,
    Keys,
    assert_error,
    digest,
    needs_console_scripts,
    ok,
    payload,
    run,
    run_in_pty,
)
from cryptography.hazmat.primitives import serialization
from fifo_reader import FifoReader

import envelope
from envelope.cli import errors as cli_errors

pytestmark = needs_console_scripts

# --- fixtures --------------------------------------------------------------------------------


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
    key = envelope.load_private_key(private, PASSPHRASE)
    assert key.key_size == 2048
    public = envelope.load_public_key(Path(f"{private}.pub"))
    assert envelope.key_id(public) == envelope.key_id(key)
    assert envelope.key_id(key) in result.stdout.decode()
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


# --- keys: what -r, -R and -i accept, and when a passphrase is asked -------------------------


def test_seal_r_with_a_file_of_two_keys_is_refused(keys: Keys, tmp_path: Path) -> None:
    """Issue 12 item 4: -r FILE holding two PEM keys sealed for the first one only, silently."""
    two = tmp_path / "two-keys.pem"
    two.write_bytes(keys["alice.pub"].read_bytes() + keys["bob.pub"].read_bytes())
    out = tmp_path / "x.env"
    assert_error(run(ENVELOPE, "seal", "-r", two, "-o", out, stdin=b"x"), 4, f"{two}: 2 keys", "-R FILE")
    assert not out.exists()
    ok(run(ENVELOPE, "seal", "-R", two, "-o", out, stdin=b"x"))  # what the message points to
    assert [r.key_id for r in envelope.inspect(out).recipients] == [keys.ids["alice"], keys.ids["bob"]]


def test_key_files_that_cannot_be_read_are_io_errors(keys: Keys, tmp_path: Path) -> None:
    for option in ("-r", "-R"):
        assert_error(run(ENVELOPE, "seal", option, tmp_path / "absent.pub", stdin=b"x"), 5, "No such file")


def test_open_mixes_encrypted_and_plain_keys_with_one_passphrase(keys: Keys, tmp_path: Path) -> None:
    """Issue 12 item 5: the passphrase was an error for the unencrypted key."""
    for name in ("alice", "dave"):
        sealed = tmp_path / f"{name}.env"
        ok(run(ENVELOPE, "seal", "-r", keys[f"{name}.pub"], "-o", sealed, stdin=name.encode()))
        args = ["open", "-i", keys["dave.pem"], "-i", keys["alice.pem"], "--passphrase-env", "P", sealed]
        assert ok(run(ENVELOPE, *args, env={"P": PASSPHRASE})).stdout == name.encode()


def test_open_without_terminal_uses_the_plain_key_that_matches(keys: Keys, tmp_path: Path) -> None:
    """Issue 12 item 5: with no terminal, an encrypted first key blocked a plain one that matched."""
    sealed = tmp_path / "alice.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", sealed, stdin=b"for alice"))
    assert ok(run(ENVELOPE, "open", "-i", keys["dave.pem"], "-i", keys["alice.pem"], sealed)).stdout == b"for alice"


def test_only_the_key_that_is_needed_is_prompted_for(tmp_path: Path) -> None:
    """Two encrypted keys whose key ids are known (PATH.pub beside each, as keygen writes them):
    only the one the file is sealed to asks for its passphrase."""
    for name in ("first", "second"):
        key = envelope.generate_private_key(2048)
        (tmp_path / f"{name}.key").write_bytes(envelope.private_key_pem(key, PASSPHRASE))
        (tmp_path / f"{name}.key").chmod(0o600)
        (tmp_path / f"{name}.key.pub").write_bytes(envelope.public_key_pem(key))
    sealed = tmp_path / "x.env"
    ok(run(ENVELOPE, "seal", "-r", tmp_path / "second.key.pub", "-o", sealed, stdin=b"second"))
    code, output = run_in_pty(
        ENVELOPE,
        "open",
        "-i",
        tmp_path / "first.key",
        "-i",
        tmp_path / "second.key",
        "-o",
        tmp_path / "out",
        sealed,
        answer=PASSPHRASE,
    )
    assert code == 0, output
    assert f"Passphrase for {tmp_path / 'second.key'}" in output and "first.key" not in output
    assert (tmp_path / "out").read_bytes() == b"second"


def test_open_with_a_public_key_says_so_without_a_permission_warning(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    """Issue 12 item 10: `-i alice.key.pub` first printed "run: chmod 600 alice.key.pub"."""
    public = tmp_path / "alice.key.pub"
    shutil.copy(keys["alice.pub"], public)
    public.chmod(0o644)
    message = assert_error(run(ENVELOPE, "open", "-i", public, sealed), 4, "this is a public key")
    assert "chmod" not in message


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RSA key as ssh-keygen writes it by default (OpenSSH format, bcrypt-pbkdf, aes256-ctr)."""
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        pytest.skip("ssh-keygen is not installed")
    path = tmp_path_factory.mktemp("ssh") / "id_rsa"
    subprocess.run([ssh_keygen, "-q", "-t", "rsa", "-b", "2048", "-N", PASSPHRASE, "-f", path], check=True)
    return path


def test_passphrase_protected_openssh_keys_work(ssh_key: Path, tmp_path: Path) -> None:
    """Issue 12 item 2: they always failed with "wrong passphrase" (bcrypt was missing, and hidden)."""
    sealed = tmp_path / "x.env"
    line = ssh_key.with_suffix(".pub").read_text().strip()
    ok(run(ENVELOPE, "seal", "-r", line, "-o", sealed, stdin=b"over ssh"))  # a literal ssh-rsa line
    opened = run(ENVELOPE, "open", "-i", ssh_key, "--passphrase-env", "P", sealed, env={"P": PASSPHRASE})
    assert ok(opened).stdout == b"over ssh"
    wrong = run(ENVELOPE, "open", "-i", ssh_key, "--passphrase-env", "P", sealed, env={"P": "guess"})
    assert_error(wrong, 4, f"{ssh_key}: wrong passphrase")


def test_non_rsa_and_unfit_keys_are_refused_as_recipients(keys: Keys, tmp_path: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import NameOID

    ed_line = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    # An ssh-ed25519 line is a recipient since FORMAT.md 4.3 (tests/test_sshkeys.py); an Ed25519 key
    # in any other form (a PEM public key: a signer's) is still refused.
    assert ok(run(ENVELOPE, "seal", "-r", ed_line, stdin=b"x")).stdout.startswith(b"\x89ENV")
    ed_pem = tmp_path / "ed.pub"
    ed_pem.write_bytes(
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert_error(run(ENVELOPE, "seal", "-r", ed_pem, stdin=b"x"), 4, "Ed25519 keys cannot be recipients")
    ecdsa = tmp_path / "ecdsa.pub"
    ecdsa.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    assert_error(run(ENVELOPE, "seal", "-r", ecdsa, stdin=b"x"), 4, "ECDSA P-256 keys cannot be recipients")

    key = envelope.load_private_key(keys["alice.pem"])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    expired = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert = tmp_path / "alice.crt"
    cert.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    assert_error(run(ENVELOPE, "seal", "-r", cert, stdin=b"x"), 4, "certificate expired", "openssl x509 -pubkey")


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
        ("carol.pem", 1, "none of the given keys is a recipient"),  # wrong key
        ("garbage", 4, "not a private key"),
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


# Runs `envelope` with every background fdatasync failing (EIO), as on a disk whose write-back
# failed: the error reaches that thread only, and the final fsync then succeeds. The output is
# finished only once the thread has synced (and failed) at least once.
FAILING_WRITE_BACK = """
import contextlib, errno, os, sys, threading
import envelope.atomic as atomic
synced = threading.Event()
def fail(fd):
    synced.set()
    raise OSError(errno.EIO, os.strerror(errno.EIO))
os.fdatasync = fail
atomic._WRITEBACK_INTERVAL_S = 0.001
real_writeback = atomic._background_writeback
@contextlib.contextmanager
def writeback_that_runs(*args):
    with real_writeback(*args) as failures:
        yield failures
        synced.wait(30)
atomic._background_writeback = writeback_that_runs
from envelope.cli.main import main
sys.exit(main())
"""


def test_open_fails_on_a_write_back_error_and_leaves_nothing(keys: Keys, tmp_path: Path, out_dir: Path) -> None:
    sealed = tmp_path / "big.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", sealed, stdin=os.urandom(1 << 20)))
    out = out_dir / "plain"
    result = run(sys.executable, "-c", FAILING_WRITE_BACK, "open", "-q", "-i", keys["alice.pem"], "-o", out, sealed)
    assert_error(result, 5, f"{out}: Input/output error")
    assert list(out_dir.iterdir()) == []


def test_open_refuses_to_overwrite(keys: Keys, sealed: Path, out_dir: Path) -> None:
    existing = out_dir / "plain"
    existing.write_bytes(b"keep me")
    assert_error(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", existing, sealed), 5, "exists", "--force")
    assert existing.read_bytes() == b"keep me"
    assert list(out_dir.iterdir()) == [existing]
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", existing, "--force", sealed))
    assert existing.read_bytes() != b"keep me"


def test_the_cli_words_the_output_exists_error_itself() -> None:
    """The SDK's typed error, caught for its path: no rewriting of the SDK's message text."""
    assert cli_errors.describe(envelope.OutputExistsError("out.bin")) == "out.bin exists (use --force to replace it)"
    assert cli_errors.exit_code_for(envelope.OutputExistsError("out.bin")) == 5


# --- outputs that are not files at rest: devices, FIFOs, descriptors ---------------------------


def test_open_into_dev_null_needs_no_force(keys: Keys, sealed: Path) -> None:
    result = ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", os.devnull, sealed))
    assert result.stdout == b"" and result.stderr == b""
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_open_into_a_fifo_streams_into_it_and_never_replaces_it(
    keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path, force: list[str]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    result = run(ENVELOPE, "open", *force, "-i", keys["alice.pem"], "-o", fifo, sealed)
    data = reader.result()
    ok(result)
    assert data == plaintext.read_bytes()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and [p.name for p in tmp_path.iterdir()] == ["fifo"]


def test_seal_force_into_a_fifo_never_replaces_it(keys: Keys, plaintext: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    result = run(ENVELOPE, "seal", "-f", "-r", keys["alice.pub"], "-o", fifo, plaintext)
    data = reader.result()
    ok(result)
    assert envelope.open(data, keys["alice.pem"].read_bytes()) == plaintext.read_bytes()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and [p.name for p in tmp_path.iterdir()] == ["fifo"]


def test_open_to_dev_stdout_into_a_pipe(keys: Keys, sealed: Path, plaintext: Path) -> None:
    assert (
        ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", "/dev/stdout", sealed)).stdout == plaintext.read_bytes()
    )


def test_open_into_a_process_substitution(keys: Keys, sealed: Path, plaintext: Path) -> None:
    """`-o >(sha256sum)`: the shell passes a pipe as /dev/fd/N."""
    read_end, write_end = os.pipe()
    received = bytearray()

    def drain() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            received.extend(pipe.read())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        command = [ENVELOPE, "open", "-i", str(keys["alice.pem"]), "-o", f"/dev/fd/{write_end}", str(sealed)]
        result = subprocess.run(command, pass_fds=(write_end,), capture_output=True, timeout=TIMEOUT, check=False)
    finally:
        os.close(write_end)
    reader.join(TIMEOUT)
    ok(result)
    assert hashlib.sha256(received).hexdigest() == digest(plaintext)


NOBODY = 65534
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file to another user (chown) needs root"
)


@needs_root
@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_open_refuses_a_fifo_another_user_planted(keys: Keys, sealed: Path, tmp_path: Path, force: list[str]) -> None:
    """Issue 17 item 1: the verified plaintext went to whoever had planted a FIFO at -o (in /tmp)."""
    fifo = tmp_path / "model.bin"
    os.mkfifo(fifo)
    os.chown(fifo, NOBODY, NOBODY)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the planter, waiting
    try:
        result = run(ENVELOPE, "open", *force, "-i", keys["alice.pem"], "-o", fifo, sealed)
        assert os.read(read_end, 100) == b""
    finally:
        os.close(read_end)
    assert_error(result, 5, f"{fifo} is a FIFO that belongs to uid {NOBODY}", "refusing to write into it",
                 f"redirect stdout into it: > {fifo}")  # fmt: skip
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@needs_root
def test_keygen_force_refuses_a_fifo_another_user_planted(tmp_path: Path) -> None:
    fifo = tmp_path / "ci.key"
    os.mkfifo(fifo)
    os.chown(fifo, NOBODY, NOBODY)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        result = run(ENVELOPE, "keygen", "-t", "ed25519", "-f", "-o", fifo)
        assert os.read(read_end, 1000) == b""  # no private key went to it
    finally:
        os.close(read_end)
    assert_error(result, 5, "is a FIFO that belongs to uid 65534")


@needs_root
@pytest.mark.parametrize("command", ["open", "seal"])
def test_a_block_device_output_needs_force(
    keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path, command: str
) -> None:
    """Issue 17 item 2. A real block device node (mknod), of major number 240 (local use, no
    driver): no loop device is attached, so --force shows that the device is opened to be
    written into (No such device or address), never replaced by a file."""
    device = tmp_path / "sdz1"
    os.mknod(device, stat.S_IFBLK | 0o600, os.makedev(240, 0))
    line = assert_error(run(ENVELOPE, *output_args(command, keys, sealed, plaintext), "-o", device), 5)
    assert line == f"envelope: error: {device} is a block device, which holds data (use --force to write over it)"
    forced = run(ENVELOPE, *output_args(command, keys, sealed, plaintext), "-f", "-o", device)
    assert_error(forced, 5, f"{device}: No such device or address")
    assert stat.S_ISBLK(os.lstat(device).st_mode) and [p.name for p in tmp_path.iterdir()] == ["sdz1"]


# --- options that would do nothing are refused (issue 17, item 15 of the trial) --------------------


IDLE_OPTIONS = {
    "seal-passphrase-env": (["seal", "-r", "{alice.pub}", "--passphrase-env", "P", "-o", "{out}", "{plaintext}"],
                            "--passphrase-env does nothing here: it unlocks the --sign key, and no --sign is given"),
    "seal-passphrase-file": (["seal", "-r", "{alice.pub}", "--passphrase-file", "{plaintext}", "-o", "{out}",
                              "{plaintext}"], "--passphrase-file does nothing here: it unlocks the --sign key"),
    "seal-force-stdout": (["seal", "-r", "{alice.pub}", "-f", "{plaintext}"],
                          "--force does nothing here: it replaces an existing output file, and the output is stdout"),
    "open-force-stdout": (["open", "-i", "{alice.pem}", "--force", "-o", "-", "{sealed}"],
                          "--force does nothing here: it replaces an existing output file, and the output is stdout"),
    "rewrap-force-in-place": (["rewrap", "-i", "{alice.pem}", "--add", "{carol.pub}", "--in-place", "-f", "{copy}"],
                              "--force does nothing here: --in-place replaces FILE already"),
    "rewrap-force-stdout": (["rewrap", "-i", "{alice.pem}", "--add", "{carol.pub}", "-f", "{sealed}"],
                            "--force does nothing here"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(IDLE_OPTIONS))
def test_an_option_that_would_do_nothing_is_a_usage_error(
    keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path, case: str
) -> None:
    """`seal --passphrase-env P -r KEY` exited 0: the passphrase is for --sign keys only, and the
    user believed it had been used. Likewise --force where there is no file to replace."""
    args, message = IDLE_OPTIONS[case]
    copy = tmp_path / "copy.env"
    shutil.copy(sealed, copy)
    names = {"out": tmp_path / "out.env", "plaintext": plaintext, "sealed": sealed, "copy": copy}
    names |= {name: keys[name] for name in ("alice.pub", "alice.pem", "carol.pub")}
    result = run(ENVELOPE, *[names[arg[1:-1]] if arg.startswith("{") else arg for arg in args], env={"P": PASSPHRASE})
    assert_error(result, 2, message)
    assert result.stdout == b"" and not (tmp_path / "out.env").exists() and copy.read_bytes() == sealed.read_bytes()


def test_info_passphrase_without_verify_is_a_usage_error(sealed: Path) -> None:
    result = run(INFO, "--passphrase-env", "P", sealed, env={"P": PASSPHRASE})
    assert_error(result, 2, "--passphrase-env does nothing here: it unlocks --verify keys", tool="envelope-info")
    assert result.stdout == b""


def test_metadata_over_the_limit_is_a_usage_error(keys: Keys, plaintext: Path, tmp_path: Path) -> None:
    """Issue 17 item 17d: it exited 3, "not a valid envelope file", for an argument."""
    result = run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--meta", f"notes={'x' * 70_000}", "-o",
                 tmp_path / "out.env", plaintext)  # fmt: skip
    assert_error(result, 2, "metadata encodes to", "the limit is 65536", "--meta")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("folder", ["weights", "weights/"])
def test_sealing_a_folder_seals_it_whole(keys: Keys, tmp_path: Path, folder: str) -> None:
    """Issue 17 item 17e said how to seal a folder; issue 20 item 3 seals it (tests/test_folders.py)."""
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "w.bin").write_bytes(b"w")
    result = subprocess.run([ENVELOPE, "seal", "-r", str(keys["alice.pub"]), "-o", "w.env", folder], cwd=tmp_path,
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)  # fmt: skip
    ok(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.env", "weights"]


# --- output errors name the user's path and the real problem ------------------------------------


def output_args(command: str, keys: Keys, sealed: Path, plaintext: Path) -> list[object]:
    if command == "open":
        return ["open", "-i", keys["alice.pem"], sealed]
    return ["seal", "-r", keys["alice.pub"], plaintext]


@pytest.mark.parametrize("force", [[], ["-f"]], ids=["plain", "force"])
@pytest.mark.parametrize("command", ["open", "seal"])
def test_a_directory_output_is_named_as_such(
    keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path, command: str, force: list[str]
) -> None:
    target = tmp_path / "outdir"
    target.mkdir()
    # From stdin: a folder OUT is an error. (A file INPUT goes into an existing folder, as cp puts
    # it: tests/test_cli_batch.py.)
    *arguments, source = output_args(command, keys, sealed, plaintext)
    result = run(ENVELOPE, *arguments, *force, "-o", target, stdin=Path(str(source)).read_bytes())
    line = assert_error(result, 5)
    assert line == f"envelope: error: {target} is a directory"
    assert [p.name for p in tmp_path.iterdir()] == ["outdir"] and list(target.iterdir()) == []


def test_an_output_in_a_missing_folder_is_named_as_such(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "plain"
    line = assert_error(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", out, sealed), 5)
    assert line == f"envelope: error: {out}: the folder {tmp_path / 'missing'} does not exist"


@contextlib.contextmanager
def folder_refusing_new_files(folder: Path) -> Iterator[None]:
    """chmod 0555, or for root (whom modes do not stop) the immutable attribute."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = [lambda: folder.chmod(0o755)]
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", folder], capture_output=True).returncode == 0:
        undo = [lambda: subprocess.run(["chattr", "-i", folder], check=True)]
    else:
        pytest.skip("running as root without chattr: no way to make a folder refuse new files")
    try:
        yield
    finally:
        undo[0]()


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replaced"])
@pytest.mark.parametrize("command", ["open", "seal"])
def test_an_output_in_a_folder_refusing_new_files_is_named_as_such(
    keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path, command: str, existing: bool
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    out = folder / "out"
    if existing:
        out.write_bytes(b"old")
    with folder_refusing_new_files(folder):
        result = run(ENVELOPE, *output_args(command, keys, sealed, plaintext), *(["-f"] if existing else []), "-o", out)
    line = assert_error(result, 5, f"error: {out}: ", f"(cannot create a file in {folder})")
    assert ".partial" not in line
    assert [p.name for p in folder.iterdir()] == (["out"] if existing else [])


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
        (["rewrap", "-o", "{out}", "{out}"], "nothing to do"),
        (["open", "-i", "{alice}", "--passphrase-env", "UNSET_VARIABLE_X", "-o", "{out}"], "not set"),
        (["frobnicate"], "invalid choice"),
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
    assert_error(result, 1, "none of the given keys is a recipient")
    assert list(out_dir.iterdir()) == []
    assert ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], copy)).stdout == plaintext.read_bytes()


def test_rewrap_in_place_through_a_symlink_rewrites_its_target_and_keeps_the_link(
    keys: Keys, sealed: Path, tmp_path: Path
) -> None:
    target = tmp_path / "models" / "v3.env"
    target.parent.mkdir()
    shutil.copy(sealed, target)
    target.chmod(0o640)
    link = tmp_path / "current.env"
    link.symlink_to("models/v3.env")
    ok(run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], "--add", keys["carol.pub"], "--in-place", link))
    assert link.is_symlink() and os.readlink(link) == "models/v3.env"
    assert keys.ids["carol"] in [r.key_id for r in envelope.inspect(target).recipients]
    assert payload(target) == payload(sealed) and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.env", "models"]
    assert [p.name for p in target.parent.iterdir()] == ["v3.env"]


def test_rewrap_in_place_refuses_what_is_not_a_regular_file(keys: Keys) -> None:
    assert_error(
        run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], "--add", keys["carol.pub"], "--in-place", os.devnull),
        2,
        f"--in-place needs a regular file: {os.devnull} is not one",
    )


def test_open_force_through_a_symlink_writes_its_target(
    keys: Keys, sealed: Path, plaintext: Path, tmp_path: Path
) -> None:
    target = tmp_path / "plain.bin"
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to("plain.bin")
    assert_error(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", link, sealed), 5, f"{link} exists")
    ok(run(ENVELOPE, "open", "-f", "-i", keys["alice.pem"], "-o", link, sealed))
    assert link.is_symlink() and target.read_bytes() == plaintext.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_open_force_refuses_a_symlink_to_a_missing_file(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.bin"
    link.symlink_to("missing.bin")
    line = assert_error(run(ENVELOPE, "open", "-f", "-i", keys["alice.pem"], "-o", link, sealed), 5)
    assert line == f"envelope: error: {link} is a symbolic link to a missing file (not replaced)"
    assert link.is_symlink() and [p.name for p in tmp_path.iterdir()] == ["link.bin"]


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
    assert_error(result, 1, "none of the given keys")
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
    assert sizes["plaintext"]["min"] + sizes["overhead"]["max"] + sizes["footer"] == sizes["payload"]
    assert sizes["plaintext"]["max"] + sizes["overhead"]["min"] + sizes["footer"] == sizes["payload"]
    return sizes


def test_info_json_schema_and_size_breakdown(keys: Keys, sealed: Path) -> None:
    document = json.loads(ok(run(INFO, "--json", sealed)).stdout)
    assert document["schema_version"] == 2
    (record,) = document["files"]
    assert record["path"] == str(sealed)
    assert record["format_version"] == 1
    assert record["recipients"] == [
        {"type": "rsa-oaep-sha256", "key_id": keys.ids["alice"]},
        {"type": "rsa-oaep-sha256", "key_id": keys.ids["bob"]},
    ]
    assert record["metadata"] == {"name": "demo"}
    assert record["signer"] is None and record["sizes"]["footer"] == 0  # not signed
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
    args = ("open", "-i", keys["dave.pem"], "-o", out_dir / "plain", sealed)
    code, output = run_in_pty(ENVELOPE, *args, answer=["nope", "nein", "non"])
    assert code == 4, output
    assert output.count(f"Passphrase for {keys['dave.pem']}") == 3, output  # three tries, as sudo and ssh give
    assert output.count("envelope: note: wrong passphrase, try again") == 2, output
    assert "envelope: error:" in output and "wrong passphrase" in output and "Traceback" not in output
    assert list(out_dir.iterdir()) == []


def test_a_wrong_passphrase_at_the_terminal_is_asked_again(keys: Keys, tmp_path: Path, out_dir: Path) -> None:
    """Issue 12 item 19: one typo ended the command."""
    sealed = tmp_path / "d.env"
    ok(run(ENVELOPE, "seal", "-r", keys["dave.pub"], "-o", sealed, stdin=b"prompted"))
    args = ("open", "-i", keys["dave.pem"], "-o", out_dir / "plain", sealed)
    code, output = run_in_pty(ENVELOPE, *args, answer=["typo", "", PASSPHRASE])
    assert code == 0, output
    assert "wrong passphrase, try again" in output and "no passphrase entered, try again" in output
    assert (out_dir / "plain").read_bytes() == b"prompted"


@pytest.mark.parametrize("console", [True, False], ids=["console", "no-console"])
def test_passphrase_terminal_on_windows_is_the_console(monkeypatch: pytest.MonkeyPatch, console: bool) -> None:
    """Windows has no /dev/tty (nor O_NOCTTY): getpass reads the console, CONIN$, so that is
    what must be there. Simulated: this suite runs on Linux."""
    from envelope.cli import passphrase

    real_open, opened = os.open, []

    def fake_open(path: str, flags: int, *args: int) -> int:
        opened.append(path)
        if not console:
            raise FileNotFoundError(2, "The system cannot find the file specified", path)
        return real_open(os.devnull, os.O_RDWR)

    refusal = None
    with monkeypatch.context() as windows:  # undone before any failure is reported (pathlib reads os.name)
        windows.setattr(os, "name", "nt")
        windows.delattr(os, "O_NOCTTY")
        windows.setattr(os, "open", fake_open)
        try:
            passphrase._require_terminal()
        except cli_errors.CliError as exc:
            refusal = str(exc)
    assert opened == ["CONIN$"]
    assert (refusal is None) == console
    assert console or "no terminal to ask it on" in str(refusal)


def test_seal_refuses_binary_output_to_a_terminal(keys: Keys, plaintext: Path) -> None:
    code, output = run_in_pty(ENVELOPE, "seal", "-r", keys["alice.pub"], plaintext)
    assert code == 2
    assert (
        output.strip() == "envelope: error: refusing to write binary data to a terminal: use -o FILE or redirect stdout"
    )


@pytest.mark.parametrize("output", ["/dev/stdout", "/dev/tty"])
def test_seal_refuses_binary_output_to_a_terminal_named_with_o(keys: Keys, plaintext: Path, output: str) -> None:
    code, output_seen = run_in_pty(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", output, plaintext)
    assert code == 2, output_seen
    assert output_seen.strip() == f"envelope: error: refusing to write binary data to a terminal ({output})"


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


def test_envelope_alone_shows_its_commands() -> None:
    """As git does: no command is a usage error (exit 2) that shows the commands, not one line."""
    result = run(ENVELOPE)
    assert result.returncode == 2 and result.stdout == b""
    text = result.stderr.decode()
    assert text.startswith("usage: envelope") and all(c in text for c in ("keygen", "seal", "open", "rewrap"))
