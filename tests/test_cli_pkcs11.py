"""The command line with keys on a PKCS#11 token (docs/CLI.md, "Keys on PKCS#11 tokens"): the real
console scripts against a SoftHSM2 token (tests/hsm_fixtures.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_support import ENVELOPE, INFO, assert_error, needs_console_scripts, ok, run, run_in_pty
from hsm_fixtures import PIN, Token, softhsm_token

pytestmark = needs_console_scripts


@pytest.fixture(scope="module")
def token() -> Token:
    token = softhsm_token()
    # The CLI's own keys, made by the CLI: an RSA recipient and an ECDSA signer, on the spare token.
    return token


@pytest.fixture(scope="module")
def keys(token: Token, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("token-keys")
    rsa_uri = token.uri("cli-rsa", token="spare")
    ok(run(ENVELOPE, "keygen", "--pkcs11", rsa_uri, "--bits", "2048", "-o", folder / "rsa.pub"))
    ec_uri = token.uri("cli-ec", token="spare")
    result = ok(run(ENVELOPE, "keygen", "--pkcs11", ec_uri, "--type", "ecdsa-p256", "-q", "-o", folder / "ec.pub"))
    assert len(result.stdout.strip()) == 64  # -q: the key id alone
    (folder / "model.bin").write_bytes(os.urandom(100_000))
    return {"folder": folder, "rsa.pub": folder / "rsa.pub", "ec.pub": folder / "ec.pub", "model": folder / "model.bin"}


def test_open_with_a_key_that_lives_only_on_the_token(token, keys, tmp_path):
    sealed, out = tmp_path / "m.env", tmp_path / "m.out"
    ok(run(ENVELOPE, "seal", "-r", keys["rsa.pub"], "-o", sealed, keys["model"]))
    ok(run(ENVELOPE, "open", "-i", token.uri("cli-rsa", token="spare"), "-o", out, sealed))
    assert out.read_bytes() == keys["model"].read_bytes()
    shown = ok(run(INFO, "--verify", token.uri("cli-rsa", token="spare"), sealed)).stdout.decode()
    assert "verified" in shown.lower() and "UNVERIFIED" not in shown


def test_the_module_and_the_pin_from_options_and_the_environment(token, keys, tmp_path):
    sealed = tmp_path / "m.env"
    ok(run(ENVELOPE, "seal", "-r", keys["rsa.pub"], "-o", sealed, keys["model"]))
    bare = "pkcs11:token=spare;object=cli-rsa"
    env = {"TOKEN_PIN": PIN}
    for i, extra in enumerate(
        [
            ["--pkcs11-module", token.module, "--pin-env", "TOKEN_PIN"],
            ["--pkcs11-module", token.module, "--pin-file", token.pin_file],
        ]
    ):
        ok(run(ENVELOPE, "open", "-i", bare, *extra, "-o", tmp_path / f"out{i}", sealed, env=env))
    ok(run(ENVELOPE, "verify", "-i", bare, "--pin-env", "TOKEN_PIN", sealed,
           env={**env, "ENVELOPE_PKCS11_MODULE": token.module}))  # fmt: skip


def test_the_pin_is_asked_on_the_terminal(token, keys, tmp_path):
    sealed = tmp_path / "m.env"
    ok(run(ENVELOPE, "seal", "-r", keys["rsa.pub"], "-o", sealed, keys["model"]))
    uri = f"pkcs11:token=spare;object=cli-rsa?module-path={token.module}"
    code, output = run_in_pty(ENVELOPE, "verify", "-i", uri, sealed, answer=PIN)
    assert code == 0 and "PIN for spare: " in output and PIN not in output


def test_a_file_signed_with_a_token_key_verifies_with_signed_by(token, keys, tmp_path):
    sealed = tmp_path / "signed.env"
    ec_uri = token.uri("cli-ec", token="spare")
    ok(run(ENVELOPE, "seal", "-r", keys["rsa.pub"], "--sign", ec_uri, "-o", sealed, keys["model"]))
    rsa_uri = token.uri("cli-rsa", token="spare")
    ok(run(ENVELOPE, "verify", "-i", rsa_uri, "--signed-by", keys["ec.pub"], sealed))
    ok(run(ENVELOPE, "open", "-i", rsa_uri, "--signed-by", ec_uri, "-o", tmp_path / "out", sealed))
    ok(run(INFO, "--signed-by", token.uri("cli-ec", token="spare", pin=False), sealed))
    other = tmp_path / "other.pub"
    ok(run(ENVELOPE, "keygen", "--type", "ed25519", "-o", tmp_path / "other.key"))
    assert_error(run(ENVELOPE, "verify", "-i", rsa_uri, "--signed-by", f"{tmp_path / 'other.key'}.pub", sealed), 1)
    assert not other.exists()


def test_rewrap_and_recipients_from_the_token(token, keys, tmp_path):
    sealed = tmp_path / "m.env"
    rsa_uri = token.uri("cli-rsa", token="spare")
    ok(run(ENVELOPE, "seal", "-r", rsa_uri, "-o", sealed, keys["model"]))  # -r: the token key pair's public key
    ok(run(ENVELOPE, "keygen", "-o", tmp_path / "bob.key"))
    ok(run(ENVELOPE, "rewrap", "-i", rsa_uri, "--add", f"{tmp_path / 'bob.key'}.pub", "--in-place", sealed))
    ok(run(ENVELOPE, "open", "-i", tmp_path / "bob.key", "-o", tmp_path / "out", sealed))


@pytest.mark.parametrize(
    ("uri", "extra", "code", "fragment"),
    [
        (
            "pkcs11:token=spare;object=cli-rsa?module-path={module}&pin-value=" + PIN,
            [],
            2,
            "pin-value on the command line",
        ),
        ("pkcs11:token=spare;object=cli-rsa?module-path={module}", ["--pin-env", "BAD_PIN"], 4, "refused the PIN"),
        (
            "pkcs11:token=spare;object=cli-rsa?module-path=/nonexistent.so&pin-source=file:{pin}",
            [],
            4,
            "does not exist",
        ),
        ("pkcs11:token=spare;object=cli-rsa?pin-source=file:{pin}", [], 2, "ENVELOPE_PKCS11_MODULE"),
        ("pkcs11:token=spare;object=absent?module-path={module}&pin-source=file:{pin}", [], 4, "no private key"),
        ("pkcs11:token=spare;object=cli-ec?module-path={module}&pin-source=file:{pin}", [], 4, "not RSA"),
        ("pkcs11:token=spare;objet=x", [], 2, "unknown PKCS#11 URI path attribute"),
        ("pkcs11:token=spare;object=cli-rsa?module-path={module}", [], 4, "no terminal to ask it on: use --pin-env"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(token, keys, tmp_path, uri, extra, code, fragment):
    sealed = tmp_path / "m.env"
    ok(run(ENVELOPE, "seal", "-r", keys["rsa.pub"], "-o", sealed, keys["model"]))
    env = {"BAD_PIN": "0000"}
    env_clean = {k: v for k, v in os.environ.items() if k != "ENVELOPE_PKCS11_MODULE"}
    text = uri.format(module=token.module, pin=token.pin_file)
    result = run(ENVELOPE, "open", "-i", text, *extra, "-o", tmp_path / "out", sealed, env={**env_clean, **env})
    line = assert_error(result, code, fragment)
    assert PIN not in line and not (tmp_path / "out").exists()


def test_keygen_on_a_token_refuses_what_it_cannot_do(token, tmp_path):
    uri = token.uri("cli-rsa", token="spare")
    assert_error(run(ENVELOPE, "keygen", "--pkcs11", uri, "-o", tmp_path / "x.pub"), 2, "already holds")
    for kind in ("ml-dsa-65", "x25519", "mlkem768x25519", "fernet"):
        assert_error(run(ENVELOPE, "keygen", "--pkcs11", uri, "--type", kind), 2, f"not {kind}")
    assert_error(run(ENVELOPE, "keygen", "--pkcs11", uri, "--passphrase-env", "X"), 2, "token's PIN")
