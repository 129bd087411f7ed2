"""Every vector in spec/vectors/v1 (spec/vectors/README.md): the SDK agrees with the spec's examples."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

import envelope

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
CASES = sorted((VECTORS / "v1").glob("*.json"))


def untag(value: Any) -> Any:
    if isinstance(value, list):
        return [untag(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            ((kind, raw),) = value.items()
            if kind == "$bin":
                return bytes.fromhex(raw)
            if kind == "$int":
                return int(raw)
            if kind == "$float":
                return float(raw)  # a number, or "NaN" / "Infinity" / "-Infinity"
            raise ValueError(kind)
        return {k: untag(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that keeps floats and ints apart (1.0 is not 1 in metadata)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_the_vector_set_is_complete():
    """Every MUST-reject rule R1-R22 has at least one negative vector (R23 is about keys)."""
    specs = [json.loads(p.read_text()) for p in CASES]
    rules = {s["rule"] for s in specs if s["expect"] == "error"}
    assert rules >= {f"R{i}" for i in range(1, 23)}
    assert sum(s["expect"] == "success" for s in specs) >= 20


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_vector(case: Path) -> None:
    spec = json.loads(case.read_text())
    sealed = case.with_suffix(".envelope").read_bytes()
    keys = [envelope.load_private_key(VECTORS / "keys" / f"{name}.pem") for name in spec["keys"]]
    if spec["expect"] == "error":
        error = getattr(envelope, spec["error"])
        with pytest.raises(error):
            envelope.open(sealed, keys)
        with pytest.raises(envelope.EnvelopeError):  # the streaming reader agrees (its class may differ for R18 vs R4)
            envelope.open_stream(io.BytesIO(sealed), io.BytesIO(), keys)
        return
    plaintext, metadata, _ = envelope.open_with_metadata(sealed, keys)
    assert len(plaintext) == spec["plaintext_length"]
    assert hashlib.sha256(plaintext).hexdigest() == spec["plaintext_sha256"]
    if "plaintext_hex" in spec:
        assert plaintext.hex() == spec["plaintext_hex"]
    assert same(metadata, untag(spec["metadata"]))
    info = envelope.inspect(sealed)
    assert info.chunk_size == spec["chunk_size"] and info.chunk_count == spec["chunk_count"]
    # Each chunk is a genuine Fernet token under the recorded data key.
    fernet = Fernet(base64.urlsafe_b64encode(bytes.fromhex(spec["data_key"])))
    payload = sealed[info.header_size :]
    tokens = [payload[i : i + info.token_size] for i in range(0, len(payload), info.token_size)]
    assert b"".join(fernet.decrypt(base64.urlsafe_b64encode(t))[9:] for t in tokens) == plaintext


def test_format_appendix_a_walkthrough_is_true():
    """FORMAT.md appendix A describes this vector byte by byte; keep the two in step."""
    sealed = (VECTORS / "v1" / "size-1-chunk-16.envelope").read_bytes()
    data_key = bytes.fromhex(json.loads((VECTORS / "v1" / "size-1-chunk-16.json").read_text())["data_key"])
    assert len(sealed) == 474 and sealed[:13].hex() == "89454e560d0a1a0a0100000164"
    assert sealed[13:14] == b"\x83" and sealed[14:26] == b"\xaachunk_size\x10"
    assert sealed[26:39] == b"\xaarecipients\x91\x83" and sealed[361:369] == b"\xa4meta\xc4\x01\x80"
    token = sealed[401:]
    assert token[:9].hex() == "800000000000000049" and len(token) == 73  # timestamp field: its length
    fernet = Fernet(base64.urlsafe_b64encode(data_key))
    assert fernet.decrypt(base64.urlsafe_b64encode(token)).hex() == "000000000000000001a3"
    assert data_key.hex().startswith("409a0524") and data_key.hex().endswith("5c19b64a06")
