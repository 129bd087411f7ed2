"""Sender signatures (section 8; rules R24-R28). Signed files use chunk size 16 and 40 bytes of
plaintext (three tokens) unless said otherwise; the reader holds rsa2048-a."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from .kit import (
    ED25519_ORDER,
    P256_ORDER,
    SIGNING_KEYS,
    TEXT,
    TestFile,
    metadata,
    vector,
)

SIGNED = TEXT[:40]


def signed(f: TestFile, signer: str, pinned: bool = False) -> None:
    f.header["meta"] = metadata({"name": "demo", "signed": True})
    f.sign(signer)
    f.seal(SIGNED)
    if pinned:
        f.signed_by = [signer]


for _signer, _alg in SIGNING_KEYS.items():
    vector(
        functools.partial(signed, signer=_signer),
        name=f"signed-{_alg}",
        description=f"signed with {_alg}, three chunks, metadata; the reader pins no signer",
    )
    vector(
        functools.partial(signed, signer=_signer, pinned=True),
        name=f"signed-{_alg}-pinned",
        description=f"signed with {_alg}; the reader requires that signer",
    )


@vector
def signed_empty_payload(f: TestFile) -> None:
    """signed with Ed25519, empty payload: one empty final chunk and one tag in the footer"""
    f.sign("ed25519-a")
    f.seal(b"")


@vector
def signed_large_ml_dsa(f: TestFile) -> None:
    """signed with ML-DSA-65, 200000 bytes in chunks of 65536 (four tokens)"""
    f.header["chunk_size"] = 65536
    f.sign("ml-dsa-65-a")
    f.seal(TEXT)


@vector(seed="signed-ed25519")
def signed_ed25519_rewrapped(f: TestFile) -> None:
    """signed-ed25519 after a rewrap that added rsa2048-b and removed rsa2048-a: the payload and
    footer are those of signed-ed25519, byte for byte, and the signature still verifies"""
    f.header["recipients"] = ["rsa2048-b"]
    f.keys = ["rsa2048-b"]
    signed(f, "ed25519-a")


@vector
def signed_one_of_several_pinned(f: TestFile) -> None:
    """signed with ECDSA P-256; the reader accepts Ed25519 or ECDSA P-256 signers"""
    signed(f, "ecdsa-p256-a")
    f.signed_by = ["ed25519-a", "ecdsa-p256-a"]


# R24: the signer field ---------------------------------------------------------------------------


@vector
def r24_critical_stripped(f: TestFile) -> None:
    """a signed file whose critical array was removed; signer and footer stay"""
    f.sign("ed25519-a")
    del f.header["critical"]
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r24_signer_stripped(f: TestFile) -> None:
    """a signed file whose signer field was removed; critical still names signature"""
    f.sign("ed25519-a")
    del f.header["signer"]
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r24_signer_not_map(f: TestFile) -> None:
    """signer is the string "ed25519" """
    f.sign("ed25519-a")
    f.header["signer"] = "ed25519"
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r24_signer_alg_missing(f: TestFile) -> None:
    """signer has kid and key but no alg"""
    f.sign("ed25519-a")
    del f.header["signer"]["alg"]
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r24_kid_not_key_hash(f: TestFile) -> None:
    """signer.kid is 32 bytes but not the SHA-256 of signer.key"""
    f.sign("ed25519-a")
    f.header["signer"]["kid"] = hashlib.sha256(b"another key").digest()
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r24_key_of_other_algorithm(f: TestFile) -> None:
    """alg says ed25519 but key is an ECDSA P-256 key, which made the (64-byte) signature"""
    f.sign("ecdsa-p256-a", alg="ed25519")
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r24_key_not_spki(f: TestFile) -> None:
    """signer.key holds the 32 raw bytes of an Ed25519 public key, not a SubjectPublicKeyInfo"""
    f.sign("ed25519-a", key=f.kit.keys.spki("ed25519-a")[-32:])
    f.seal(SIGNED)
    f.expect_error("R24")


# R25: the algorithm -----------------------------------------------------------------------------


@vector
def r25_unknown_algorithm(f: TestFile) -> None:
    """signer.alg is "ed448", which version 1 does not define (the footer holds an Ed25519 signature)"""
    f.sign("ed25519-a", alg="ed448")
    f.seal(SIGNED)
    f.expect_error("R25")


@vector
def r25_algorithm_case(f: TestFile) -> None:
    """signer.alg is "Ed25519": algorithm names are compared exactly, as bytes"""
    f.sign("ed25519-a", alg="Ed25519")
    f.seal(SIGNED)
    f.expect_error("R25")


@vector
def r12_signature_and_unknown_extension(f: TestFile) -> None:
    """a signed file whose critical array also names "x-future": one unknown extension is enough"""
    f.sign("ed25519-a")
    f.header["critical"] = ["signature", "x-future"]
    f.seal(SIGNED)
    f.expect_error("R12")


@vector
def r17_signed_no_payload(f: TestFile) -> None:
    """a signed file that ends after the header MAC: no token, no footer"""
    f.sign("ed25519-a")
    f.write_header()
    f.expect_error("R17")


# R26: the footer's length ------------------------------------------------------------------------


@vector
def r26_footer_cut(f: TestFile) -> None:
    """the footer's last byte removed"""
    signed(f, "ed25519-a")
    f.cut(1)
    f.expect_error("R26", from_length="R18")


@vector
def r26_footer_extended(f: TestFile) -> None:
    """one byte after the footer"""
    signed(f, "ed25519-a")
    f.out += b"\0"
    f.expect_error("R26", from_length="R18")


@vector
def r26_footer_missing(f: TestFile) -> None:
    """a signed file whose footer was removed: it ends with its final token"""
    signed(f, "ed25519-a")
    f.cut(3 * 32 + 64)
    f.expect_error("R26", from_length="R18")


# R27: the footer's content -----------------------------------------------------------------------


def flipped_signature(f: TestFile, signer: str) -> None:
    signed(f, signer)
    f.flip(len(f.out) - f.signature_len + 10)
    f.expect_error("R27")


for _signer, _alg in SIGNING_KEYS.items():
    vector(
        functools.partial(flipped_signature, signer=_signer),
        name=f"r27-{_alg}-signature-flipped",
        description=f"one bit of the {_alg} signature flipped",
    )


@vector
def r27_footer_tag_flipped(f: TestFile) -> None:
    """one bit of the footer's second tag flipped (the signature is over the tokens' tags)"""
    signed(f, "ed25519-a")
    f.flip(len(f.out) - f.signature_len - 2 * 32 + 5)
    f.expect_error("R27")


@vector
def r27_chunk_resealed(f: TestFile) -> None:
    """a recipient (who holds the data key) replaced chunk 1 by a valid token of other data: the
    token opens, but its tag is not the signed one"""
    f.header["meta"] = metadata({"name": "demo", "signed": True})
    f.sign("ed25519-a")
    f.write_header()
    tokens = [f.make_token(0, 0, SIGNED[:16]), f.make_token(1, 0, SIGNED[16:32]), f.make_token(2, 1, SIGNED[32:])]
    for token in (tokens[0], f.make_token(1, 0, b"B" * 16), tokens[2]):
        f.append_token(token)
    f.footer([token[-32:] for token in tokens])
    f.expect_error("R27")


@vector
def r27_ecdsa_high_s(f: TestFile) -> None:
    """the ECDSA signature with s replaced by n - s: valid ECDSA, but not the low-s form"""
    signed(f, "ecdsa-p256-a")
    s = int.from_bytes(f.out[-32:], "big")
    assert s <= P256_ORDER // 2
    f.out[-32:] = (P256_ORDER - s).to_bytes(32, "big")
    f.expect_error("R27")


@vector
def r27_ed25519_s_not_canonical(f: TestFile) -> None:
    """the Ed25519 signature's S replaced by S + L (the group order): lax verifiers accept it"""
    signed(f, "ed25519-a")
    s = int.from_bytes(f.out[-32:], "little")
    f.out[-32:] = (s + ED25519_ORDER).to_bytes(32, "little")
    f.expect_error("R27")


# R28: whom the reader trusts ---------------------------------------------------------------------


@vector
def r28_unsigned_when_required(f: TestFile) -> None:
    """an unsigned file; the reader requires an Ed25519 signer"""
    f.seal(SIGNED)
    f.signed_by = ["ed25519-a"]
    f.expect_error("R28")


@vector
def r28_wrong_signer(f: TestFile) -> None:
    """signed with ECDSA P-256; the reader requires the Ed25519 signer"""
    signed(f, "ecdsa-p256-a")
    f.signed_by = ["ed25519-a"]
    f.expect_error("R28")


@vector
def r28_wrong_signer_among_several(f: TestFile) -> None:
    """signed with ML-DSA-65; the reader requires Ed25519 or ECDSA P-256"""
    signed(f, "ml-dsa-65-a")
    f.signed_by = ["ed25519-a", "ecdsa-p256-a"]
    f.expect_error("R28")


@vector
def r24_key_not_canonical(f: TestFile) -> None:
    """signer.key is ecdsa-p256-a's SubjectPublicKeyInfo with the point compressed (FORMAT.md 8.1
    wants it uncompressed, so that a key has one key id); kid hashes that encoding and the
    signature is good"""
    from cryptography.hazmat.primitives import serialization

    public = f.kit.keys.private["ecdsa-p256-a"].public_key()
    compressed = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    uncompressed = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert compressed.endswith(uncompressed)
    spki_prefix = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")  # for a 33-byte point
    f.sign("ecdsa-p256-a", key=spki_prefix + point)
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r6_critical_names_signature_twice(f: TestFile) -> None:
    """critical is ["signature", "signature"]: an extension named twice (section 3.4)"""
    f.sign("ed25519-a")
    f.header["critical"] = ["signature", "signature"]
    f.seal(SIGNED)
    f.expect_error("R6")


# What the signature covers: the header less its recipients (section 8.3) ----------------------------


@vector
def signed_with_unknown_keys(f: TestFile) -> None:
    """signed with Ed25519; the header holds an unknown top-level key and the signer map an extra
    key, both covered by the signature (readers ignore them)"""
    f.header["meta"] = metadata({"name": "demo"})
    f.sign("ed25519-a")
    f.header["signer"]["note"] = "release"
    f.header["x-provenance"] = {"build": 7}
    f.seal(SIGNED)


def edited_after_signing(f: TestFile, edit: Callable[[dict[str, Any]], None]) -> None:
    """A signed file whose header a recipient (who holds K) edited after signing: header MAC valid
    again, tokens and footer as the signer made them."""
    f.sign("ed25519-a")
    f.header["signer"]["note"] = "release"
    f.header["x-provenance"] = {"build": 7}
    as_signed = f.encode_header()
    edit(f.header)
    f.write_header()
    f.payload(SIGNED)
    f.footer(signed=as_signed)
    f.expect_error("R27")


@vector
def r27_unknown_key_edited(f: TestFile) -> None:
    """an unknown top-level key changed from {"build": 7} to {"build": 8} after signing"""
    edited_after_signing(f, lambda header: header.update({"x-provenance": {"build": 8}}))


@vector
def r27_signer_extra_key_edited(f: TestFile) -> None:
    """the signer map's extra key "note" changed from "release" to "debug" after signing"""
    edited_after_signing(f, lambda header: header["signer"].update({"note": "debug"}))


# R24: signer keys that are not valid keys (section 8.1) -------------------------------------------

ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")  # RFC 8410, then the 32 key bytes
ED25519_P = 2**255 - 19


def ed25519_key(y: int, x_odd: int = 0) -> bytes:
    """A SubjectPublicKeyInfo holding the 32-byte encoding of (y, sign of x), as RFC 8032 5.1.2."""
    return ED25519_SPKI + (y | x_odd << 255).to_bytes(32, "little")


# The points whose order divides 8 (tests/test_signer_keys.py derives them): identity, order 2,
# order 4, order 8.
ED25519_Y8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
SMALL_ORDER = {"identity": 1, "order-2": ED25519_P - 1, "order-4": 0, "order-8": ED25519_Y8}


def ed25519_bad_key(f: TestFile, key: bytes) -> None:
    f.header["meta"] = metadata({"name": "demo", "signed": True})
    f.sign("ed25519-a", key=key)
    f.seal(SIGNED)
    f.expect_error("R24")


@vector
def r24_ed25519_key_not_canonical(f: TestFile) -> None:
    """the Ed25519 key's 32 bytes encode y = 3 + p: the curve point of y = 3, in a second encoding
    that would give it a second key id"""
    ed25519_bad_key(f, ed25519_key(3 + ED25519_P))


@vector
def r24_ed25519_key_not_a_point(f: TestFile) -> None:
    """the Ed25519 key's y = 2: (y² - 1) / (d·y² + 1) has no square root, so no point has it"""
    ed25519_bad_key(f, ed25519_key(2))


@vector
def r24_ed25519_key_x_zero_odd(f: TestFile) -> None:
    """the Ed25519 key is y = 1 (x = 0) with the sign bit of x set: RFC 8032 5.1.3 refuses it"""
    ed25519_bad_key(f, ed25519_key(1, x_odd=1))


for _order, _y in SMALL_ORDER.items():
    vector(
        functools.partial(lambda f, y: ed25519_bad_key(f, ed25519_key(y)), y=_y),
        name=f"r24-ed25519-key-{_order}",
        description=f"the Ed25519 key is the point of {_order.replace('-', ' ')} (y = {_y:#x}): anyone can "
        "make a signature that verifies under a small-order key",
    )


@vector
def r24_ed25519_key_identity_forged_signature(f: TestFile) -> None:
    """the Ed25519 key is the identity point, and the signature is R = identity, S = 0: it verifies
    under that key for any message (cofactorless equation: [0]B = R + [k]A), made without any
    private key"""
    ed25519_bad_key(f, ed25519_key(1))
    f.out[len(f.out) - 64 :] = ed25519_key(1)[-32:] + bytes(32)


@vector
def r24_ecdsa_key_off_curve(f: TestFile) -> None:
    """the P-256 key's point has its y coordinate plus one: not on the curve"""
    from cryptography.hazmat.primitives import serialization

    der = f.kit.keys.spki("ecdsa-p256-a")
    point = (
        f.kit.keys.private["ecdsa-p256-a"]
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    assert der.endswith(point)
    y = (int.from_bytes(point[33:], "big") + 1) % (2**256)
    f.header["meta"] = metadata({"name": "demo", "signed": True})
    f.sign("ecdsa-p256-a", key=der[: -len(point)] + point[:33] + y.to_bytes(32, "big"))
    f.seal(SIGNED)
    f.expect_error("R24")
