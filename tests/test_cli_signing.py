"""Sender signatures on the command line (issue 13 item 4): keygen --type, seal --sign,
open/verify --signed-by, and what envelope-info says about a signer, with and without checking it.
The real console scripts, in subprocesses (a pseudo-terminal for the passphrase prompt)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    ENVELOPE,
    INFO,
    PASSPHRASE,
    Keys,
    assert_error,
    needs_console_scripts,
    ok,
    run,
    run_in_pty,
)

import envelope

pytestmark = needs_console_scripts

SIGNING_TYPES = {"ed25519": "ed25519", "ecdsa-p256": "ecdsa-p256-sha256", "ml-dsa-65": "ml-dsa-65"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One signing key per --type, made by envelope keygen: NAME.key and NAME.key.pub."""
    folder = tmp_path_factory.mktemp("signers")
    made = {}
    for kind in SIGNING_TYPES:
        ok(run(ENVELOPE, "keygen", "--type", kind, "-q", "-o", folder / f"{kind}.key"))
        made[kind] = folder / f"{kind}.key"
    return made


@pytest.fixture(scope="module")
def plaintext(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "model.bin"
    path.write_bytes(os.urandom(150_000))
    return path


@pytest.fixture(scope="module")
def signed(keys: Keys, signers: dict[str, Path], plaintext: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``plaintext`` sealed for alice and signed with the Ed25519 key, in 64 KiB chunks."""
    path = tmp_path_factory.mktemp("signed") / "model.env"
    ok(
        run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--sign", signers["ed25519"], "--meta", "name=demo",
            "--chunk-size", "64K", "-o", path, plaintext)
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def unsigned(keys: Keys, plaintext: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("unsigned") / "model.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", path, plaintext))
    return path


def key_id_of(public_key_file: Path) -> str:
    """SHA-256 of the signer's SubjectPublicKeyInfo (spec section 8.1), computed here from the PEM."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_key_file.read_bytes())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


# --- keygen --type ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SIGNING_TYPES)
def test_keygen_writes_signing_keys_as_it_writes_rsa_keys(kind: str, tmp_path: Path) -> None:
    private = tmp_path / "signer.key"
    out = ok(run(ENVELOPE, "keygen", "--type", kind, "-o", private)).stdout.decode()
    public = tmp_path / "signer.key.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert f"key type:    {kind} (signing)" in out and "not encrypted" in out
    assert f"key id:      {key_id_of(public)}" in out
    key = envelope.load_signing_key(private)
    assert envelope.KeySigner(key).algorithm == SIGNING_TYPES[kind]
    assert envelope.verifying_key_pem(key) == public.read_bytes()
    # -q prints the key id alone, as for RSA keys
    quiet = ok(run(ENVELOPE, "keygen", "--type", kind, "-q", "-o", tmp_path / "q.key")).stdout.decode()
    assert quiet.strip() == key_id_of(tmp_path / "q.key.pub")


def test_keygen_encrypts_a_signing_key_with_the_passphrase_options(tmp_path: Path) -> None:
    private = tmp_path / "signer.key"
    ok(run(ENVELOPE, "keygen", "-t", "ed25519", "-o", private, "--passphrase-env", "P", env={"P": PASSPHRASE}))
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    with pytest.raises(envelope.PassphraseError):
        envelope.load_signing_key(private)
    envelope.load_signing_key(private, PASSPHRASE)


def test_keygen_bits_is_for_rsa_only(tmp_path: Path) -> None:
    assert_error(run(ENVELOPE, "keygen", "-t", "ed25519", "--bits", "4096", "-o", tmp_path / "k"), 2, "--bits")
    assert not (tmp_path / "k").exists()


# --- seal --sign, open --signed-by -----------------------------------------------------------


@pytest.mark.parametrize("kind", SIGNING_TYPES)
def test_every_signing_type_seals_and_opens_pinned(
    kind: str, keys: Keys, signers: dict[str, Path], plaintext: Path, tmp_path: Path
) -> None:
    sealed = tmp_path / "s.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--sign", signers[kind], "-o", sealed, plaintext))
    signer = envelope.inspect(sealed).signer
    assert signer is not None and signer.algorithm == SIGNING_TYPES[kind]
    assert signer.key_id == key_id_of(Path(f"{signers[kind]}.pub"))
    result = ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "--signed-by", f"{signers[kind]}.pub", "-o",
                    tmp_path / "out", sealed))  # fmt: skip
    assert result.stderr == b""  # pinned: nothing to say
    assert (tmp_path / "out").read_bytes() == plaintext.read_bytes()


def test_a_signed_file_opened_without_signed_by_says_who_signed_it(
    keys: Keys, signers: dict[str, Path], signed: Path, plaintext: Path
) -> None:
    result = ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], signed))
    assert result.stdout == plaintext.read_bytes()  # stdout holds the plaintext only
    (line,) = result.stderr.decode().splitlines()
    kid = key_id_of(Path(f"{signers['ed25519']}.pub"))
    assert line.startswith(f"envelope: note: signed by ed25519 key {kid}") and "not required" in line
    assert "--signed-by" in line
    assert ok(run(ENVELOPE, "open", "-q", "-i", keys["alice.pem"], signed)).stderr == b""  # -q: silent


def test_an_unsigned_file_opened_without_signed_by_says_nothing(keys: Keys, unsigned: Path) -> None:
    assert ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], unsigned)).stderr == b""


@pytest.mark.parametrize("output", ["file", "stdout"])
def test_open_signed_by_refuses_another_signer_and_an_unsigned_file(
    output: str, keys: Keys, signers: dict[str, Path], signed: Path, unsigned: Path, tmp_path: Path
) -> None:
    target = ["-o", tmp_path / "out"] if output == "file" else []
    other = f"{signers['ecdsa-p256']}.pub"
    wrong = run(ENVELOPE, "open", "-i", keys["alice.pem"], "--signed-by", other, *target, signed)
    assert_error(wrong, 1, f"{signed}:", key_id_of(Path(f"{signers['ed25519']}.pub")), "not among the required")
    bare = run(ENVELOPE, "open", "-i", keys["alice.pem"], "--signed-by", other, *target, unsigned)
    assert_error(bare, 1, f"{unsigned}:", "not signed")
    assert wrong.stdout == bare.stdout == b""  # refused before any plaintext
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["open", "verify"])
def test_a_required_signer_is_named_as_the_option(
    command: str, keys: Keys, signers: dict[str, Path], unsigned: Path
) -> None:
    """Issue 17 item 17a: the error named the SDK's parameter, "(signed_by)"."""
    pin = ["--signed-by", f"{signers['ed25519']}.pub"]
    line = assert_error(run(ENVELOPE, command, "-i", keys["alice.pem"], *pin, unsigned), 1, "not signed")
    assert line.endswith("a signature by a given key is required (--signed-by)") and "signed_by" not in line


def test_signed_by_is_repeatable_any_one_of_them(keys: Keys, signers: dict[str, Path], signed: Path) -> None:
    pins = ["--signed-by", f"{signers['ml-dsa-65']}.pub", "--signed-by", f"{signers['ed25519']}.pub"]
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], *pins, signed))


def test_a_modified_signature_fails_open_and_verify(
    keys: Keys, signers: dict[str, Path], signed: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.env"
    data = bytearray(signed.read_bytes())
    data[-1] ^= 1  # the last byte of the signature
    broken.write_bytes(bytes(data))
    pin = ["--signed-by", f"{signers['ed25519']}.pub"]
    assert_error(run(ENVELOPE, "open", "-i", keys["alice.pem"], *pin, "-o", tmp_path / "out", broken), 1, "signature")
    assert not (tmp_path / "out").exists()
    assert_error(run(ENVELOPE, "verify", "-i", keys["alice.pem"], broken), 1, "signature")
    assert_error(run(INFO, *pin, broken), 1, "signature", tool="envelope-info")


def test_keys_of_the_wrong_kind_are_refused_with_a_reason(
    keys: Keys, signers: dict[str, Path], plaintext: Path
) -> None:
    rsa = run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--sign", keys["alice.pem"], plaintext)
    assert_error(rsa, 4, str(keys["alice.pem"]), "RSA keys are for recipients")
    pin = run(ENVELOPE, "open", "-i", keys["alice.pem"], "--signed-by", keys["alice.pub"], plaintext)
    assert_error(pin, 4, str(keys["alice.pub"]), "RSA keys are for recipients")
    missing = run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--sign", "missing.key", plaintext)
    assert_error(missing, 5, "missing.key: No such file")


def test_seal_sign_with_an_encrypted_key(keys: Keys, plaintext: Path, tmp_path: Path) -> None:
    signer = tmp_path / "locked.key"
    ok(run(ENVELOPE, "keygen", "-t", "ed25519", "-q", "-o", signer, "--passphrase-env", "P", env={"P": PASSPHRASE}))
    sealed = tmp_path / "s.env"
    seal = ("seal", "-r", keys["alice.pub"], "--sign", signer, plaintext)
    assert_error(run(ENVELOPE, *seal), 4, "no terminal")  # encrypted, no passphrase given, no terminal
    assert_error(run(ENVELOPE, *seal, "--passphrase-env", "P", env={"P": "wrong"}), 4, "wrong passphrase")
    ok(run(ENVELOPE, *seal[:-1], "--passphrase-env", "P", "-o", sealed, plaintext, env={"P": PASSPHRASE}))
    code, output = run_in_pty(ENVELOPE, *seal[:-1], "-o", tmp_path / "t.env", plaintext, answer=["typo", PASSPHRASE])
    assert code == 0, output
    assert f"Passphrase for {signer}" in output and "wrong passphrase, try again" in output
    for path in (sealed, tmp_path / "t.env"):
        info = envelope.inspect(path).signer
        assert info is not None and info.key_id == key_id_of(Path(f"{signer}.pub"))


# --- verify ----------------------------------------------------------------------------------


def test_verify_says_who_signed_and_whether_that_was_required(
    keys: Keys, signers: dict[str, Path], signed: Path, unsigned: Path
) -> None:
    kid = key_id_of(Path(f"{signers['ed25519']}.pub"))
    free = ok(run(ENVELOPE, "verify", "-i", keys["alice.pem"], signed, unsigned)).stdout.decode()
    assert f"signed by: ed25519 key {kid} (NOT PINNED" in free and "signed by: nobody" in free
    pinned = run(ENVELOPE, "verify", "-i", keys["alice.pem"], "--signed-by", f"{signers['ed25519']}.pub",
                 signed, unsigned)  # fmt: skip
    assert_error(pinned, 1, f"{unsigned}:", "not signed")  # the exit code is the unsigned file's
    assert f"OK {signed}" in pinned.stdout.decode()
    assert f"signed by: ed25519 key {kid} (one of --signed-by)" in pinned.stdout.decode()


# --- envelope-info ---------------------------------------------------------------------------


def info_json(*args: object) -> dict[str, Any]:
    result = run(INFO, "--json", *args)
    record: dict[str, Any] = json.loads(result.stdout)["files"][0]
    return record


def test_info_shows_the_signer_unverified(signers: dict[str, Path], signed: Path, unsigned: Path) -> None:
    kid = key_id_of(Path(f"{signers['ed25519']}.pub"))
    text = ok(run(INFO, signed)).stdout.decode()
    assert f"signer: ed25519 key {kid} (UNVERIFIED" in text and "--signed-by PUBKEY" in text
    assert "signature   ed25519" in text  # among the algorithms
    assert "signature footer" in text  # in the size breakdown
    assert "signer: none (the file is not signed)" in ok(run(INFO, unsigned)).stdout.decode()
    record = info_json(signed)
    assert record["signer"] == {"algorithm": "ed25519", "key_id": kid, "verified": False}
    assert info_json(unsigned)["signer"] is None


def test_info_sizes_add_up_with_the_signature_footer(signed: Path, plaintext: Path) -> None:
    sizes = info_json(signed)["sizes"]
    chunks = -(-plaintext.stat().st_size // 65536)  # a final chunk shorter than the others
    assert sizes["footer"] == 32 * chunks + 64  # a tag per token and an Ed25519 signature (spec 8.3)
    assert sizes["header"] + sizes["payload"] == sizes["file"] == signed.stat().st_size
    assert sizes["plaintext"]["min"] + sizes["overhead"]["max"] + sizes["footer"] == sizes["payload"]
    assert sizes["plaintext"]["min"] <= plaintext.stat().st_size <= sizes["plaintext"]["max"]


def test_info_signed_by_checks_the_signature_without_a_private_key(
    signers: dict[str, Path], signed: Path, unsigned: Path
) -> None:
    pin = ["--signed-by", f"{signers['ed25519']}.pub"]
    text = " ".join(ok(run(INFO, *pin, signed)).stdout.decode().split())
    assert "(signature verified: a --signed-by key)" in text
    # What that proves, and what it does not (envelope.check_signature's docstring, spec 8.3).
    assert "proves: the metadata, chunk size, chunk count and every chunk's tag are as this key signed them" in text
    assert "not proved without a private key: that each chunk matches its tag, and the recipients" in text
    assert "metadata (as the signer signed it)" in text and "UNVERIFIED" not in text
    record = info_json(*pin, signed)
    assert record["signer"]["verified"] is True and record["verified"] is False and record["error"] is None
    other = ["--signed-by", f"{signers['ml-dsa-65']}.pub"]
    assert_error(run(INFO, *other, signed), 1, "not among the required", tool="envelope-info")
    assert_error(run(INFO, *pin, unsigned), 1, "not signed", tool="envelope-info")


def test_info_verify_checks_the_signer_with_the_whole_file(keys: Keys, signed: Path) -> None:
    record = info_json("--verify", keys["alice.pem"], signed)
    assert record["verified"] is True and record["signer"]["verified"] is True
    assert record["sizes"]["exact"] is True
    text = ok(run(INFO, "--verify", keys["alice.pem"], signed)).stdout.decode()
    assert "(signature verified, with the whole file)" in text


def test_info_json_schema_version_is_2() -> None:
    """Fields changed meaning for signed files (payload and overhead around the footer)."""
    from envelope.cli import info

    assert info.SCHEMA_VERSION == 2
    documented = Path(__file__).parent.parent / "docs" / "CLI.md"
    assert re.search(r'"schema_version": 2', documented.read_text())
