"""Spec sections 2-5: prefix, header encoding, fields, limits, metadata; rules R1-R12."""

from __future__ import annotations

import dataclasses
import math
import struct

import msgpack
import pytest
from forge import forge
from hypothesis import given
from hypothesis import strategies as st

import envelope
from envelope._datakey import DataKey
from envelope._format import (
    MAGIC,
    MAX_HEADER_LEN,
    MAX_METADATA_LEN,
    MAX_RECIPIENTS,
    Header,
    RecipientEntry,
    decode_header,
    decode_metadata,
    decode_prefix,
    encode_header,
    encode_metadata,
    signed_header,
)

KID = b"k" * 32
COMMIT = b"c" * 32


def entry(kid: bytes = KID, key: bytes = b"w" * 256) -> dict:
    return {"type": "rsa-oaep-sha256", "kid": kid, "key": key}


def header_bytes(**fields) -> bytes:
    base = {"chunk_size": 1024, "recipients": [entry()], "meta": b"\x80", "commit": COMMIT}
    base.update(fields)
    return msgpack.packb({k: v for k, v in base.items() if v is not None}, use_bin_type=True)


def test_prefix_layout():
    header = encode_header(
        Header(
            chunk_size=1024, recipients=(RecipientEntry("rsa-oaep-sha256", {"kid": KID, "key": b"w"}),), commit=COMMIT
        )
    )
    sealed_prefix = MAGIC + b"\x01" + struct.pack(">I", len(header))
    assert MAGIC == bytes.fromhex("89454e560d0a1a0a")
    assert decode_prefix(sealed_prefix) == len(header)


def test_canonical_header_key_order_and_roundtrip():
    entries = (
        RecipientEntry("rsa-oaep-sha256", {"kid": KID, "key": b"w" * 256}),
        RecipientEntry("future-kind", {"x": 1}),
    )
    header = Header(chunk_size=4096, recipients=entries, meta=encode_metadata({"a": 1}), commit=COMMIT)
    encoded = encode_header(header)
    assert list(msgpack.unpackb(encoded, raw=False)) == ["chunk_size", "recipients", "meta", "commit"]
    assert list(msgpack.unpackb(encoded, raw=False)["recipients"][0]) == ["type", "kid", "key"]
    assert decode_header(encoded) == dataclasses.replace(header, signed=signed_header(encoded))


# --- R1-R4: the prefix -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x89ENV", b"PK\x03\x04" + b"\0" * 20, b"\x89ENV\n\n\x1a\n\x01\0\0\0\x10"])
def test_r1_bad_magic_or_too_short(data, alice):
    with pytest.raises(envelope.MalformedError, match="not an envelope file"):
        envelope.open(data, alice)


def test_r2_unknown_version(alice):
    sealed = bytearray(envelope.seal(b"x", alice.public_key()))
    for version in (0, 2, 255):
        sealed[8] = version
        with pytest.raises(envelope.UnsupportedError):
            envelope.open(bytes(sealed), alice)


def test_r3_header_length_limits(alice):
    with pytest.raises(envelope.MalformedError):
        decode_prefix(MAGIC + b"\x01" + struct.pack(">I", 0))
    for length in (MAX_HEADER_LEN + 1, 2**32 - 1):
        # A header claiming 4 GiB is refused from the 13 prefix bytes, before any allocation.
        with pytest.raises(envelope.LimitError):
            envelope.open(MAGIC + b"\x01" + struct.pack(">I", length), alice)
    assert decode_prefix(MAGIC + b"\x01" + struct.pack(">I", MAX_HEADER_LEN)) == MAX_HEADER_LEN


def test_r4_file_ends_inside_header_or_mac(alice):
    sealed = envelope.seal(b"x", alice.public_key())
    header_size = envelope.inspect(sealed).header_size
    for cut in (14, header_size - 33, header_size - 1):
        with pytest.raises(envelope.MalformedError):
            envelope.open(sealed[:cut], alice)


# --- R5-R12: the header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xc1",  # never-used byte
        msgpack.packb([1, 2]),  # not a map
        header_bytes() + b"\x00",  # trailing byte inside header_len
        header_bytes()[:-1],  # truncated object
        b"\x81\x01\x02",  # int key
        b"\x82\xa1a\x01\xa1a\x02",  # duplicate key
        b"\x81\xa2\xff\xfe\x01",  # invalid UTF-8 key
        b"\x81\xa1x\xd4\x05\x00",  # ext type
        b"\x81\xa1x\xd6\xff\x00\x00\x00\x00",  # timestamp ext
        b"\x81\xa1x" + b"\x91" * 40 + b"\xc0",  # nested deeper than the header allows
        msgpack.packb({"chunk_size": 1024, "recipients": [entry()]}, use_bin_type=True),  # meta missing
        header_bytes(chunk_size="1024"),
        header_bytes(chunk_size=True),
        header_bytes(recipients={"type": "x"}),
        header_bytes(recipients=[]),  # R8: none
        header_bytes(meta="not bin"),
        header_bytes(critical="x"),
        header_bytes(critical=[1]),
        header_bytes(recipients=["not a map"]),  # R9
        header_bytes(recipients=[{"kid": KID}]),
        header_bytes(recipients=[{"type": ""}]),
        header_bytes(recipients=[{"type": "t" * 65}]),
        header_bytes(recipients=[entry(kid=b"short")]),  # R10
        header_bytes(recipients=[{"type": "rsa-oaep-sha256", "kid": KID}]),
        header_bytes(recipients=[entry(key="str")]),
        header_bytes(recipients=[entry(), entry()]),  # duplicate kid
        header_bytes(meta=b"\x91\x01"),  # R11: metadata not a map
        header_bytes(meta=b"\x81\x01\x02"),
        header_bytes(meta=b"\x80\x00"),
        header_bytes(meta=b""),
    ],
)
def test_r5_to_r11_malformed_headers(raw):
    with pytest.raises(envelope.MalformedError):
        decode_header(raw)


@pytest.mark.parametrize(
    "raw",
    [
        header_bytes(chunk_size=15),  # R7
        header_bytes(chunk_size=16 * 2**20 + 1),
        header_bytes(chunk_size=2**64 - 1),
        header_bytes(recipients=[entry(kid=bytes([i % 256, i // 256]) * 16) for i in range(MAX_RECIPIENTS + 1)]),  # R8
        header_bytes(meta=msgpack.packb({"k": b"x" * MAX_METADATA_LEN}, use_bin_type=True)),  # R11
        header_bytes(meta=b"\x81\xa1k" + b"\x91" * 8 + b"\xc0"),  # depth 9
    ],
)
def test_limits_r7_r8_r11(raw):
    with pytest.raises(envelope.LimitError):
        decode_header(raw)


def test_limits_accept_their_boundaries():
    assert decode_header(header_bytes(chunk_size=16)).chunk_size == 16
    assert decode_header(header_bytes(chunk_size=16 * 2**20)).chunk_size == 16 * 2**20
    deep = b"\x81\xa1k" + b"\x91" * 7 + b"\xc0"  # depth 8
    assert decode_metadata(deep) == {"k": [[[[[[[None]]]]]]]}


def test_r12_unknown_critical_extension():
    with pytest.raises(envelope.UnsupportedError, match="sender-signature"):
        decode_header(header_bytes(critical=["sender-signature"]))
    assert decode_header(header_bytes(critical=[])).critical == ()


def test_unknown_keys_and_recipient_types_are_ignored(alice):
    """Room to grow: unknown non-critical keys and unknown recipient types do not break readers."""
    from forge import chunk_message, fernet_token

    from envelope.recipients import RsaRecipient

    data_key = DataKey.generate()
    ours = RsaRecipient(alice.public_key()).wrap(data_key)
    raw = msgpack.packb(
        {
            "chunk_size": 16,
            "recipients": [{"type": "pq-kem-2031", "blob": b"\1" * 99}, {"type": ours.type, **ours.fields}],
            "meta": b"\x80",
            "commit": data_key.commitment(),
            "hint": {"added": "later"},
        },
        use_bin_type=True,
    )
    token = fernet_token(data_key, chunk_message(0, True, b"ok"))
    assert envelope.open(forge(alice, data_key, [token], header=raw), alice) == b"ok"


# --- metadata (section 5) --------------------------------------------------------------------

metadata_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
metadata_maps = st.dictionaries(st.text(max_size=16), metadata_values, max_size=6)


@given(metadata_maps)
def test_metadata_roundtrip(metadata):
    assert decode_metadata(encode_metadata(metadata)) == metadata


def test_metadata_nan_roundtrip():
    assert math.isnan(decode_metadata(encode_metadata({"x": float("nan")}))["x"])


@pytest.mark.parametrize(
    "bad, error",
    [
        ({"x": {1, 2}}, envelope.UsageError),
        ({"x": object()}, envelope.UsageError),
        ({1: "int key"}, envelope.UsageError),
        ({"x": 2**64}, envelope.UsageError),
        ({"x": -(2**63) - 1}, envelope.UsageError),
        ({"x": {"y": {2: 1}}}, envelope.UsageError),
        ({"x": b"b" * MAX_METADATA_LEN}, envelope.LimitError),
        ({"x": [[[[[[[[1]]]]]]]]}, envelope.LimitError),
        ("not a mapping", envelope.UsageError),
    ],
)
def test_metadata_rejects_what_the_spec_forbids(bad, error, alice):
    with pytest.raises(error):
        envelope.seal(b"", alice.public_key(), metadata=bad)


def test_metadata_is_authenticated(alice):
    """Changing metadata bytes (even to another valid map of the same size) fails the header MAC."""
    sealed = envelope.seal(b"payload", alice.public_key(), metadata={"stage": "prod"})
    forged = sealed.replace(b"prod", b"test")
    assert forged != sealed and envelope.inspect(forged).unverified_metadata == {"stage": "test"}
    with pytest.raises(envelope.AuthenticationError):
        envelope.open(forged, alice)


def test_a_nan_in_metadata_is_written_as_the_quiet_nan_without_payload():
    """Section 3.1: -nan and NaNs with a payload have other bits, which msgpack would copy."""
    negative = struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0]
    with_payload = struct.unpack(">d", bytes.fromhex("7ff8000000000001"))[0]
    for nan in (negative, with_payload, float("nan")):
        assert encode_metadata({"x": [nan, {"y": nan}]}) == (
            b"\x81\xa1x\x92" + b"\xcb\x7f\xf8" + bytes(6) + b"\x81\xa1y" + b"\xcb\x7f\xf8" + bytes(6)
        )
