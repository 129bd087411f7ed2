"""Spec section 4.3: ssh-ed25519 recipients (R39, R40), the Ed25519 to X25519 conversion checked
against age (pyrage, rage's Python binding, and the key of age's own test data), OpenSSH key files
with and without a passphrase, and the command line."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import ENVELOPE, INFO, needs_console_scripts, ok, run
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st
from remote_fixtures import need

import envelope
from envelope._datakey import HEADER_AUTH_FAILED, DataKey
from envelope._edwards import montgomery_u


def age() -> Any:
    """pyrage, for the interoperability tests only (the others need nothing beyond the core)."""
    return need("pyrage")


KEYS = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "keys"
AGE_KEY = KEYS / "ssh-ed25519-age.openssh"  # FiloSottile/age cmd/age/testdata/ed25519.txt
AGE_LABEL = b"age-encryption.org/v1/ssh-ed25519"


def ssh_line(key: ed25519.Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def openssh_file(tmp_path: Path, key: ed25519.Ed25519PrivateKey, passphrase: bytes | None = None) -> Path:
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    path = tmp_path / "id_ed25519"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption))
    path.chmod(0o600)
    return path


def test_the_conversion_opens_what_age_wrote_for_its_own_test_key():
    """age (rage) writes an ssh-ed25519 stanza to the key of age's test data; the X25519 secret and
    share that envelope derives from that key open it with age's construction (age's tweak, label):
    the conversion is age's, checked against age rather than against itself."""
    pyrage = age()
    identity = envelope.key_file_identities(AGE_KEY)[0]
    assert isinstance(identity, envelope.SshEd25519KeyFileIdentity)
    line = (KEYS / "ssh-ed25519-age.openssh.pub").read_text().strip()
    lines = pyrage.encrypt(b"age", [pyrage.ssh.Recipient.from_str(line)]).split(b"\n")
    stanza = next(x for x in lines if x.startswith(b"-> ssh-ed25519 "))
    epk = base64.b64decode(stanza.split()[3] + b"==")
    body = base64.b64decode(lines[lines.index(stanza) + 1] + b"==")
    wire = base64.b64decode(line.split()[1])
    key = serialization.load_ssh_private_key(AGE_KEY.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    secret = x25519.X25519PrivateKey.from_private_bytes(hashlib.sha512(key.private_bytes_raw()).digest()[:32])
    share = montgomery_u(key.public_key().public_bytes_raw())  # what a recipient computes from the public key
    assert secret.public_key().public_bytes_raw() == share
    tweak = HKDF(hashes.SHA256(), 32, salt=wire, info=AGE_LABEL).derive(b"")
    shared = x25519.X25519PrivateKey.from_private_bytes(tweak).exchange(
        x25519.X25519PublicKey.from_public_bytes(secret.exchange(x25519.X25519PublicKey.from_public_bytes(epk)))
    )
    wrap_key = HKDF(hashes.SHA256(), 32, salt=epk + share, info=AGE_LABEL).derive(shared)
    file_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), body, None)
    assert len(file_key) == 16  # age's file key: the conversion is the one age uses


def test_seal_to_an_ssh_line_and_open_with_the_openssh_file(tmp_path: Path):
    key = ed25519.Ed25519PrivateKey.generate()
    sealed = envelope.seal(b"weights", ssh_line(key))
    assert envelope.open(sealed, openssh_file(tmp_path, key)) == b"weights"
    assert envelope.inspect(sealed).recipients[0].type == "ssh-ed25519"
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert envelope.inspect(sealed).recipients[0].key_id == hashlib.sha256(spki).hexdigest()


def test_a_passphrase_protected_key_is_unlocked_only_when_needed(tmp_path: Path):
    key = ed25519.Ed25519PrivateKey.generate()
    path = openssh_file(tmp_path, key, b"secret")
    asked = []

    def ask() -> bytes:
        asked.append(1)
        return b"secret"

    identity = envelope.SshEd25519KeyFileIdentity(path, ask)
    other = envelope.seal(b"x", envelope.X25519Identity.generate().recipient())
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(other, identity)
    assert asked == []  # the key id is in the clear: not for this key, no passphrase asked
    assert envelope.open(envelope.seal(b"y", ssh_line(key)), identity) == b"y" and asked == [1]
    with pytest.raises(envelope.PassphraseError):
        envelope.open(envelope.seal(b"y", ssh_line(key)), envelope.SshEd25519KeyFileIdentity(path, b"wrong"))
    with pytest.raises(envelope.PassphraseError):
        envelope.open(envelope.seal(b"y", ssh_line(key)), path)


@settings(max_examples=15, deadline=None)
@given(data=st.binary(max_size=2000))
def test_round_trip(data: bytes):
    identity = envelope.SshEd25519Identity(ed25519.Ed25519PrivateKey.generate())
    assert envelope.open(envelope.seal(data, identity.recipient(), chunk_size=64), identity) == data


def test_a_failed_unwrap_reads_like_a_header_mac_failure():
    identity = envelope.SshEd25519Identity(ed25519.Ed25519PrivateKey.generate())
    key = DataKey.generate()
    entry = identity.recipient().wrap(key)
    bad = type(entry)("ssh-ed25519", {**entry.fields, "key": bytes(48)})
    assert identity.unwrap([bad]) is not None  # a random key, so that the MAC check fails
    sealed = bytearray(envelope.seal(b"x", identity.recipient()))
    sealed[sealed.index(entry.fields["kid"]) + 32 + 5 + 3] ^= 1  # inside epk: a wrong shared secret
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(bytes(sealed), identity)
    assert str(caught.value) == HEADER_AUTH_FAILED


@pytest.mark.parametrize(
    "raw",
    [
        (2**255 - 19 + 1).to_bytes(32, "little"),  # y >= p: not canonical
        (1).to_bytes(32, "little"),  # the identity: small order
        (2).to_bytes(32, "little"),  # y = 2 is not on the curve
    ],
)
def test_invalid_ed25519_recipients_are_refused_r40(raw: bytes):
    with pytest.raises(envelope.InvalidKeyError):
        envelope.SshEd25519Recipient(ed25519.Ed25519PublicKey.from_public_bytes(raw))


def test_a_key_file_showing_another_public_key_is_refused_r40():
    with pytest.raises(envelope.InvalidKeyError, match="public"):
        envelope.key_file_identities(KEYS / "ssh-ed25519-bad-public.openssh")


def test_an_ssh_ed25519_and_an_x25519_entry_do_not_open_each_other():
    """The same X25519 share as both kinds: each opens under its own label only (section 4.3)."""
    key = ed25519.Ed25519PrivateKey.generate()
    ssh = envelope.SshEd25519Identity(key)
    secret = x25519.X25519PrivateKey.from_private_bytes(hashlib.sha512(key.private_bytes_raw()).digest()[:32])
    as_x25519 = envelope.X25519Identity(secret)
    data_key = DataKey.generate()
    entry = envelope.X25519Recipient(secret.public_key()).wrap(data_key)
    moved = type(entry)("ssh-ed25519", {**entry.fields, "kid": bytes.fromhex(ssh.key_id)})
    got = ssh.unwrap([moved])
    assert got is not None and got.raw() != data_key.raw()
    assert as_x25519.unwrap([entry]).raw() == data_key.raw()  # type: ignore[union-attr]


def test_recipients_file_with_age_ssh_and_rsa_lines(tmp_path: Path, alice):
    key = ed25519.Ed25519PrivateKey.generate()
    age = envelope.X25519Identity.generate()
    rsa_line = alice.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    team = tmp_path / "team.txt"
    team.write_text(f"{ssh_line(key)} laptop\n# age\n{age.recipient().to_age()}\n{rsa_line.decode()}\n")
    sealed = envelope.seal(b"x", team)
    assert [r.type for r in envelope.inspect(sealed).recipients] == ["ssh-ed25519", "x25519", "rsa-oaep-sha256"]
    for identity in (envelope.SshEd25519Identity(key), age, alice):
        assert envelope.open(sealed, identity) == b"x"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_keys_made_by_ssh_keygen(tmp_path: Path):
    for passphrase in ("", "pw"):
        path = tmp_path / f"id{passphrase}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", path], check=True)
        sealed = envelope.seal(b"ssh", Path(f"{path}.pub").read_text().strip())
        identities = envelope.key_file_identities(path, passphrase or None)
        assert envelope.open(sealed, identities) == b"ssh"


@needs_console_scripts
@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_the_command_line_with_ssh_keys(tmp_path: Path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", key], check=True)
    (tmp_path / "in").write_bytes(b"payload")
    line = Path(f"{key}.pub").read_text().strip()
    ok(run(ENVELOPE, "seal", "-r", line, "-o", tmp_path / "a.env", tmp_path / "in"))
    ok(run(ENVELOPE, "seal", "-R", f"{key}.pub", "-o", tmp_path / "b.env", tmp_path / "in"))
    for sealed in ("a.env", "b.env"):
        out = tmp_path / f"{sealed}.out"
        ok(run(ENVELOPE, "open", "-i", key, "--passphrase-env", "P", "-o", out, tmp_path / sealed, env={"P": "pw"}))
        assert out.read_bytes() == b"payload"
    assert b"ssh-ed25519" in ok(run(INFO, tmp_path / "a.env")).stdout
    wrong = run(ENVELOPE, "open", "-i", key, "--passphrase-env", "P", "-o", tmp_path / "x", tmp_path / "a.env",
                env={"P": "no"})  # fmt: skip
    assert wrong.returncode != 0 and b"passphrase" in wrong.stderr
