# ruff: noqa: F811 - the fixtures imported from remote_fixtures are arguments of the tests
"""The commands with URLs where they take files (issue 14): the console scripts, run as a user runs
them, against an S3 server on loopback found through the standard AWS settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from cli_support import ENVELOPE, INFO, Keys, assert_error, needs_console_scripts, ok, run
from remote_fixtures import bucket, moto_server, need  # noqa: F401 - fixtures

import envelope as envelope_sdk

pytestmark = needs_console_scripts


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """alice, bob, carol (NAME.pem, NAME.pub), and erin, a signer (erin.sign, erin.verify)."""
    keys = Keys(tmp_path_factory.mktemp("keys"))
    erin = envelope_sdk.generate_signing_key()
    (keys.folder / "erin.sign").write_bytes(envelope_sdk.signing_key_pem(erin))
    (keys.folder / "erin.sign").chmod(0o600)
    (keys.folder / "erin.verify").write_bytes(envelope_sdk.verifying_key_pem(erin))
    return keys


@pytest.fixture(scope="module")
def aws(moto_server) -> dict[str, str]:
    """How a user points the commands at a store: the AWS settings in the environment."""
    return {
        "AWS_ENDPOINT_URL": moto_server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
    }


@pytest.fixture(scope="module")
def store(moto_server, bucket):
    return need("s3fs").S3FileSystem(**moto_server.options())


@pytest.fixture
def plaintext(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(300_000))
    return path


def envelope(aws: dict[str, str], *args: object, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    return run(ENVELOPE, *args, stdin=stdin, env=aws)


def test_seal_open_verify_rewrap_and_info_with_urls(keys, aws, store, bucket, plaintext, tmp_path):
    url = f"s3://{bucket}/cli/model.env"
    ok(envelope(aws, "seal", "-r", keys["alice.pub"], "--meta", "name=m", "--chunk-size", "64K", "-o", url, plaintext))
    assert store.exists(url)
    ok(envelope(aws, "open", "-i", keys["alice.pem"], "-o", tmp_path / "out.bin", url))
    assert (tmp_path / "out.bin").read_bytes() == plaintext.read_bytes()
    assert ok(envelope(aws, "open", "-i", keys["alice.pem"], url)).stdout == plaintext.read_bytes()  # to stdout
    assert b"OK " + url.encode() in ok(envelope(aws, "verify", "-i", keys["alice.pem"], url)).stdout
    shown = ok(run(INFO, url, env=aws)).stdout.decode()
    assert "name" in shown and keys.ids["alice"] in shown
    ok(envelope(aws, "rewrap", "-i", keys["alice.pem"], "--add", keys["bob.pub"], "--in-place", url))
    ok(envelope(aws, "open", "-i", keys["bob.pem"], "-o", tmp_path / "bob.bin", url))
    assert (tmp_path / "bob.bin").read_bytes() == plaintext.read_bytes()


def test_stdin_into_an_object_and_an_object_to_a_local_copy(keys, aws, store, bucket, plaintext, tmp_path):
    url = f"s3://{bucket}/cli/piped.env"
    signed = ("--sign", keys["erin.sign"])
    ok(envelope(aws, "seal", "-r", keys["alice.pub"], *signed, "-o", url, stdin=plaintext.read_bytes()))
    opened = ok(envelope(aws, "open", "-i", keys["alice.pem"], "--signed-by", keys["erin.verify"], url))
    assert opened.stdout == plaintext.read_bytes()
    ok(envelope(aws, "rewrap", "-i", keys["alice.pem"], "--add", keys["carol.pub"], "-o", tmp_path / "local.env", url))
    ok(envelope(aws, "open", "-i", keys["carol.pem"], "-o", tmp_path / "out.bin", tmp_path / "local.env"))
    assert (tmp_path / "out.bin").read_bytes() == plaintext.read_bytes()


def test_an_existing_object_is_kept_without_force(keys, aws, store, bucket, plaintext):
    url = f"s3://{bucket}/cli/kept.env"
    store.pipe(url, b"someone else's object")
    result = envelope(aws, "seal", "-r", keys["alice.pub"], "-o", url, plaintext)
    assert_error(result, 5, url, "exists")
    assert store.cat(url) == b"someone else's object"
    ok(envelope(aws, "seal", "-r", keys["alice.pub"], "--force", "-o", url, plaintext))
    assert store.cat(url) != b"someone else's object"


def test_a_damaged_object_gives_nothing_and_says_why(keys, aws, store, bucket, plaintext, tmp_path):
    url = f"s3://{bucket}/cli/damaged.env"
    ok(envelope(aws, "seal", "-r", keys["alice.pub"], "-o", url, plaintext))
    sealed = bytearray(store.cat(url))
    sealed[len(sealed) // 2] ^= 1
    store.pipe(url, bytes(sealed))
    result = envelope(aws, "open", "-i", keys["alice.pem"], "-o", tmp_path / "out.bin", url)
    assert_error(result, 1, url, "authentication failed")
    assert not (tmp_path / "out.bin").exists()
    missing = f"s3://{bucket}/cli/missing.env"
    assert_error(envelope(aws, "open", "-i", keys["alice.pem"], missing), 5, f"{missing}: No such file")
    assert_error(envelope(aws, "open", "-i", keys["bob.pem"], url), 1, "none of the given keys")


def test_urls_and_stdio_that_cannot_meet_are_refused(keys, aws, bucket, plaintext):
    url = f"s3://{bucket}/cli/model.env"
    assert_error(envelope(aws, "seal", "-r", keys["alice.pub"], url), 2, "-o OUT")
    assert_error(envelope(aws, "seal", "-r", "missing.pub", url), 2, "-o OUT")  # before any key is read
    assert_error(envelope(aws, "open", "-i", keys["alice.pem"], "-o", url, stdin=b""), 2, "not from stdin")
    assert_error(envelope(aws, "rewrap", "-i", keys["alice.pem"], "--add", keys["bob.pub"], url), 2, "--in-place")


WITHOUT_FSSPEC = """
import sys
sys.modules["fsspec"] = None  # as if envelope-ml[s3] were not installed
from envelope.cli.main import main
sys.exit(main())
"""


def test_a_url_without_its_extra_is_a_usage_error_that_says_what_to_install(keys, tmp_path):
    url = "s3://bucket/model.env"
    result = run(sys.executable, "-c", WITHOUT_FSSPEC, "open", "-i", keys["alice.pem"], "-o", tmp_path / "out", url)
    line = assert_error(result, 2, "pip install 'envelope-ml[s3]'")
    assert line.count(url) == 1, line  # named once, not once by the SDK and again by the command


@pytest.mark.parametrize("command", ["info", "verify", "open", "seal"])
def test_an_unreachable_endpoint_is_named_with_the_url_once(keys, tmp_path, command):
    """Issue 17 item 17b: the URL came twice and the endpoint not at all. Port 1 of the loopback
    is closed: the connection is refused at once, and nothing leaves the machine."""
    need("s3fs")
    closed = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_MAX_ATTEMPTS": "1",  # no retries with backoff
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    url = "s3://bucket/model.env"
    plaintext = tmp_path / "model.bin"
    plaintext.write_bytes(b"weights")
    args = {
        "info": (INFO, url),
        "verify": (ENVELOPE, "verify", "-i", keys["alice.pem"], url),
        "open": (ENVELOPE, "open", "-i", keys["alice.pem"], "-o", tmp_path / "out", url),
        "seal": (ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", url, plaintext),
    }[command]
    tool = "envelope-info" if command == "info" else "envelope"
    line = assert_error(run(*args, env=closed), 5, tool=tool)
    assert line.count(url) == 1, line
    assert line.endswith(": endpoint http://127.0.0.1:1 (Connection refused)"), line
    assert not (tmp_path / "out").exists()
