"""Migrating an old whole-file Fernet token into an envelope file (envelope.migrate_fernet_token,
docs/SDK.md): the streamed result is what cryptography's Fernet.decrypt gives, tampered tokens are
refused with a typed error and leave no output, memory stays flat in the token's size."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from forge import Pipe
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope
from envelope import migrate

KEY = Fernet.generate_key()


@pytest.fixture(scope="module")
def opener() -> envelope.FernetKey:
    return envelope.FernetKey(KEY)  # the new file is sealed for the same shared key, as a fernet entry


def migrated(token: bytes, tmp_path: Path, name: str = "out.env") -> bytes:
    target = tmp_path / name
    result = envelope.migrate_fernet_token(io.BytesIO(token), target, KEY, envelope.FernetKey(KEY), overwrite=True)
    plaintext = envelope.open(target.read_bytes(), envelope.FernetKey(KEY))
    assert result.plaintext_len == len(plaintext)
    assert result.timestamp == Fernet(KEY).extract_timestamp(token.strip())
    return plaintext


@settings(max_examples=60)
@given(
    data=st.binary(max_size=3000),
    block=st.sampled_from([4, 8, 44, 1 << 20]),
    ending=st.sampled_from([b"", b"\n", b"\r\n", b"  \n"]),
)
def test_the_streamed_plaintext_is_what_fernet_decrypts(
    data: bytes, block: int, ending: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "_TEXT_BLOCK", block)  # blocks that end anywhere in the token
    token = Fernet(KEY).encrypt(data)
    assert migrated(token + ending, tmp_path) == Fernet(KEY).decrypt(token) == data


@settings(max_examples=80)
@given(data=st.binary(min_size=0, max_size=200), where=st.floats(0, 1), bit=st.integers(0, 5))
def test_a_tampered_token_is_refused_and_leaves_no_output(data: bytes, where: float, bit: int, tmp_path: Path) -> None:
    token = bytearray(Fernet(KEY).encrypt(data))
    at = min(int(where * len(token)), len(token) - 1)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if token[at : at + 1] == b"=":
        return
    token[at] = alphabet[(alphabet.index(token[at]) ^ (1 << bit)) % 64]
    decoded_same = True
    try:
        Fernet(KEY).decrypt(bytes(token))
    except InvalidToken:
        decoded_same = False
    target = tmp_path / "t.env"
    if decoded_same:  # only the unused low bits of the last character changed: the same bytes
        assert migrated(bytes(token), tmp_path) == data
        return
    with pytest.raises((envelope.AuthenticationError, envelope.MalformedError)):
        envelope.migrate_fernet_token(io.BytesIO(bytes(token)), target, KEY, envelope.FernetKey(KEY))
    assert not target.exists()


def test_a_wrong_key_is_an_authentication_error(tmp_path: Path) -> None:
    token = Fernet(Fernet.generate_key()).encrypt(b"secret")
    with pytest.raises(envelope.AuthenticationError, match="does not authenticate"):
        envelope.migrate_fernet_token(io.BytesIO(token), tmp_path / "x.env", KEY, envelope.FernetKey(KEY))
    assert not (tmp_path / "x.env").exists()


@pytest.mark.parametrize(
    "text",
    [b"", b"\n", b"not base64 at all!", b"QUJD", Fernet(KEY).encrypt(b"x")[:-4],
     Fernet(KEY).encrypt(b"x")[:10] + b"+" + Fernet(KEY).encrypt(b"x")[11:], b"=" + Fernet(KEY).encrypt(b"x")[1:],
     b"A" * 100 + b"\n" + b"A" * 100, b"\x00" * 120],
)  # fmt: skip
def test_text_that_is_not_a_fernet_token_is_malformed(text: bytes, tmp_path: Path) -> None:
    with pytest.raises(envelope.MalformedError, match="not a Fernet token"):
        envelope.migrate_fernet_token(io.BytesIO(text), tmp_path / "x.env", KEY, envelope.FernetKey(KEY))


@pytest.mark.parametrize("cut", [4, 100, 1001])
def test_a_cut_token_is_said_to_be_truncated(cut: int, tmp_path: Path) -> None:
    token = Fernet(KEY).encrypt(bytes(5000))
    with pytest.raises(envelope.MalformedError, match=r"its length fits no token: truncated\?"):
        envelope.migrate_fernet_token(io.BytesIO(token[:-cut]), tmp_path / "x.env", KEY, envelope.FernetKey(KEY))


def test_another_version_byte_is_malformed(tmp_path: Path) -> None:
    import base64

    raw = bytearray(base64.urlsafe_b64decode(Fernet(KEY).encrypt(b"x")))
    raw[0] = 0x81
    with pytest.raises(envelope.MalformedError):
        envelope.migrate_fernet_token(
            io.BytesIO(base64.urlsafe_b64encode(raw)), tmp_path / "x.env", KEY, envelope.FernetKey(KEY)
        )


def test_a_token_from_a_pipe_is_spooled_and_migrated(tmp_path: Path, alice) -> None:
    data = os.urandom(100_000)
    token = Fernet(KEY).encrypt(data) + b"\n"
    target = tmp_path / "p.env"
    envelope.migrate_fernet_token(io.BufferedReader(Pipe(token)), target, KEY, alice.public_key(), metadata={"a": 1})
    assert envelope.open_with_metadata(target.read_bytes(), alice)[:2] == (data, {"a": 1})


def test_a_token_changed_between_the_two_passes_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second pass checks the HMAC again over the bytes it decrypted, before the output appears."""
    source = tmp_path / "token.txt"
    source.write_bytes(Fernet(KEY).encrypt(os.urandom(5000)))
    other = Fernet(Fernet.generate_key()).encrypt(os.urandom(5000))
    real = migrate._authenticate

    def then_swap(*args: object) -> bytes:
        header = real(*args)  # type: ignore[arg-type]
        source.write_bytes(other)  # the same length: a token made with another key
        return header

    monkeypatch.setattr(migrate, "_authenticate", then_swap)
    with pytest.raises(envelope.AuthenticationError):
        envelope.migrate_fernet_token(source, tmp_path / "x.env", KEY, envelope.FernetKey(KEY))
    assert not (tmp_path / "x.env").exists()


def test_memory_stays_flat_in_the_token_size(tmp_path: Path) -> None:
    """A 48 MiB token migrates with a few MiB of Python allocations (the naive way holds the token,
    its decoding and the plaintext: about 4x the payload)."""
    source = tmp_path / "big.txt"
    data = os.urandom(36 << 20)
    source.write_bytes(Fernet(KEY).encrypt(data))
    del data
    tracemalloc.start()
    try:
        result = envelope.migrate_fernet_token(
            source, tmp_path / "big.env", KEY, envelope.FernetKey(KEY), chunk_size=1 << 20
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.plaintext_len == 36 << 20
    assert peak < 24 << 20, f"peak {peak >> 20} MiB"
