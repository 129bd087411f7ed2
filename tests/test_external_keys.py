"""Keys held elsewhere (docs/SDK.md, "Keys held elsewhere"): the public KeyUnwrapper and Signer
protocols, and what envelope does with whatever an implementation returns or raises."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

import envelope
from envelope._datakey import HEADER_AUTH_FAILED
from envelope._external import UnwrapperIdentity
from envelope._format import RSA_OAEP_SHA256, RecipientEntry

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class Held:
    """A KeyUnwrapper written with public names only, as a KMS client would be; counts its calls."""

    def __init__(self, key: rsa.RSAPrivateKey, result: Any = None, error: BaseException | None = None) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.calls = 0
        self.result = result
        self.error = error

    def unwrap_key(self, wrapped: bytes) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.result is not None:
            return self.result
        return self._key.decrypt(wrapped, OAEP)


def test_a_key_unwrapper_is_public_and_opens_everywhere_a_key_does(alice, bob, tmp_path):
    assert isinstance(Held(alice), envelope.KeyUnwrapper)
    sealed = envelope.seal(b"weights", [bob.public_key(), alice.public_key()])
    held = Held(alice)
    assert envelope.open(sealed, held) == b"weights"
    assert held.calls == 1  # found by key id: asked once, never for bob's entry
    (tmp_path / "m.env").write_bytes(sealed)
    envelope.open_file(tmp_path / "m.env", tmp_path / "m.out", held)
    assert (tmp_path / "m.out").read_bytes() == b"weights"
    with open(tmp_path / "m.env", "rb") as f, envelope.EnvelopeReader(f, held) as reader:
        assert reader.read() == b"weights"
    rewrapped = envelope.rewrap(sealed, held, remove=[envelope.key_id(bob.public_key())])
    assert envelope.open(rewrapped, alice) == b"weights"


@given(st.binary(max_size=3000))
def test_round_trip_through_a_key_unwrapper(alice, data):
    assert envelope.open(envelope.seal(data, alice.public_key()), Held(alice)) == data


def test_a_key_unwrapper_not_among_the_recipients_is_never_asked(alice, bob):
    held = Held(bob)
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(envelope.seal(b"x", alice.public_key()), held)
    assert held.calls == 0


@pytest.mark.parametrize("result", [b"", b"\x00" * 31, b"\x00" * 33, bytearray(64)])
def test_a_wrong_length_result_fails_as_a_header_mac_does(alice, result):
    """R15 reads like R16: same class, same message."""
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(envelope.seal(b"x", alice.public_key()), Held(alice, result=result))
    assert type(caught.value) is envelope.AuthenticationError and str(caught.value) == HEADER_AUTH_FAILED


def test_a_wrong_32_byte_result_fails_as_a_header_mac_does(alice):
    with pytest.raises(envelope.AuthenticationError, match="header authentication failed"):
        envelope.open(envelope.seal(b"x", alice.public_key()), Held(alice, result=b"k" * 32))


@pytest.mark.parametrize("result", ["a" * 32, 32, [0] * 32, object()])
def test_a_result_that_is_not_bytes_is_a_typed_error(alice, result):
    with pytest.raises(envelope.ExternalKeyError, match="unwrap_key returned"):
        envelope.open(envelope.seal(b"x", alice.public_key()), Held(alice, result=result))


def test_an_exception_becomes_a_typed_error_with_the_cause_chained(alice):
    boom = RuntimeError("the service said no: secret-ish details")
    with pytest.raises(envelope.ExternalKeyError) as caught:
        envelope.open(envelope.seal(b"x", alice.public_key()), Held(alice, error=boom))
    assert caught.value.__cause__ is boom
    assert "secret-ish" not in str(caught.value)  # the library's words stay in the cause
    assert isinstance(caught.value, envelope.InvalidKeyError)


def test_an_envelope_error_passes_through_unchanged(alice):
    error = envelope.AuthenticationError(HEADER_AUTH_FAILED)
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(envelope.seal(b"x", alice.public_key()), Held(alice, error=error))
    assert caught.value is error


def test_the_wrapped_length_is_checked_before_the_key_is_asked(alice):
    """R14: a wrapped key whose length is not the modulus's is malformed, and costs no token call."""
    held = Held(alice)
    identity = UnwrapperIdentity(held)
    entry = RecipientEntry(RSA_OAEP_SHA256, {"kid": bytes.fromhex(identity.key_id), "key": b"\x00" * 255})
    with pytest.raises(envelope.MalformedError, match="wrapped key length"):
        identity.unwrap([entry])
    assert held.calls == 0


@pytest.mark.parametrize("public", ["not a key", None, ec.generate_private_key(ec.SECP256R1()).public_key()])
def test_a_public_key_that_is_not_rsa_is_a_typed_error(alice, public):
    held = Held(alice)
    held.public_key = public
    with pytest.raises(envelope.ExternalKeyError, match="public_key is"):
        envelope.open(envelope.seal(b"x", alice.public_key()), held)


def test_a_small_rsa_key_is_held_to_the_key_policy(alice):
    held = Held(alice)
    held.public_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(envelope.InvalidKeyError):
        envelope.open(envelope.seal(b"x", alice.public_key()), held)


class BytesIdentity:
    """An Identity written with public names only: it returns the data key's bytes."""

    def __init__(self, held: Held, result: Any = None, error: BaseException | None = None) -> None:
        self.held, self.result, self.error = held, result, error

    def unwrap(self, entries: Any) -> Any:
        if self.error is not None:
            raise self.error
        if self.result is not None:
            return self.result
        for entry in entries:
            if entry.kid == bytes.fromhex(envelope.key_id(self.held.public_key)):
                return self.held.unwrap_key(entry.fields["key"])
        return None


def test_an_identity_may_return_the_data_key_bytes(alice):
    assert envelope.open(envelope.seal(b"x", alice.public_key()), BytesIdentity(Held(alice))) == b"x"


@pytest.mark.parametrize("result", ["text", 3, {"key": b""}])
def test_an_identity_returning_something_else_is_a_typed_error_not_an_attribute_error(alice, result):
    with pytest.raises(envelope.ExternalKeyError, match="an Identity returns the 32-byte data key"):
        envelope.open(envelope.seal(b"x", alice.public_key()), BytesIdentity(Held(alice), result=result))


def test_an_identity_raising_is_a_typed_error(alice):
    with pytest.raises(envelope.ExternalKeyError, match=r"BytesIdentity\.unwrap failed: KeyError"):
        envelope.open(envelope.seal(b"x", alice.public_key()), BytesIdentity(Held(alice), error=KeyError("k")))


class HeldSigner:
    """A Signer written with public names only."""

    def __init__(self, key: Any, *, public: Any = None, result: Any = None, error: BaseException | None = None) -> None:
        self._key = key
        self.algorithm = "ed25519"
        self.public_key_der = public if public is not None else envelope.KeySigner(key).public_key_der
        self.result, self.error = result, error

    def sign(self, message: bytes) -> Any:
        if self.error is not None:
            raise self.error
        return self.result if self.result is not None else self._key.sign(message)


def test_a_signer_written_with_public_names_signs(alice):
    producer = envelope.generate_signing_key()
    sealed = envelope.seal(b"x", alice.public_key(), sign_with=HeldSigner(producer))
    assert envelope.open_with_metadata(sealed, alice, signed_by=producer.public_key()).signer.verified


@pytest.mark.parametrize(
    "change",
    [
        {"result": b"\x00" * 64},  # the right length, a wrong signature
        {"result": b"short"},
        {"public": envelope.KeySigner(envelope.generate_signing_key()).public_key_der},  # signs with another key
    ],
)
def test_a_signature_that_does_not_verify_is_refused_at_seal_time(alice, tmp_path, change):
    (tmp_path / "in").write_bytes(b"x")
    with pytest.raises(envelope.ExternalKeyError):
        envelope.seal_file(
            tmp_path / "in",
            tmp_path / "out",
            alice.public_key(),
            sign_with=HeldSigner(envelope.generate_signing_key(), **change),
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"result": "text"}, "sign returned str"),
        ({"error": OSError("hsm gone")}, "sign failed: OSError"),
        ({"public": b"not a key"}, "not a valid ed25519 public key"),
        ({"public": 42}, "public_key_der is int"),
    ],
)
def test_what_a_signer_returns_or_raises_is_a_typed_error(alice, change, match):
    with pytest.raises(envelope.ExternalKeyError, match=match):
        envelope.seal(b"x", alice.public_key(), sign_with=HeldSigner(envelope.generate_signing_key(), **change))


def test_an_unknown_algorithm_is_a_usage_error(alice):
    signer = HeldSigner(envelope.generate_signing_key())
    signer.algorithm = "rsa-pss"
    with pytest.raises(envelope.UsageError, match="unknown signature algorithm"):
        envelope.seal(b"x", alice.public_key(), sign_with=signer)


def test_the_new_error_pickles_and_maps_to_the_key_exit_code():
    from envelope.cli.errors import EXIT_KEY, exit_code_for

    error = pickle.loads(pickle.dumps(envelope.ExternalKeyError("token said no")))
    assert str(error) == "token said no" and exit_code_for(error) == EXIT_KEY


def test_a_model_adapter_takes_a_key_unwrapper(alice, tmp_path):
    from remote_fixtures import need

    need("safetensors")
    np = need("numpy")
    from envelope.models import safetensors as sealed

    sealed.save({"w": np.arange(12, dtype="float32")}, tmp_path / "w.env", alice.public_key())
    held = Held(alice)
    assert sealed.load(tmp_path / "w.env", held)["w"].tolist() == list(range(12)) and held.calls == 1


def test_without_python_pkcs11_the_error_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pkcs11(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "pkcs11":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pkcs11)
    from envelope import pkcs11

    with pytest.raises(envelope.MissingDependencyError, match=r"envelope-ml\[pkcs11\]"):
        pkcs11.Pkcs11Identity("pkcs11:token=t;object=k?module-path=/m.so", pin="1")


def test_an_envelope_filesystem_opens_with_a_key_unwrapper_in_process(alice, tmp_path):
    from remote_fixtures import need

    need("fsspec")
    from envelope.fsspec import open_url

    (tmp_path / "m.env").write_bytes(envelope.seal(b"weights", alice.public_key()))
    held = Held(alice)
    with open_url(f"envelope::file://{tmp_path}/m.env", identity=held) as f:
        assert f.read() == b"weights"
    assert held.calls == 1


def test_only_identities_that_pickle_travel_to_workers(alice):
    """Held keeps an RSA private key object, which does not pickle: refused before Dask tries."""
    from envelope._workerkeys import portable_identity

    with pytest.raises(envelope.UsageError, match=r"Held\) cannot travel to other processes"):
        portable_identity(Held(alice))
    with pytest.raises(envelope.UsageError, match="cannot travel"):
        portable_identity([Held(alice)])
