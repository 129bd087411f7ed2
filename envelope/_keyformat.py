"""Byte structures of key files, read and written without cryptography: DER elements, PEM blocks,
OpenSSH's private key header, and the encrypted key inside a PKCS#12 file."""

from __future__ import annotations

import base64
import re
import struct

from .errors import InvalidKeyError

_PKCS7_DATA = bytes.fromhex("2a864886f70d010701")  # id-data
_SHROUDED_KEY_BAG = bytes.fromhex("2a864886f70d010c0a0102")  # pkcs8ShroudedKeyBag


def shrouded_key(pfx: bytes) -> bytes:
    """The EncryptedPrivateKeyInfo of the pkcs8ShroudedKeyBag of a PKCS#12 file (RFC 7292: PFX ->
    authSafe (id-data) -> ContentInfo (id-data) -> SafeContents -> SafeBag -> [0] the key)."""

    def inside(position: int) -> list[int]:  # where the elements in an element's content start
        _, start, end = der_element(pfx, position)
        found = []
        while start < end:
            found.append(start)
            start = der_element(pfx, start)[2]
        return found

    def content(position: int) -> bytes:
        _, start, end = der_element(pfx, position)
        return pfx[start:end]

    def data_content(content_info: int) -> int | None:  # the DER inside an id-data ContentInfo
        content_type, explicit = inside(content_info)[:2]
        return inside(inside(explicit)[0])[0] if content(content_type) == _PKCS7_DATA else None

    try:
        authenticated_safe = data_content(inside(0)[1])
        for content_info in inside(authenticated_safe) if authenticated_safe is not None else []:
            safe_contents = data_content(content_info)
            for bag in inside(safe_contents) if safe_contents is not None else []:
                bag_id, value = inside(bag)[:2]
                if content(bag_id) == _SHROUDED_KEY_BAG:
                    key = inside(value)[0]
                    return pfx[key : der_element(pfx, key)[2]]
    except (ValueError, IndexError) as exc:
        raise AssertionError(f"cryptography wrote an unexpected PKCS#12 structure: {exc}") from exc
    raise AssertionError("cryptography wrote a PKCS#12 file without a shrouded key bag")


def pem_encode(label: bytes, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN " + label + b"-----\n" + b"\n".join(lines) + b"\n-----END " + label + b"-----\n"


def der_element(data: bytes, position: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``position``; ValueError if cut."""
    if position + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[position], data[position + 1]
    start = position + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def der_shape(der: bytes) -> str | None:
    """What a DER structure is, from the tags of its top-level SEQUENCE's elements: "private"
    (PKCS#8 PrivateKeyInfo or PKCS#1 RSAPrivateKey: an INTEGER first), "encrypted"
    (EncryptedPrivateKeyInfo: AlgorithmIdentifier, OCTET STRING), "public" (SubjectPublicKeyInfo:
    AlgorithmIdentifier, BIT STRING; or PKCS#1 RSAPublicKey: two INTEGERs), "certificate"
    (SEQUENCE, SEQUENCE, BIT STRING), or None."""
    try:
        tag, position, end = der_element(der, 0)
        if tag != 0x30 or end != len(der):
            return None
        tags = []
        while position < end:
            element_tag, _, position = der_element(der, position)
            tags.append(element_tag)
    except ValueError:
        return None
    shapes = {
        (0x02, 0x02): "public",
        (0x30, 0x03): "public",
        (0x30, 0x04): "encrypted",
        (0x30, 0x30, 0x03): "certificate",
    }
    if tuple(tags) in shapes:
        return shapes[tuple(tags)]
    return "private" if tags[:1] == [0x02] else None


def algorithm_oid(der: bytes, *, skip_version: bool) -> bytes | None:
    """The algorithm OID of a SubjectPublicKeyInfo (or, skipping the version, a PKCS#8
    PrivateKeyInfo): SEQUENCE { [INTEGER version,] SEQUENCE { OID, ... }, ... }. None if the bytes
    are not shaped like one."""
    try:
        tag, position, _ = der_element(der, 0)
        if tag != 0x30:
            return None
        if skip_version:
            tag, _, position = der_element(der, position)
            if tag != 0x02:
                return None
        tag, position, _ = der_element(der, position)
        if tag != 0x30:
            return None
        tag, start, end = der_element(der, position)
        return der[start:end] if tag == 0x06 else None
    except ValueError:
        return None


_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----")


def pem_label(data: bytes) -> bytes:
    """The label of the first PEM block (``PUBLIC KEY`` for ``-----BEGIN PUBLIC KEY-----``), or b""."""
    match = _PEM_BEGIN.search(data)
    return match.group(1) if match else b""


def pem_body(data: bytes, label: bytes) -> bytes | None:
    """The DER inside the first PEM block with this label, if any."""
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    if begin not in data or end not in data:
        return None
    body = data.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return None


_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def openssh_header(data: bytes) -> tuple[str, bytes]:
    """The cipher name and the public key blob of an OpenSSH private key, both in the clear
    (OpenSSH's PROTOCOL.key: magic, cipher, KDF, KDF options, key count, public keys, ...)."""
    try:
        body = data.split(b"-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1].split(b"-----END", 1)[0]
        raw = base64.b64decode(b"".join(body.split()), validate=True)
        if not raw.startswith(_OPENSSH_MAGIC):
            raise ValueError("no magic")
        position = len(_OPENSSH_MAGIC)
        cipher, position = ssh_string(raw, position)
        _kdf, position = ssh_string(raw, position)
        _kdf_options, position = ssh_string(raw, position)
        if position + 4 > len(raw) or struct.unpack_from(">I", raw, position)[0] != 1:
            raise ValueError("not one key")
        public_blob, _ = ssh_string(raw, position + 4)
    except (ValueError, IndexError) as exc:
        raise InvalidKeyError("not a valid OpenSSH private key") from exc
    return cipher.decode("ascii", "replace"), public_blob


def ssh_string(raw: bytes, position: int) -> tuple[bytes, int]:
    if position + 4 > len(raw):
        raise ValueError("truncated")
    (length,) = struct.unpack_from(">I", raw, position)
    start = position + 4
    if start + length > len(raw):
        raise ValueError("truncated")
    return raw[start : start + length], start + length


def ssh_field(blob: bytes, index: int) -> bytes:
    """The ``index``-th string of an SSH wire-format blob (0: the key type)."""
    position = 0
    try:
        for _ in range(index):
            _, position = ssh_string(blob, position)
        return ssh_string(blob, position)[0]
    except ValueError as exc:
        raise InvalidKeyError("not a valid OpenSSH private key") from exc
