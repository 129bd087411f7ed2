"""The edges a new user hits on the command line (issue 12 items 7, 15, 16, 18, 19) and terminal
escapes in messages (issue 11 item 5): the real console scripts, in subprocesses or under a
pseudo-terminal of a chosen width."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cli_support import (
    ENVELOPE,
    INFO,
    PASSPHRASE,
    TIMEOUT,
    Keys,
    assert_error,
    needs_console_scripts,
    ok,
    run,
    run_in_pty,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519
from forge import chunk_message, fernet_token, forge

import envelope
from envelope._datakey import DataKey
from envelope._format import Header, encode_header
from envelope.cli import errors as cli_errors
from envelope.recipients import RsaRecipient

pytestmark = needs_console_scripts

ROOT = Path(__file__).resolve().parent.parent
# Erases the screen, moves to the top and prints a fake all-clear in green: what a crafted file
# could make a terminal show instead of the error.
ESCAPES = "\x1b[2J\x1b[H\x1b[32mOK: verified\x1b[0m\u202e"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def sealed(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sealed") / "model.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--meta", "name=demo", "-o", path, stdin=b"weights" * 1000))
    return path


# --- escapes (issue 11 item 5) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def escaping_file(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file for alice whose ``critical`` names an unknown extension full of terminal escapes
    (R12: every reader refuses it, and says which extension)."""
    key = envelope.load_private_key(keys["alice.pem"])
    data_key = DataKey(os.urandom(32))
    entry = RsaRecipient(key.public_key()).wrap(data_key)
    header = encode_header(
        Header(chunk_size=16, recipients=(entry,), commit=data_key.commitment(), critical=(ESCAPES,))
    )
    token = fernet_token(data_key, chunk_message(0, True, b"x"))
    path = tmp_path_factory.mktemp("crafted") / "crafted.env"
    path.write_bytes(forge(key, data_key, [token], header=header))
    return path


def _assert_escaped(line: str) -> None:
    assert "\x1b" not in line and "\u202e" not in line
    assert "\\x1b[2J" in line or "\\u001b[2J" in line  # shown, harmlessly
    assert "\\u202e" in line


@pytest.mark.parametrize(
    "command",
    [
        ["envelope-info"],
        ["envelope-info", "--json"],
        ["envelope", "open", "-i", "alice.pem", "-o", "OUT"],
        ["envelope", "verify", "-i", "alice.pem"],
        ["envelope", "rewrap", "-i", "alice.pem", "--add", "bob.pub", "-o", "OUT"],
    ],
    ids=["info", "info-json", "open", "verify", "rewrap"],
)
def test_unknown_critical_names_are_escaped_on_stderr(
    command: list[str], keys: Keys, escaping_file: Path, tmp_path: Path
) -> None:
    tool = INFO if command[0] == "envelope-info" else ENVELOPE
    args = [keys[a] if a.endswith((".pem", ".pub")) else tmp_path / "out" if a == "OUT" else a for a in command[1:]]
    result = run(tool, *args, escaping_file)
    line = assert_error(result, 3, "extensions this reader does not implement", tool=command[0])
    _assert_escaped(line)
    assert b"\x1b" not in result.stdout


def test_the_sdk_message_escapes_critical_names_itself(escaping_file: Path) -> None:
    with pytest.raises(envelope.UnsupportedError) as refused:
        envelope.inspect(escaping_file)
    _assert_escaped(str(refused.value))


def test_file_names_are_escaped_in_every_line(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    """A file name is as much the file's author's as its header (a glob picks it up)."""
    odd = tmp_path / "model\x1b[2J.env"
    odd.write_bytes(sealed.read_bytes())
    verified = ok(run(ENVELOPE, "verify", "-i", keys["alice.pem"], odd))
    shown = run(INFO, odd)
    missing = run(INFO, tmp_path / "gone\x1b[2J.env")
    for output in (verified.stdout, verified.stderr, shown.stdout, shown.stderr, missing.stderr):
        assert b"\x1b" not in output
    assert "model\\u001b[2J.env" in verified.stdout.decode() and "model\\u001b[2J.env" in shown.stdout.decode()
    assert "gone\\u001b[2J.env" in assert_error(missing, 5, "No such file", tool="envelope-info")


def not_utf8(folder: Path, name: bytes) -> Path:
    """A path whose last component is ``name``, bytes that are not UTF-8 (Python holds them as
    surrogate escapes, and gives the bytes back to the system)."""
    return folder / os.fsdecode(name)


def test_a_file_name_that_is_not_utf8_is_shown_escaped_as_bytes(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    """Issue 17 item 18: ``mod\\udce9l.env`` was shown for the file name bytes ``mod\\xe9l.env``."""
    odd = not_utf8(tmp_path, b"mod\xe9l.env")
    odd.write_bytes(sealed.read_bytes())
    shown = f"{tmp_path}/mod\\xe9l.env"
    assert ok(run(INFO, odd)).stdout.decode().startswith(f"{shown}: envelope file")
    assert ok(run(ENVELOPE, "verify", "-i", keys["alice.pem"], odd)).stdout.decode().startswith(f"OK {shown} (")
    missing = not_utf8(tmp_path, b"gon\xe9.env")
    assert_error(run(ENVELOPE, "open", "-i", keys["alice.pem"], missing), 5, f"{tmp_path}/gon\\xe9.env: No such file")
    assert_error(run(ENVELOPE, "keygen", "-q", odd), 2, f"unrecognized arguments: {shown} (see")  # argparse's


def test_info_json_keeps_the_bytes_of_a_file_name_that_is_not_utf8(sealed: Path, tmp_path: Path) -> None:
    """``path`` is the name with U+FFFD for each byte that is not UTF-8, and ``path_bytes_hex`` the
    name's bytes, present only then: the file can be named again from the JSON."""
    odd = not_utf8(tmp_path, b"mod\xe9l.env")
    odd.write_bytes(sealed.read_bytes())
    missing = not_utf8(tmp_path, b"gon\xe9.env")
    result = run(INFO, "--json", odd, sealed, missing)
    assert b"\\udc" not in result.stdout
    first, second, third = json.loads(result.stdout)["files"]
    assert first["path"] == f"{tmp_path}/mod\ufffdl.env" and first["error"] is None
    assert os.path.samefile(bytes.fromhex(first["path_bytes_hex"]), odd)
    assert second["path"] == str(sealed) and "path_bytes_hex" not in second  # UTF-8: as before
    assert bytes.fromhex(third["path_bytes_hex"]) == os.fsencode(missing)
    assert third["error"]["message"] == f"{tmp_path}/gon\\xe9.env: No such file or directory"


def test_a_passphrase_prompt_names_a_key_file_that_is_not_utf8(keys: Keys, sealed: Path, tmp_path: Path) -> None:
    key = not_utf8(tmp_path, b"d\xe9ve.pem")
    key.write_bytes(keys["dave.pem"].read_bytes())
    key.chmod(0o600)
    sealed_for_dave = tmp_path / "d.env"
    sealed_for_dave.write_bytes(envelope.seal(b"for dave", envelope.load_public_key(keys["dave.pub"])))
    code, output = run_in_pty(ENVELOPE, "open", "-i", key, "-o", tmp_path / "plain", sealed_for_dave, answer=PASSPHRASE)
    assert code == 0, output
    assert f"Passphrase for {tmp_path}/d\\xe9ve.pem: " in output
    assert (tmp_path / "plain").read_bytes() == b"for dave"


def test_the_error_reporter_escapes_whatever_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    cli_errors.report("envelope", f"a message with {ESCAPES}")
    (line,) = capsys.readouterr().err.splitlines()
    _assert_escaped(line)


# --- '-' for stdin (issue 12 item 15) --------------------------------------------------------


def test_recipients_file_from_stdin(keys: Keys, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"from a file")
    sealed = tmp_path / "s.env"
    ok(run(ENVELOPE, "seal", "-R", "-", "-o", sealed, plain, stdin=keys["bob.pub"].read_bytes()))
    assert ok(run(ENVELOPE, "open", "-i", keys["bob.pem"], sealed)).stdout == b"from a file"


def test_private_key_from_stdin(keys: Keys, sealed: Path) -> None:
    opened = ok(run(ENVELOPE, "open", "-i", "-", sealed, stdin=keys["alice.pem"].read_bytes()))
    assert opened.stdout == b"weights" * 1000
    bad = run(ENVELOPE, "open", "-i", "-", sealed, stdin=b"not a key")
    assert_error(bad, 4, "stdin: ")


def test_an_encrypted_private_key_from_stdin_takes_its_passphrase(keys: Keys, tmp_path: Path) -> None:
    sealed = tmp_path / "d.env"
    ok(run(ENVELOPE, "seal", "-r", keys["dave.pub"], "-o", sealed, stdin=b"for dave"))
    key = keys["dave.pem"].read_bytes()
    opened = run(ENVELOPE, "open", "-i", "-", "--passphrase-env", "P", sealed, stdin=key, env={"P": PASSPHRASE})
    assert ok(opened).stdout == b"for dave"
    assert_error(run(ENVELOPE, "open", "-i", "-", sealed, stdin=key), 4, "no terminal")


def test_info_and_verify_read_stdin(keys: Keys, sealed: Path) -> None:
    data = sealed.read_bytes()
    text = ok(run(INFO, "-", stdin=data)).stdout.decode()  # a pipe: sizes unknown
    assert text.startswith("stdin: envelope file") and '"name": "demo"' in text and "read from a pipe" in text
    with sealed.open("rb") as redirected:  # a file on stdin (< FILE): seekable, sizes known
        result = subprocess.run([INFO, "-"], stdin=redirected, capture_output=True, timeout=TIMEOUT, check=False)
    assert f"total (file size) {len(data)} bytes" in " ".join(ok(result).stdout.decode().split())
    verified = ok(run(INFO, "--verify", keys["alice.pem"], "-", stdin=data)).stdout.decode()
    assert "metadata (verified)" in verified  # header read once, then the whole pipe authenticated
    out = ok(run(ENVELOPE, "verify", "-i", keys["alice.pem"], "-", stdin=data)).stdout.decode()
    assert out.startswith("OK stdin (7000 bytes of plaintext)")
    damaged = data[:-1] + bytes([data[-1] ^ 1])
    assert_error(run(ENVELOPE, "verify", "-i", keys["alice.pem"], "-", stdin=damaged), 1, "stdin: ")


@pytest.mark.parametrize(
    "args",
    [
        ["seal", "-R", "-"],  # INPUT omitted: stdin too
        ["seal", "-r", "-", "-R", "-", "INPUT"],
        ["open", "-i", "-", "-"],
        ["verify", "-i", "KEY", "-", "-"],
        ["verify", "-i", "-", "-"],
    ],
)
def test_only_one_input_can_be_stdin(args: list[str], keys: Keys, sealed: Path) -> None:
    args = [str(sealed) if a == "INPUT" else str(keys["alice.pem"]) if a == "KEY" else a for a in args]
    assert_error(run(ENVELOPE, *args, stdin=b""), 2, "only one input can be stdin")


def test_info_reads_one_stdin_only(sealed: Path) -> None:
    assert_error(run(INFO, "-", "-", stdin=sealed.read_bytes()), 2, "only one input", tool="envelope-info")


# --- python -m (issue 12 item 16) ------------------------------------------------------------


def test_python_m_envelope_is_the_envelope_program(sealed: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "envelope", "--help"], capture_output=True, timeout=TIMEOUT)
    assert ok(result).stdout.decode().startswith("usage: envelope ")
    info = subprocess.run(
        [sys.executable, "-m", "envelope.cli.info", sealed], capture_output=True, timeout=TIMEOUT, check=False
    )
    assert f"{sealed}: envelope file" in ok(info).stdout.decode()


# --- packaging and --help (issue 12 item 18) -------------------------------------------------


def test_license_file_is_the_apache_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in pyproject and "authors = [" in pyproject


@pytest.mark.parametrize(
    "args", [[ENVELOPE], [ENVELOPE, "keygen"], [ENVELOPE, "seal"], [ENVELOPE, "open"], [ENVELOPE, "verify"], [INFO]]
)
def test_help_points_to_nothing_that_is_not_installed(args: list[str]) -> None:
    out = ok(run(*args, "--help")).stdout.decode()
    assert "docs/" not in out and "spec/" not in out and ".md" not in out


def test_the_bug_line_says_to_whom_and_what_to_include() -> None:
    hint = cli_errors.BUG_HINT
    assert "maintainers of envelope-ml" in hint and "envelope --version" in hint and "ENVELOPE_DEBUG=1" in hint


# --- pipes, terminals, passphrases (issue 12 item 19) ----------------------------------------


def test_a_reader_that_leaves_early_ends_the_command_quietly(keys: Keys, tmp_path: Path) -> None:
    """``envelope open ... | head -c 10`` said "error: broken pipe" and exited 5."""
    big = tmp_path / "big.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", big, stdin=os.urandom(4 << 20)))
    for command in (f"{ENVELOPE} open -i {keys['alice.pem']} {big}", f"{ENVELOPE} seal -r {keys['alice.pub']} {big}"):
        shell = f"set -o pipefail; {command} | head -c 10 > /dev/null"
        result = subprocess.run(["bash", "-c", shell], capture_output=True, timeout=TIMEOUT, check=False)
        assert result.returncode in (0, 141), result.stderr  # as coreutils: 128 + SIGPIPE, or done in time
        assert result.stderr == b""


def test_info_into_head_is_quiet(sealed: Path) -> None:
    shell = f"set -o pipefail; {INFO} {' '.join([str(sealed)] * 400)} | head -n 1 > /dev/null"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 141 and result.stderr == b""


def test_open_refuses_plaintext_to_a_terminal_unless_asked(keys: Keys, sealed: Path) -> None:
    code, output = run_in_pty(ENVELOPE, "open", "-i", keys["alice.pem"], sealed)
    assert code == 2, output
    assert output.strip().startswith("envelope: error: refusing to write the plaintext to a terminal")
    assert "weights" not in output and "-o -" in output
    code, output = run_in_pty(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", "-", sealed)
    assert code == 0 and "weightsweights" in output


@pytest.mark.parametrize("quiet", [False, True], ids=["note", "quiet"])
def test_seal_from_a_terminal_says_that_it_reads_stdin(keys: Keys, tmp_path: Path, quiet: bool) -> None:
    """Issue 17 item 17c: `envelope seal` with a terminal on stdin waited silently."""
    controller, terminal = os.openpty()
    out = tmp_path / "typed.env"
    command = [ENVELOPE, "seal", *(["-q"] if quiet else []), "-r", str(keys["alice.pub"]), "-o", str(out)]
    try:
        child = subprocess.Popen(command, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.write(controller, b"typed plaintext\n\x04")  # a line, then Ctrl-D at the start of the next
        _, err = child.communicate(timeout=TIMEOUT)
    finally:
        os.close(terminal)
        os.close(controller)
    assert child.returncode == 0, err
    note = "envelope: note: reading the plaintext to seal from the terminal (stdin); end it with Ctrl-D, or give INPUT"
    assert err.decode().splitlines() == ([] if quiet else [note])
    assert envelope.open(out.read_bytes(), keys["alice.pem"].read_bytes()) == b"typed plaintext\n"


def test_seal_from_a_pipe_says_nothing(keys: Keys, tmp_path: Path) -> None:
    result = ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", tmp_path / "piped.env", stdin=b"piped"))
    assert result.stderr == b""


@pytest.mark.parametrize("answers", [["one", "two"], ["", ""]], ids=["passphrases-differ", "empty-passphrase"])
def test_keygen_prompt_mismatch_and_empty_passphrase_exit_alike(answers: list[str], tmp_path: Path) -> None:
    code, output = run_in_pty(ENVELOPE, "keygen", "-o", tmp_path / "k", "--passphrase-prompt", answer=answers)
    assert code == 4, output  # one documented code for every passphrase that cannot serve
    assert not (tmp_path / "k").exists()
    empty = run(ENVELOPE, "keygen", "-o", tmp_path / "k", "--passphrase-env", "P", env={"P": ""})
    assert_error(empty, 4, "empty passphrase")


def test_the_progress_bar_fits_a_narrow_terminal(keys: Keys, tmp_path: Path) -> None:
    """In a 40-column pane every redraw of the 80-column bar wrapped and left stale lines."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(24 << 20))
    for columns in (40, 20):
        code, output = run_in_pty(
            ENVELOPE, "seal", "-r", keys["alice.pub"], "-f", "-o", tmp_path / "big.env", big, columns=columns
        )
        assert code == 0, output
        draws = [draw for draw in re.split(r"\r\n?", output) if draw]  # each redraw, and the erasing blanks
        assert any("sealing" in draw for draw in draws), output
        assert max(len(draw) for draw in draws) < columns, draws  # the last column is never written
    code, output = run_in_pty(ENVELOPE, "seal", "-r", keys["alice.pub"], "-f", "-o", tmp_path / "big.env", big)
    assert "sealing [" in output and "MB/s" in output  # room for all of it at 80 columns


# --- only the public API (issue 10 item 5) ---------------------------------------------------


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in a module, function-level ones included."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
        elif isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("module", sorted((ROOT / "envelope" / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_cli_uses_only_the_public_api(module: Path) -> None:
    public_submodules = {"envelope", "envelope.limits", "envelope.pkcs11", "envelope.aws_kms"}
    for level, name in _imports(module):
        if level == 0 and name.split(".")[0] == "envelope":
            assert name in public_submodules or name.startswith("envelope.cli"), (module.name, name)
        assert level <= 1, (module.name, name)  # nothing reached with "from .." (the SDK's insides)
    if module.name == "info.py":  # envelope-info shares helpers with verify, not the subcommand itself
        assert (1, "verify") not in _imports(module)


def test_a_given_passphrase_serves_encrypted_keys_only_from_stdin_too(keys: Keys, sealed: Path) -> None:
    """As for -i key files: one passphrase for a list of keys of which some are not encrypted."""
    opened = run(ENVELOPE, "open", "-i", "-", "--passphrase-env", "P", sealed, stdin=keys["alice.pem"].read_bytes(),
                 env={"P": PASSPHRASE})  # fmt: skip
    assert ok(opened).stdout == b"weights" * 1000


def test_the_open_progress_bar_counts_to_the_plaintext_size(tmp_path):
    """The SDK's progress callback counts plaintext bytes: 100 % is the plaintext's size, not the
    sealed file's (which made the bar stop short of the end)."""
    from envelope.cli import streams

    key = envelope.generate_private_key(2048)
    sealed = tmp_path / "x.env"
    sealed.write_bytes(envelope.seal(b"p" * 100_000, key.public_key(), chunk_size=4096))
    assert streams.plaintext_size(str(sealed)) == envelope.inspect(sealed).plaintext_size_max
    assert 100_000 <= streams.plaintext_size(str(sealed)) < 100_016 < sealed.stat().st_size
    assert streams.plaintext_size(str(tmp_path / "missing.env")) is None


@pytest.mark.parametrize("kind", ["ed25519", "dsa"])
def test_a_key_policy_refusal_is_one_line_whatever_warnings_show(kind: str, tmp_path: Path) -> None:
    """Issue 17 item 14: with cryptography 51, a deprecation warning (three lines) came before the
    one-line error for a non-RSA key. PYTHONWARNINGS=always shows any warning that is raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # making a DSA key warns in cryptography 51
        key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else dsa.generate_private_key(1024)
    public = tmp_path / "key.pub"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = run(ENVELOPE, "seal", "-r", public, stdin=b"x", env={"PYTHONWARNINGS": "always"})
    assert_error(result, 4, "keys cannot be recipients")


@pytest.mark.parametrize("form", ["pkcs8", "encrypted-pkcs8"])
def test_a_dsa_key_given_as_a_signer_is_one_line(form: str, tmp_path: Path) -> None:
    """The signing side of item 14: a DSA key for --sign (an encrypted one shows its algorithm
    only once decrypted) or --signed-by is refused in one line, whatever warnings show."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # making a DSA key warns in cryptography 51
        key = dsa.generate_private_key(2048)
    encryption = (
        serialization.BestAvailableEncryption(b"pw") if form == "encrypted-pkcs8" else serialization.NoEncryption()
    )
    private, public = tmp_path / "dsa.key", tmp_path / "dsa.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    env = {"PYTHONWARNINGS": "always", "P": "pw"}
    passphrase = ["--passphrase-env", "P"] if form == "encrypted-pkcs8" else []
    alice = tmp_path / "alice.key"
    ok(run(ENVELOPE, "keygen", "-q", "-o", alice))
    sign = run(ENVELOPE, "seal", "-r", f"{alice}.pub", "--sign", private, *passphrase, stdin=b"x", env=env)
    assert_error(sign, 4, "a DSA key cannot sign")
    sealed = tmp_path / "x.env"
    ok(run(ENVELOPE, "seal", "-r", f"{alice}.pub", "-o", sealed, stdin=b"x"))
    pinned = run(ENVELOPE, "open", "-i", alice, "--signed-by", public, "-o", tmp_path / "x", sealed, env=env)
    assert_error(pinned, 4, "a DSA key cannot sign")
