"""Metadata (section 5): every allowed type, and keys that tagged JSON must escape."""

from __future__ import annotations

import struct

import msgpack

from .kit import TEXT, TestFile, metadata, vector


@vector
def metadata_all_types(f: TestFile) -> None:
    """metadata with every allowed type, float32 included, nested to depth 8"""
    items = [
        ("nil", None),
        ("true", True),
        ("false", False),
        ("int", 42),
        ("negative", -17),
        ("int64-min", -(2**63)),
        ("uint64-max", 2**64 - 1),
        ("float64", 3.141592653589793),
        ("text", "ünïcødé ✓"),
        ("bytes", b"\x00\xff\x10"),
        ("array", [1, "two", None, [3.5]]),
        ("map", {"inner": {"deeper": [True]}}),
        ("depth-8", {"a": [[[[[[0]]]]]]}),
        ("", "empty key"),
    ]
    body = b"".join(msgpack.packb(k) + msgpack.packb(v, use_bin_type=True) for k, v in items)
    body += msgpack.packb("float32") + msgpack.packb(1.5, use_single_float=True)  # msgpack-python writes float64
    f.header["meta"] = bytes([0xDE]) + struct.pack(">H", len(items) + 1) + body
    f.seal(TEXT[:40])


@vector
def metadata_model(f: TestFile) -> None:
    """typical model metadata"""
    f.header.update(chunk_size=256, meta=metadata({"envelope.framework": "keras", "name": "resnet", "version": 3}))
    f.seal(TEXT[:1000])


@vector
def metadata_dollar_keys(f: TestFile) -> None:
    """maps whose only key begins with '$' (tagged JSON writes them as {"$map": ...}) next to maps
    with several '$' keys (written as they are)"""
    f.header["meta"] = metadata({
        "amount": {"$int": "12"},
        "blob": {"$bin": {"$float": 1.5}},
        "both": {"$int": 1, "$bin": b"\x01"},
        "nested": {"$map": {"x": 1}},
        "$map": "a top-level key named $map",
    })  # fmt: skip
    f.seal(TEXT[:10])


@vector
def metadata_single_dollar_key(f: TestFile) -> None:
    """the whole metadata map has one key, "$float": its tagged JSON is {"$map": {"$float": ...}}"""
    f.header["meta"] = metadata({"$float": 2.5})
    f.seal(TEXT[:10])
