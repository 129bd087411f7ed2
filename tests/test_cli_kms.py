"""The command line with AWS KMS keys (``awskms:KEY``), against moto's server on loopback (the CLI
runs in a child process, which moto's in-process mock cannot reach). What moto's KMS does and does
not do is in tests/test_aws_kms.py: here GetPublicKey and Sign are real, and Decrypt of an
RSA-OAEP ciphertext fails in moto, so opening with a KMS key is shown to fail as a wrong key does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import ENVELOPE, INFO, assert_error, needs_console_scripts, ok, run
from remote_fixtures import MotoServer, need

pytestmark = needs_console_scripts


@pytest.fixture(scope="module")
def kms() -> Iterator[tuple[Any, dict[str, str]]]:
    need("boto3")
    need("moto")
    import boto3

    server = MotoServer()
    env = {
        "AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }  # fmt: skip
    try:
        client = boto3.client(
            "kms", endpoint_url=server.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        yield client, env
    finally:
        server.stop()


def _key(client: Any, spec: str, usage: str) -> str:
    return str(client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"])


def test_seal_to_and_sign_with_kms_keys(kms, tmp_path: Path):
    client, env = kms
    rsa_key, ec_key = _key(client, "RSA_3072", "ENCRYPT_DECRYPT"), _key(client, "ECC_NIST_P256", "SIGN_VERIFY")
    (tmp_path / "model.bin").write_bytes(os.urandom(10_000))
    sealed = tmp_path / "model.env"
    ok(run(ENVELOPE, "seal", "-r", f"awskms:{rsa_key}", "--sign", f"awskms:{ec_key}", "-o", sealed,
           tmp_path / "model.bin", env=env))  # fmt: skip
    ok(run(INFO, "--signed-by", f"awskms:{ec_key}", sealed, env=env))  # the signature verifies: no private key
    # moto cannot undo RSA-OAEP: the open fails as a wrong key does, exit code 1, nothing written.
    result = run(ENVELOPE, "open", "-i", f"awskms:{rsa_key}", "-o", tmp_path / "out", sealed, env=env)
    assert_error(result, 1, "header authentication failed")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["-i", "awskms:alias/absent"], 4, "no such key"),
        (["-i", "awskms:"], 2, "give the KMS key after awskms:"),
        (["-i", "{ec}"], 4, "usage is SIGN_VERIFY"),
    ],
)
def test_kms_errors_are_one_line_with_their_exit_code(kms, tmp_path, args, code, fragment):
    client, env = kms
    ec_key = _key(client, "ECC_NIST_P256", "SIGN_VERIFY")
    key = envelope_key(tmp_path)
    sealed = tmp_path / "x.env"
    ok(run(ENVELOPE, "seal", "-r", f"{key}.pub", "-o", sealed, stdin=b"x"))
    argv = [a.format(ec=f"awskms:{ec_key}") for a in args]
    assert_error(run(ENVELOPE, "open", *argv, "-o", tmp_path / "out", sealed, env=env), code, fragment)


def envelope_key(folder: Path) -> Path:
    ok(run(ENVELOPE, "keygen", "-q", "-o", folder / "k.key"))
    return folder / "k.key"


def test_sign_refuses_an_rsa_kms_key(kms, tmp_path):
    client, env = kms
    rsa_key = _key(client, "RSA_2048", "ENCRYPT_DECRYPT")
    key = envelope_key(tmp_path)
    result = run(ENVELOPE, "seal", "-r", f"{key}.pub", "--sign", f"awskms:{rsa_key}", "-o", tmp_path / "x.env",
                 stdin=b"x", env=env)  # fmt: skip
    assert_error(result, 4, "usage is ENCRYPT_DECRYPT")
