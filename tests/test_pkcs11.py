"""Keys on PKCS#11 tokens (envelope.pkcs11), against a real token: SoftHSM2 (tests/hsm_fixtures.py).

SoftHSM2 2.6 refuses CKM_RSA_PKCS_OAEP with SHA-256 (CKR_ARGUMENTS_BAD) and computes CKM_RSA_X_509:
the raw path and the fallback run on the token here; the OAEP path's handling of a token's answer
runs against a stand-in that answers as a token that takes OAEP-SHA256 would (said where)."""

from __future__ import annotations

import importlib.util
import os
import pickle
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hsm_fixtures import PIN, Token, softhsm_token
from hypothesis import given
from hypothesis import strategies as st
from remote_fixtures import need

import envelope
from envelope._datakey import HEADER_AUTH_FAILED
from envelope._oaep import decode_or_random
from envelope._pkcs11uri import parse_pkcs11_uri

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@pytest.fixture(scope="module")
def token() -> Token:
    return softhsm_token()


@pytest.fixture(scope="module")
def p11() -> Any:
    from envelope import pkcs11

    return pkcs11


# --- RFC 7512 URIs (no token needed) -------------------------------------------------------------


def test_a_uri_names_token_object_id_type_module_and_pin_source():
    uri = parse_pkcs11_uri(
        "pkcs11:token=My%20models;object=prod-key;id=%01%a2;type=private"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin"
    )
    assert (uri.token, uri.object, uri.id, uri.type) == ("My models", "prod-key", b"\x01\xa2", "private")
    assert (uri.module_path, uri.pin_source, uri.module_name, uri.pin_value) == (
        "/usr/lib/softhsm/libsofthsm2.so",
        "file:/run/pin",
        None,
        None,
    )
    assert parse_pkcs11_uri(str(uri)) == uri


def test_a_pin_value_never_shows():
    uri = parse_pkcs11_uri("pkcs11:token=t;object=k?pin-value=123456")
    assert uri.pin_value == "123456"
    assert "123456" not in str(uri) and "123456" not in repr(uri)
    for text in ("pkcs11:token=t?pin-value=12&SECRETPART", "pkcs11:token=t?pin-value=12&secret=34"):
        with pytest.raises(envelope.UsageError, match="%26") as caught:  # an '&' in the PIN
            parse_pkcs11_uri(text)
        assert "SECRET" not in str(caught.value).upper() and "34" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pkcs12:token=t", "starts with 'pkcs11:'"),
        ("pkcs11:token=t;tokn=x", "unknown PKCS#11 URI path attribute 'tokn'"),
        ("pkcs11:token=t;token=u", "appears twice"),
        ("pkcs11:token=t?pin=1", r"unknown PKCS#11 URI query attribute \(RFC 7512 knows"),
        ("pkcs11:object=a b", "a space"),
        ("pkcs11:object=%zz", "bad %-escape"),
        ("pkcs11:type=secret", "type is one of"),
        ("pkcs11:slot-id=x1", "decimal"),
        ("pkcs11:token", "NAME=VALUE"),
        ("pkcs11:object=%ff", "not UTF-8"),
        ("pkcs11:token=t?pin-source=file:/p&pin-value=1", "not both"),
    ],
)
def test_what_is_not_a_well_formed_uri_is_refused(text, match):
    with pytest.raises(envelope.UsageError, match=match):
        parse_pkcs11_uri(text)


def test_vendor_attributes_are_allowed_and_the_scheme_is_case_insensitive():
    assert parse_pkcs11_uri("PKCS11:token=t;x-vendor=1?x-other=2").token == "t"


@given(st.text(min_size=1, max_size=20), st.binary(min_size=1, max_size=20))
def test_a_uri_prints_and_parses_back(label, key_id):
    from envelope._pkcs11uri import Pkcs11Uri

    uri = Pkcs11Uri({"token": label, "object": label, "id": key_id}, {"module-path": "/m.so"})
    assert parse_pkcs11_uri(str(uri)) == uri


# --- the OAEP decoding done here for tokens that only do raw RSA (RFC 8017 7.1.2) -----------------


@pytest.fixture(scope="module")
def raw_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _raw_decrypt(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    """What CKM_RSA_X_509 returns: the RSA decryption with no padding removed (test-only)."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    return pow(int.from_bytes(ciphertext, "big"), numbers.d, n).to_bytes(256, "big")


@given(st.binary(min_size=32, max_size=32))
def test_the_decoding_agrees_with_cryptography_oaep(raw_key, message):
    encoded = _raw_decrypt(raw_key, raw_key.public_key().encrypt(message, OAEP))
    assert decode_or_random(encoded, 256) == message
    assert decode_or_random(encoded.lstrip(b"\x00"), 256) == message  # a token that drops leading zeros


def _encoding(message: bytes, *, y: int = 0, label_hash: bytes | None = None, ps: bytes | None = None) -> bytes:
    """An EME-OAEP encoding built by hand (RFC 8017 7.1.1 step 2), to break one rule at a time."""
    import hashlib

    from envelope._oaep import _mgf1, _xor

    k, h = 256, 32
    lhash = label_hash if label_hash is not None else hashlib.sha256(b"").digest()
    padding_string = ps if ps is not None else b"\x00" * (k - len(message) - 2 * h - 2) + b"\x01"
    db = lhash + padding_string + message
    seed = os.urandom(h)
    masked_db = _xor(db, _mgf1(seed, len(db)))
    masked_seed = _xor(seed, _mgf1(masked_db, h))
    return bytes([y]) + masked_seed + masked_db


def test_a_hand_built_encoding_decodes():
    assert decode_or_random(_encoding(b"k" * 32), 256) == b"k" * 32


@pytest.mark.parametrize(
    ("message", "broken"),
    [
        (b"m" * 32, {"y": 1}),  # the leading byte is not zero
        (b"m" * 32, {"label_hash": b"\x00" * 32}),  # another label
        (b"m" * 32, {"ps": b"\x00" * 158 + b"\x02"}),  # no 0x01 separator
        (b"m" * 32, {"ps": b"\x00" * 50 + b"\x07" + b"\x00" * 107 + b"\x01"}),  # a non-zero byte in PS
        (b"m" * 33, {"ps": b"\x00" * 157 + b"\x01"}),  # a 33-byte message
        (b"m" * 31, {"ps": b"\x00" * 159 + b"\x01"}),  # a 31-byte message
        (b"\x01" + b"m" * 31, {"ps": b"\x00" * 159}),  # the separator inside the message's place
    ],
)
def test_a_malformed_encoding_yields_a_random_key(message, broken):
    encoded = _encoding(message, **broken)
    assert len(encoded) == 256
    first, second = decode_or_random(encoded, 256), decode_or_random(encoded, 256)
    assert len(first) == 32 and message[-32:] not in (first, second) and first != second


def test_an_encoding_too_long_for_the_modulus_yields_a_random_key():
    assert len(decode_or_random(b"\x00" * 257, 256)) == 32


# --- the token --------------------------------------------------------------------------------------


def _count(obj: Any, method: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    inner = getattr(obj, method)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)  # (data, mechanism[, parameters])
        return inner(*args, **kwargs)

    monkeypatch.setattr(obj, method, counted)
    return calls


def test_a_file_sealed_to_a_token_key_opens_falling_back_to_raw_rsa(token, p11, monkeypatch):
    public = p11.load_public_key(token.uri("prod-key", pin=False))
    identity = p11.Pkcs11Identity(token.uri("prod-key"))
    assert (
        isinstance(identity, envelope.KeyUnwrapper) and identity.public_key.public_numbers() == public.public_numbers()
    )
    calls = _count(identity, "_decrypt", monkeypatch)
    sealed = envelope.seal(b"weights", public)
    assert envelope.open(sealed, identity) == b"weights"
    # SoftHSM2 refuses OAEP with SHA-256 (CKR_ARGUMENTS_BAD): the first open tries it, then raw RSA.
    import pkcs11

    assert [c[1] for c in calls] == [pkcs11.Mechanism.RSA_PKCS_OAEP, pkcs11.Mechanism.RSA_X_509]
    assert identity.mechanism == "x509"
    del calls[:]
    for _ in range(3):
        assert envelope.open(sealed, identity) == b"weights"
    assert len(calls) == 3  # one token operation per open from then on


def test_forcing_oaep_shows_the_token_refuses_sha256(token, p11):
    identity = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="oaep")
    with pytest.raises(envelope.ExternalKeyError, match="refuses this mechanism's parameters"):
        envelope.open(envelope.seal(b"x", identity.public_key), identity)


def test_one_token_operation_per_open_with_raw_rsa(token, p11, tmp_path, monkeypatch):
    identity = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="x509")
    calls = _count(identity, "_decrypt", monkeypatch)
    (tmp_path / "m.env").write_bytes(
        envelope.seal(os.urandom(5000), [envelope.generate_private_key().public_key(), identity.public_key])
    )
    envelope.open_file(tmp_path / "m.env", tmp_path / "m.out", identity)
    envelope.verify_file(tmp_path / "m.env", identity)
    assert len(calls) == 2


def test_a_file_for_other_keys_costs_no_token_operation(token, p11, monkeypatch):
    identity = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="x509")
    calls = _count(identity, "_decrypt", monkeypatch)
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(envelope.seal(b"x", envelope.generate_private_key().public_key()), identity)
    assert calls == []


def test_a_forged_wrapped_key_fails_as_a_header_mac_does(token, p11):
    """R15 through the token: a wrapped key that is not a valid OAEP encoding under the token's key."""
    from envelope._header import read_header

    identity = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="x509")
    sealed = envelope.seal(b"x", identity.public_key)
    import io

    _, header, _ = read_header(io.BytesIO(sealed))
    wrapped = header.recipients[0].fields["key"]
    forged = identity.public_key.encrypt(os.urandom(31), OAEP)  # a valid encoding of the wrong length
    too_large = b"\xff" * len(wrapped)  # above the modulus: SoftHSM2 answers GeneralError
    for replacement in (forged, bytes([wrapped[0] ^ 1]) + wrapped[1:], too_large):
        with pytest.raises(envelope.AuthenticationError) as caught:
            envelope.open(sealed.replace(wrapped, replacement), identity)
        assert str(caught.value) == HEADER_AUTH_FAILED


class _OaepToken:
    """Stands in for a token that takes CKM_RSA_PKCS_OAEP with SHA-256 (SoftHSM2 does not): the
    decryption is cryptography's, the answers and errors are python-pkcs11's."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.calls = 0

    def __call__(self, data: bytes, mechanism: Any, param: Any = None) -> bytes:
        import pkcs11

        self.calls += 1
        assert mechanism == pkcs11.Mechanism.RSA_PKCS_OAEP
        assert param == (pkcs11.Mechanism.SHA256, pkcs11.MGF.SHA256, None)
        try:
            return self.key.decrypt(data, OAEP)
        except ValueError:
            raise pkcs11.exceptions.EncryptedDataInvalid() from None


@pytest.mark.parametrize(
    "refusal", ["EncryptedDataInvalid", "EncryptedDataLenRange", "DataInvalid", "DataLenRange", "GeneralError",
                "FunctionFailed"],
)  # fmt: skip
def test_every_way_a_token_says_does_not_decrypt_reads_as_a_header_mac_failure(token, p11, monkeypatch, raw_key,
                                                                              refusal):  # fmt: skip
    """Tokens name a bad OAEP padding in different ways: each must read as R16 reads, or the
    difference would be a padding oracle. Only failures of the token itself are ExternalKeyError."""
    import pkcs11

    identity = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="oaep")
    monkeypatch.setattr(identity, "public_key", raw_key.public_key())
    sealed = envelope.seal(b"x", raw_key.public_key())

    def refuse(data: bytes, mechanism: Any, param: Any = None) -> bytes:
        raise getattr(pkcs11.exceptions, refusal)()

    monkeypatch.setattr(identity, "_decrypt", refuse)
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(sealed, identity)
    assert str(caught.value) == HEADER_AUTH_FAILED
    for failure, words in (("DeviceRemoved", "removed"), ("SessionClosed", "SessionClosed")):

        def fail(data: bytes, mechanism: Any, param: Any = None, failure: str = failure) -> bytes:
            raise getattr(pkcs11.exceptions, failure)()

        monkeypatch.setattr(identity, "_decrypt", fail)
        with pytest.raises(envelope.ExternalKeyError, match=words):
            envelope.open(sealed, identity)


def test_the_oaep_path_with_a_token_that_takes_it(token, p11, monkeypatch, raw_key):
    identity = p11.Pkcs11Identity(token.uri("prod-key"))
    fake = _OaepToken(raw_key)
    monkeypatch.setattr(identity, "_decrypt", fake)
    monkeypatch.setattr(identity, "public_key", raw_key.public_key())
    monkeypatch.setattr(identity, "_modulus_len", 256)
    sealed = envelope.seal(b"via oaep", raw_key.public_key())
    assert envelope.open(sealed, identity) == b"via oaep" and identity.mechanism == "oaep" and fake.calls == 1
    forged = envelope.seal(b"x", raw_key.public_key())
    import io

    from envelope._header import read_header

    wrapped = read_header(io.BytesIO(forged))[1].recipients[0].fields["key"]
    with pytest.raises(envelope.AuthenticationError, match="header authentication failed"):
        envelope.open(forged.replace(wrapped, bytes(256)), identity)  # the token says "does not decrypt"


def test_signing_with_token_keys_verifies_with_their_public_keys(token, p11, monkeypatch, tmp_path):
    recipient = envelope.generate_private_key()
    for name, algorithm in (("signer-ec", "ecdsa-p256-sha256"), ("signer-ed", "ed25519")):
        signer = p11.Pkcs11Signer(token.uri(name))
        assert signer.algorithm == algorithm and isinstance(signer, envelope.Signer)
        calls = _count(signer, "_sign", monkeypatch)
        (tmp_path / "in").write_bytes(os.urandom(3000))
        envelope.seal_file(tmp_path / "in", tmp_path / f"{name}.env", recipient.public_key(), sign_with=signer)
        assert len(calls) == 1
        pinned = p11.load_public_key(token.uri(name, pin=False))
        result = envelope.verify_file(tmp_path / f"{name}.env", recipient, signed_by=pinned)
        assert result.signer is not None and result.signer.verified and result.signer.algorithm == algorithm


def test_ecdsa_signatures_from_the_token_are_low_s(token, p11):
    signer = p11.Pkcs11Signer(token.uri("signer-ec"))
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    for i in range(20):  # about half of a token's raw signatures have a high s
        assert int.from_bytes(signer.sign(bytes([i]))[32:], "big") <= order // 2


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t, p: p.Pkcs11Identity(t.uri("k", pin=False, token="pins"), pin="0000"), "refused the PIN"),
        (lambda t, p: p.Pkcs11Identity(t.uri("prod-key", pin=False)), "needs its PIN"),
        (lambda t, p: p.Pkcs11Identity(t.uri("no-such-key")), "no private key on the token matches"),
        (lambda t, p: p.Pkcs11Identity(t.uri("prod-key", token="absent")), "no token matches"),
        (lambda t, p: p.Pkcs11Identity(t.uri("signer-ec")), "the key is EC, not RSA"),
        (lambda t, p: p.Pkcs11Signer(t.uri("prod-key")), "RSA keys open files"),
        (
            lambda t, p: p.Pkcs11Identity("pkcs11:token=models;object=prod-key?module-path=/nonexistent/lib.so"),
            "does not exist",
        ),
        (lambda t, p: p.Pkcs11Identity(f"pkcs11:token=models?module-path={t.pin_file}"), "cannot be loaded"),
        (lambda t, p: p.Pkcs11Identity("pkcs11:token=models?module-name=nosuchmodule"), "no PKCS#11 module named"),
        (
            lambda t, p: p.Pkcs11Identity(
                f"pkcs11:token=models;object=prod-key?module-path={t.module}&pin-source=file:/nonexistent"
            ),
            "pin-source file /nonexistent cannot be read",
        ),
    ],
)
def test_failures_are_typed_and_clear(token, p11, make, match):
    with pytest.raises(envelope.ExternalKeyError, match=match) as caught:
        make(token, p11)
    assert PIN not in str(caught.value)


def test_without_a_module_the_error_says_where_to_name_one(token, p11, monkeypatch):
    monkeypatch.delenv(p11.MODULE_ENV, raising=False)
    with pytest.raises(envelope.UsageError, match="ENVELOPE_PKCS11_MODULE"):
        p11.Pkcs11Identity("pkcs11:token=models;object=prod-key", pin=PIN)
    monkeypatch.setenv(p11.MODULE_ENV, token.module)
    assert p11.Pkcs11Identity("pkcs11:token=models;object=prod-key", pin=PIN).public_key.key_size == 2048


def test_a_module_by_name(token, p11):
    identity = p11.Pkcs11Identity(
        f"pkcs11:token=models;object=prod-key?module-name=softhsm2&pin-source=file:{token.pin_file}"
    )
    assert identity.public_key.key_size == 2048


def test_a_locked_pin_and_other_token_states_read_clearly(p11):
    """SoftHSM2 never locks a PIN (twelve wrong ones, then the right one, log in): the mapping of
    the token's answers is checked on python-pkcs11's own exception classes."""
    pkcs11 = need("pkcs11")

    for cls, words in [
        (pkcs11.exceptions.PinLocked, "locked"),
        (pkcs11.exceptions.TokenNotPresent, "not present"),
        (pkcs11.exceptions.DeviceRemoved, "removed"),
        (pkcs11.exceptions.GeneralError, "the PKCS#11 module failed (GeneralError)"),
    ]:
        error = p11._token_error(cls(), "pkcs11:token=t")
        assert isinstance(error, envelope.ExternalKeyError) and words in str(error)


def test_token_keys_do_not_travel(token, p11):
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(p11.Pkcs11Identity(token.uri("prod-key")))


def test_keygen_makes_keys_that_never_leave_the_token(token, p11):
    import pkcs11

    public = p11.generate_key_pair(token.uri("fresh", token="spare"), "rsa", bits=2048)
    assert isinstance(public, rsa.RSAPublicKey)
    identity = p11.Pkcs11Identity(token.uri("fresh", token="spare"))
    assert identity._key[pkcs11.Attribute.SENSITIVE] and not identity._key[pkcs11.Attribute.EXTRACTABLE]
    assert envelope.open(envelope.seal(b"new", public), identity) == b"new"
    with pytest.raises(envelope.UsageError, match="already holds"):
        p11.generate_key_pair(token.uri("fresh", token="spare"), "ed25519")
    with pytest.raises(envelope.UsageError, match="object=LABEL"):
        p11.generate_key_pair(f"pkcs11:token=spare?module-path={token.module}&pin-value={PIN}")


def test_a_token_identity_is_refused_as_a_worker_key(token, p11):
    from envelope._workerkeys import portable_identity

    with pytest.raises(envelope.UsageError, match="cannot travel to other processes"):
        portable_identity(p11.Pkcs11Identity(token.uri("prod-key")))


def test_softhsm_refuses_only_the_sha256_parameters_of_oaep(token, p11):
    """What the fallback rests on: SoftHSM2 does CKM_RSA_PKCS_OAEP with SHA-1 (which the format does
    not use) and refuses the same mechanism with SHA-256 as CKR_ARGUMENTS_BAD, a property of the
    parameters, never of the ciphertext."""
    import pkcs11

    identity = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="oaep")
    sha1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    wrapped = identity.public_key.encrypt(b"k" * 32, sha1)
    sha1_params = (pkcs11.Mechanism.SHA_1, pkcs11.MGF.SHA1, None)
    assert identity._decrypt(wrapped, pkcs11.Mechanism.RSA_PKCS_OAEP, sha1_params) == b"k" * 32
    sha256_params = (pkcs11.Mechanism.SHA256, pkcs11.MGF.SHA256, None)
    with pytest.raises(pkcs11.exceptions.ArgumentsBad):
        identity._decrypt(identity.public_key.encrypt(b"k" * 32, OAEP), pkcs11.Mechanism.RSA_PKCS_OAEP, sha256_params)


def test_closing_one_key_does_not_log_out_the_others(token, p11):
    """PKCS#11 logs a process in per token, and closing the session that logged in logs every
    other session out: keys on one token share one session, closed with the last of them."""
    import gc

    first = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="x509")
    second = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="x509")
    signer = p11.Pkcs11Signer(token.uri("signer-ed"))
    sealed = envelope.seal(b"x", first.public_key, sign_with=signer)
    first.close()
    del first
    gc.collect()
    assert envelope.open(sealed, second) == b"x"
    assert len(signer.sign(b"still logged in")) == 64
    second.close()
    signer.close()
    third = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="x509")  # logs in again
    assert envelope.open(sealed, third) == b"x"


def test_a_wrong_pin_is_refused_also_while_the_token_is_logged_in(token, p11):
    """A second key shares the first one's login (the token itself would not check its PIN):
    its PIN is checked against the one that logged in."""
    logged_in = p11.Pkcs11Identity(token.uri("prod-key"), mechanism="x509")
    wrong = token.uri("prod-key", pin=False).replace("?", "?pin-value=0000&", 1)
    with pytest.raises(envelope.ExternalKeyError, match="refused the PIN") as caught:
        p11.Pkcs11Identity(wrong)
    assert "0000" not in str(caught.value)
    with pytest.raises(envelope.ExternalKeyError, match="refused the PIN"):
        p11.Pkcs11Signer(token.uri("signer-ed"), pin="0000")
    same = p11.Pkcs11Identity(token.uri("prod-key", pin=False), pin=token.pin_file.read_text().strip())
    assert envelope.open(envelope.seal(b"x", same.public_key), logged_in) == b"x"
    same.close()
    logged_in.close()


def test_a_token_answering_ecdsa_in_der_or_garbage(token, p11, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    signer = p11.Pkcs11Signer(token.uri("signer-ec"))
    inner = signer._sign

    def der(data: bytes, mechanism: Any) -> bytes:  # as some tokens answer
        raw = inner(data, mechanism)
        return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))

    monkeypatch.setattr(signer, "_sign", der)
    recipient = envelope.generate_private_key(2048)
    sealed = envelope.seal(b"x", recipient.public_key(), sign_with=signer)
    assert envelope.open_with_metadata(sealed, recipient).signer.verified
    monkeypatch.setattr(signer, "_sign", lambda data, mechanism: b"\x01\x02\x03")
    with pytest.raises(envelope.ExternalKeyError, match="neither r"):
        signer.sign(b"x")


# --- a token in a process that imported TensorFlow --------------------------------------------------


def test_a_token_key_opens_a_file_in_a_process_that_imported_tensorflow(token: Token, tmp_path: Any) -> None:
    """TensorFlow exports BoringSSL's symbols under OpenSSL's names; SoftHSM2, which links the
    system's OpenSSL, crashed (SIGSEGV in C_Login) in any process that had imported TensorFlow,
    until envelope.pkcs11 bound the module to its own libraries (RTLD_DEEPBIND). A fresh process,
    since this one has loaded the module already."""
    import subprocess
    import sys

    if importlib.util.find_spec("tensorflow") is None:
        if os.environ.get("ENVELOPE_REQUIRE_FRAMEWORKS"):
            pytest.fail("tensorflow is required here (ENVELOPE_REQUIRE_FRAMEWORKS=1)")
        pytest.skip("tensorflow is not installed")
    script = f"""
import tensorflow  # first: its symbols are in the process before the module's
import envelope
from envelope import pkcs11
uri = {token.uri("prod-key")!r}
sealed = envelope.seal(b"weights", pkcs11.load_public_key(uri))
assert envelope.open(sealed, pkcs11.Pkcs11Identity(uri)) == b"weights"
print("opened")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("opened")
