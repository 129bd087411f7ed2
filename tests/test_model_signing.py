"""An OpenSSF model-signing signature of the plaintext model travels beside the sealed file and is
checked after opening (issue 13, item 7; docs/SDK.md, "OpenSSF model signing alongside"). One
ECDSA P-256 key signs both: the envelope file (who sealed it) and the model (model_signing's
Sigstore bundle, made offline with the private key). No network: a key signer needs none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_support import ENVELOPE, needs_console_scripts, ok, run
from remote_fixtures import need

import envelope

pytestmark = needs_console_scripts


@pytest.fixture
def producer(tmp_path: Path) -> tuple[Path, Path, envelope.SigningKey]:
    """The producer's ECDSA P-256 key, as `envelope keygen --type ecdsa-p256` writes it."""
    private = tmp_path / "producer.key"
    ok(run(ENVELOPE, "keygen", "--type", "ecdsa-p256", "-q", "-o", private))
    return private, tmp_path / "producer.key.pub", envelope.load_signing_key(private)


def test_a_model_signing_signature_is_checked_on_the_opened_model(alice, producer, tmp_path):
    model_signing = need("model_signing")
    private, public, key = producer
    model = tmp_path / "build" / "model.safetensors"
    model.parent.mkdir()
    model.write_bytes(os.urandom(300_000))

    # The producer: sign the plaintext model, then seal it, signed by the same key.
    signature = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(model, signature)
    envelope.seal_file(model, tmp_path / "model.env", alice.public_key(), sign_with=key)

    # The consumer: open (the envelope signature pinned), then verify the model's own signature.
    opened = tmp_path / "deploy" / "model.safetensors"
    opened.parent.mkdir()
    result = envelope.open_file(tmp_path / "model.env", opened, alice, signed_by=public)
    assert result.signer is not None and result.signer.key_id == envelope.inspect(tmp_path / "model.env").signer.key_id
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(opened, signature)
    assert opened.read_bytes() == model.read_bytes()


def test_a_swapped_model_fails_both_checks(alice, producer, tmp_path):
    model_signing = need("model_signing")
    private, public, _ = producer
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(100_000))
    signature = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(model, signature)

    # Someone who can write to the store seals another model to the same public key.
    impostor = envelope.generate_signing_key("ecdsa-p256-sha256")
    (tmp_path / "trojan.bin").write_bytes(os.urandom(100_000))
    envelope.seal_file(tmp_path / "trojan.bin", tmp_path / "model.env", alice.public_key(), sign_with=impostor)
    with pytest.raises(envelope.SignerError):
        envelope.open_file(tmp_path / "model.env", tmp_path / "opened.bin", alice, signed_by=public)
    assert not (tmp_path / "opened.bin").exists()

    # Without the pin the file opens (its own signature verifies), and model_signing catches it.
    envelope.open_file(tmp_path / "model.env", tmp_path / "opened.bin", alice)
    with pytest.raises(ValueError, match="mismatch"):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
            tmp_path / "opened.bin", signature
        )
