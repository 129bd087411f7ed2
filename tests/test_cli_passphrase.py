"""The CLI with passphrases (``seal -p``) and shared Fernet keys (``--fernet-key-file``): spec
sections 4.5 and 4.6 as docs/CLI.md describes them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_support import ENVELOPE, INFO, PASSPHRASE, Keys, assert_error, needs_console_scripts, ok, run, run_in_pty
from cryptography.fernet import Fernet

import envelope

pytestmark = needs_console_scripts
CHEAP = ("--work-factor", "10")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.bin"
    path.write_bytes(os.urandom(70_000))
    return path


@pytest.fixture
def fernet_key(tmp_path: Path) -> Path:
    path = tmp_path / "fernet.key"
    path.write_bytes(Fernet.generate_key() + b"\n")  # as scripts usually write it
    path.chmod(0o600)
    return path


def test_seal_and_open_with_a_passphrase_from_the_environment(tmp_path: Path, plain: Path) -> None:
    sealed, out = tmp_path / "p.env", tmp_path / "out"
    env = {"FILE_PASS": "Crème brûlée"}
    ok(run(ENVELOPE, "seal", "-p", "--passphrase-env", "FILE_PASS", *CHEAP, "-o", sealed, plain, env=env))
    ok(run(ENVELOPE, "open", "--passphrase-env", "FILE_PASS", "-o", out, sealed, env=env))
    assert out.read_bytes() == plain.read_bytes()
    assert envelope.open(sealed.read_bytes(), envelope.Passphrase("Crème brûlée")) == plain.read_bytes()
    record = json.loads(ok(run(INFO, "--json", sealed)).stdout)["files"][0]
    assert record["recipients"] == [{"type": "scrypt", "key_id": None, "work_factor": 10}]
    assert "work factor 10 (scrypt N = 2^10, 1 MiB)" in ok(run(INFO, sealed)).stdout.decode()


def test_a_wrong_passphrase_fails_as_a_modified_file_does(tmp_path: Path, plain: Path) -> None:
    sealed = tmp_path / "p.env"
    (tmp_path / "right").write_text("right\n")
    (tmp_path / "wrong").write_text("wrong\n")
    ok(run(ENVELOPE, "seal", "-p", "--passphrase-file", tmp_path / "right", *CHEAP, "-o", sealed, plain))
    result = run(ENVELOPE, "open", "--passphrase-file", tmp_path / "wrong", "-o", tmp_path / "out", sealed)
    assert_error(result, 1, "header authentication failed")
    assert not (tmp_path / "out").exists()


def test_seal_p_asks_twice_on_the_terminal_and_open_asks_once(tmp_path: Path, plain: Path) -> None:
    sealed, out = tmp_path / "p.env", tmp_path / "out"
    code, output = run_in_pty(ENVELOPE, "seal", "-p", *CHEAP, "-o", sealed, plain, answer=[PASSPHRASE, PASSPHRASE])
    assert code == 0, output
    assert "Passphrase for the file" in output and "Repeat the passphrase" in output and PASSPHRASE not in output
    code, output = run_in_pty(ENVELOPE, "open", "-o", out, sealed, answer=PASSPHRASE)
    assert code == 0, output
    assert out.read_bytes() == plain.read_bytes()
    code, output = run_in_pty(ENVELOPE, "seal", "-p", "-o", tmp_path / "q.env", plain, answer=["one", "two"])
    assert code == 4 and "do not match" in output
    assert not (tmp_path / "q.env").exists()


def test_a_batch_on_several_processes_asks_for_the_passphrase_once(tmp_path: Path) -> None:
    """Seventy files on two processes (-j 2): one prompt on the terminal for the seal (asked twice,
    as always) and one for the open, not one per worker racing for the terminal."""
    inputs = [tmp_path / f"f{i:02d}.bin" for i in range(70)]
    for path in inputs:
        path.write_bytes(os.urandom(100))
    sealed, out = tmp_path / "sealed", tmp_path / "out"
    sealed.mkdir()
    out.mkdir()
    code, output = run_in_pty(ENVELOPE, "seal", "-p", *CHEAP, "-j", "2", "-q", "-o", sealed, *inputs,
                              answer=[PASSPHRASE, PASSPHRASE])  # fmt: skip
    assert code == 0, output
    assert output.count("Passphrase for the file") == 1 and output.count("Repeat the passphrase") == 1
    code, output = run_in_pty(ENVELOPE, "open", "-j", "2", "-q", "-o", out, *sorted(sealed.iterdir()),
                              answer=PASSPHRASE)  # fmt: skip
    assert code == 0, output
    assert output.count("Passphrase for the file") == 1
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in inputs)


def test_without_a_terminal_a_passphrase_must_come_from_a_variable_or_a_file(tmp_path: Path, plain: Path) -> None:
    assert_error(run(ENVELOPE, "seal", "-p", "-o", tmp_path / "p.env", plain), 4, "no terminal")
    assert not (tmp_path / "p.env").exists()


def test_generate_passphrase_prints_it_once_on_stderr(tmp_path: Path, plain: Path) -> None:
    sealed = tmp_path / "g.env"
    result = ok(run(ENVELOPE, "seal", "--generate-passphrase", *CHEAP, "-o", sealed, plain))
    (line,) = [x for x in result.stderr.decode().splitlines() if "passphrase" in x]
    secret = line.rsplit(" ", 1)[1]
    assert len(secret) == 29 and secret.count("-") == 4 and result.stdout == b""
    assert envelope.open(sealed.read_bytes(), envelope.Passphrase(secret)) == plain.read_bytes()
    again = ok(run(ENVELOPE, "seal", "--generate-passphrase", *CHEAP, "-o", tmp_path / "h.env", plain))
    assert again.stderr != result.stderr


def test_a_passphrase_is_the_only_recipient(tmp_path: Path, plain: Path, fernet_key: Path) -> None:
    (tmp_path / "pass").write_text("pw\n")
    result = run(ENVELOPE, "seal", "-p", "--passphrase-file", tmp_path / "pass", "--fernet-key-file", fernet_key,
                 "-o", tmp_path / "x.env", plain)  # fmt: skip
    assert_error(result, 2, "only recipient")


def test_passphrase_options_without_p_or_sign_do_nothing_and_say_so(tmp_path: Path, plain: Path) -> None:
    (tmp_path / "pass").write_text("pw\n")
    result = run(ENVELOPE, "seal", "--passphrase-file", tmp_path / "pass", "-o", tmp_path / "x.env", plain)
    assert_error(result, 2, "does nothing", "add -p")


def test_work_factor_limits(tmp_path: Path, plain: Path) -> None:
    sealed = tmp_path / "p.env"
    env = {"P": "pw"}
    ok(run(ENVELOPE, "seal", "-p", "--passphrase-env", "P", "--work-factor", "12", "-o", sealed, plain, env=env))
    result = run(ENVELOPE, "open", "--passphrase-env", "P", "--max-work-factor", "11", "-o", tmp_path / "o", sealed,
                 env=env)  # fmt: skip
    assert_error(result, 3, "exceeds the limit of 11")
    ok(run(ENVELOPE, "open", "--passphrase-env", "P", "--max-work-factor", "12", "-o", tmp_path / "o", sealed, env=env))
    assert_error(run(ENVELOPE, "seal", "-p", "--work-factor", "31", plain), 2, "1 to 30")


def test_a_shared_fernet_key_seals_opens_and_rewraps(tmp_path: Path, plain: Path, fernet_key: Path, keys: Keys) -> None:
    sealed, out = tmp_path / "f.env", tmp_path / "out"
    ok(run(ENVELOPE, "seal", "--fernet-key-file", fernet_key, "-o", sealed, plain))
    ok(run(ENVELOPE, "open", "--fernet-key-file", fernet_key, "-o", out, sealed))
    assert out.read_bytes() == plain.read_bytes()
    no_key = run(ENVELOPE, "open", "-o", tmp_path / "no", sealed)  # no passphrase is asked: none would serve
    assert_error(no_key, 1, "not sealed with a passphrase")
    key_id = envelope.FernetKey(fernet_key.read_bytes()).key_id
    record = json.loads(ok(run(INFO, "--json", sealed)).stdout)["files"][0]
    assert record["recipients"] == [{"type": "fernet", "key_id": key_id}]
    # To an RSA key, and the shared key removed by its key id.
    ok(run(ENVELOPE, "rewrap", "--fernet-key-file", fernet_key, "--add", keys["alice.pub"], "--remove", key_id,
           "--in-place", sealed))  # fmt: skip
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", tmp_path / "again", sealed))
    assert_error(run(ENVELOPE, "open", "--fernet-key-file", fernet_key, "-o", tmp_path / "x", sealed), 1, "recipient")


def test_keygen_makes_a_shared_fernet_key_that_seals_and_opens(tmp_path: Path, plain: Path) -> None:
    key_path, sealed, out = tmp_path / "team.fernet", tmp_path / "m.env", tmp_path / "out"
    printed = ok(run(ENVELOPE, "keygen", "--type", "fernet", "-o", key_path)).stdout.decode()
    text = key_path.read_bytes()
    assert oct(key_path.stat().st_mode & 0o777) == "0o600" and not Path(f"{key_path}.pub").exists()
    assert Fernet(text.strip()).decrypt(Fernet(text.strip()).encrypt(b"x")) == b"x"  # Fernet's own form
    assert text.endswith(b"\n") and text.strip().decode() not in printed  # the key is never printed
    key_id = envelope.FernetKey(text).key_id
    assert f"key id:      {key_id}" in printed
    ok(run(ENVELOPE, "seal", "--fernet-key-file", key_path, "-o", sealed, plain))
    ok(run(ENVELOPE, "open", "--fernet-key-file", key_path, "-o", out, sealed))
    assert out.read_bytes() == plain.read_bytes()
    assert_error(run(ENVELOPE, "keygen", "--type", "fernet", "-o", key_path), 5, "exists")
    assert key_path.read_bytes() == text  # not replaced without --force
    quiet = ok(run(ENVELOPE, "keygen", "--type", "fernet", "-q", "-f", "-o", key_path)).stdout.decode()
    assert quiet.strip() == envelope.FernetKey(key_path.read_bytes()).key_id != key_id
    env = {"P": "secret"}
    result = run(ENVELOPE, "keygen", "--type", "fernet", "-f", "-o", key_path, "--passphrase-env", "P", env=env)
    assert_error(result, 2, "not encrypted")


def test_a_shared_key_file_readable_by_others_is_warned_about_as_such(tmp_path: Path, plain: Path,
                                                                    fernet_key: Path) -> None:  # fmt: skip
    fernet_key.chmod(0o644)
    result = ok(run(ENVELOPE, "seal", "--fernet-key-file", fernet_key, "-o", tmp_path / "m.env", plain))
    assert f"warning: shared key file {fernet_key} is accessible by other users" in result.stderr.decode()
    result = run(ENVELOPE, "open", "--fernet-key-file", fernet_key, "-o", tmp_path / "x", tmp_path / "m.env")
    assert result.returncode == 0 and "private key" not in result.stderr.decode()


def test_a_bad_fernet_key_file_is_a_key_error(tmp_path: Path, plain: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    assert_error(run(ENVELOPE, "seal", "--fernet-key-file", bad, "-o", tmp_path / "x.env", plain), 4, "Fernet key")


def test_rewrap_from_keys_to_a_passphrase_and_back(tmp_path: Path, plain: Path, keys: Keys) -> None:
    sealed = tmp_path / "k.env"
    env = {"NEW": "new words", "OLD": "new words"}
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", sealed, plain))
    result = run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], "--new-passphrase-env", "NEW", *CHEAP, "--in-place",
                 sealed, env=env)  # fmt: skip
    assert_error(result, 2, "only recipient")
    ok(run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], "--new-passphrase-env", "NEW", *CHEAP,
           "--remove", keys["alice.pub"], "--in-place", sealed, env=env))  # fmt: skip
    assert [r.type for r in envelope.inspect(sealed).recipients] == ["scrypt"]
    ok(run(ENVELOPE, "rewrap", "--passphrase-env", "OLD", "--add", keys["bob.pub"], "--in-place", sealed, env=env))
    assert [r.type for r in envelope.inspect(sealed).recipients] == ["rsa-oaep-sha256"]
    ok(run(ENVELOPE, "open", "-i", keys["bob.pem"], "-o", tmp_path / "out", sealed))
    assert (tmp_path / "out").read_bytes() == plain.read_bytes()


# --- envelope migrate-fernet ---------------------------------------------------------------------


def test_migrate_fernet_seals_the_tokens_plaintext(tmp_path: Path, plain: Path, fernet_key: Path, keys: Keys) -> None:
    token = tmp_path / "model.enc"
    token.write_bytes(Fernet(fernet_key.read_bytes().strip()).encrypt(plain.read_bytes()) + b"\n")
    sealed = tmp_path / "model.env"
    result = ok(run(ENVELOPE, "migrate-fernet", "--token-key-file", fernet_key, "-r", keys["alice.pub"],
                    "--fernet-key-file", fernet_key, "--meta", "from=fernet", "-o", sealed, token))  # fmt: skip
    assert f"migrated {len(plain.read_bytes())} bytes" in result.stderr.decode()
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", tmp_path / "a", sealed))
    ok(run(ENVELOPE, "open", "--fernet-key-file", fernet_key, "-o", tmp_path / "b", sealed))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == plain.read_bytes()
    piped = tmp_path / "piped.env"
    ok(run(ENVELOPE, "migrate-fernet", "--token-key-file", fernet_key, "-r", keys["bob.pub"], "-o", piped, "-",
           stdin=token.read_bytes()))  # fmt: skip
    assert envelope.open(piped.read_bytes(), envelope.load_private_key(keys["bob.pem"])) == plain.read_bytes()


def test_migrate_fernet_refuses_a_tampered_token_and_writes_nothing(
    tmp_path: Path, plain: Path, fernet_key: Path, keys: Keys
) -> None:
    token = bytearray(Fernet(fernet_key.read_bytes().strip()).encrypt(b"weights"))
    token[40] = ord("A") if token[40] != ord("A") else ord("B")
    (tmp_path / "t.enc").write_bytes(bytes(token))
    result = run(ENVELOPE, "migrate-fernet", "--token-key-file", fernet_key, "-r", keys["alice.pub"],
                 "-o", tmp_path / "t.env", tmp_path / "t.enc")  # fmt: skip
    assert_error(result, 1, "does not authenticate")
    (tmp_path / "n.enc").write_bytes(b"hello\n")
    result = run(ENVELOPE, "migrate-fernet", "--token-key-file", fernet_key, "-r", keys["alice.pub"],
                 "-o", tmp_path / "n.env", tmp_path / "n.enc")  # fmt: skip
    assert_error(result, 3, "not a Fernet token")
    assert not (tmp_path / "t.env").exists() and not (tmp_path / "n.env").exists()
