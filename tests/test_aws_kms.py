"""Keys in AWS KMS (envelope.aws_kms), against moto's KMS in process (no network) where moto
implements the operation, and botocore's Stubber where it does not.

What moto 5.2.6 does (read in moto/kms/models.py, responses.py, utils.py):
- GetPublicKey: the DER SubjectPublicKeyInfo of a real key (RSA_2048/3072/4096, ECC_NIST_P256...),
  with KeyUsage, KeySpec and the algorithms: used as is here.
- Sign with ECDSA_SHA_256 on ECC_NIST_P256: a real ECDSA signature (DER) over SHA-256 of the
  message; MessageType is read but ignored (DIGEST is hashed again, so the signature is over
  the digest's digest): RAW runs against moto, DIGEST against a stand-in client.
- Decrypt: EncryptionAlgorithm is ignored and only moto's own AES-GCM blobs decrypt; an
  RSAES_OAEP_SHA_256 ciphertext raises InvalidCiphertextException. So the unwrap's request and
  response handling is tested with Stubber (the request's exact parameters, the answer, the
  errors), and the RSA-OAEP itself is the local key's: not covered is KMS's own RSA decryption.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from remote_fixtures import need

import envelope
from envelope._datakey import HEADER_AUTH_FAILED
from envelope._header import read_header

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto's KMS in this process; credentials and region that reach nothing."""
    need("boto3")
    moto = need("moto")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        import boto3

        yield boto3.client("kms", region_name="us-east-1")


def _key(client: Any, spec: str, usage: str) -> str:
    return str(client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"])


def _wrapped(sealed: bytes) -> bytes:
    return bytes(read_header(io.BytesIO(sealed))[1].recipients[0].fields["key"])


def test_the_public_key_comes_from_get_public_key(aws):
    from envelope.aws_kms import KmsIdentity

    key_id = _key(aws, "RSA_3072", "ENCRYPT_DECRYPT")
    identity = KmsIdentity(key_id, client=aws)
    der = aws.get_public_key(KeyId=key_id)["PublicKey"]
    assert identity.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == der
    assert identity.public_key.key_size == 3072 and isinstance(identity, envelope.KeyUnwrapper)


def test_moto_cannot_decrypt_rsa_oaep_and_the_open_fails_as_a_wrong_key(aws):
    """The finding above, pinned: if moto learns RSA decryption, this test says so."""
    import botocore.exceptions

    from envelope.aws_kms import KmsIdentity

    key_id = _key(aws, "RSA_3072", "ENCRYPT_DECRYPT")
    identity = KmsIdentity(key_id, client=aws)
    sealed = envelope.seal(b"weights", identity.public_key)
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidCiphertextException"):
        aws.decrypt(KeyId=key_id, CiphertextBlob=_wrapped(sealed), EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(sealed, identity)
    assert str(caught.value) == HEADER_AUTH_FAILED


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Any:
    need("boto3")
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("kms", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _public_answer(key: Any, usage: str, spec: str) -> dict[str, Any]:
    return {
        "KeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "PublicKey": key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        "KeyUsage": usage,
        "KeySpec": spec,
        "EncryptionAlgorithms": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] if usage == "ENCRYPT_DECRYPT" else [],
    }


KEY_ID = "alias/models"


def test_decrypt_requests_rsaes_oaep_sha_256_and_opens(stubbed, carol):
    from envelope.aws_kms import KmsIdentity

    client, stub = stubbed
    stub.add_response("get_public_key", _public_answer(carol, "ENCRYPT_DECRYPT", "RSA_3072"), {"KeyId": KEY_ID})
    identity = KmsIdentity(KEY_ID, client=client)
    sealed = envelope.seal(b"weights", [envelope.generate_private_key(2048).public_key(), identity.public_key])
    wrapped = read_header(io.BytesIO(sealed))[1].recipients[1].fields["key"]
    plaintext = carol.decrypt(wrapped, OAEP)  # what KMS would answer: the same RSA-OAEP, here
    stub.add_response(
        "decrypt",
        {"KeyId": KEY_ID, "Plaintext": plaintext, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
        {"KeyId": KEY_ID, "CiphertextBlob": bytes(wrapped), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
    )
    assert envelope.open(sealed, identity) == b"weights"  # one Decrypt: the stub holds one answer


@pytest.mark.parametrize(
    ("code", "error", "match"),
    [
        ("AccessDeniedException", envelope.ExternalKeyError, "Decrypt failed: access denied"),
        ("KMSInvalidStateException", envelope.ExternalKeyError, "not in a state"),
        ("DisabledException", envelope.ExternalKeyError, "disabled"),
        ("SomethingNew", envelope.ExternalKeyError, "Decrypt failed: SomethingNew"),
        ("InvalidCiphertextException", envelope.AuthenticationError, "header authentication failed"),
    ],
)
def test_decrypt_errors_are_typed(stubbed, carol, code, error, match):
    from envelope.aws_kms import KmsIdentity

    client, stub = stubbed
    identity = KmsIdentity(KEY_ID, client=client, public_key=carol.public_key())
    stub.add_client_error("decrypt", service_error_code=code, service_message="the service's words")
    with pytest.raises(error, match=match) as caught:
        envelope.open(envelope.seal(b"x", identity.public_key), identity)
    assert "the service's words" not in str(caught.value)


def test_access_denied_on_get_public_key(stubbed):
    from envelope.aws_kms import KmsIdentity

    client, stub = stubbed
    stub.add_client_error("get_public_key", service_error_code="AccessDeniedException")
    with pytest.raises(envelope.ExternalKeyError, match="GetPublicKey failed: access denied"):
        KmsIdentity(KEY_ID, client=client)


def test_a_missing_key_and_keys_of_the_wrong_kind(aws):
    from envelope.aws_kms import KmsIdentity, KmsSigner

    with pytest.raises(envelope.ExternalKeyError, match="no such key"):
        KmsIdentity("alias/absent", client=aws)
    with pytest.raises(envelope.ExternalKeyError, match="usage is SIGN_VERIFY"):
        KmsIdentity(_key(aws, "ECC_NIST_P256", "SIGN_VERIFY"), client=aws)
    with pytest.raises(envelope.ExternalKeyError, match="usage is ENCRYPT_DECRYPT"):
        KmsSigner(_key(aws, "RSA_2048", "ENCRYPT_DECRYPT"), client=aws)
    with pytest.raises(envelope.ExternalKeyError, match="spec is RSA_2048"):
        KmsSigner(_key(aws, "RSA_2048", "SIGN_VERIFY"), client=aws)
    with pytest.raises(envelope.ExternalKeyError, match="spec is ECC_NIST_P384"):
        KmsSigner(_key(aws, "ECC_NIST_P384", "SIGN_VERIFY"), client=aws)


def test_a_kms_signer_signs_through_moto(aws, alice):
    from envelope.aws_kms import KmsSigner

    key_id = _key(aws, "ECC_NIST_P256", "SIGN_VERIFY")
    signer = KmsSigner(key_id, client=aws)
    calls = []
    inner = aws.sign
    aws.sign = lambda **kw: calls.append(kw) or inner(**kw)  # type: ignore[method-assign]
    sealed = envelope.seal(b"weights", alice.public_key(), sign_with=signer)
    assert [(c["MessageType"], c["SigningAlgorithm"]) for c in calls] == [("RAW", "ECDSA_SHA_256")]
    public = envelope.parse_verifying_key(aws.get_public_key(KeyId=key_id)["PublicKey"])
    assert envelope.open_with_metadata(sealed, alice, signed_by=public).signer.verified


def test_moto_signs_a_digest_wrongly_and_the_seal_refuses_it(aws, alice, tmp_path):
    """A header over 4096 bytes is signed as a DIGEST, which moto hashes again: the signature does
    not verify under the key, and sealing fails before any output appears."""
    from envelope.aws_kms import KmsSigner

    signer = KmsSigner(_key(aws, "ECC_NIST_P256", "SIGN_VERIFY"), client=aws)
    (tmp_path / "in").write_bytes(b"x")
    with pytest.raises(envelope.ExternalKeyError, match="does not verify"):
        envelope.seal_file(tmp_path / "in", tmp_path / "out", alice.public_key(), sign_with=signer,
                           metadata={"notes": "n" * 5000})  # fmt: skip
    assert not (tmp_path / "out").exists()


class DigestSigningClient:
    """Stands in for KMS's Sign with MessageType DIGEST (which moto does not implement): the
    request's shape is checked, the ECDSA is a local key's over the digest as given."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.requests: list[dict[str, Any]] = []

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        return _public_answer(self.key, "SIGN_VERIFY", "ECC_NIST_P256")

    def sign(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        assert request["MessageType"] == "DIGEST" and len(request["Message"]) == 32
        return {"Signature": self.key.sign(request["Message"], ec.ECDSA(Prehashed(hashes.SHA256())))}


def test_a_long_message_is_signed_as_its_digest(alice):
    from envelope.aws_kms import KmsSigner

    client = DigestSigningClient()
    sealed = envelope.seal(b"x", alice.public_key(), sign_with=KmsSigner(KEY_ID, client=client),
                           metadata={"notes": "n" * 5000})  # fmt: skip
    assert len(client.requests) == 1
    assert envelope.open_with_metadata(sealed, alice, signed_by=client.key.public_key()).signer.verified


def test_a_kms_identity_travels_to_workers_without_secrets(aws):
    from envelope._workerkeys import portable_identity
    from envelope.aws_kms import KmsIdentity

    identity = KmsIdentity(_key(aws, "RSA_2048", "ENCRYPT_DECRYPT"), client=aws)
    assert portable_identity(identity) is identity
    copy = pickle.loads(pickle.dumps(identity))
    assert copy.key_id == identity.key_id and copy.public_key.public_numbers() == identity.public_key.public_numbers()


def test_without_boto3_the_error_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_boto3(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("boto3", "botocore"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_boto3)
    from envelope.aws_kms import KmsIdentity

    with pytest.raises(envelope.MissingDependencyError, match=r"envelope-ml\[kms\]"):
        KmsIdentity("alias/models")
    assert isinstance(rsa.generate_private_key(65537, 2048), rsa.RSAPrivateKey)
