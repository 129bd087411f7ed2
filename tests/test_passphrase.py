"""Spec sections 4.5 and 4.6: passphrase (``scrypt``) and shared Fernet key (``fernet``) entries,
through the SDK; rules R45-R50. The vectors (test_vectors.py) hold the byte-level cases."""

from __future__ import annotations

import base64
import pickle
import unicodedata

import msgpack
import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envelope
from envelope._datakey import HEADER_AUTH_FAILED
from envelope._format import decode_header

CHEAP = 10  # work factor of the tests: 1 MiB, about a millisecond


def header_of(sealed: bytes) -> dict:
    header_len = int.from_bytes(sealed[9:13], "big")
    return msgpack.unpackb(sealed[13 : 13 + header_len], raw=False)


def mac_flipped(sealed: bytes) -> bytes:
    out = bytearray(sealed)
    out[13 + int.from_bytes(sealed[9:13], "big")] ^= 1
    return bytes(out)


def auth_message(sealed: bytes, key: object) -> str:
    with pytest.raises(envelope.AuthenticationError) as caught:
        envelope.open(sealed, key)
    return str(caught.value)


# --- fernet (section 4.6) ----------------------------------------------------------------------


def test_a_shared_fernet_key_is_found_by_its_key_id_and_unwraps_as_the_spec_says():
    text = Fernet.generate_key()
    sealed = envelope.seal(b"model", envelope.FernetKey(text))
    (entry,) = header_of(sealed)["recipients"]
    shared = base64.urlsafe_b64decode(text)
    kid = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope v1 fernet key id").derive(shared)
    assert entry["type"] == "fernet" and entry["kid"] == kid and len(entry["salt"]) == 16
    wrap_key = HKDF(hashes.SHA256(), 32, salt=entry["salt"], info=b"envelope v1 fernet wrap").derive(shared)
    data_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), entry["key"], None)
    assert Fernet(base64.urlsafe_b64encode(data_key))  # the data key, not the shared key, makes the chunks
    assert envelope.FernetKey(text).key_id == kid.hex() == envelope.inspect(sealed).recipients[0].key_id
    assert envelope.open(sealed, envelope.FernetKey(text.decode() + "\n")) == b"model"


def test_no_entry_or_chunk_is_a_fernet_token_under_the_shared_key():
    text = Fernet.generate_key()
    sealed = envelope.seal(b"payload", envelope.FernetKey(text), chunk_size=16)
    f = Fernet(text)
    entry = header_of(sealed)["recipients"][0]
    header_end = 13 + int.from_bytes(sealed[9:13], "big") + 32
    for candidate in (entry["key"], entry["kid"], sealed[header_end:]):
        with pytest.raises(InvalidToken):
            f.decrypt(base64.urlsafe_b64encode(candidate))


def test_fernet_keys_beside_rsa_keys_and_the_first_matching_key_is_used(alice):
    one, two = envelope.FernetKey.generate(), envelope.FernetKey.generate()
    sealed = envelope.seal(b"x", [alice.public_key(), one])
    assert envelope.open(sealed, [two, one]) == b"x"
    assert envelope.open(sealed, alice) == b"x"
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(sealed, two)
    with pytest.raises(envelope.UsageError, match="twice"):
        envelope.seal(b"x", [one, envelope.FernetKey(one.text())])


@pytest.mark.parametrize(
    "text",
    ["", "not a key", Fernet.generate_key().decode()[:43], Fernet.generate_key().decode().rstrip("="),
     base64.b64encode(b"\xfb" * 32).decode(), base64.urlsafe_b64encode(bytes(31)).decode()],
)  # fmt: skip
def test_a_fernet_key_that_is_not_32_bytes_of_padded_base64url_is_refused(text):
    with pytest.raises(envelope.InvalidKeyError) as caught:
        envelope.FernetKey(text)
    assert text[:8] not in str(caught.value) or not text


def test_a_wrong_fernet_wrap_reads_like_a_header_mac_failure():
    """R46: the same error and message as R16."""
    key = envelope.FernetKey.generate()
    sealed = envelope.seal(b"x", key)
    entry = header_of(sealed)["recipients"][0]
    broken = sealed.replace(entry["salt"], bytes(16))
    assert auth_message(broken, key) == auth_message(mac_flipped(sealed), key) == HEADER_AUTH_FAILED


def test_fernet_keys_and_passphrases_keep_their_secrets():
    key = envelope.FernetKey.generate()
    secret = key.text().decode()
    assert secret not in repr(key) and secret[:10] not in repr(key)
    phrase = envelope.Passphrase("hunter2-but-longer", work_factor=CHEAP)
    assert "hunter2" not in repr(phrase)
    for value in (key, phrase):
        with pytest.raises(TypeError):
            pickle.dumps(value)


# --- scrypt (section 4.5) ----------------------------------------------------------------------


def test_a_passphrase_entry_unwraps_as_the_spec_says():
    sealed = envelope.seal(b"model", envelope.Passphrase("pw", work_factor=CHEAP))
    (entry,) = header_of(sealed)["recipients"]
    assert list(entry) == ["type", "salt", "ln", "key"] and entry["ln"] == CHEAP
    kdf = Scrypt(salt=b"envelope v1 scrypt" + entry["salt"], length=32, n=1 << CHEAP, r=8, p=1)
    ChaCha20Poly1305(kdf.derive(b"pw")).decrypt(bytes(12), entry["key"], None)  # raises if not
    info = envelope.inspect(sealed).recipients[0]
    assert (info.type, info.key_id, info.work_factor) == ("scrypt", None, CHEAP)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(passphrase=st.text(min_size=1, max_size=40), data=st.binary(max_size=3000), chunk=st.sampled_from([16, 1000]))
def test_a_passphrase_opens_what_it_sealed_in_any_unicode_form(passphrase, data, chunk):
    sealed = envelope.seal(data, envelope.Passphrase(passphrase, work_factor=1), chunk_size=chunk)
    for form in ("NFC", "NFD", "NFKC"):
        text = unicodedata.normalize(form, passphrase)
        if unicodedata.normalize("NFC", text) == unicodedata.normalize("NFC", passphrase):
            assert envelope.open(sealed, envelope.Passphrase(text)) == data


def test_bytes_are_used_as_given():
    sealed = envelope.seal(b"x", envelope.Passphrase("é".encode(), work_factor=CHEAP))
    assert envelope.open(sealed, envelope.Passphrase("é")) == b"x"
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(sealed, envelope.Passphrase(unicodedata.normalize("NFD", "é").encode()))


def test_a_wrong_passphrase_reads_like_a_header_mac_failure():
    """R50: the same error and message as R16."""
    sealed = envelope.seal(b"x", envelope.Passphrase("right", work_factor=CHEAP))
    wrong = auth_message(sealed, envelope.Passphrase("wrong"))
    assert wrong == auth_message(mac_flipped(sealed), envelope.Passphrase("right")) == HEADER_AUTH_FAILED


def test_an_empty_passphrase_and_bad_work_factors_are_refused():
    with pytest.raises(envelope.UsageError, match="empty"):
        envelope.Passphrase("")
    for value in (0, 31, True, 18.0):
        with pytest.raises(envelope.UsageError, match="1 to 30"):
            envelope.Passphrase("pw", work_factor=value)  # type: ignore[arg-type]
        with pytest.raises(envelope.UsageError, match="1 to 30"):
            envelope.Passphrase("pw", max_work_factor=value)  # type: ignore[arg-type]
    with pytest.raises(envelope.UsageError, match="empty"):
        envelope.seal(b"x", envelope.Passphrase(lambda: ""))


def test_a_work_factor_over_the_limit_is_refused_before_any_work_unless_raised():
    """R48: the default limit is 20; the caller may raise it for a file it expects."""
    asked = []

    def prompt() -> str:
        asked.append(1)
        return "pw"

    sealed = envelope.seal(b"x", envelope.Passphrase("pw", work_factor=12))
    with pytest.raises(envelope.LimitError, match="12 exceeds the limit of 11"):
        envelope.open(sealed, envelope.Passphrase(prompt, max_work_factor=11))
    assert asked == []  # refused before the passphrase is even asked for
    assert envelope.open(sealed, envelope.Passphrase("pw", max_work_factor=12)) == b"x"
    assert envelope.Passphrase("pw").max_work_factor == 20


def test_a_passphrase_callable_is_asked_once_and_only_when_the_file_needs_it(alice):
    asked = []

    def prompt() -> str:
        asked.append(1)
        return "pw"

    identity = envelope.Passphrase(prompt)
    with pytest.raises(envelope.NoMatchingKeyError, match="not sealed with a passphrase"):
        envelope.open(envelope.seal(b"x", alice.public_key()), identity)
    assert asked == []
    sealed = envelope.seal(b"x", envelope.Passphrase("pw", work_factor=CHEAP))
    assert envelope.open(sealed, identity) == envelope.open(sealed, identity) == b"x"
    assert asked == [1]


def test_a_passphrase_is_the_only_recipient_on_seal(alice):
    for others in ([alice.public_key()], [envelope.FernetKey.generate()], [envelope.Passphrase("b", work_factor=1)]):
        with pytest.raises(envelope.UsageError, match="only recipient"):
            envelope.seal(b"x", [envelope.Passphrase("a", work_factor=1), *others])


def test_a_reader_refuses_a_passphrase_entry_beside_another(alice):
    """R49, for every reader whatever key it holds: the RSA key here would open the file."""
    sealed = envelope.seal(b"x", alice.public_key())
    scrypt_entry = header_of(envelope.seal(b"y", envelope.Passphrase("p", work_factor=1)))["recipients"][0]
    raw = header_of(sealed)
    raw["recipients"].append(scrypt_entry)
    with pytest.raises(envelope.MalformedError, match="only recipient"):
        decode_header(msgpack.packb(raw, use_bin_type=True))
    raw["recipients"] = [scrypt_entry]
    assert decode_header(msgpack.packb(raw, use_bin_type=True)).recipients[0].type == "scrypt"


def test_rewrap_to_and_from_a_passphrase(alice, bob):
    phrase = envelope.Passphrase("old", work_factor=CHEAP)
    sealed = envelope.seal(b"model", phrase)
    # From a passphrase to keys: the passphrase entry is replaced.
    to_keys = envelope.rewrap(sealed, phrase, add=[alice.public_key(), bob.public_key()])
    assert [r.type for r in envelope.inspect(to_keys).recipients] == ["rsa-oaep-sha256"] * 2
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.open(to_keys, phrase)
    # To another passphrase.
    new = envelope.Passphrase("new", work_factor=CHEAP)
    renewed = envelope.rewrap(sealed, phrase, add=new)
    assert envelope.open(renewed, new) == b"model"
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(renewed, envelope.Passphrase("old"))
    # From keys to a passphrase: every other entry must go, by key id.
    with pytest.raises(envelope.UsageError, match="only recipient"):
        envelope.rewrap(to_keys, alice, add=new, remove=[envelope.key_id(bob)])
    back = envelope.rewrap(to_keys, alice, add=new, remove=[envelope.key_id(alice), envelope.key_id(bob)])
    assert [r.type for r in envelope.inspect(back).recipients] == ["scrypt"]
    assert envelope.open(back, new) == b"model"


def test_secret_keys_never_travel_in_a_task_graph():
    """docs/REMOTE.md, keys on workers: the fsspec filesystem and the Dask helpers refuse them."""
    from envelope._workerkeys import portable_identity, portable_recipients

    for secret in (envelope.FernetKey.generate(), envelope.Passphrase("pw", work_factor=1)):
        with pytest.raises(envelope.UsageError, match="never pickled"):
            portable_identity([secret])
        with pytest.raises(envelope.UsageError, match="never pickled"):
            portable_recipients(secret)
