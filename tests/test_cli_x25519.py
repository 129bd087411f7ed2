"""The command line with age keys (spec section 4.2; docs/CLI.md): keygen --type x25519 writes what
age-keygen writes, seal -r age1... / -R FILE, open -i IDENTITY_FILE, rewrap, envelope-info. The age
side is pyrage (not the age binary, which cannot be installed here)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from cli_support import ENVELOPE, INFO, assert_error, needs_console_scripts, ok, run
from remote_fixtures import need

import envelope


def age() -> Any:
    """pyrage, for the interoperability tests only (the others need nothing beyond the core)."""
    return need("pyrage")


pytestmark = needs_console_scripts


def keygen(path: Path) -> str:
    result = ok(run(ENVELOPE, "keygen", "--type", "x25519", "-o", path))
    public = Path(f"{path}.pub").read_text().strip()
    assert f"Public key: {public}" in result.stdout.decode()
    return public


def test_keygen_x25519_writes_age_keygen_format_that_age_reads(tmp_path: Path) -> None:
    pyrage = age()
    private = tmp_path / "alice.age"
    public = keygen(private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    lines = private.read_text().splitlines()
    assert lines[0].startswith("# created: ") and lines[1] == f"# public key: {public}"
    assert lines[2].startswith("AGE-SECRET-KEY-1") and len(lines) == 3
    made = pyrage.x25519.Identity.from_str(lines[2])  # age parses it
    assert str(made.to_public()) == public
    assert pyrage.decrypt(pyrage.encrypt(b"hi", [made.to_public()]), [made]) == b"hi"


def test_keygen_x25519_takes_no_passphrase(tmp_path: Path) -> None:
    result = run(ENVELOPE, "keygen", "--type", "x25519", "-o", tmp_path / "k", "--passphrase-env", "P", env={"P": "x"})
    assert_error(result, 2, "not encrypted")
    (tmp_path / "k").write_text("there")  # the usage error comes first: no 'exists', no 'P is not set'
    result = run(ENVELOPE, "keygen", "--type", "x25519", "-o", tmp_path / "k", "--passphrase-env", "UNSET_VARIABLE")
    assert_error(result, 2, "x25519 keys are not encrypted: written as age-keygen writes them")
    assert_error(run(ENVELOPE, "keygen", "-o", tmp_path), 5, "is a directory: give the key file's path")


def test_seal_to_age1_and_open_with_the_identity_file(tmp_path: Path) -> None:
    public = keygen(tmp_path / "alice.age")
    (tmp_path / "in").write_bytes(b"model bytes" * 100)
    ok(run(ENVELOPE, "seal", "-r", public, "-o", tmp_path / "a.env", tmp_path / "in"))
    ok(run(ENVELOPE, "open", "-i", tmp_path / "alice.age", "-o", tmp_path / "out", tmp_path / "a.env"))
    assert (tmp_path / "out").read_bytes() == b"model bytes" * 100


def test_seal_with_a_recipients_file_and_a_key_made_by_age(tmp_path: Path) -> None:
    pyrage = age()
    made = pyrage.x25519.Identity.generate()
    other = keygen(tmp_path / "bob.age")
    (tmp_path / "team.txt").write_text(f"# the team\n{made.to_public()}\n\n{other}\n")
    (tmp_path / "id.txt").write_text(f"# made by age\n{made}\n")
    (tmp_path / "id.txt").chmod(0o600)
    (tmp_path / "in").write_bytes(b"x")
    ok(run(ENVELOPE, "seal", "-R", tmp_path / "team.txt", "-o", tmp_path / "a.env", tmp_path / "in"))
    for identity in (tmp_path / "id.txt", tmp_path / "bob.age"):
        ok(run(ENVELOPE, "open", "-i", identity, "-o", tmp_path / "out", "--force", tmp_path / "a.env"))
        assert (tmp_path / "out").read_bytes() == b"x"
    info = json.loads(ok(run(INFO, "--json", tmp_path / "a.env")).stdout)["files"][0]
    assert [r["type"] for r in info["recipients"]] == ["x25519", "x25519"]
    assert info["recipients"][1]["key_id"] == envelope.age_recipient(other).key_id  # type: ignore[attr-defined]


def test_rewrap_adds_and_removes_an_age_recipient(tmp_path: Path) -> None:
    alice, bob = keygen(tmp_path / "alice.age"), keygen(tmp_path / "bob.age")
    (tmp_path / "in").write_bytes(b"x")
    ok(run(ENVELOPE, "seal", "-r", alice, "-o", tmp_path / "a.env", tmp_path / "in"))
    ok(
        run(
            ENVELOPE,
            "rewrap",
            "-i",
            tmp_path / "alice.age",
            "--add",
            bob,
            "--remove",
            alice,
            "--in-place",
            tmp_path / "a.env",
        )
    )
    ok(run(ENVELOPE, "open", "-i", tmp_path / "bob.age", "-o", tmp_path / "out", tmp_path / "a.env"))
    result = run(ENVELOPE, "open", "-i", tmp_path / "alice.age", "-o", tmp_path / "out2", tmp_path / "a.env")
    assert result.returncode != 0


def test_a_bad_age_recipient_is_a_key_error_that_does_not_echo_a_secret(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"x")
    public = keygen(tmp_path / "alice.age")
    broken = public[:-1] + ("q" if public[-1] != "q" else "p")
    result = run(ENVELOPE, "seal", "-r", broken, "-o", tmp_path / "a.env", tmp_path / "in")
    assert result.returncode != 0 and b"checksum" in result.stderr
    secret = (tmp_path / "alice.age").read_text().splitlines()[2]
    (tmp_path / "bad.age").write_text(secret + "\n" + secret.lower() + "\n")
    ok(run(ENVELOPE, "seal", "-r", public, "-o", tmp_path / "a.env", tmp_path / "in"))
    result = run(ENVELOPE, "open", "-i", tmp_path / "bad.age", "-o", tmp_path / "out", tmp_path / "a.env")
    assert result.returncode != 0 and b"line 2" in result.stderr
    assert secret.encode() not in result.stderr and secret.lower().encode() not in result.stderr


def test_an_age_key_in_the_wrong_place_says_which_key_goes_there(tmp_path: Path) -> None:
    """The identity where a recipient goes, the recipient where an identity goes, and either
    where a signer's key goes: each error says what the key is and what is needed instead."""
    identity = tmp_path / "dana.age"
    keygen(identity)
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    sealed = tmp_path / "plain.env"
    result = run(ENVELOPE, "seal", "-r", identity, "-o", sealed, plain)
    assert_error(result, 4, "this is an age identity (a secret key); give its recipient, age1...")
    assert "AGE-SECRET-KEY-1" not in result.stderr.decode().replace("AGE-SECRET-KEY-1...", "")
    ok(run(ENVELOPE, "seal", "-r", f"{identity}.pub", "-o", sealed, plain))
    result = run(ENVELOPE, "open", "-i", f"{identity}.pub", "-o", tmp_path / "out", sealed)
    assert_error(result, 4, "this is an age recipient (a public key); opening needs its identity file")
    for option, key in (("--signed-by", f"{identity}.pub"), ("--sign", identity)):
        command = ["open", "-i", identity, "-o", tmp_path / "out", sealed] if option == "--signed-by" else \
            ["seal", "-r", f"{identity}.pub", "-o", tmp_path / "s.env", plain]  # fmt: skip
        result = run(ENVELOPE, *command, option, key)
        assert_error(result, 4, "this is an age key, which receives files and signs nothing")


def test_mixing_post_quantum_and_classical_recipients_is_noted(tmp_path: Path) -> None:
    """age refuses the mix; the format allows it, so the command says what it costs (once, not with -q)."""
    classical, hybrid = tmp_path / "c.age", tmp_path / "pq.age"
    keygen(classical)
    ok(run(ENVELOPE, "keygen", "--type", "mlkem768x25519", "-o", hybrid))
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    mixed = ok(run(ENVELOPE, "seal", "-r", f"{hybrid}.pub", "-r", f"{classical}.pub", "-o", tmp_path / "m.env", plain))
    assert mixed.stderr.decode().count("note: the file has post-quantum (mlkem768x25519) and classical") == 1
    alone = ok(run(ENVELOPE, "seal", "-r", f"{hybrid}.pub", "-o", tmp_path / "pq.env", plain))
    quiet = ok(run(ENVELOPE, "seal", "-q", "-r", f"{hybrid}.pub", "-r", f"{classical}.pub", "-o", tmp_path / "q.env",
                   plain))  # fmt: skip
    assert alone.stderr == b"" and quiet.stderr == b""
