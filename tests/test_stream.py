"""Spec section 7: the payload as raw Fernet tokens, chunk binding, sizes and offsets, R17-R22."""

from __future__ import annotations

import base64
import io
import struct

import pytest
from cryptography.fernet import Fernet
from forge import chunk_message, fernet_token, forge, forge_chunks
from hypothesis import given
from hypothesis import strategies as st

import envelope
from envelope._datakey import DataKey
from envelope._layout import PayloadLayout, token_len
from envelope._stream import ChunkOpener, ChunkSealer


def split_tokens(sealed: bytes) -> tuple[int, list[bytes], int]:
    """Cut a sealed file into its tokens using only the spec's arithmetic (section 7.3)."""
    info = envelope.inspect(sealed)
    payload = sealed[info.header_size :]
    size = info.token_size
    return info.header_size, [payload[i : i + size] for i in range(0, len(payload), size)], info.chunk_size


def data_key_of(sealed: bytes, key) -> DataKey:  # type: ignore[no-untyped-def]
    import io

    from envelope._header import read_and_unlock

    return read_and_unlock(io.BytesIO(sealed), key).data_key


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 47, 48, 49, 200])
def test_every_chunk_is_a_genuine_fernet_token(alice, size):
    """Property 4: base64url(token) opens with cryptography.fernet.Fernet under base64url(K), and no
    token tells when it was sealed: its timestamp field is 0, or its own length in the last (7.2)."""
    plaintext = bytes(range(256))[:size] if size <= 256 else b"x" * size
    sealed = envelope.seal(plaintext, alice.public_key(), chunk_size=16)
    fernet = Fernet(data_key_of(sealed, alice).fernet_key())
    _, tokens, chunk_size = split_tokens(sealed)
    assert len(tokens) == size // chunk_size + 1
    rebuilt = b""
    for index, token in enumerate(tokens):
        last = index == len(tokens) - 1
        assert int.from_bytes(token[1:9], "big") == (len(token) if last else 0)
        message = fernet.decrypt(base64.urlsafe_b64encode(token))  # no TTL
        found_index, flag = struct.unpack(">QB", message[:9])
        assert found_index == index
        assert flag == int(last)
        rebuilt += message[9:]
    assert rebuilt == plaintext


def test_hazmat_tokens_match_high_level_fernet_byte_for_byte():
    """Same key, IV and timestamp: our hazmat token equals the one cryptography.fernet builds."""
    data_key = DataKey(bytes(range(32)))
    iv = bytes(range(100, 116))
    sealer = ChunkSealer(data_key, 64, iv_source=lambda n: iv)
    for index, final, data in [(0, False, b"a" * 64), (7, True, b""), (2**40, True, b"tail"), (3, True, b"b" * 63)]:
        ours = sealer.seal(index, final, data)
        stamp = len(ours) if final else 0  # section 7.2: 0, or the final token's own length
        theirs = Fernet(data_key.fernet_key())._encrypt_from_parts(chunk_message(index, final, data), stamp, iv)
        assert base64.urlsafe_b64encode(ours) == theirs
        assert ours[1:9] == stamp.to_bytes(8, "big")


@given(st.integers(min_value=0, max_value=100_000))
def test_token_len_formula(data_len):
    expected = len(fernet_token(DataKey(b"k" * 32), chunk_message(0, True, b"\0" * data_len)))
    assert token_len(data_len) == expected


@given(chunk_size=st.integers(16, 4096), plaintext_len=st.integers(0, 20_000))
def test_layout_from_payload_length_alone(chunk_size, plaintext_len):
    """Section 7.3: chunk count and plaintext bounds follow from the file length."""
    full, rest = divmod(plaintext_len, chunk_size)
    payload_len = full * token_len(chunk_size) + token_len(rest)
    layout = PayloadLayout(chunk_size, payload_len)
    assert layout.chunk_count == full + 1
    assert layout.token_offset(full) == full * token_len(chunk_size)
    low, high = layout.plaintext_len_range()
    assert low <= plaintext_len <= high and high - low <= 15


def test_timestamp_field_is_checked_not_a_time(alice):
    """R19: the timestamp field is 0 before the last token and the final token's length in the last;
    a seal time (the first draft's rule) is refused, in any reader."""
    data_key = DataKey.generate()
    good = fernet_token(data_key, chunk_message(0, True, b"old"))
    assert good[1:9] == len(good).to_bytes(8, "big")
    assert envelope.open(forge(alice, data_key, [good]), alice) == b"old"
    for stamp in (0, 1_767_225_600, len(good) + 16, 2**63 - 1):
        sealed = forge(alice, data_key, [fernet_token(data_key, chunk_message(0, True, b"old"), stamp)])
        with pytest.raises(envelope.AuthenticationError):
            envelope.open(sealed, alice)
        with pytest.raises(envelope.AuthenticationError):
            envelope.open_stream(io.BytesIO(sealed), io.BytesIO(), alice)
    first = fernet_token(data_key, chunk_message(0, False, b"a" * 16), 73)  # non-final but stamped
    sealed = forge(alice, data_key, [first, fernet_token(data_key, chunk_message(1, True, b""))])
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(sealed, alice)


def test_a_stream_reader_knows_the_final_token_from_its_first_bytes(alice):
    """Section 7.4: the stream reader reads exactly the tokens, never past the final one (no read-ahead)."""
    sealed = envelope.seal(b"x" * 40, alice.public_key(), chunk_size=16)
    source = io.BytesIO(sealed + b"NEXT")
    with pytest.raises(envelope.AuthenticationError, match="follow the end"):  # R22, told apart from R18
        envelope.open_stream(source, io.BytesIO(), alice)
    with pytest.raises(envelope.AuthenticationError, match="truncated"):
        envelope.open_stream(io.BytesIO(sealed[:-1]), io.BytesIO(), alice)


def test_opener_rejects_foreign_key():
    token = ChunkSealer(DataKey.generate(), 16).seal(0, True, b"x")
    with pytest.raises(envelope.AuthenticationError):
        ChunkOpener(DataKey.generate(), 16).open_into(0, True, token, bytearray(len(token) + 16))


# --- R17-R22 with forged, individually valid Fernet tokens --------------------------------


def test_r17_no_payload_token(alice):
    with pytest.raises(envelope.AuthenticationError, match="truncated"):
        envelope.open(forge(alice, DataKey.generate(), []), alice)


def test_r18_impossible_final_length(alice):
    sealed = envelope.seal(b"y" * 40, alice.public_key(), chunk_size=16)
    for cut in (1, 16, 40):
        with pytest.raises(envelope.AuthenticationError):
            envelope.open(sealed[:-cut], alice)


@pytest.mark.parametrize(
    "chunks",
    [
        [(1, True, b"a")],  # index does not start at 0
        [(0, False, b"a" * 16)],  # last token not final (truncated at a chunk boundary)
        [(0, True, b"a" * 16), (1, True, b"")],  # final flag on a non-last token
        [(0, False, b"a" * 16), (0, True, b"b")],  # duplicated index
        [(1, False, b"a" * 16), (0, True, b"b")],  # reordered
        [(0, False, b"a" * 15), (1, True, b"b")],  # short non-final chunk (R21)
        [(0, False, b""), (1, True, b"b")],  # empty non-final chunk (R21)
        [(0, True, b"a" * 16)],  # final chunk not shorter than chunk_size (R21)
        [(0, True, b"a" * 17)],  # final chunk longer than chunk_size (R19/R21)
    ],
)
def test_r19_to_r21_misplaced_or_misshapen_chunks(alice, chunks):
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge_chunks(alice, DataKey.generate(), chunks), alice)


def test_r19_flag_values_other_than_0_and_1(alice):
    data_key = DataKey.generate()
    token = fernet_token(data_key, struct.pack(">QB", 0, 2) + b"a")
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge(alice, data_key, [token]), alice)


def test_r19_message_shorter_than_frame(alice):
    data_key = DataKey.generate()
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forge(alice, data_key, [fernet_token(data_key, b"\0" * 8)]), alice)


def test_forged_files_with_correct_framing_open(alice):
    """The forging helper itself is right: well-framed chunks do open (guards the tests above)."""
    chunks = [(0, False, b"a" * 16), (1, False, b"b" * 16), (2, True, b"c")]
    assert envelope.open(forge_chunks(alice, DataKey.generate(), chunks), alice) == b"a" * 16 + b"b" * 16 + b"c"


def _sealed_and_tokens(alice, n_chunks=4):  # type: ignore[no-untyped-def]
    sealed = envelope.seal(
        b"".join(bytes([65 + i]) * 16 for i in range(n_chunks - 1)) + b"z", alice.public_key(), chunk_size=16
    )
    header_size, tokens, _ = split_tokens(sealed)
    return sealed[:header_size], tokens


def test_chunk_swap_drop_duplicate_append_are_detected(alice):
    head, tokens = _sealed_and_tokens(alice)
    variants = {
        "swap": [tokens[1], tokens[0], *tokens[2:]],
        "drop first": tokens[1:],
        "drop middle": [tokens[0], *tokens[2:]],
        "drop last": tokens[:-1],
        "duplicate": [tokens[0], tokens[0], *tokens[1:]],
        "duplicate last": [*tokens, tokens[-1]],
        "trailing byte": [*tokens, b"\0"],
        "trailing token-sized block": [*tokens, tokens[0]],
    }
    assert envelope.open(head + b"".join(tokens), alice)  # the unmodified file opens
    for name, arrangement in variants.items():
        with pytest.raises(envelope.AuthenticationError):
            envelope.open(head + b"".join(arrangement), alice)
            pytest.fail(name)


def test_chunks_cannot_move_between_files(alice):
    head_a, tokens_a = _sealed_and_tokens(alice)
    _, tokens_b = _sealed_and_tokens(alice)
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(head_a + tokens_b[0] + b"".join(tokens_a[1:]), alice)


def test_in_place_decryption_writes_exactly_the_data():
    """open_in_place (in-memory open) puts the chunk's data at the start of ``out`` and never
    writes past it: neighbouring chunks of one output are filled by other workers at once."""
    data_key = DataKey.generate()
    payload = bytes(range(256)) * 2
    for size in range(0, 400):
        for final, chunk_size in ((True, 401), (False, max(size, 16))):
            if not final and size < 16:
                continue
            token = ChunkSealer(data_key, chunk_size).seal(3, final, payload[:size])
            out = bytearray(b"\xee" * (size + 64))
            length = ChunkOpener(data_key, chunk_size).open_in_place(3, final, memoryview(token), memoryview(out))
            assert length == size
            assert out[:size] == payload[:size]
            assert out[size:] == b"\xee" * 64


def test_in_place_decryption_checks_like_open_into(alice):
    data_key = DataKey.generate()
    token = bytearray(ChunkSealer(data_key, 1000).seal(0, True, b"z" * 500))
    opener = ChunkOpener(data_key, 1000)
    with pytest.raises(envelope.AuthenticationError):
        opener.open_in_place(1, True, memoryview(bytes(token)), memoryview(bytearray(600)))  # wrong index
    with pytest.raises(envelope.AuthenticationError):
        opener.open_in_place(0, False, memoryview(bytes(token)), memoryview(bytearray(600)))  # not final
    token[100] ^= 1
    with pytest.raises(envelope.AuthenticationError):
        opener.open_in_place(0, True, memoryview(bytes(token)), memoryview(bytearray(600)))
